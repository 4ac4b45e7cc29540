/**
 * Domain records and their indexes. Listing never reads every record: ids come from a
 * time-ordered index (one per filter), totals from counters maintained in the same commits.
 *
 * Keys (builders in keys.ts), for an account `u` and a record `R` with id `id`:
 *   [u, "domain", id]                                     R
 *   ["idx", "domain", R.domain]                           { userId: u, domainId: id }
 *   [u, "domain_by_time", ms(R.createdAt), id]            id
 *   [u, "domain_by_filter", f, ms(R.createdAt), id]       id, for every f in filterNamesOf(R) but "all"
 *   [u, "count", "domains", f]                            number, for every filter name f
 *   [u, "domain_children", R.parentDomainId, id]          id, when R has a parent
 *   [u, "domain_by_name", reverse(R.domain)]              id ("com.example.mail" for "mail.example.com")
 *
 * Invariants (checked by `checkDomainInvariants`; every write below keeps them in ONE atomic
 * commit whose checks cover every entry it read, so a process killed at any point leaves either
 * the state before the commit or the state after it, never a mix):
 *   I1  Every record has all its index entries above: the name pointer names (u, id), the
 *       reversed-name entry holds id, the time entry and the filter entries for exactly its
 *       current status/canReceiveEmails exist.
 *   I2  Every index entry points to a live record that agrees with it: a time or filter entry's
 *       id is a record of the same account with that createdAt (and, for a filter entry, a
 *       status/canReceiveEmails matching the filter); a name pointer's record and a
 *       reversed-name entry's record have that name.
 *   I3  For every filter name f, the counter [u, "count", "domains", f] (absent = 0) equals the
 *       number of the account's records r with f in filterNamesOf(r).
 *   I4  A child link [u, "domain_children", p, c] exists exactly when record c has
 *       parentDomainId p; record p exists, is of the same account, and its childCount equals
 *       the number of its child links.
 *   I5  One name belongs to at most one record in the whole KV (the pointer, and the account's
 *       reversed-name entry, are created with a `versionstamp: null` check).
 *
 * Deleting a domain is refused (DomainHasSubdomainsError) while the account holds any domain
 * below it by name, whatever the order they were created in. Child links are what they always
 * were: the ancestor chosen when the child was created (findParent), used for inheriting
 * verification, and never re-pointed. The delete rule does not rely on them but on the
 * reversed-name index, whose entries under a domain are one key range (keys.ts
 * domainDescendantsRange).
 *
 * Why this design, and not re-parenting existing descendants when an ancestor is created: it
 * changes no record but the one being written (no unbounded fan-out of rewrites in one commit,
 * which KV's per-commit limits would cap), no API-visible parentDomain / inheritsFromParent of
 * an existing domain moves under its owner, and it also covers descendants whose link points
 * past the domain (findParent prefers a verified grand-parent over a pending parent).
 *
 * Concurrency: creates check every key they create for absence and every counter they bump;
 * updates and deletes check the record entry they read, the counters they change and, when the
 * record has a parent, the parent record (whose childCount they may change). A child create or
 * delete rewrites its parent record, so a delete of the parent racing it fails its check and
 * re-reads the parent's childCount. Failed checks retry with fresh reads (`withRetries`).
 *
 * A key range cannot be checked, so the delete's scan of the descendant range is guarded by the
 * account's ["count", "domains", "all"] counter instead: every create writes it under a check,
 * and the delete reads it BEFORE the scan and checks it in its commit. A descendant created
 * before that read is seen by the scan; one created after it moves the counter and fails the
 * delete's commit, whose retry scans again and refuses. (Creates and deletes in one account
 * were already serialised on that counter; this only relies on it. Changing the counters to
 * unchecked `sum` mutations would need another guard here.)
 */
import type { Clock } from "../lib/clock.ts";
import { newId, randomBase62 } from "../lib/crypto.ts";
import type { DnsRecordKind, DnsRecordSpec, RecordCheck } from "../lib/dns.ts";
import { RETRY, withRetries } from "./errors.ts";
import {
  domainByFilterKey,
  domainByFilterPrefix,
  domainByFilterRootPrefix,
  domainByNameKey,
  domainByNamePrefix,
  domainByTimeKey,
  domainByTimePrefix,
  domainChildKey,
  domainChildRootPrefix,
  domainCountKey,
  domainDescendantsRange,
  domainKey,
  domainNameIndexKey,
  domainPrefix,
  indexPrefix,
  reverseDomainName,
} from "./keys.ts";

export type DomainStatus = "pending" | "verified" | "failed";
export const DOMAIN_STATUSES: readonly DomainStatus[] = ["pending", "verified", "failed"];

/** A DNS record the domain should publish, with the result of its last check. */
export type StoredDnsRecord = DnsRecordSpec & {
  id: string;
  createdAt: string;
  isVerified: boolean;
  lastChecked: string | null;
  /** Why the last check did not verify it (absent when it did, or before any check). */
  lastError: string | null;
};

export type DomainRecord = {
  id: string;
  userId: string;
  domain: string;
  status: DomainStatus;
  canReceiveEmails: boolean;
  hasMxRecords: boolean;
  domainProvider: string | null;
  providerConfidence: string | null;
  lastDnsCheck: string | null;
  lastSesCheck: string | null;
  isCatchAllEnabled: boolean;
  catchAllEndpointId: string | null;
  receiveDmarcEmails: boolean;
  mailFromDomain: string | null;
  mailFromDomainStatus: string | null;
  mailFromDomainVerifiedAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** The secret part of the verification TXT value. */
  verificationToken: string;
  dnsRecords: StoredDnsRecord[];
  /** The nearest ancestor domain of this account when the record was created, if any. */
  parentDomainId: string | null;
  parentDomain: string | null;
  /** Verified because the parent was verified, not by its own TXT record. */
  inheritsFromParent: boolean;
  /** Number of child links [u, "domain_children", id, *]. */
  childCount: number;
};

export type DomainNamePointer = { userId: string; domainId: string };

export type DomainFilter = { status?: DomainStatus; canReceive?: boolean };

/** The index/counter name for a filter; `"all"` when there is none. */
export function filterName(filter: DomainFilter): string {
  const parts: string[] = [];
  if (filter.status !== undefined) parts.push(`status:${filter.status}`);
  if (filter.canReceive !== undefined) parts.push(`canReceive:${filter.canReceive}`);
  return parts.length ? parts.join(",") : "all";
}

/** Every filtered index and counter a record belongs to, "all" included. */
export function filterNamesOf(r: Pick<DomainRecord, "status" | "canReceiveEmails">): string[] {
  return [
    "all",
    filterName({ status: r.status }),
    filterName({ canReceive: r.canReceiveEmails }),
    filterName({ status: r.status, canReceive: r.canReceiveEmails }),
  ];
}

/** Every filter name a counter can exist for. */
export function allFilterNames(): string[] {
  const names = new Set<string>();
  for (const status of DOMAIN_STATUSES) {
    for (const canReceiveEmails of [true, false]) {
      for (const n of filterNamesOf({ status, canReceiveEmails })) names.add(n);
    }
  }
  return [...names];
}

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
  /** `subdomains`: the first few names below the domain; `total`: how many there are. */
  constructor(readonly subdomains: string[], readonly total: number) {
    super("Domain still has subdomains");
    this.name = "DomainHasSubdomainsError";
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

/** KV's getMany takes at most 10 keys. */
const GET_MANY_LIMIT = 10;

/** A refused delete names at most this many of the subdomains in the way. */
const SUBDOMAINS_NAMED = 10;

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

export function domainStore(kv: Deno.Kv, userId: string, clock: Clock) {
  async function getMany(ids: string[]): Promise<DomainRecord[]> {
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += GET_MANY_LIMIT) {
      chunks.push(ids.slice(i, i + GET_MANY_LIMIT));
    }
    const results = await Promise.all(
      chunks.map((chunk) => kv.getMany<DomainRecord[]>(chunk.map((id) => domainKey(userId, id)))),
    );
    return results.flat().flatMap((e) => (e.value ? [e.value] : []));
  }

  async function getEntry(domainId: string): Promise<Deno.KvEntry<DomainRecord>> {
    const entry = await kv.get<DomainRecord>(domainKey(userId, domainId));
    if (entry.versionstamp === null) throw new Deno.errors.NotFound("No such domain");
    return entry;
  }

  async function counterEntries(names: string[]): Promise<Map<string, Deno.KvEntryMaybe<number>>> {
    const out = new Map<string, Deno.KvEntryMaybe<number>>();
    for (let i = 0; i < names.length; i += GET_MANY_LIMIT) {
      const chunk = names.slice(i, i + GET_MANY_LIMIT);
      const entries = await kv.getMany<number[]>(chunk.map((n) => domainCountKey(userId, n)));
      chunk.forEach((n, j) => out.set(n, entries[j]));
    }
    return out;
  }

  /** Adds the index entries of `r` (time + filters) to `op`. */
  function setIndexes(op: Deno.AtomicOperation, r: DomainRecord, names = filterNamesOf(r)) {
    for (const f of names) {
      if (f === "all") op.set(domainByTimeKey(userId, ms(r.createdAt), r.id), r.id);
      else op.set(domainByFilterKey(userId, f, ms(r.createdAt), r.id), r.id);
    }
  }

  function deleteIndexes(op: Deno.AtomicOperation, r: DomainRecord, names = filterNamesOf(r)) {
    for (const f of names) {
      if (f === "all") op.delete(domainByTimeKey(userId, ms(r.createdAt), r.id));
      else op.delete(domainByFilterKey(userId, f, ms(r.createdAt), r.id));
    }
  }

  /** Checks each counter as read and writes it moved by `delta[name]`. */
  function moveCounters(
    op: Deno.AtomicOperation,
    counters: Map<string, Deno.KvEntryMaybe<number>>,
    delta: Map<string, number>,
  ) {
    for (const [name, d] of delta) {
      if (d === 0) continue;
      const entry = counters.get(name)!;
      op.check(entry);
      op.set(domainCountKey(userId, name), Math.max(0, (entry.value ?? 0) + d));
    }
  }

  return {
    /** Newest first. Skips `offset` index entries (ids only), then reads one page of records. */
    async list(
      filter: DomainFilter,
      page: { limit: number; offset: number },
    ): Promise<{ data: DomainRecord[]; total: number }> {
      const name = filterName(filter);
      const prefix = name === "all"
        ? domainByTimePrefix(userId)
        : domainByFilterPrefix(userId, name);
      // The total comes first so a deep page can be read from whichever end is nearer:
      // offset 9,950 of 10,000 skips 0 entries from the oldest end instead of 9,950.
      const total = await this.count(filter);
      const take = Math.max(0, Math.min(page.limit, total - page.offset));
      const fromOldest = page.offset > total / 2;
      const skip = fromOldest ? Math.max(0, total - page.offset - take) : page.offset;
      const ids: string[] = [];
      if (take > 0) {
        const iter = kv.list<string>({ prefix }, {
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
      const data = await getMany(ids);
      return { data, total };
    },

    async count(filter: DomainFilter = {}): Promise<number> {
      return (await kv.get<number>(domainCountKey(userId, filterName(filter)))).value ?? 0;
    },

    async get(domainId: string): Promise<DomainRecord> {
      return (await getEntry(domainId)).value;
    },

    /**
     * Record, name pointer, time and filter indexes, counters and the parent link in one
     * checked commit. Throws DomainExistsError when the name is taken (here or elsewhere).
     */
    async create(input: NewDomain): Promise<DomainRecord> {
      const id = newId("dom");
      const token = randomBase62(32);
      return await withRetries(async () => {
        const pointer = await kv.get<DomainNamePointer>(domainNameIndexKey(input.domain));
        if (pointer.value) {
          throw new DomainExistsError(pointer.value.userId === userId ? "own" : "other");
        }
        const parent = await findParent(input.ancestors);
        const inherited = parent?.value.status === "verified";
        const now = new Date(clock()).toISOString();
        const specs = input.plan({ domain: input.domain, token, inherited });
        const record: DomainRecord = {
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
          parentDomainId: parent?.value.id ?? null,
          parentDomain: parent?.value.domain ?? null,
          inheritsFromParent: inherited,
          childCount: 0,
        };
        const names = filterNamesOf(record);
        const counters = await counterEntries(names);
        const byName = domainByNameKey(userId, record.domain);
        const op = kv.atomic()
          .check(pointer)
          .check({ key: domainKey(userId, id), versionstamp: null })
          .check({ key: byName, versionstamp: null })
          .set(domainKey(userId, id), record)
          .set(domainNameIndexKey(record.domain), { userId, domainId: id })
          .set(byName, id);
        setIndexes(op, record, names);
        moveCounters(op, counters, new Map(names.map((n) => [n, 1])));
        if (parent) {
          op.check(parent)
            .set(parent.key, { ...parent.value, childCount: parent.value.childCount + 1 })
            .set(domainChildKey(userId, parent.value.id, id), id);
        }
        const res = await op.commit();
        return res.ok ? record : RETRY;
      });
    },

    /** Catch-all settings; only a verified domain may change them. */
    async updateCatchAll(
      domainId: string,
      settings: { isCatchAllEnabled: boolean; catchAllEndpointId: string | null },
    ): Promise<DomainRecord> {
      return await withRetries(async () => {
        const entry = await getEntry(domainId);
        if (entry.value.status !== "verified") throw new DomainNotVerifiedError(entry.value.status);
        const updated: DomainRecord = {
          ...entry.value,
          ...settings,
          updatedAt: new Date(clock()).toISOString(),
        };
        const res = await kv.atomic().check(entry).set(entry.key, updated).commit();
        return res.ok ? updated : RETRY;
      });
    },

    /**
     * Applies the results of a DNS check: per-record state, lastDnsCheck, and a status or
     * receiving change, which moves the record between filter indexes and counters.
     */
    async applyCheck(
      domainId: string,
      results: (RecordCheck & { lookupFailed?: boolean })[],
    ): Promise<CheckOutcome> {
      return await withRetries(async () => {
        const entry = await getEntry(domainId);
        const old = entry.value;
        const parent = old.parentDomainId
          ? await kv.get<DomainRecord>(domainKey(userId, old.parentDomainId))
          : null;
        const nowMs = clock();
        const checkedAt = new Date(nowMs).toISOString();
        const next = evaluateCheck(old, results, nowMs, parent?.value?.status === "verified");
        const byKind = new Map(results.map((r) => [r.kind, r]));
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
        const before = filterNamesOf(old);
        const after = filterNamesOf(updated);
        const removed = before.filter((n) => !after.includes(n));
        const added = after.filter((n) => !before.includes(n));
        const op = kv.atomic().check(entry).set(entry.key, updated);
        if (parent) op.check(parent);
        if (removed.length || added.length) {
          const counters = await counterEntries([...removed, ...added]);
          deleteIndexes(op, old, removed);
          setIndexes(op, updated, added);
          moveCounters(
            op,
            counters,
            new Map([
              ...removed.map((n) => [n, -1] as const),
              ...added.map((n) => [n, 1] as const),
            ]),
          );
        }
        const res = await op.commit();
        return res.ok ? { record: updated, results, checkedAt } : RETRY;
      });
    },

    /**
     * Removes the record with every index entry, counter share and parent link in one commit.
     * Throws DomainHasSubdomainsError while the account has any domain below it by name
     * (linked to it or not: see the header).
     */
    async delete(domainId: string): Promise<DomainRecord> {
      return await withRetries(async () => {
        const entry = await getEntry(domainId);
        const r = entry.value;
        // Read the counters (the "all" one among them) before scanning: the commit checks
        // them, so a descendant created after this read fails the commit (header).
        const names = filterNamesOf(r);
        const counters = await counterEntries(names);
        const below: string[] = [];
        let total = 0;
        for await (
          const d of kv.list<string>(domainDescendantsRange(userId, r.domain), { batchSize: 100 })
        ) {
          if (total++ < SUBDOMAINS_NAMED) below.push(reverseDomainName(String(d.key[2])));
        }
        if (total > 0) throw new DomainHasSubdomainsError(below, total);
        const pointer = await kv.get<DomainNamePointer>(domainNameIndexKey(r.domain));
        const byName = await kv.get<string>(domainByNameKey(userId, r.domain));
        const op = kv.atomic().check(entry).check(pointer).check(byName).delete(entry.key);
        if (pointer.value?.userId === userId && pointer.value.domainId === r.id) {
          op.delete(pointer.key);
        }
        if (byName.value === r.id) op.delete(byName.key);
        deleteIndexes(op, r, names);
        moveCounters(op, counters, new Map(names.map((n) => [n, -1])));
        if (r.parentDomainId) {
          const parent = await kv.get<DomainRecord>(domainKey(userId, r.parentDomainId));
          op.check(parent).delete(domainChildKey(userId, r.parentDomainId, r.id));
          if (parent.value) {
            op.set(parent.key, {
              ...parent.value,
              childCount: Math.max(0, parent.value.childCount - 1),
            });
          }
        }
        const res = await op.commit();
        return res.ok ? r : RETRY;
      });
    },
  };

  /** The nearest verified ancestor of this account, else the nearest one, else null. */
  async function findParent(ancestors: string[]): Promise<Deno.KvEntry<DomainRecord> | null> {
    const mine: string[] = [];
    for (let i = 0; i < ancestors.length; i += GET_MANY_LIMIT) {
      const chunk = ancestors.slice(i, i + GET_MANY_LIMIT);
      const pointers = await kv.getMany<DomainNamePointer[]>(chunk.map(domainNameIndexKey));
      for (const p of pointers) if (p.value?.userId === userId) mine.push(p.value.domainId);
    }
    if (mine.length === 0) return null;
    const entries: Deno.KvEntry<DomainRecord>[] = [];
    for (let i = 0; i < mine.length; i += GET_MANY_LIMIT) {
      const chunk = mine.slice(i, i + GET_MANY_LIMIT);
      const got = await kv.getMany<DomainRecord[]>(chunk.map((id) => domainKey(userId, id)));
      for (const e of got) {
        if (e.versionstamp !== null) entries.push(e as Deno.KvEntry<DomainRecord>);
      }
    }
    return entries.find((e) => e.value.status === "verified") ?? entries[0] ?? null;
  }
}

export type DomainStore = ReturnType<typeof domainStore>;

/**
 * Checks invariants I1–I5 for one account (and the name pointers that name it); returns one
 * sentence per violation, empty when consistent. Reads the account's whole domain state: for
 * tests and operator tooling, never on the request path.
 */
export async function checkDomainInvariants(kv: Deno.Kv, userId: string): Promise<string[]> {
  const problems: string[] = [];
  const records = new Map<string, DomainRecord>();
  for await (const e of kv.list<DomainRecord>({ prefix: domainPrefix(userId) })) {
    records.set(e.value.id, e.value);
  }
  const expectedCounts = new Map<string, number>(allFilterNames().map((n) => [n, 0]));
  const childLinks = new Map<string, number>();
  for (const r of records.values()) {
    const pointer = await kv.get<DomainNamePointer>(domainNameIndexKey(r.domain));
    if (pointer.value?.userId !== userId || pointer.value.domainId !== r.id) {
      problems.push(`I1: ${r.id} (${r.domain}) has no name pointer to it`);
    }
    if ((await kv.get(domainByNameKey(userId, r.domain))).value !== r.id) {
      problems.push(`I1: ${r.id} (${r.domain}) has no reversed-name entry`);
    }
    for (const f of filterNamesOf(r)) {
      expectedCounts.set(f, (expectedCounts.get(f) ?? 0) + 1);
      const key = f === "all"
        ? domainByTimeKey(userId, ms(r.createdAt), r.id)
        : domainByFilterKey(userId, f, ms(r.createdAt), r.id);
      if ((await kv.get(key)).value !== r.id) problems.push(`I1: ${r.id} lacks index ${f}`);
    }
    if (r.parentDomainId) {
      const link = await kv.get(domainChildKey(userId, r.parentDomainId, r.id));
      if (link.value !== r.id) problems.push(`I4: ${r.id} lacks its link under its parent`);
      if (!records.has(r.parentDomainId)) problems.push(`I4: ${r.id}'s parent is missing`);
    }
  }
  for await (const e of kv.list<string>({ prefix: domainByTimePrefix(userId) })) {
    const r = records.get(e.value);
    if (!r || ms(r.createdAt) !== e.key[2] || e.key[3] !== r.id) {
      problems.push(`I2: time entry ${String(e.key[3])} points to no matching record`);
    }
  }
  for await (const e of kv.list<string>({ prefix: domainByFilterRootPrefix(userId) })) {
    const f = String(e.key[2]);
    const r = records.get(e.value);
    if (!r || ms(r.createdAt) !== e.key[3] || !filterNamesOf(r).includes(f)) {
      problems.push(`I2: filter entry ${f}/${String(e.key[4])} points to no matching record`);
    }
  }
  for await (const e of kv.list<string>({ prefix: domainByNamePrefix(userId) })) {
    const r = records.get(e.value);
    const name = reverseDomainName(String(e.key[2]));
    if (!r || r.domain !== name) {
      problems.push(`I2: reversed-name entry ${name} points to no matching record`);
    }
  }
  for await (const e of kv.list<string>({ prefix: domainChildRootPrefix(userId) })) {
    const parentId = String(e.key[2]);
    const child = records.get(e.value);
    if (!child || child.parentDomainId !== parentId) {
      problems.push(`I4: child link ${parentId}/${e.value} points to no matching record`);
    }
    childLinks.set(parentId, (childLinks.get(parentId) ?? 0) + 1);
  }
  for (const r of records.values()) {
    const links = childLinks.get(r.id) ?? 0;
    if (r.childCount !== links) {
      problems.push(`I4: ${r.id} has childCount ${r.childCount} but ${links} child links`);
    }
  }
  for (const [f, expected] of expectedCounts) {
    const actual = (await kv.get<number>(domainCountKey(userId, f))).value ?? 0;
    if (actual !== expected) problems.push(`I3: counter ${f} is ${actual}, records ${expected}`);
  }
  for await (const e of kv.list<DomainNamePointer>({ prefix: indexPrefix("domain") })) {
    if (e.value.userId !== userId) continue;
    const r = records.get(e.value.domainId);
    if (!r || r.domain !== e.key[2]) {
      problems.push(`I2: name pointer ${String(e.key[2])} points to no matching record`);
    }
  }
  return problems;
}
