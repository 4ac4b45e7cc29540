/**
 * Thrown by store writes whose checks kept failing under contention. The app answers it with
 * 503 `WRITE_CONFLICT` and `Retry-After`, never a 500: the request may simply be sent again.
 */
export class ConflictError extends Error {
  constructor(message = "Concurrent update; retries exhausted") {
    super(message);
    this.name = "ConflictError";
  }
}

/** Returned by an attempt whose commit's checks failed: try again with fresh reads. */
export const RETRY: unique symbol = Symbol("retry");

/** Attempts per write before ConflictError, and the cap of the jittered wait between them. */
export const WRITE_ATTEMPTS = 16;
const MAX_BACKOFF_MS = 64;

/**
 * Runs `attempt` until it reports a committed write, retrying with fresh reads when a commit's
 * check failed (another writer won), after a full-jitter exponential wait (1, 2, 4 … 64 ms caps),
 * so writers that collided once spread out instead of colliding again. SQLite's transient lock is
 * not handled here: every KV call is already retried for it by store/retrying_kv.ts.
 */
export async function withRetries<T>(
  attempt: () => Promise<T | typeof RETRY>,
  tries = WRITE_ATTEMPTS,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const result = await attempt();
    if (result !== RETRY) return result;
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(MAX_BACKOFF_MS, 2 ** i)));
  }
  throw new ConflictError();
}
