/**
 * Attempt throttling for unauthenticated endpoints (sign-in, sign-up): a fixed-window counter per
 * scope and subject, e.g. ("sign-in:ip", "203.0.113.9") or ("sign-in:email", sha256(email)).
 * Each attempt is a checked read-increment-write, so concurrent attempts are never lost; when
 * contention exhausts the retries the attempt is refused, which errs on the side of safety.
 */
import { ConflictError, RETRY, withRetries } from "./errors.ts";
import { throttleKey } from "./keys.ts";

export type ThrottleLimit = { max: number; windowMs: number };

export type ThrottleResult =
  | { allowed: true; count: number }
  | { allowed: false; count: number; retryAfterSeconds: number };

/** Counts one attempt for (scope, subject) and says whether it is within the limit. */
export async function recordAttempt(
  kv: Deno.Kv,
  scope: string,
  subject: string,
  nowMs: number,
  limit: ThrottleLimit,
): Promise<ThrottleResult> {
  const windowStart = nowMs - (nowMs % limit.windowMs);
  const key = throttleKey(scope, subject, windowStart);
  const retryAfterSeconds = Math.max(1, Math.ceil((windowStart + limit.windowMs - nowMs) / 1000));
  try {
    const count = await withRetries(async () => {
      const entry = await kv.get<Deno.KvU64>(key);
      const n = Number(entry.value?.value ?? 0n) + 1;
      const res = await kv.atomic()
        .check(entry)
        // expireIn is only a cleanup time: the window start in the key decides which counter
        // is current, so a counter outliving its window is never read as current.
        .set(key, new Deno.KvU64(BigInt(n)), { expireIn: limit.windowMs * 2 })
        .commit();
      return res.ok ? n : RETRY;
    }, 10);
    return count <= limit.max
      ? { allowed: true, count }
      : { allowed: false, count, retryAfterSeconds };
  } catch (err) {
    // So many concurrent attempts on one subject that the counter cannot be updated: that is
    // itself a flood, so refuse rather than let it through uncounted.
    if (err instanceof ConflictError) {
      return { allowed: false, count: limit.max + 1, retryAfterSeconds };
    }
    throw err;
  }
}
