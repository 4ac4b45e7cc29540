/**
 * The one place SQLite's transient lock is retried. Two processes on one KV file take turns at a
 * file lock; the loser of a turn sees `TypeError: database is locked` from any read or commit.
 * Nothing was read or written when that happens, so the call can simply be made again.
 *
 * `retryingKv(kv)` wraps a `Deno.Kv` so that every `get`, `getMany`, `set`, `delete`, every
 * `list` page and every atomic `commit` is retried with jittered exponential backoff while the
 * error is transient, for at most `LOCK_RETRY_BUDGET_MS` in total; anything else is passed on at
 * once. `createApp` and `openKv` both wrap the KV they are given (wrapping twice is a no-op), so a
 * new store path cannot forget it: it never sees an unwrapped KV.
 *
 * A failed check is not an error (the commit answers `{ ok: false }`): retrying those with fresh
 * reads is `withRetries`' job (store/errors.ts), not this module's.
 */

/** Total time one call may spend waiting for the lock before its error is passed on. */
export const LOCK_RETRY_BUDGET_MS = 5_000;
const FIRST_DELAY_MS = 2;
const MAX_DELAY_MS = 100;

const WRAPPED = Symbol("retryingKv");

/** SQLite's `database is locked` / `SQLITE_BUSY`, as Deno's KV reports them. */
export function isTransientKvError(err: unknown): boolean {
  return err instanceof Error && /database is locked|database table is locked|busy/i.test(
    err.message,
  );
}

/** Full jitter: a random wait in [0, min(MAX, FIRST * 2^attempt)). */
function backoff(attempt: number): Promise<void> {
  const cap = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
  return new Promise((r) => setTimeout(r, Math.random() * cap));
}

/** Runs `call` until it does not throw a transient error, within the time budget. */
export async function retryTransient<T>(call: () => Promise<T>): Promise<T> {
  const started = Date.now();
  for (let attempt = 0;; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!isTransientKvError(err) || Date.now() - started >= LOCK_RETRY_BUDGET_MS) throw err;
    }
    await backoff(attempt);
  }
}

function wrapAtomic(op: Deno.AtomicOperation): Deno.AtomicOperation {
  // An AtomicOperation keeps its checks and mutations after a commit, so committing it again
  // re-sends the same write (measured: a second commit of a checked create answers ok: false).
  const commit = () => retryTransient(() => op.commit());
  return new Proxy(op, {
    get(target, prop, receiver) {
      if (prop === "commit") return commit;
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result === target ? receiver : result;
      };
    },
  });
}

/**
 * A list iterator that resumes from the last entry it yielded when a page read hits the lock:
 * the inner iterator is recreated with that entry's cursor and the remaining limit.
 */
function wrapList<T>(
  kv: Deno.Kv,
  selector: Deno.KvListSelector,
  options: Deno.KvListOptions = {},
): Deno.KvListIterator<T> {
  let inner = kv.list<T>(selector, options);
  let yielded = 0;
  let cursor: string | undefined = options.cursor;
  const it = {
    get cursor() {
      return inner.cursor;
    },
    async next(): Promise<IteratorResult<Deno.KvEntry<T>, undefined>> {
      const started = Date.now();
      for (let attempt = 0;; attempt++) {
        try {
          const r = await inner.next();
          if (!r.done) {
            yielded++;
            cursor = inner.cursor;
          }
          return r;
        } catch (err) {
          if (!isTransientKvError(err) || Date.now() - started >= LOCK_RETRY_BUDGET_MS) throw err;
        }
        await backoff(attempt);
        const limit = options.limit === undefined ? undefined : options.limit - yielded;
        if (limit !== undefined && limit <= 0) return { done: true, value: undefined };
        inner = kv.list<T>(selector, { ...options, cursor, limit });
      }
    },
    [Symbol.asyncIterator]() {
      return it;
    },
  };
  return it as unknown as Deno.KvListIterator<T>;
}

/** `kv` with every read and commit retried on the transient lock (see the header). */
export function retryingKv(kv: Deno.Kv): Deno.Kv {
  if ((kv as unknown as Record<symbol, unknown>)[WRAPPED]) return kv;
  const methods = new Map<string | symbol, unknown>(Object.entries({
    get: (key: Deno.KvKey, opts?: { consistency?: Deno.KvConsistencyLevel }) =>
      retryTransient(() => kv.get(key, opts)),
    getMany: (keys: Deno.KvKey[], opts?: { consistency?: Deno.KvConsistencyLevel }) =>
      retryTransient(() => kv.getMany(keys, opts)),
    set: (key: Deno.KvKey, value: unknown, opts?: { expireIn?: number }) =>
      retryTransient(() => kv.set(key, value, opts)),
    delete: (key: Deno.KvKey) => retryTransient(() => kv.delete(key)),
    list: (selector: Deno.KvListSelector, options?: Deno.KvListOptions) =>
      wrapList(kv, selector, options),
    atomic: () => wrapAtomic(kv.atomic()),
  }));
  methods.set(WRAPPED, true);
  return new Proxy(kv, {
    get(target, prop, receiver) {
      if (methods.has(prop)) return methods.get(prop);
      const value = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
