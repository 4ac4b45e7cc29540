/**
 * The checked counters behind the per-account quotas of the endpoint and e-mail-address stores:
 * a create reads the counter, refuses at the quota, and moves it +1 in its commit under a check
 * of the entry it read; a delete moves it -1 the same way. So the quota is exact under
 * concurrency: two creates that read the same count cannot both commit.
 */
import { QuotaError } from "./endpoints/record.ts";

/** Throws QuotaError when the counter `count` read is at `max` or above. */
export function assertBelowQuota(
  count: Deno.KvEntryMaybe<number>,
  max: number,
  kind: QuotaError["kind"],
): void {
  if ((count.value ?? 0) >= max) throw new QuotaError(kind, max);
}

/** Checks the counter entry in `op` and sets it one higher. */
export function countUp(op: Deno.AtomicOperation, count: Deno.KvEntryMaybe<number>): void {
  op.check(count).set(count.key, (count.value ?? 0) + 1);
}

/** Checks the counter entry in `op` and sets it one lower (never below zero). */
export function countDown(op: Deno.AtomicOperation, count: Deno.KvEntryMaybe<number>): void {
  op.check(count).set(count.key, Math.max(0, (count.value ?? 1) - 1));
}
