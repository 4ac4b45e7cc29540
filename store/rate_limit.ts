/**
 * Per-account rate-limit counters. `[userId, "rate", windowStartMs]` holds, as a Deno.KvU64, the
 * number of quota tokens handed out for that window to all server instances together. A token is
 * leased before the request it admits, and the counter never passes the limit, so the sum of
 * what every instance admits in a window is at most the limit.
 *
 * Each lease is one read and one checked write (read-check-set), retried on a lost check and on
 * SQLite's transient `database is locked` when processes share one KV file.
 */
import { RETRY, withRetries } from "./errors.ts";
import { rateWindowKey } from "./keys.ts";

export type Lease = {
  /** Tokens granted to the caller; 0 when the window's quota is spent. */
  granted: number;
  /** The counter after this lease: tokens handed out to all instances so far in the window. */
  leasedTotal: number;
};

export type LeaseRequest = {
  windowStartMs: number;
  /** The limit: the counter never goes above it. */
  max: number;
  /** How many tokens to take, given how many are left; clamped to 1..remaining. */
  size: (remaining: number) => number;
  /** How long the counter outlives its window. */
  expireInMs: number;
  /** The counter to lease from; default the account's (rateWindowKey). A key's own limit
   * leases from keyRateWindowKey. */
  counterKey?: Deno.KvKey;
};

/** Takes up to `size(remaining)` tokens of the account's quota for one window, atomically. */
export async function leaseTokens(kv: Deno.Kv, userId: string, req: LeaseRequest): Promise<Lease> {
  const key = req.counterKey ?? rateWindowKey(userId, req.windowStartMs);
  return await withRetries(async () => {
    const entry = await kv.get<Deno.KvU64>(key);
    const used = counterValue(entry.value);
    const remaining = req.max - used;
    if (remaining <= 0) return { granted: 0, leasedTotal: used };
    const granted = Math.min(remaining, Math.max(1, Math.floor(req.size(remaining))));
    const res = await kv.atomic()
      .check(entry)
      .set(key, new Deno.KvU64(BigInt(used + granted)), { expireIn: req.expireInMs })
      .commit();
    return res.ok ? { granted, leasedTotal: used + granted } : RETRY;
  });
}

/** Tokens handed out so far for one window (0 when none, or the counter has expired). */
export async function windowCount(
  kv: Deno.Kv,
  userId: string,
  windowStartMs: number,
): Promise<number> {
  return counterValue((await kv.get<Deno.KvU64>(rateWindowKey(userId, windowStartMs))).value);
}

function counterValue(value: Deno.KvU64 | null): number {
  return value instanceof Deno.KvU64 ? Number(value.value) : 0;
}
