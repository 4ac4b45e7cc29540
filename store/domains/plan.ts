/**
 * What a domain write changes besides the record itself, planned by one pure function of the
 * record before and after the write: `planDomainWrite(userId, before, after)`. Create is
 * (null -> record), a status or receiving change is (record -> record'), delete is
 * (record -> null). The store adds the checks and commits the plan in one atomic operation
 * (`applyPlan`); the three writers no longer build their commits by hand.
 *
 * The plan covers every key that belongs to one record (keys.ts builders):
 *   [u, "domain", id]                                 the record
 *   ["idx", "domain", name]                           the name pointer, only while it is verified
 *   [u, "domain_by_name", reversed(name)]             the reversed-name entry
 *   [u, "domain_by_time", createdAtMs, id]            the time index ("all")
 *   [u, "domain_by_filter", f, createdAtMs, id]       one per filter the record is in
 *   [u, "count", "domains", f]                        +1 / -1 per filter entered / left, as `sum`
 *   [u, "domain_children", parentId, id]              the link under its parent
 *   [u, "domain_slot", n]                             its quota slot
 *
 * Counters move by `sum` (commutative): two writers of one account that touch different names
 * never conflict over a counter. That is sound because a counter is only ever read for display
 * (list totals) and for the quota's fast refusal; no write decides anything from a counter's
 * value (the quota's exactness comes from the slots, the delete rule's from the reversed-name
 * entries; store/domains/store.ts says which check protects which invariant).
 */
import { type DomainRecord, filterNamesOf } from "./record.ts";
import {
  domainByFilterKey,
  domainByNameKey,
  domainByTimeKey,
  domainChildKey,
  domainCountKey,
  domainKey,
  domainNameIndexKey,
  domainSlotKey,
} from "../keys.ts";

export type Mutation =
  | { kind: "set"; key: Deno.KvKey; value: unknown }
  | { kind: "delete"; key: Deno.KvKey }
  /** Adds `delta` (may be negative) to a Deno.KvU64 counter. */
  | { kind: "sum"; key: Deno.KvKey; delta: number };

const ms = (iso: string) => Date.parse(iso);

/** The index entry of `r` for filter `f` ("all" is the time index). */
function filterEntryKey(userId: string, f: string, r: DomainRecord): Deno.KvKey {
  return f === "all"
    ? domainByTimeKey(userId, ms(r.createdAt), r.id)
    : domainByFilterKey(userId, f, ms(r.createdAt), r.id);
}

/** The keys a record owns that do not depend on its status: they come and go with it. */
function identityEntries(userId: string, r: DomainRecord): [Deno.KvKey, unknown][] {
  const out: [Deno.KvKey, unknown][] = [[domainByNameKey(userId, r.domain), r.id]];
  if (r.parentDomainId) out.push([domainChildKey(userId, r.parentDomainId, r.id), r.id]);
  if (typeof r.quotaSlot === "number") out.push([domainSlotKey(userId, r.quotaSlot), r.id]);
  return out;
}

/**
 * The mutations that take the store from `before` to `after` for one record. Pure: no KV, no
 * clock. `before` and `after` are the same record (same id, name, createdAt, parent and slot)
 * when both are given; only status and receiving may differ between them.
 */
export function planDomainWrite(
  userId: string,
  before: DomainRecord | null,
  after: DomainRecord | null,
): Mutation[] {
  const plan: Mutation[] = [];
  const r = after ?? before;
  if (!r) return plan;
  if (before && after && (before.id !== after.id || before.createdAt !== after.createdAt)) {
    throw new Error("planDomainWrite: before and after must be the same record");
  }
  plan.push(
    after
      ? { kind: "set", key: domainKey(userId, r.id), value: after }
      : { kind: "delete", key: domainKey(userId, r.id) },
  );
  if (!before || !after) {
    for (const [key, value] of identityEntries(userId, r)) {
      plan.push(after ? { kind: "set", key, value } : { kind: "delete", key });
    }
  }
  // The global name pointer is the verified owner's claim: it comes with "verified" and goes
  // when the record stops being verified (deleted, or released by an operator).
  const claimed = (x: DomainRecord | null) => x?.status === "verified";
  if (claimed(after) && !claimed(before)) {
    plan.push({
      kind: "set",
      key: domainNameIndexKey(r.domain),
      value: { userId, domainId: r.id },
    });
  } else if (claimed(before) && !claimed(after)) {
    plan.push({ kind: "delete", key: domainNameIndexKey(r.domain) });
  }
  const was = before ? filterNamesOf(before) : [];
  const is = after ? filterNamesOf(after) : [];
  for (const f of was) {
    if (is.includes(f)) continue;
    plan.push({ kind: "delete", key: filterEntryKey(userId, f, r) });
    plan.push({ kind: "sum", key: domainCountKey(userId, f), delta: -1 });
  }
  for (const f of is) {
    if (was.includes(f)) continue;
    plan.push({ kind: "set", key: filterEntryKey(userId, f, r), value: r.id });
    plan.push({ kind: "sum", key: domainCountKey(userId, f), delta: 1 });
  }
  return plan;
}

const U64 = 1n << 64n;

/** `delta` as the Deno.KvU64 whose wrapping `sum` adds it (negative: 2^64 + delta). */
export function u64Delta(delta: number): Deno.KvU64 {
  const d = BigInt(delta);
  return new Deno.KvU64(d >= 0n ? d : U64 + d);
}

/**
 * Adds the plan's mutations to `op`, the `sum`s first. Measured on Deno 2.9.6 (SQLite, file and
 * `:memory:`): a commit whose `sum` meets a value that is not a Deno.KvU64 throws, but keeps the
 * mutations queued before that `sum` (`set a; sum c; set b` leaves `a` written, `b` not): not
 * atomic. With the sums first, such a commit writes nothing. Counters are only ever written as
 * KvU64; stores from before they were (plain numbers) are converted by `admin migrate`.
 */
export function applyPlan(op: Deno.AtomicOperation, plan: Mutation[]): Deno.AtomicOperation {
  for (const m of plan) if (m.kind === "sum") op.sum(m.key, u64Delta(m.delta).value);
  for (const m of plan) {
    if (m.kind === "set") op.set(m.key, m.value);
    else if (m.kind === "delete") op.delete(m.key);
  }
  return op;
}

/**
 * A counter's value as a number. Counters are Deno.KvU64 moved by `sum`; a value above 2^63
 * could only come from a decrement below zero (a broken invariant) and reads as 0.
 */
export function counterNumber(value: unknown): number {
  if (value instanceof Deno.KvU64) return value.value >= 1n << 63n ? 0 : Number(value.value);
  return typeof value === "number" ? value : 0;
}
