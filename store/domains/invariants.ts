/**
 * `checkDomainInvariants`: invariants I1–I6 of store/domains/store.ts (its header states them) checked
 * for one account by reading its whole domain state. For tests and operator tooling, never on
 * the request path. One function per family of keys, in the order the problems are reported:
 * the records' own entries, the index entries back to the records, the child links, the
 * counters, the quota slots, and the name pointers that name the account.
 * `admin verify` (admin/verify.ts) checks the same rules over a streamed store; the tests run
 * both on the same damaged stores so the two cannot drift apart unnoticed.
 */
import { counterNumber } from "./plan.ts";
import {
  allFilterNames,
  DEFAULT_MAX_DOMAINS,
  type DomainNamePointer,
  type DomainRecord,
  filterNamesOf,
} from "./record.ts";
import {
  domainByFilterKey,
  domainByFilterRootPrefix,
  domainByNameKey,
  domainByNamePrefix,
  domainByTimeKey,
  domainByTimePrefix,
  domainChildKey,
  domainChildRootPrefix,
  domainCountKey,
  domainNameIndexKey,
  domainPrefix,
  domainSlotKey,
  domainSlotPrefix,
  indexPrefix,
  reverseDomainName,
} from "../keys.ts";

/** The account's records by id. */
type Records = ReadonlyMap<string, DomainRecord>;

const ms = (iso: string) => Date.parse(iso);

/**
 * Checks invariants I1–I6 for one account (and the name pointers that name it); returns one
 * sentence per violation, empty when consistent. `maxDomains`: the quota in force (I6).
 */
export async function checkDomainInvariants(
  kv: Deno.Kv,
  userId: string,
  maxDomains = DEFAULT_MAX_DOMAINS,
): Promise<string[]> {
  const records = new Map<string, DomainRecord>();
  for await (const e of kv.list<DomainRecord>({ prefix: domainPrefix(userId) })) {
    records.set(e.value.id, e.value);
  }
  return [
    ...await checkRecordEntries(kv, userId, records),
    ...await checkIndexEntries(kv, userId, records),
    ...await checkChildLinks(kv, userId, records),
    ...await checkCounters(kv, userId, records),
    ...await checkQuotaSlots(kv, userId, records, maxDomains),
    ...await checkNamePointers(kv, userId, records),
  ];
}

/** I1, I4, I5 from each record: its name pointer, reversed-name entry, indexes and parent link. */
async function checkRecordEntries(
  kv: Deno.Kv,
  userId: string,
  records: Records,
): Promise<string[]> {
  const problems: string[] = [];
  for (const r of records.values()) {
    const pointer = await kv.get<DomainNamePointer>(domainNameIndexKey(r.domain));
    const named = pointer.value?.userId === userId && pointer.value.domainId === r.id;
    if (r.status === "verified" && !named) {
      problems.push(`I5: verified ${r.id} (${r.domain}) has no name pointer to it`);
    } else if (r.status !== "verified" && named) {
      problems.push(`I5: ${r.status} ${r.id} (${r.domain}) holds the name pointer`);
    }
    if ((await kv.get(domainByNameKey(userId, r.domain))).value !== r.id) {
      problems.push(`I1: ${r.id} (${r.domain}) has no reversed-name entry`);
    }
    for (const f of filterNamesOf(r)) {
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
  return problems;
}

/** I2: every time, filter and reversed-name entry points to a record that agrees with it. */
async function checkIndexEntries(kv: Deno.Kv, userId: string, records: Records): Promise<string[]> {
  const problems: string[] = [];
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
  return problems;
}

/** I4: every child link names a child that has that parent; childCount equals the links. */
async function checkChildLinks(kv: Deno.Kv, userId: string, records: Records): Promise<string[]> {
  const problems: string[] = [];
  const childLinks = new Map<string, number>();
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
  return problems;
}

/** I3: each filter's counter is a Deno.KvU64 (or absent) equal to the records in the filter. */
async function checkCounters(kv: Deno.Kv, userId: string, records: Records): Promise<string[]> {
  const problems: string[] = [];
  const expectedCounts = new Map<string, number>(allFilterNames().map((n) => [n, 0]));
  for (const r of records.values()) {
    for (const f of filterNamesOf(r)) expectedCounts.set(f, (expectedCounts.get(f) ?? 0) + 1);
  }
  for (const [f, expected] of expectedCounts) {
    const stored = (await kv.get(domainCountKey(userId, f))).value;
    const actual = counterNumber(stored);
    if (stored !== null && !(stored instanceof Deno.KvU64)) {
      problems.push(`I3: counter ${f} is not a Deno.KvU64`);
    } else if (actual !== expected) {
      problems.push(`I3: counter ${f} is ${actual}, records ${expected}`);
    }
  }
  return problems;
}

/** I6: slots and records name each other, every slot is in range, the account is in quota. */
async function checkQuotaSlots(
  kv: Deno.Kv,
  userId: string,
  records: Records,
  maxDomains: number,
): Promise<string[]> {
  const problems: string[] = [];
  let slots = 0;
  for await (const e of kv.list<string>({ prefix: domainSlotPrefix(userId) })) {
    slots++;
    const n = e.key[2];
    const r = records.get(e.value);
    if (!r || r.quotaSlot !== n) {
      problems.push(`I6: slot ${String(n)} points to no matching record`);
    }
    if (typeof n !== "number" || n < 0 || n >= maxDomains) {
      problems.push(`I6: slot ${String(n)} is outside 0..${maxDomains - 1}`);
    }
  }
  for (const r of records.values()) {
    if (r.quotaSlot === undefined) continue;
    if ((await kv.get(domainSlotKey(userId, r.quotaSlot))).value !== r.id) {
      problems.push(`I6: ${r.id} lacks its quota slot ${r.quotaSlot}`);
    }
  }
  if (records.size > maxDomains || slots > maxDomains) {
    problems.push(`I6: ${records.size} domains, above the quota of ${maxDomains}`);
  }
  return problems;
}

/** I2: every name pointer naming this account points to a verified record of that name. */
async function checkNamePointers(kv: Deno.Kv, userId: string, records: Records): Promise<string[]> {
  const problems: string[] = [];
  for await (const e of kv.list<DomainNamePointer>({ prefix: indexPrefix("domain") })) {
    if (e.value.userId !== userId) continue;
    const r = records.get(e.value.domainId);
    if (!r || r.domain !== e.key[2] || r.status !== "verified") {
      problems.push(`I2: name pointer ${String(e.key[2])} points to no verified record`);
    }
  }
  return problems;
}
