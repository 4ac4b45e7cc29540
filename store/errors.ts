/** Thrown by store writes whose checks kept failing under contention. */
export class ConflictError extends Error {
  constructor(message = "Concurrent update; retries exhausted") {
    super(message);
    this.name = "ConflictError";
  }
}

/** Returned by an attempt whose commit's checks failed: try again with fresh reads. */
export const RETRY: unique symbol = Symbol("retry");

/**
 * Runs `attempt` until it reports a committed write, retrying on a failed check (another writer
 * won) and on SQLite's transient `database is locked` when processes share one KV file.
 */
export async function withRetries<T>(
  attempt: () => Promise<T | typeof RETRY>,
  tries = 20,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    try {
      const result = await attempt();
      if (result !== RETRY) return result;
    } catch (err) {
      if (!isTransientKvError(err)) throw err;
    }
    await new Promise((r) => setTimeout(r, Math.min(50, 2 ** i) * Math.random()));
  }
  throw new ConflictError();
}

export function isTransientKvError(err: unknown): boolean {
  return err instanceof Error && /database is locked|busy/i.test(err.message);
}
