/**
 * Per-account rate-limit counters. `[userId, "rate", windowStartMs]` holds, as a Deno.KvU64, the
 * number of quota tokens handed out for that window to all server instances together. A token is
 * leased before the request it admits, and the counter never passes the limit, so the sum of
 * what every instance admits in a window is at most the limit.
 *
 * Each lease is one read and one checked write (read-check-set), retried on a lost check and on
 * SQLite's transient `database is locked` when processes share one KV file. A caller that knows
 * the counter (`known`: its value and versionstamp after this process's previous lease, or
 * "absent" for a window nobody has leased from yet) first tries the checked write alone: one round
 * trip instead of two, which is what a lease costs on a remote store (KV Connect, Deploy). The check
 * is the same, so a guess that is stale (another instance leased meanwhile) only fails the check
 * and falls back to read-check-set: the limit stays exact.
 */
import { RETRY, withRetries } from "./errors.ts";
import { rateWindowKey } from "./keys.ts";

export type Lease = {
  /** Tokens granted to the caller; 0 when the window's quota is spent. */
  granted: number;
  /** The counter after this lease: tokens handed out to all instances so far in the window. */
  leasedTotal: number;
  /** The counter's versionstamp after this lease (null when nothing was written). */
  versionstamp: string | null;
  /** False when a `known` guess was tried and found stale (another instance leased). */
  guessHeld: boolean;
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
  /**
   * The counter as the caller believes it is (`versionstamp: null`: absent): tried first as a
   * checked write without a read. The counter is strongly consistent and never read eventually.
   */
  known?: { used: number; versionstamp: string | null };
};

/** Takes up to `size(remaining)` tokens of the account's quota for one window, atomically. */
export async function leaseTokens(kv: Deno.Kv, userId: string, req: LeaseRequest): Promise<Lease> {
  const key = req.counterKey ?? rateWindowKey(userId, req.windowStartMs);
  if (req.known) {
    // Sized now, without waiting for anything: `size` counts only requests the caller's tokens
    // will not serve (auth/rate_limit.ts), so sizing early takes nothing another instance needs.
    // No backoff after a stale guess: nothing collided, this process only knew an older counter.
    const guessed = await tryLease(kv, key, req, req.known.used, req.known.versionstamp);
    if (guessed !== RETRY) return guessed;
  }
  return await withRetries(async () => {
    // Strong (the default): the counter must be the primary's, never a replica's.
    const entry = await kv.get<Deno.KvU64>(key);
    const lease = await tryLease(kv, key, req, counterValue(entry.value), entry.versionstamp);
    return lease === RETRY ? RETRY : { ...lease, guessHeld: !req.known };
  });
}

/** One checked write of `used + granted` over the counter at `versionstamp`. */
async function tryLease(
  kv: Deno.Kv,
  key: Deno.KvKey,
  req: LeaseRequest,
  used: number,
  versionstamp: string | null,
): Promise<Lease | typeof RETRY> {
  const remaining = req.max - used;
  // A known count at the limit is final: the counter only grows within its window.
  if (remaining <= 0) return { granted: 0, leasedTotal: used, versionstamp, guessHeld: true };
  const granted = Math.min(remaining, Math.max(1, Math.floor(req.size(remaining))));
  const res = await kv.atomic()
    .check({ key, versionstamp })
    .set(key, new Deno.KvU64(BigInt(used + granted)), { expireIn: req.expireInMs })
    .commit();
  return res.ok
    ? { granted, leasedTotal: used + granted, versionstamp: res.versionstamp, guessHeld: true }
    : RETRY;
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
