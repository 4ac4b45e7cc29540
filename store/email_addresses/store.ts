/**
 * One account's e-mail addresses (issue 23). Keys (builders in store/keys.ts), for an account `u`
 * and a record `R` with id `id`:
 *   [u, "email_address", id]                      R
 *   [u, "email_address_by_name", lower(R.address)] id: an account holds an address once, in any
 *                                                 letter case (R.address is kept as given)
 *   [u, "domain_addresses", R.domainId, id]       id: the addresses of a domain
 *   [u, "endpoint_refs", E, "address", id]        id, while R is routed to endpoint E
 *   [u, "count", "email_addresses"]               number of records, checked (the quota)
 *   [u, "domain_address_count", D]                { total, active } of domain D's records (its
 *                                                 `stats`); absent at zero
 *
 * Invariants (checked by `admin verify`, store/endpoints/invariants.ts):
 *   A1  Every record has its name entry, its domain entry and (when routed) its ref entry, and
 *       every such entry names a live record that agrees with it. One commit writes them all.
 *   A2  R.domainId names a domain of the account and R.address ends in "@" + that domain's
 *       name. A create reads the domain, checks it and rewrites it unchanged in its commit, so
 *       a domain delete that read the domain before (and found no addresses) fails and retries
 *       (store/domains/store.ts refuses deleting a domain with addresses).
 *   A3  The counter equals the number of records: MAX_EMAIL_ADDRESSES_PER_ACCOUNT is exact.
 *   A4  An address is routed to at most one endpoint of the account (endpointId or webhookId,
 *       a webhook's id); every write of a routed address, or one that routes it, checks that
 *       endpoint and rewrites it unchanged (store/endpoints/store.ts explains why).
 *   A5  A domain's count entry equals its records and its active records, and is absent when
 *       it has none: every commit that adds, deletes or (de)activates a record checks and moves it.
 */
import type { Clock } from "../../lib/clock.ts";
import { newId } from "../../lib/crypto.ts";
import type { AuditAction } from "../audit_log/events.ts";
import { auditChange, type AuditOptions, getManyChunked, listValues } from "../batch.ts";
import { assertBelowQuota, countDown, countUp } from "../quota.ts";
import type { DomainRecord } from "../domains/record.ts";
import { RETRY, withRetries } from "../errors.ts";
import {
  domainAddressCountKey,
  domainAddressKey,
  domainAddressPrefix,
  domainKey,
  emailAddressByNameKey,
  emailAddressCountKey,
  emailAddressKey,
  emailAddressPrefix,
  endpointKey,
  endpointRefKey,
} from "../keys.ts";
import {
  AddressDomainMismatchError,
  DEFAULT_MAX_EMAIL_ADDRESSES,
  EmailAddressExistsError,
  type EmailAddressRecord,
  type EndpointRecord,
  NotAWebhookError,
  ReferenceNotFoundError,
  routedEndpointId,
} from "../endpoints/record.ts";

export type Routing = { endpointId: string | null; webhookId: string | null };

export type NewEmailAddress = Routing & {
  /** Normalised (routes/email_addresses/schemas.ts normaliseAddress). */
  address: string;
  domainId: string;
  isActive: boolean;
};

export type EmailAddressPatch = Partial<Routing> & { isActive?: boolean };

/** A domain's address counts (A5), what its `stats` report. */
export type DomainAddressCount = { total: number; active: number };

/** Sets a domain's count entry to `next` in `op` (deleted at zero: A5). */
function setCount(
  op: Deno.AtomicOperation,
  entry: Deno.KvEntryMaybe<DomainAddressCount>,
  delta: DomainAddressCount,
): void {
  const total = (entry.value?.total ?? 0) + delta.total;
  const active = (entry.value?.active ?? 0) + delta.active;
  op.check(entry);
  if (total <= 0) op.delete(entry.key);
  else op.set(entry.key, { total, active: Math.max(0, active) });
}

export type EmailAddressStoreOptions = AuditOptions & { maxEmailAddresses?: number };

export class EmailAddressStore {
  readonly #kv: Deno.Kv;
  readonly #userId: string;
  readonly #clock: Clock;
  readonly #opts: EmailAddressStoreOptions;

  constructor(kv: Deno.Kv, userId: string, clock: Clock, opts: EmailAddressStoreOptions = {}) {
    this.#kv = kv;
    this.#userId = userId;
    this.#clock = clock;
    this.#opts = opts;
  }

  get maxEmailAddresses(): number {
    return this.#opts.maxEmailAddresses ?? DEFAULT_MAX_EMAIL_ADDRESSES;
  }

  /** Every address (at most the quota), or those of one domain. */
  async all(domainId?: string): Promise<EmailAddressRecord[]> {
    if (domainId === undefined) {
      return await listValues<EmailAddressRecord>(this.#kv, emailAddressPrefix(this.#userId));
    }
    return await this.getMany(await this.idsOfDomain(domainId));
  }

  async idsOfDomain(domainId: string, limit?: number): Promise<string[]> {
    const ids: string[] = [];
    const iter = this.#kv.list<string>({ prefix: domainAddressPrefix(this.#userId, domainId) }, {
      limit,
    });
    for await (const e of iter) ids.push(e.value);
    return ids;
  }

  async count(): Promise<number> {
    return (await this.#kv.get<number>(emailAddressCountKey(this.#userId))).value ?? 0;
  }

  async get(id: string): Promise<EmailAddressRecord> {
    return (await this.#entry(id)).value;
  }

  /** Records for `ids` that exist, in order. */
  async getMany(ids: string[]): Promise<EmailAddressRecord[]> {
    const entries = await this.#read(ids.map((id) => emailAddressKey(this.#userId, id)));
    return entries.flatMap((e) => e.value ? [e.value as EmailAddressRecord] : []);
  }

  /** Domains (of this account) by id, for the views' `domain` object. */
  domains(ids: string[]): Promise<Map<string, DomainRecord>> {
    return this.#byId(ids, domainKey);
  }

  /** Address counts of domains (A5), by id; a domain without addresses is absent. */
  countsOf(domainIds: string[]): Promise<Map<string, DomainAddressCount>> {
    return this.#byId(domainIds, domainAddressCountKey);
  }

  /** Endpoints (of this account) by id, for the views' `routing` object. */
  endpoints(ids: string[]): Promise<Map<string, EndpointRecord>> {
    return this.#byId(ids, endpointKey);
  }

  /** The values at `keyOf(u, id)` for each distinct id that has one, by id (batched reads). */
  async #byId<T>(
    ids: string[],
    keyOf: (userId: string, id: string) => Deno.KvKey,
  ): Promise<Map<string, T>> {
    const unique = [...new Set(ids)];
    const entries = await this.#read(unique.map((id) => keyOf(this.#userId, id)));
    const out = new Map<string, T>();
    entries.forEach((e, i) => {
      if (e.value) out.set(unique[i], e.value as T);
    });
    return out;
  }

  /**
   * Record, name, domain and ref entries and the counter in one checked commit. Throws
   * ReferenceNotFoundError (domainId, endpointId, webhookId), NotAWebhookError,
   * AddressDomainMismatchError, EmailAddressExistsError, QuotaError.
   */
  async create(
    input: NewEmailAddress,
  ): Promise<{ record: EmailAddressRecord; domain: DomainRecord }> {
    const u = this.#userId, max = this.maxEmailAddresses;
    const id = newId("ea");
    return await withRetries(async () => {
      const [domain, byName, count, perDomain] = await this.#kv.getMany<
        [DomainRecord, string, number, DomainAddressCount]
      >([
        domainKey(u, input.domainId),
        emailAddressByNameKey(u, input.address),
        emailAddressCountKey(u),
        domainAddressCountKey(u, input.domainId),
      ]);
      if (domain.versionstamp === null) throw new ReferenceNotFoundError("domainId", "domain");
      const endpoint = await this.#routeTarget(input);
      const domainName = input.address.slice(input.address.lastIndexOf("@") + 1);
      if (domainName !== domain.value.domain) {
        throw new AddressDomainMismatchError(domain.value.domain);
      }
      if (byName.versionstamp !== null) throw new EmailAddressExistsError(input.address);
      assertBelowQuota(count, max, "email addresses");
      const now = new Date(this.#clock()).toISOString();
      const record: EmailAddressRecord = {
        id,
        userId: u,
        address: input.address,
        domainId: input.domainId,
        endpointId: input.endpointId,
        webhookId: input.webhookId,
        isActive: input.isActive,
        createdAt: now,
        updatedAt: now,
      };
      const op = this.#kv.atomic()
        .check(domain).check(byName)
        .check({ key: emailAddressKey(u, id), versionstamp: null })
        .set(domain.key, domain.value) // A2: a concurrent domain delete fails its check
        .set(emailAddressKey(u, id), record)
        .set(byName.key, id)
        .set(domainAddressKey(u, input.domainId, id), id);
      countUp(op, count);
      setCount(op, perDomain, { total: 1, active: input.isActive ? 1 : 0 });
      if (endpoint) {
        op.check(endpoint).set(endpoint.key, endpoint.value)
          .set(endpointRefKey(u, endpoint.value.id, "address", id), id);
      }
      this.#audited(op, "email_address.created", record);
      return (await op.commit()).ok ? { record, domain: domain.value } : RETRY;
    });
  }

  /** Routing and the active flag; one checked commit (A4: old and new endpoints touched). */
  async update(id: string, patch: EmailAddressPatch): Promise<EmailAddressRecord> {
    const u = this.#userId;
    return await withRetries(async () => {
      const entry = await this.#entry(id);
      const old = entry.value;
      const routing: Routing = {
        endpointId: patch.endpointId !== undefined ? patch.endpointId : old.endpointId,
        webhookId: patch.webhookId !== undefined ? patch.webhookId : old.webhookId,
      };
      // Setting one clears the other: an address has one route.
      if (patch.endpointId) routing.webhookId = null;
      if (patch.webhookId) routing.endpointId = null;
      const target = await this.#routeTarget(routing);
      const oldTarget = routedEndpointId(old);
      const next: EmailAddressRecord = {
        ...old,
        ...routing,
        isActive: patch.isActive ?? old.isActive,
        updatedAt: new Date(this.#clock()).toISOString(),
      };
      const op = this.#kv.atomic().check(entry).set(entry.key, next);
      if (next.isActive !== old.isActive) {
        const perDomain = await this.#kv.get<DomainAddressCount>(
          domainAddressCountKey(u, old.domainId),
        );
        setCount(op, perDomain, { total: 0, active: next.isActive ? 1 : -1 });
      }
      if (oldTarget && oldTarget !== target?.value.id) {
        const prev = await this.#kv.get<EndpointRecord>(endpointKey(u, oldTarget));
        op.check(prev).delete(endpointRefKey(u, oldTarget, "address", id));
        if (prev.value) op.set(prev.key, prev.value);
      }
      if (target) {
        op.check(target).set(target.key, target.value)
          .set(endpointRefKey(u, target.value.id, "address", id), id);
      }
      const changed = Object.keys(patch).filter((k) =>
        patch[k as keyof EmailAddressPatch] !== undefined
      );
      this.#audited(op, "email_address.updated", next, { changed });
      return (await op.commit()).ok ? next : RETRY;
    });
  }

  /** Record, name, domain and ref entries and the counter's share, in one checked commit. */
  async delete(id: string): Promise<EmailAddressRecord> {
    const u = this.#userId;
    return await withRetries(async () => {
      const entry = await this.#entry(id);
      const r = entry.value;
      const [count, perDomain] = await this.#kv.getMany<[number, DomainAddressCount]>([
        emailAddressCountKey(u),
        domainAddressCountKey(u, r.domainId),
      ]);
      const op = this.#kv.atomic().check(entry)
        .delete(entry.key)
        .delete(emailAddressByNameKey(u, r.address))
        .delete(domainAddressKey(u, r.domainId, id));
      countDown(op, count);
      setCount(op, perDomain, { total: -1, active: r.isActive ? -1 : 0 });
      const target = routedEndpointId(r);
      if (target) {
        const ep = await this.#kv.get<EndpointRecord>(endpointKey(u, target));
        op.check(ep).delete(endpointRefKey(u, target, "address", id));
        if (ep.value) op.set(ep.key, ep.value);
      }
      this.#audited(op, "email_address.deleted", r);
      return (await op.commit()).ok ? r : RETRY;
    });
  }

  /** The endpoint a routing names, read for a check (ReferenceNotFoundError when none). */
  async #routeTarget(routing: Routing): Promise<Deno.KvEntry<EndpointRecord> | null> {
    const field = routing.endpointId ? "endpointId" : routing.webhookId ? "webhookId" : null;
    if (!field) return null;
    const id = (routing.endpointId ?? routing.webhookId)!;
    const e = await this.#kv.get<EndpointRecord>(endpointKey(this.#userId, id));
    if (e.versionstamp === null) throw new ReferenceNotFoundError(field, "endpoint");
    if (field === "webhookId" && e.value.type !== "webhook") throw new NotAWebhookError(field);
    return e;
  }

  async #entry(id: string): Promise<Deno.KvEntry<EmailAddressRecord>> {
    const e = await this.#kv.get<EmailAddressRecord>(emailAddressKey(this.#userId, id));
    if (e.versionstamp === null) throw new Deno.errors.NotFound("No such email address");
    return e;
  }

  #read(keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<unknown>[]> {
    return getManyChunked(this.#kv, keys);
  }

  #audited(
    op: Deno.AtomicOperation,
    action: AuditAction,
    r: EmailAddressRecord,
    details?: Record<string, string | number | boolean | string[] | null>,
  ): void {
    const store = { ...this.#opts, userId: this.#userId, clock: this.#clock };
    const target = { type: "email_address" as const, id: r.id, name: r.address };
    auditChange(op, store, action, target, { domainId: r.domainId, ...details });
  }
}

export function emailAddressStore(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: EmailAddressStoreOptions = {},
): EmailAddressStore {
  return new EmailAddressStore(kv, userId, clock, opts);
}
