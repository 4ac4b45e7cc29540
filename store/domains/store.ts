/**
 * Domain records and their indexes. Listing never reads every record: ids come from a
 * time-ordered index (one per filter), totals from counters moved in the same commits.
 *
 * Keys (builders in keys.ts), for an account `u` and a record `R` with id `id`; which of them a
 * write changes is planned by store/domains/plan.ts from the record before and after it:
 *   [u, "domain", id]                                     R
 *   ["idx", "domain", R.domain]                           { userId: u, domainId: id }, while R is verified
 *   [u, "domain_by_time", ms(R.createdAt), id]            id
 *   [u, "domain_by_filter", f, ms(R.createdAt), id]       id, for every f in filterNamesOf(R) but "all"
 *   [u, "count", "domains", f]                            Deno.KvU64, for every filter name f
 *   [u, "domain_children", R.parentDomainId, id]          id, when R has a parent
 *   [u, "domain_by_name", reverse(R.domain)]              id ("com.example.mail" for "mail.example.com")
 *   [u, "domain_slot", R.quotaSlot]                       id: the quota slot R holds
 *
 * Invariants (checked by store/domains/invariants.ts `checkDomainInvariants` and `admin verify`).
 * Every write is ONE atomic commit, so a process killed at any point leaves the state before or
 * after it, never a mix.
 * Which check of which write protects each one:
 *   I1  Every record has all its index entries above. Planned with the record in one commit.
 *   I2  Every index entry points to a live record that agrees with it. Same.
 *   I3  For every filter name f, the counter (absent = 0) equals the number of the account's
 *       records r with f in filterNamesOf(r). Counters move by commutative `sum` in the commit
 *       that moves the record into or out of f, so they need no check: a create, a status
 *       change and a delete of different records never conflict over them. Status changes of
 *       ONE record are serialised by the check on the record entry (applyCheck, delete).
 *   I4  A child link [u, "domain_children", p, c] exists exactly when record c has
 *       parentDomainId p; record p exists, and its childCount equals its child links. Creates
 *       and deletes of a child check and rewrite the parent record: siblings serialise there.
 *   I5  A name is exclusive once verified, not before: the name pointer ["idx", "domain", name]
 *       exists exactly for verified records and names (u, id). Several accounts may hold the
 *       same pending or failed name; one account holds a name at most once (its reversed-name
 *       entry is created with a `versionstamp: null` check). The first account to verify a
 *       name claims the pointer in the verifying commit, which checks it absent (and the
 *       pointers of every name above it), so of two racing verifications one wins; the other's
 *       next check finds the name taken and fails its copy (TAKEN_MESSAGE on the verification
 *       record). A create is refused (DOMAIN_ALREADY_REGISTERED) while another account has
 *       verified the name or a name above it, and checks those pointers as it read them.
 *   I6  An account holds at most MAX_DOMAINS_PER_ACCOUNT records: each record holds one of the
 *       account's slots [u, "domain_slot", 0..max-1], claimed with a `versionstamp: null` check,
 *       so two creates conflict only when they pick the same slot.
 *   I7  Deleting a domain is refused (DomainHasSubdomainsError) while the account holds any
 *       domain below it by name, whatever the order they were created in. A key range cannot be
 *       checked, so: a create checks the reversed-name entry of every ancestor name as it read
 *       it (absent, or present and rewritten unchanged, which gives it a new versionstamp), and
 *       a delete reads its own reversed-name entry BEFORE scanning the descendant range and
 *       checks it in its commit. A descendant committed after that read has rewritten the entry,
 *       so the delete's commit fails and its retry scans again and refuses; a delete committed
 *       first makes the descendant's check fail, and its retry no longer sees the ancestor.
 *
 * Child links are what they always were: the ancestor chosen when the child was created
 * (findParent), used for inheriting verification, and never re-pointed. The delete rule does not
 * rely on them but on the reversed-name index, whose entries under a domain are one key range
 * (keys.ts domainDescendantsRange). Re-parenting descendants when an ancestor is created would
 * rewrite an unbounded number of records in one commit (KV's per-commit limits would cap it) and
 * move the API-visible parentDomain of existing domains.
 *
 * Contention: writers of one account conflict only when they touch the same record, the same
 * name (or an ancestor name, I7), the same parent (I4) or the same quota slot (I6). A failed
 * check retries with fresh reads and jittered backoff (`withRetries`); exhausted retries are a
 * ConflictError, which the app answers with 503 WRITE_CONFLICT.
 */
import type { Clock } from "../../lib/clock.ts";
import { newId, randomBase62 } from "../../lib/crypto.ts";
import type { DnsRecordKind, DnsRecordSpec, RecordCheck } from "../../lib/dns.ts";
import { parseDomainName } from "../../lib/domain_name.ts";
import type { AuditAction, AuditSource } from "../audit_log/events.ts";
import { auditChange, GET_MANY_LIMIT, getManyChunked } from "../batch.ts";
import { applyPlan, counterNumber, type Mutation, planDomainWrite } from "./plan.ts";
import {
  DEFAULT_MAX_DOMAINS,
  type DomainFilter,
  type DomainNamePointer,
  type DomainRecord,
  type DomainRef,
  type DomainStatus,
  filterName,
} from "./record.ts";
import { ConflictError, RETRY, withRetries, WRITE_ATTEMPTS } from "../errors.ts";
import {
  DomainHasAddressesError,
  type EndpointRecord,
  ReferenceNotFoundError,
} from "../endpoints/record.ts";
import {
  domainAddressPrefix,
  domainByFilterPrefix,
  domainByNameKey,
  domainByTimePrefix,
  domainCountKey,
  domainDescendantsRange,
  domainKey,
  domainNameIndexKey,
  domainSlotKey,
  domainSlotPrefix,
  endpointKey,
  endpointRefKey,
  reverseDomainName,
} from "../keys.ts";

// The record's shape and its filters live in domain_record.ts (the plan and the invariant check
// read them without importing this store); callers keep importing them from here.
export {
  allFilterNames,
  DEFAULT_MAX_DOMAINS,
  DOMAIN_STATUSES,
  type DomainFilter,
  type DomainNamePointer,
  type DomainRecord,
  type DomainRef,
  type DomainStatus,
  filterName,
  filterNamesOf,
  type StoredDnsRecord,
} from "./record.ts";
export { checkDomainInvariants } from "./invariants.ts";

/** How long a domain may stay pending before a check that finds no TXT record fails it. */
export const VERIFICATION_WINDOW_MS = 72 * 60 * 60 * 1000;

export class DomainExistsError extends Error {
  /** `own`: this account has it; `other`: another account does (say nothing more about it). */
  constructor(readonly owner: "own" | "other") {
    super(owner === "own" ? "Domain already in this account" : "Domain registered elsewhere");
    this.name = "DomainExistsError";
  }
}

export class DomainHasSubdomainsError extends Error {
  /**
   * `below`: every domain below it in this account, in name order (at most the account's domain
   * limit), with ids: a caller that may see only some domains names only those
   * (auth/api_keys/policy.ts `visibleDomainNames`).
   */
  constructor(readonly below: readonly DomainRef[]) {
    super("Domain still has subdomains");
    this.name = "DomainHasSubdomainsError";
  }
  /** The first SUBDOMAINS_NAMED names below the domain. */
  get subdomains(): string[] {
    return this.below.slice(0, SUBDOMAINS_NAMED).map((d) => d.domain);
  }
  /** How many domains are below it. */
  get total(): number {
    return this.below.length;
  }
}

export class DomainLimitError extends Error {
  constructor(readonly max: number) {
    super(`An account can hold at most ${max} domains. Delete unused domains first.`);
    this.name = "DomainLimitError";
  }
}

export class DomainNotVerifiedError extends Error {
  constructor(readonly status: DomainStatus) {
    super("Domain is not verified");
    this.name = "DomainNotVerifiedError";
  }
}

export type NewDomain = {
  /** Normalised name (lib/domain_name.ts). */
  domain: string;
  /** Candidate parents, nearest first (lib/domain_name.ts `ancestors`). */
  ancestors: string[];
  /** The records to publish, given the new id, its token and whether it inherits. */
  plan: (ctx: { domain: string; token: string; inherited: boolean }) => DnsRecordSpec[];
};

export type CheckOutcome = { record: DomainRecord; results: RecordCheck[]; checkedAt: string };

/** Why a check failed a domain whose name another account has verified meanwhile. */
export const TAKEN_MESSAGE =
  "Another account has verified this domain (or a domain above it) first. This copy can no " +
  "longer be verified; delete it.";

/**
 * Fewest random quota slots read at once when looking for a free one. A create probes as many
 * as fill its read up to a whole getMany (issue 24: 3 keys + 2 per ancestor + 7, 5 or 3 probes
 * is ONE request of 10 keys for a name with up to two ancestors, where 10 probes made it two); a
 * probe fails only near the quota, where a listing of the slots finds the free one.
 */
const MIN_SLOT_PROBES = 3;

/** KV's getMany takes at most 10 keys. */

/** A refused delete names at most this many of the subdomains in the way. */
export const SUBDOMAINS_NAMED = 10;

const ms = (iso: string) => Date.parse(iso);

/** The status, MX and receiving flags a check leads to. Pure: the store applies it. */
export function evaluateCheck(
  record: DomainRecord,
  results: (RecordCheck & { lookupFailed?: boolean })[],
  nowMs: number,
  parentVerified: boolean,
): Pick<DomainRecord, "status" | "hasMxRecords" | "canReceiveEmails" | "inheritsFromParent"> {
  const byKind = new Map<DnsRecordKind, RecordCheck & { lookupFailed?: boolean }>();
  for (const r of results) byKind.set(r.kind, r);
  const txt = byKind.get("verification");
  const mx = byKind.get("mx");
  let status: DomainStatus = record.status;
  let inheritsFromParent = record.inheritsFromParent;
  if (record.status === "verified") {
    // Verification is not withdrawn by a later check; receiving depends on MX below.
  } else if (parentVerified) {
    status = "verified";
    inheritsFromParent = true;
  } else if (txt?.isVerified) {
    status = "verified";
  } else if (txt && !txt.lookupFailed) {
    status = nowMs - ms(record.createdAt) >= VERIFICATION_WINDOW_MS ? "failed" : "pending";
  } // A failed lookup leaves the status as it was.
  const hasMxRecords = mx
    ? (mx.lookupFailed ? record.hasMxRecords : mx.isVerified)
    : record.hasMxRecords;
  return {
    status,
    inheritsFromParent,
    hasMxRecords,
    canReceiveEmails: status === "verified" && hasMxRecords,
  };
}

export type DomainStoreOptions = {
  maxDomains?: number;
  /**
   * Who is acting: domain.created, domain.verified, domain.updated (catch-all) and domain.deleted
   * join the change's commit.
   */
  audit?: AuditSource;
  /** AUDIT_RETENTION_DAYS for those events (else the context's, else the default). */
  auditRetentionDays?: number;
};

export function domainStore(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: DomainStoreOptions = {},
): DomainStore {
  return new DomainStore(kv, userId, clock, opts);
}

/** What a create decided from its reads, after its refusals (`DomainStore.#readForCreate`). */
type CreateReads = {
  pointer: Deno.KvEntryMaybe<DomainNamePointer>;
  /** The account's reversed-name entries of the ancestor names, nearest first. */
  ancestors: Deno.KvEntryMaybe<string>[];
  ancestorPointers: Deno.KvEntryMaybe<DomainNamePointer>[];
  slot: number;
  parent: Deno.KvEntry<DomainRecord> | null;
};

/**
 * One account's domains: every method is bound to `userId`. A class with true private fields
 * (not a bundle of closures): a caller holding it cannot reach the raw KV, and building one per
 * request allocates one object instead of a closure per method.
 */
export class DomainStore {
  readonly #kv: Deno.Kv;
  readonly #userId: string;
  readonly #clock: Clock;
  readonly #opts: DomainStoreOptions;
  readonly #maxDomains: number;

  constructor(kv: Deno.Kv, userId: string, clock: Clock, opts: DomainStoreOptions = {}) {
    this.#kv = kv;
    this.#userId = userId;
    this.#clock = clock;
    this.#opts = opts;
    this.#maxDomains = opts.maxDomains ?? DEFAULT_MAX_DOMAINS;
  }

  /** Newest first. Skips `offset` index entries (ids only), then reads one page of records. */
  async list(
    filter: DomainFilter,
    page: { limit: number; offset: number },
  ): Promise<{ data: DomainRecord[]; total: number }> {
    const name = filterName(filter);
    const prefix = name === "all"
      ? domainByTimePrefix(this.#userId)
      : domainByFilterPrefix(this.#userId, name);
    // The total comes first so a deep page can be read from whichever end is nearer:
    // offset 9,950 of 10,000 skips 0 entries from the oldest end instead of 9,950.
    const total = await this.count(filter);
    const take = Math.max(0, Math.min(page.limit, total - page.offset));
    const fromOldest = page.offset > total / 2;
    const skip = fromOldest ? Math.max(0, total - page.offset - take) : page.offset;
    const ids: string[] = [];
    if (take > 0) {
      const iter = this.#kv.list<string>({ prefix }, {
        reverse: !fromOldest,
        limit: skip + take,
        batchSize: Math.min(500, skip + take),
      });
      let seen = 0;
      for await (const entry of iter) {
        if (seen++ >= skip) ids.push(entry.value);
      }
      if (fromOldest) ids.reverse();
    }
    const data = await this.#getMany(ids);
    return { data, total };
  }

  async count(filter: DomainFilter = {}): Promise<number> {
    return counterNumber(
      (await this.#kv.get(domainCountKey(this.#userId, filterName(filter)))).value,
    );
  }

  async get(domainId: string): Promise<DomainRecord> {
    return (await this.#getEntry(domainId)).value;
  }

  /**
   * The record and everything planDomainWrite derives from it, in one checked commit. Throws
   * DomainExistsError when the name is taken (here or elsewhere), DomainLimitError when the
   * account holds `maxDomains` domains.
   */
  async create(input: NewDomain): Promise<DomainRecord> {
    const id = newId("dom");
    const token = randomBase62(32);
    const userId = this.#userId;
    return await withRetries(async () => {
      const read = await this.#readForCreate(input);
      const { pointer, ancestors, ancestorPointers, slot, parent } = read;
      const record = newDomainRecord(input, {
        id,
        userId,
        token,
        slot,
        parent: parent?.value ?? null,
        now: new Date(this.#clock()).toISOString(),
      });
      const op = this.#kv.atomic()
        .check(pointer) // I5: nobody has verified the name meanwhile (a verified create claims it)
        .check({ key: domainKey(userId, id), versionstamp: null })
        .check({ key: domainByNameKey(userId, record.domain), versionstamp: null })
        .check({ key: domainSlotKey(userId, slot), versionstamp: null }); // I6: quota
      // I7: every ancestor name stays as read (absent, or present and touched), so a delete
      // of an ancestor that scanned before this commit fails its own check (header).
      for (const a of ancestors) {
        op.check(a);
        if (a.versionstamp !== null) op.set(a.key, a.value);
      }
      for (const p of ancestorPointers) op.check(p); // I5: no ancestor verified elsewhere since
      if (parent) {
        // I4: the parent's childCount moves with the link, under a check of the parent.
        op.check(parent)
          .set(parent.key, { ...parent.value, childCount: parent.value.childCount + 1 });
      }
      applyPlan(op, planDomainWrite(userId, null, record));
      this.#audited(op, "domain.created", record);
      const res = await op.commit();
      return res.ok ? record : RETRY;
    });
  }

  /**
   * Catch-all settings; only a verified domain may change them. `catchAllEndpointId` must name
   * an endpoint of this account (ReferenceNotFoundError otherwise, the same for another
   * account's id as for none): the endpoint is checked and rewritten unchanged, and its ref
   * entry moves, in the same commit (store/endpoints/store.ts E2).
   */
  async updateCatchAll(
    domainId: string,
    settings: { isCatchAllEnabled: boolean; catchAllEndpointId: string | null },
  ): Promise<DomainRecord> {
    const userId = this.#userId;
    return await withRetries(async () => {
      const entry = await this.#getEntry(domainId);
      if (entry.value.status !== "verified") throw new DomainNotVerifiedError(entry.value.status);
      const next = settings.catchAllEndpointId;
      const endpoint = next === null
        ? null
        : await this.#kv.get<EndpointRecord>(endpointKey(userId, next));
      if (endpoint && endpoint.versionstamp === null) {
        throw new ReferenceNotFoundError("catchAllEndpointId", "endpoint");
      }
      const updated: DomainRecord = {
        ...entry.value,
        ...settings,
        updatedAt: new Date(this.#clock()).toISOString(),
      };
      const op = this.#kv.atomic().check(entry).set(entry.key, updated);
      const prev = entry.value.catchAllEndpointId;
      if (prev && prev !== next) op.delete(endpointRefKey(userId, prev, "domain", domainId));
      if (endpoint?.value) {
        op.check(endpoint).set(endpoint.key, endpoint.value)
          .set(endpointRefKey(userId, endpoint.value.id, "domain", domainId), domainId);
      }
      // Where the domain's unrouted mail goes is a security change: audited in its commit.
      this.#audited(op, "domain.updated", updated, {
        isCatchAllEnabled: updated.isCatchAllEnabled,
        catchAllEndpointId: updated.catchAllEndpointId,
      });
      const res = await op.commit();
      return res.ok ? updated : RETRY;
    });
  }

  /**
   * Applies the results of a DNS check: per-record state, lastDnsCheck, and a status or
   * receiving change, which moves the record between filter indexes and counters.
   */
  async applyCheck(
    domainId: string,
    results: (RecordCheck & { lookupFailed?: boolean })[],
  ): Promise<CheckOutcome> {
    return await withRetries(async () => {
      const entry = await this.#getEntry(domainId);
      const old = entry.value;
      const parent = old.parentDomainId
        ? await this.#kv.get<DomainRecord>(domainKey(this.#userId, old.parentDomainId))
        : null;
      // I5: who has verified this name or a name above it. Checked in the commit, so of two
      // accounts verifying one name at once, exactly one claims it.
      const parsed = parseDomainName(old.domain);
      const names = [old.domain, ...(parsed.ok ? parsed.value.ancestors : [])];
      const pointers = await this.#readAll(
        names.map((n) => domainNameIndexKey(n)),
      ) as Deno.KvEntryMaybe<DomainNamePointer>[];
      const takenElsewhere = old.status !== "verified" &&
        pointers.some((p, i) =>
          p.value !== null &&
          (p.value.userId !== this.#userId || (i === 0 && p.value.domainId !== old.id))
        );
      const { updated, checked, checkedAt } = checkedRecord(old, results, {
        takenElsewhere,
        parentVerified: parent?.value?.status === "verified",
        nowMs: this.#clock(),
      });
      // I1-I3: the record and its filter entries and counters move together; the record's
      // check makes a concurrent writer of the same record retry.
      const op = this.#kv.atomic().check(entry);
      if (parent) op.check(parent); // the inherited status was decided from this parent
      for (const p of pointers) op.check(p);
      applyPlan(op, planDomainWrite(this.#userId, old, updated));
      if (old.status !== "verified" && updated.status === "verified") {
        this.#audited(op, "domain.verified", updated);
      }
      const res = await op.commit();
      return res.ok ? { record: updated, results: checked, checkedAt } : RETRY;
    });
  }

  /**
   * Removes the record and everything planDomainWrite derives from it, and its share of the
   * parent's childCount, in one commit. Throws DomainHasSubdomainsError while the account has
   * any domain below it by name (linked to it or not: see the header).
   */
  async delete(domainId: string): Promise<DomainRecord> {
    const kv = this.#kv, userId = this.#userId;
    return await withRetries(async () => {
      const entry = await this.#getEntry(domainId);
      const r = entry.value;
      // I7: read the reversed-name entry BEFORE scanning; the commit checks it, and every
      // create of a descendant rewrites it, so one created after this read fails the commit.
      const byName = await kv.get<string>(domainByNameKey(userId, r.domain));
      const below: DomainRef[] = [];
      for await (
        const d of kv.list<string>(domainDescendantsRange(userId, r.domain), { batchSize: 100 })
      ) {
        below.push({ id: d.value, domain: reverseDomainName(String(d.key[2])) });
      }
      if (below.length > 0) throw new DomainHasSubdomainsError(below);
      // The rule for addresses (issue 23): refused while the domain has any. Every address
      // create rewrites the domain record it checks, so one made after `entry` was read fails
      // this commit's check of it (store/email_addresses/store.ts A2).
      const addresses = await this.#countAddresses(domainId);
      if (addresses > 0) throw new DomainHasAddressesError(addresses);
      const pointer = await kv.get<DomainNamePointer>(domainNameIndexKey(r.domain));
      const op = kv.atomic().check(entry).check(pointer).check(byName);
      applyPlan(op, deletePlan(userId, r, pointer, byName));
      if (r.catchAllEndpointId) {
        op.delete(endpointRefKey(userId, r.catchAllEndpointId, "domain", r.id));
      }
      if (r.parentDomainId) {
        const parent = await kv.get<DomainRecord>(domainKey(userId, r.parentDomainId));
        op.check(parent);
        if (parent.value) {
          op.set(parent.key, {
            ...parent.value,
            childCount: Math.max(0, parent.value.childCount - 1),
          });
        }
      }
      this.#audited(op, "domain.deleted", r);
      const res = await op.commit();
      return res.ok ? r : RETRY;
    });
  }

  /**
   * Everything a create decides from, in one round trip for a name with up to two ancestors
   * (the name pointer, the total, the ancestors' entries and slots to probe), and the refusals
   * that follow from it: DomainExistsError, DomainLimitError.
   */
  async #readForCreate(input: NewDomain): Promise<CreateReads> {
    const userId = this.#userId;
    const n = input.ancestors.length;
    const probes = this.#slotCandidates(3 + 2 * n);
    // Strong (the default), never eventual: the quota, the name pointers and the slots are
    // checked in the commit, and a replica's older versionstamps would only fail those checks.
    const read = await this.#readAll([
      domainNameIndexKey(input.domain),
      domainCountKey(userId, "all"),
      domainByNameKey(userId, input.domain),
      ...input.ancestors.map((a) => domainByNameKey(userId, a)),
      ...input.ancestors.map((a) => domainNameIndexKey(a)),
      ...probes.map((n) => domainSlotKey(userId, n)),
    ]);
    const pointer = read[0] as Deno.KvEntryMaybe<DomainNamePointer>;
    const ancestorPointers = read.slice(3 + n, 3 + 2 * n) as Deno.KvEntryMaybe<
      DomainNamePointer
    >[];
    // I5: a name (or a name under one) another account has verified is theirs; a name only
    // pending elsewhere is no one's yet.
    if (
      (pointer.value && pointer.value.userId !== userId) ||
      ancestorPointers.some((p) => p.value && p.value.userId !== userId)
    ) {
      throw new DomainExistsError("other");
    }
    if (pointer.value || read[2].versionstamp !== null) throw new DomainExistsError("own");
    // Fast refusal from the (unchecked) total; the slot below is what makes the quota exact.
    if (counterNumber(read[1].value) >= this.#maxDomains) {
      throw new DomainLimitError(this.#maxDomains);
    }
    const ancestors = read.slice(3, 3 + n) as Deno.KvEntryMaybe<string>[];
    const probed = read.slice(3 + 2 * n);
    const slot = probes.find((_, i) => probed[i].versionstamp === null) ??
      await this.#listFreeSlot();
    if (slot === null) throw new DomainLimitError(this.#maxDomains);
    const parent = await this.#findParent(ancestors);
    return { pointer, ancestors, ancestorPointers, slot, parent };
  }

  /** How many addresses the domain has (store/email_addresses/store.ts). */
  async #countAddresses(domainId: string): Promise<number> {
    let n = 0;
    const iter = this.#kv.list({ prefix: domainAddressPrefix(this.#userId, domainId) }, {
      batchSize: 500,
    });
    for await (const _ of iter) n++;
    return n;
  }

  /** Adds the audit event of a domain change to the commit that makes it (no-op without ctx). */
  #audited(
    op: Deno.AtomicOperation,
    action: AuditAction,
    r: DomainRecord,
    details?: Record<string, string | boolean | null>,
  ): void {
    const store = { ...this.#opts, userId: this.#userId, clock: this.#clock };
    auditChange(op, store, action, { type: "domain", id: r.id, name: r.domain }, details);
  }

  async #getMany(ids: string[]): Promise<DomainRecord[]> {
    const keys = ids.map((id) => domainKey(this.#userId, id));
    const entries = await getManyChunked<DomainRecord>(this.#kv, keys);
    return entries.flatMap((e) => (e.value ? [e.value] : []));
  }

  async #getEntry(domainId: string): Promise<Deno.KvEntry<DomainRecord>> {
    const entry = await this.#kv.get<DomainRecord>(domainKey(this.#userId, domainId));
    if (entry.versionstamp === null) throw new Deno.errors.NotFound("No such domain");
    return entry;
  }

  /** Entries for `keys` in order, read in chunks of 10 at once (one round trip for <= 10). */
  #readAll(keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<unknown>[]> {
    return getManyChunked(this.#kv, keys);
  }

  /**
   * Random distinct quota slots to probe (all of them when the quota is that small): enough to
   * fill the getMany chunk that `otherKeys` leave room in, at least MIN_SLOT_PROBES.
   */
  #slotCandidates(otherKeys: number): number[] {
    let room = (GET_MANY_LIMIT - (otherKeys % GET_MANY_LIMIT)) % GET_MANY_LIMIT;
    if (room < MIN_SLOT_PROBES) room += GET_MANY_LIMIT;
    const probes = new Set<number>();
    while (probes.size < Math.min(room, this.#maxDomains)) {
      probes.add(Math.floor(Math.random() * this.#maxDomains));
    }
    return [...probes];
  }

  /** A free slot from a full listing (near the quota, when every probe was taken), or null. */
  async #listFreeSlot(): Promise<number | null> {
    const taken = new Set<number>();
    const slots = this.#kv.list({ prefix: domainSlotPrefix(this.#userId) }, { batchSize: 500 });
    for await (const e of slots) taken.add(Number(e.key[2]));
    const free: number[] = [];
    for (let n = 0; n < this.#maxDomains; n++) if (!taken.has(n)) free.push(n);
    return free.length ? free[Math.floor(Math.random() * free.length)] : null;
  }

  /**
   * The nearest verified ancestor of this account, else the nearest one, else null; from the
   * account's own reversed-name entries of the ancestors (nearest first).
   */
  async #findParent(
    ancestors: Deno.KvEntryMaybe<string>[],
  ): Promise<Deno.KvEntry<DomainRecord> | null> {
    const mine = ancestors.flatMap((a) => (a.value === null ? [] : [a.value]));
    if (mine.length === 0) return null;
    const entries: Deno.KvEntry<DomainRecord>[] = [];
    for (let i = 0; i < mine.length; i += GET_MANY_LIMIT) {
      const chunk = mine.slice(i, i + GET_MANY_LIMIT);
      const got = await this.#kv.getMany<DomainRecord[]>(
        chunk.map((id) => domainKey(this.#userId, id)),
      );
      for (const e of got) {
        if (e.versionstamp !== null) entries.push(e as Deno.KvEntry<DomainRecord>);
      }
    }
    return entries.find((e) => e.value.status === "verified") ?? entries[0] ?? null;
  }
}

/** A new, unchecked record: verified at once when it inherits from a verified parent. */
function newDomainRecord(
  input: NewDomain,
  at: {
    id: string;
    userId: string;
    token: string;
    slot: number;
    parent: DomainRecord | null;
    now: string;
  },
): DomainRecord {
  const { id, userId, token, slot, parent, now } = at;
  const inherited = parent?.status === "verified";
  const specs = input.plan({ domain: input.domain, token, inherited });
  return {
    id,
    userId,
    domain: input.domain,
    status: inherited ? "verified" : "pending",
    canReceiveEmails: false,
    hasMxRecords: false,
    domainProvider: null,
    providerConfidence: null,
    lastDnsCheck: null,
    lastSesCheck: null,
    isCatchAllEnabled: false,
    catchAllEndpointId: null,
    receiveDmarcEmails: false,
    mailFromDomain: null,
    mailFromDomainStatus: null,
    mailFromDomainVerifiedAt: null,
    createdAt: now,
    updatedAt: now,
    verificationToken: token,
    dnsRecords: specs.map((s) => ({
      ...s,
      id: newId("dns"),
      createdAt: now,
      isVerified: false,
      lastChecked: null,
      lastError: null,
    })),
    parentDomainId: parent?.id ?? null,
    parentDomain: parent?.domain ?? null,
    inheritsFromParent: inherited,
    childCount: 0,
    quotaSlot: slot,
  };
}

/**
 * The record after a DNS check (evaluateCheck's status and flags, each DNS record's result), and
 * the results as recorded. When another account owns the name now (`takenElsewhere`), this copy
 * fails, saying why (TAKEN_MESSAGE), and can be deleted.
 */
function checkedRecord(
  old: DomainRecord,
  results: (RecordCheck & { lookupFailed?: boolean })[],
  at: { takenElsewhere: boolean; parentVerified: boolean; nowMs: number },
): { updated: DomainRecord; checked: typeof results; checkedAt: string } {
  const checked = at.takenElsewhere
    ? results.map((r) =>
      r.kind === "verification"
        ? { kind: r.kind, isVerified: false, error: TAKEN_MESSAGE, lookupFailed: false }
        : r
    )
    : results;
  const checkedAt = new Date(at.nowMs).toISOString();
  const next = evaluateCheck(old, checked, at.nowMs, at.parentVerified);
  if (at.takenElsewhere) {
    next.status = "failed";
    next.inheritsFromParent = old.inheritsFromParent;
    next.canReceiveEmails = false;
  }
  const byKind = new Map(checked.map((r) => [r.kind, r]));
  const updated: DomainRecord = {
    ...old,
    ...next,
    lastDnsCheck: checkedAt,
    updatedAt: checkedAt,
    dnsRecords: old.dnsRecords.map((d) => {
      const r = byKind.get(d.kind);
      if (!r) return d;
      if (r.lookupFailed) {
        return { ...d, lastChecked: checkedAt, lastError: r.error ?? null };
      }
      return {
        ...d,
        isVerified: r.isVerified,
        lastChecked: checkedAt,
        lastError: r.error ?? null,
      };
    }),
  };
  return { updated, checked, checkedAt };
}

/**
 * What deleting `r` removes: planDomainWrite's plan, except a name entry that names another
 * record (only a broken store has one), plus the record's own name pointer when it is pending.
 */
function deletePlan(
  userId: string,
  r: DomainRecord,
  pointer: Deno.KvEntryMaybe<DomainNamePointer>,
  byName: Deno.KvEntryMaybe<string>,
): Mutation[] {
  const ownPointer = pointer.value?.userId === userId && pointer.value.domainId === r.id;
  const ownByName = byName.value === r.id;
  const plan = planDomainWrite(userId, r, null).filter((m) =>
    !(m.kind === "delete" &&
      ((!ownPointer && sameKey(m.key, pointer.key)) ||
        (!ownByName && sameKey(m.key, byName.key))))
  );
  // A pending record's pointer can only be a claim made at creation by an older version
  // (before ownership by verification): it goes with the record too.
  if (ownPointer && !plan.some((m) => sameKey(m.key, pointer.key))) {
    plan.push({ kind: "delete", key: pointer.key });
  }
  return plan;
}

function sameKey(a: Deno.KvKey, b: Deno.KvKey): boolean {
  return a.length === b.length && a.every((part, i) => part === b[i]);
}

/** Why a domain is `failed` after an operator released its name. */
export const RELEASED_MESSAGE =
  "An operator released this name: it is no longer verified for this account. Check it again " +
  "to verify it anew, or delete it.";

/**
 * Records released per commit: each is checked, and denokv allows 10 checks per commit (each
 * plans ~8 mutations; 1,000 are allowed).
 */
const RELEASE_BATCH = 10;

/**
 * Operator action (`admin domain:release --name`): the name stops being exclusive. The verified
 * record that holds it turns `failed` (its verification record says why) and the name pointer
 * goes, so any account may then verify the name (the released one too, by checking it again).
 * The owner's subdomains that were verified only by inheriting from it are released with it
 * (else they would keep their own claims and block the name's next owner), first, in checked
 * batches; the name itself goes last, so a run cut short is finished by running it again.
 * Null when nobody has verified `name`.
 */
export async function releaseDomainName(
  kv: Deno.Kv,
  name: string,
  clock: Clock,
): Promise<{ userId: string; domainId: string; subdomains: number } | null> {
  const owner = (await kv.get<DomainNamePointer>(domainNameIndexKey(name))).value;
  if (!owner) return null;
  const { userId } = owner;
  const at = () => new Date(clock()).toISOString();
  const released = (r: DomainRecord): DomainRecord => ({
    ...r,
    status: "failed",
    canReceiveEmails: false,
    inheritsFromParent: false,
    updatedAt: at(),
    dnsRecords: r.dnsRecords.map((d) =>
      d.kind === "verification" ? { ...d, isVerified: false, lastError: RELEASED_MESSAGE } : d
    ),
  });

  // The owner's inheriting subdomains, below the name in its reversed-name range.
  let subdomains = 0;
  for (let lost = 0;;) {
    const ids: string[] = [];
    for await (const e of kv.list<string>(domainDescendantsRange(userId, name))) ids.push(e.value);
    const entries = (await getManyChunked<DomainRecord>(kv, ids.map((id) => domainKey(userId, id))))
      .filter((e) => e.value?.status === "verified" && e.value.inheritsFromParent);
    if (entries.length === 0) break;
    const batch = entries.slice(0, RELEASE_BATCH) as Deno.KvEntry<DomainRecord>[];
    const op = kv.atomic();
    for (const e of batch) {
      op.check(e);
      applyPlan(op, planDomainWrite(userId, e.value, released(e.value)));
    }
    if ((await op.commit()).ok) subdomains += batch.length;
    else if (++lost >= WRITE_ATTEMPTS) throw new ConflictError();
  }

  return await withRetries(async () => {
    const pointer = await kv.get<DomainNamePointer>(domainNameIndexKey(name));
    if (!pointer.value) return null;
    const { domainId } = pointer.value;
    const entry = await kv.get<DomainRecord>(domainKey(pointer.value.userId, domainId));
    const op = kv.atomic().check(pointer).check(entry);
    if (!entry.value || entry.value.status !== "verified" || entry.value.domain !== name) {
      // A pointer without its verified record (a broken or pre-verification store): just drop it.
      op.delete(pointer.key);
    } else {
      applyPlan(op, planDomainWrite(pointer.value.userId, entry.value, released(entry.value)));
    }
    const res = await op.commit();
    return res.ok ? { userId: pointer.value.userId, domainId, subdomains } : RETRY;
  });
}
