/**
 * One account's endpoints (issue 23). Keys (builders in store/keys.ts), for an account `u`:
 *   [u, "endpoint", id]                          EndpointRecord
 *   [u, "count", "endpoints"]                    number of records, moved by checked commits (quota)
 *   [u, "endpoint_refs", id, "address", aId]     aId: address aId is routed to endpoint id
 *   [u, "endpoint_refs", id, "domain", dId]      dId: domain dId's catch-all is endpoint id
 *   [u, "endpoint_test_rate", windowStartMs]     tests in one minute (`admitTest`)
 *
 * Invariants (checked by `admin verify`, store/endpoints/invariants.ts):
 *   E1  The counter equals the number of records; a create checks it below the quota and sets
 *       it +1, a delete -1, both checked: MAX_ENDPOINTS_PER_ACCOUNT is exact under concurrency.
 *   E2  A ref entry exists exactly when the address (its endpointId or webhookId) or the domain
 *       (its catchAllEndpointId) names the endpoint, and the endpoint exists.
 * How E2 holds under concurrency: every write that makes a NEW reference to endpoint E (an
 * address created or re-routed to E, a domain's catch-all set to E), and every write of an
 * address that is routed to E, checks E's entry and rewrites it unchanged in its commit (a new
 * versionstamp). Deleting E reads E, then its refs, and checks E (and each catch-all domain it
 * rewrites) in its one commit: a reference made or changed after its read fails that commit, and
 * the retry sees it. A reference to a deleted E fails its own check of E and, retried, finds no E.
 *
 * Deleting an endpoint follows the SDK's documented behaviour in the SAME commit: its addresses
 * become store-only (endpointId and webhookId null), its domains lose catch-all
 * (isCatchAllEnabled false, catchAllEndpointId null). Bounded by denokv's per-commit limits: at
 * most MAX_DETACHED_ADDRESSES addresses (2 mutations each) and MAX_DETACHED_DOMAINS domains (a
 * check each, beside the endpoint's and the counter's): beyond either it throws
 * EndpointInUseError (409 naming the counts) and changes nothing.
 */
import type { Clock } from "../../lib/clock.ts";
import { newId } from "../../lib/crypto.ts";
import type { AuditAction } from "../audit_log/events.ts";
import { auditChange, type AuditOptions, getManyChunked, listValues } from "../batch.ts";
import { assertBelowQuota, countDown, countUp } from "../quota.ts";
import type { DomainRecord } from "../domains/record.ts";
import { RETRY, withRetries } from "../errors.ts";
import {
  domainKey,
  emailAddressKey,
  endpointCountKey,
  endpointKey,
  endpointPrefix,
  endpointRefKey,
  endpointRefPrefix,
  endpointTestRateKey,
} from "../keys.ts";
import {
  DEFAULT_MAX_ENDPOINTS,
  type DeliveryRecord,
  type EmailAddressRecord,
  type EndpointConfig,
  EndpointInUseError,
  type EndpointRecord,
  type EndpointType,
  EndpointUsedElsewhereError,
  RECENT_DELIVERIES,
  type WebhookFormat,
} from "./record.ts";

export * from "./record.ts";

/** Addresses an endpoint delete detaches in its commit (2 mutations each; 1,000 allowed). */
export const MAX_DETACHED_ADDRESSES = 400;
/** Catch-all domains an endpoint delete detaches (a check each; 10 allowed, 2 used). */
export const MAX_DETACHED_DOMAINS = 8;

export type NewEndpoint = {
  name: string;
  type: EndpointType;
  description: string | null;
  config: EndpointConfig;
  isActive?: boolean;
  webhookFormat?: WebhookFormat;
  /** A webhook's signing secret (lib/webhooks/signature.ts newWebhookSecret). */
  signingSecret: string | null;
};

export type EndpointPatch = {
  name?: string;
  description?: string | null;
  isActive?: boolean;
  config?: EndpointConfig;
  webhookFormat?: WebhookFormat;
};

/** What a delete changed, for the SDK's `cleanup`. */
export type EndpointCleanup = {
  record: EndpointRecord;
  addresses: Pick<EmailAddressRecord, "id" | "address" | "domainId">[];
  domains: Pick<DomainRecord, "id" | "domain">[];
};

export type EndpointStoreOptions = AuditOptions & { maxEndpoints?: number };

export class EndpointStore {
  readonly #kv: Deno.Kv;
  readonly #userId: string;
  readonly #clock: Clock;
  readonly #opts: EndpointStoreOptions;

  constructor(kv: Deno.Kv, userId: string, clock: Clock, opts: EndpointStoreOptions = {}) {
    this.#kv = kv;
    this.#userId = userId;
    this.#clock = clock;
    this.#opts = opts;
  }

  get maxEndpoints(): number {
    return this.#opts.maxEndpoints ?? DEFAULT_MAX_ENDPOINTS;
  }

  /** Every endpoint of the account (at most the quota), in key order. */
  async all(): Promise<EndpointRecord[]> {
    return await listValues<EndpointRecord>(this.#kv, endpointPrefix(this.#userId));
  }

  async count(): Promise<number> {
    return (await this.#kv.get<number>(endpointCountKey(this.#userId))).value ?? 0;
  }

  async get(id: string): Promise<EndpointRecord> {
    return (await this.#entry(id)).value;
  }

  /** The ids of the addresses and catch-all domains routed to the endpoint. */
  async references(id: string): Promise<{ addressIds: string[]; domainIds: string[] }> {
    const addressIds: string[] = [], domainIds: string[] = [];
    const iter = this.#kv.list<string>({ prefix: endpointRefPrefix(this.#userId, id) });
    for await (const e of iter) (e.key[3] === "address" ? addressIds : domainIds).push(e.value);
    return { addressIds, domainIds };
  }

  /** Record and counter in one checked commit; QuotaError at the quota. */
  async create(input: NewEndpoint): Promise<EndpointRecord> {
    const userId = this.#userId, max = this.maxEndpoints;
    const id = newId("ep");
    return await withRetries(async () => {
      const count = await this.#kv.get<number>(endpointCountKey(userId));
      assertBelowQuota(count, max, "endpoints");
      const now = new Date(this.#clock()).toISOString();
      const record: EndpointRecord = {
        id,
        userId,
        name: input.name,
        type: input.type,
        description: input.description,
        isActive: input.isActive ?? true,
        config: input.config,
        webhookFormat: input.webhookFormat ?? "inbound",
        signingSecret: input.signingSecret,
        createdAt: now,
        updatedAt: now,
        stats: { total: 0, successful: 0, failed: 0, lastDelivery: null },
        recentDeliveries: [],
      };
      const op = this.#kv.atomic()
        .check({ key: endpointKey(userId, id), versionstamp: null })
        .set(endpointKey(userId, id), record);
      countUp(op, count);
      this.#audited(op, "endpoint.created", record, { type: record.type });
      return (await op.commit()).ok ? record : RETRY;
    });
  }

  /**
   * Name, description, active flag, config (same type) or format; one checked commit.
   * `onlyDomains`: the caller sees only these domains (a restricted key); a change of what
   * deliveries do (config, isActive, webhookFormat) to an endpoint that an address or catch-all
   * of another domain uses throws EndpointUsedElsewhereError (see `#rewrite`). Name and
   * description stay free: they route no mail.
   */
  async update(
    id: string,
    patch: EndpointPatch,
    onlyDomains?: ReadonlySet<string> | null,
  ): Promise<EndpointRecord> {
    const routesMail = patch.config !== undefined || patch.isActive !== undefined ||
      patch.webhookFormat !== undefined;
    return await this.#rewrite(id, "endpoint.updated", (r) => {
      const changed = (Object.keys(patch) as (keyof EndpointPatch)[])
        .filter((f) => patch[f] !== undefined);
      const next = { ...r, ...Object.fromEntries(changed.map((f) => [f, patch[f]])) };
      return { next: next as EndpointRecord, details: { changed } };
    }, routesMail ? onlyDomains : null);
  }

  /**
   * A new signing secret for a webhook endpoint (the old one stops signing at once).
   * `onlyDomains` as for `update`: a restricted caller may not re-key others' deliveries.
   */
  async rollSecret(
    id: string,
    secret: string,
    onlyDomains?: ReadonlySet<string> | null,
  ): Promise<EndpointRecord> {
    return await this.#rewrite(id, "endpoint.secret_rolled", (r) => ({
      next: { ...r, signingSecret: secret },
    }), onlyDomains);
  }

  /**
   * EndpointUsedElsewhereError when the endpoint's refs name an address or catch-all domain
   * outside `onlyDomains`. Read after the endpoint's entry: a reference made after that read
   * rewrote the endpoint (store header), so the caller's check of the entry fails and its retry
   * sees the new reference here.
   */
  async #assertOnlyUsedBy(id: string, onlyDomains: ReadonlySet<string>): Promise<void> {
    const refs = await this.references(id);
    if (refs.domainIds.some((d) => !onlyDomains.has(d))) throw new EndpointUsedElsewhereError();
    const addresses = await this.#getMany<EmailAddressRecord>(
      refs.addressIds.map((a) => emailAddressKey(this.#userId, a)),
    );
    if (addresses.some((a) => a.value && !onlyDomains.has(a.value.domainId))) {
      throw new EndpointUsedElsewhereError();
    }
  }

  /**
   * Records a test: stats and `recentDeliveries` (bounded) move with the `endpoint.tested` event
   * in one commit. `delivery` null: a simulated test (e-mail endpoints), recorded in the log only.
   */
  async recordTest(
    id: string,
    delivery: Omit<DeliveryRecord, "id" | "createdAt"> | null,
    details: Record<string, string | number | boolean | null>,
  ): Promise<EndpointRecord> {
    return await this.#rewrite(id, "endpoint.tested", (r) => {
      if (!delivery) return { next: r, details, keepUpdatedAt: true };
      const now = new Date(this.#clock()).toISOString();
      const d: DeliveryRecord = { ...delivery, id: newId("dlv"), createdAt: now };
      const ok = d.status === "success";
      return {
        next: {
          ...r,
          stats: {
            total: r.stats.total + 1,
            successful: r.stats.successful + (ok ? 1 : 0),
            failed: r.stats.failed + (ok ? 0 : 1),
            lastDelivery: now,
          },
          recentDeliveries: [d, ...r.recentDeliveries].slice(0, RECENT_DELIVERIES),
        },
        details,
        keepUpdatedAt: true,
      };
    });
  }

  /**
   * Counts one test in the account's current one-minute window; false past `max` (the caller
   * answers 429 with the seconds until the window ends).
   */
  async admitTest(max: number, windowMs = 60_000): Promise<{ ok: boolean; retryAfter: number }> {
    const now = this.#clock();
    const start = now - (now % windowMs);
    const key = endpointTestRateKey(this.#userId, start);
    const retryAfter = Math.max(1, Math.ceil((start + windowMs - now) / 1000));
    const n = await withRetries(async () => {
      const e = await this.#kv.get<number>(key);
      const next = (e.value ?? 0) + 1;
      if (next > max) return next;
      const res = await this.#kv.atomic().check(e).set(key, next, { expireIn: windowMs * 2 })
        .commit();
      return res.ok ? next : RETRY;
    });
    return { ok: n <= max, retryAfter };
  }

  /**
   * Deletes the endpoint, detaching its addresses and catch-all domains in the same commit (see
   * the header); EndpointInUseError when that would not fit in one commit. `onlyDomains`: the
   * caller sees only these domains (a restricted key), so an endpoint that an address or a
   * catch-all of another domain uses is not deleted (EndpointUsedElsewhereError); a reference
   * made after the read changes the endpoint's versionstamp, so the commit's check catches it.
   */
  async delete(id: string, onlyDomains?: ReadonlySet<string> | null): Promise<EndpointCleanup> {
    const kv = this.#kv, userId = this.#userId;
    return await withRetries(async () => {
      const entry = await this.#entry(id);
      const count = await kv.get<number>(endpointCountKey(userId));
      const refs = await this.references(id);
      if (
        refs.addressIds.length > MAX_DETACHED_ADDRESSES ||
        refs.domainIds.length > MAX_DETACHED_DOMAINS
      ) {
        throw new EndpointInUseError(refs.addressIds.length, refs.domainIds.length);
      }
      const addresses = await this.#getMany<EmailAddressRecord>(
        refs.addressIds.map((a) => emailAddressKey(userId, a)),
      );
      const domains = await this.#getMany<DomainRecord>(
        refs.domainIds.map((d) => domainKey(userId, d)),
      );
      if (
        onlyDomains &&
        (addresses.some((a) => a.value && !onlyDomains.has(a.value.domainId)) ||
          domains.some((d) => d.value && !onlyDomains.has(d.value.id)))
      ) {
        throw new EndpointUsedElsewhereError();
      }
      const now = new Date(this.#clock()).toISOString();
      const op = kv.atomic().check(entry).delete(entry.key);
      countDown(op, count);
      for (const a of addresses) {
        if (a.value) {
          op.set(a.key, { ...a.value, endpointId: null, webhookId: null, updatedAt: now });
        }
        op.delete(endpointRefKey(userId, id, "address", String(a.key[2])));
      }
      for (const d of domains) {
        op.check(d);
        if (d.value?.catchAllEndpointId === id) {
          op.set(d.key, {
            ...d.value,
            isCatchAllEnabled: false,
            catchAllEndpointId: null,
            updatedAt: now,
          });
        }
        op.delete(endpointRefKey(userId, id, "domain", String(d.key[2])));
      }
      const detached = addresses.flatMap((a) => a.value ? [a.value] : []);
      const lost = domains.flatMap((d) => d.value ? [d.value] : []);
      // `domainIds`: the domains the counts cover, so that the audit log can show the counts
      // only to whom sees every one of them (routes/audit_log/operations.ts eventForDomains).
      this.#audited(op, "endpoint.deleted", entry.value, {
        emailAddressesUpdated: detached.length,
        domainsUpdated: lost.length,
        domainIds: [...new Set([...detached.map((a) => a.domainId), ...lost.map((d) => d.id)])]
          .sort(),
      });
      if (!(await op.commit()).ok) return RETRY;
      return {
        record: entry.value,
        addresses: detached.map((a) => ({ id: a.id, address: a.address, domainId: a.domainId })),
        domains: lost.map((d) => ({ id: d.id, domain: d.domain })),
      };
    });
  }

  /**
   * Reads, changes and writes one record under a check, with its audit event; with
   * `onlyDomains`, only when nothing outside those domains uses the endpoint.
   */
  async #rewrite(
    id: string,
    action: AuditAction,
    change: (r: EndpointRecord) => {
      next: EndpointRecord;
      details?: Record<string, string | number | boolean | string[] | null>;
      keepUpdatedAt?: boolean;
    },
    onlyDomains?: ReadonlySet<string> | null,
  ): Promise<EndpointRecord> {
    return await withRetries(async () => {
      const entry = await this.#entry(id);
      if (onlyDomains) await this.#assertOnlyUsedBy(id, onlyDomains);
      const { next, details, keepUpdatedAt } = change(entry.value);
      const updated = keepUpdatedAt
        ? next
        : { ...next, updatedAt: new Date(this.#clock()).toISOString() };
      const op = this.#kv.atomic().check(entry).set(entry.key, updated);
      this.#audited(op, action, updated, details);
      return (await op.commit()).ok ? updated : RETRY;
    });
  }

  async #entry(id: string): Promise<Deno.KvEntry<EndpointRecord>> {
    const e = await this.#kv.get<EndpointRecord>(endpointKey(this.#userId, id));
    if (e.versionstamp === null) throw new Deno.errors.NotFound("No such endpoint");
    return e;
  }

  #getMany<T>(keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<T>[]> {
    return getManyChunked<T>(this.#kv, keys);
  }

  #audited(
    op: Deno.AtomicOperation,
    action: AuditAction,
    r: EndpointRecord,
    details?: Record<string, string | number | boolean | string[] | null>,
  ): void {
    const store = { ...this.#opts, userId: this.#userId, clock: this.#clock };
    auditChange(op, store, action, { type: "endpoint", id: r.id, name: r.name }, details);
  }
}

export function endpointStore(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: EndpointStoreOptions = {},
): EndpointStore {
  return new EndpointStore(kv, userId, clock, opts);
}
