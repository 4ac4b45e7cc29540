/**
 * A fault-injecting `Deno.Kv` for tests. It wraps a real KV (usually `:memory:`) and, depending on
 * the current mode, makes operations throw, stall, or fail one commit in N. The mode can be
 * switched at run time, so a test can break the store mid-run and heal it again:
 *
 *   const faulty = new FaultyKv(await Deno.openKv(":memory:"));
 *   const app = createApp({ kv: faulty.kv, config });
 *   faulty.setMode({ kind: "throw", ops: ["get"] });   // every kv.get rejects
 *   faulty.heal();                                      // back to normal; stalled calls proceed
 *
 * Modes: throw, stall (for a while or until healed), fail one commit in N, or throw SQLite's
 * transient `database is locked` on a share of the calls.
 *
 * Which calls are hit is chosen by operation (`ops`) and optionally by key (`keys`, a predicate
 * over every key the call touches; for an atomic operation, every key it checks or writes).
 * Injected errors carry `FAULT_MARKER` in their message, so a test can assert that no internal
 * message reached a response.
 */

export const FAULT_MARKER = "INJECTED-KV-FAULT sqlite3 /var/lib/secret/kv.sqlite3 disk I/O error";

export type KvOp =
  | "get"
  | "getMany"
  | "list"
  | "set"
  | "delete"
  | "commit"
  | "enqueue"
  | "watch";

export const READ_OPS: readonly KvOp[] = ["get", "getMany", "list"];
export const WRITE_OPS: readonly KvOp[] = ["set", "delete", "commit"];

type Selector = {
  /** Operations affected; default: all. */
  ops?: readonly KvOp[];
  /** Only calls touching at least one key for which this returns true; default: all keys. */
  keys?: (key: Deno.KvKey) => boolean;
};

export type FaultMode =
  | { kind: "ok" }
  /** The call rejects with an error carrying FAULT_MARKER. */
  | ({ kind: "throw"; error?: () => Error } & Selector)
  /**
   * The call waits `ms` then proceeds normally; with no `ms` it waits until the mode changes
   * (heal or another mode), then proceeds under the new mode.
   */
  | ({ kind: "stall"; ms?: number } & Selector)
  /**
   * One commit in `every` fails (the 1st, (every+1)th, …). `when: "before"` (default) rejects
   * without applying anything; `"after"` applies the commit and then rejects, like a connection
   * lost after the store committed (the caller cannot know it succeeded).
   */
  | ({ kind: "failCommit"; every: number; when?: "before" | "after" } & Selector)
  /**
   * A share `rate` of the calls throws SQLite's transient `database is locked`, as two processes
   * on one KV file do; the sequence is seeded, so a run repeats exactly.
   */
  | ({ kind: "locked"; rate: number } & Selector);

export type FaultStats = { calls: Record<KvOp, number>; injected: number };

function injectedError(): Error {
  return new TypeError(`${FAULT_MARKER}\n    at kv.get (ext:deno_kv/01_db.ts:1:1)`);
}

export class FaultyKv {
  readonly kv: Deno.Kv;
  #mode: FaultMode = { kind: "ok" };
  #waiters = new Set<() => void>();
  #commitSeq = 0;
  #seed = 0x2545f491;
  #stats: FaultStats = {
    calls: { get: 0, getMany: 0, list: 0, set: 0, delete: 0, commit: 0, enqueue: 0, watch: 0 },
    injected: 0,
  };

  constructor(readonly inner: Deno.Kv) {
    this.kv = this.#wrap(inner);
  }

  get mode(): FaultMode {
    return this.#mode;
  }

  get stats(): FaultStats {
    return structuredClone(this.#stats);
  }

  /** Switches mode; calls stalled "until the mode changes" resume under the new mode. */
  setMode(mode: FaultMode): void {
    this.#mode = mode;
    this.#commitSeq = 0;
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }

  heal(): void {
    this.setMode({ kind: "ok" });
  }

  /** How many calls are currently stalled waiting for a mode change. */
  get stalled(): number {
    return this.#waiters.size;
  }

  close(): void {
    this.heal();
    this.inner.close();
  }

  #selected(mode: Selector, op: KvOp, keys: readonly Deno.KvKey[]): boolean {
    if (mode.ops && !mode.ops.includes(op)) return false;
    if (mode.keys && !keys.some(mode.keys)) return false;
    return true;
  }

  /**
   * Applies the current mode to one call: resolves when the call may proceed, rejects when it
   * must fail. `"after"` commit failures are reported back so the caller applies, then throws.
   */
  async #gate(op: KvOp, keys: readonly Deno.KvKey[]): Promise<"proceed" | "fail-after"> {
    this.#stats.calls[op]++;
    while (true) {
      const mode = this.#mode;
      if (mode.kind === "ok" || !this.#selected(mode, op, keys)) return "proceed";
      if (mode.kind === "throw") {
        this.#stats.injected++;
        throw (mode.error ?? injectedError)();
      }
      if (mode.kind === "locked") {
        if (this.#random() >= mode.rate) return "proceed";
        this.#stats.injected++;
        throw new TypeError("database is locked");
      }
      if (mode.kind === "failCommit") {
        if (op !== "commit") return "proceed";
        const n = this.#commitSeq++;
        if (n % Math.max(1, mode.every) !== 0) return "proceed";
        this.#stats.injected++;
        if (mode.when === "after") return "fail-after";
        throw injectedError();
      }
      // stall
      this.#stats.injected++;
      if (mode.ms !== undefined) {
        await new Promise((r) => setTimeout(r, mode.ms));
        return "proceed";
      }
      await new Promise<void>((wake) => this.#waiters.add(wake));
      // Mode changed: loop and apply the new one.
    }
  }

  /** xorshift32: deterministic, so a failing run can be replayed. */
  #random(): number {
    this.#seed ^= this.#seed << 13;
    this.#seed ^= this.#seed >>> 17;
    this.#seed ^= this.#seed << 5;
    return (this.#seed >>> 0) / 2 ** 32;
  }

  #wrap(kv: Deno.Kv): Deno.Kv {
    // deno-lint-ignore no-this-alias -- the Proxy traps below need this instance, not their own `this`
    const self = this;
    const wrapAtomic = (op: Deno.AtomicOperation): Deno.AtomicOperation => {
      const touched: Deno.KvKey[] = [];
      const proxy: Deno.AtomicOperation = new Proxy(op, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver);
          if (typeof value !== "function") return value;
          if (prop === "commit") {
            return async () => {
              const verdict = await self.#gate("commit", touched);
              const res = await target.commit();
              if (verdict === "fail-after") throw injectedError();
              return res;
            };
          }
          return (...args: unknown[]) => {
            if (prop === "check") {
              for (const c of args as Deno.AtomicCheck[]) touched.push(c.key);
            } else if (args.length > 0 && Array.isArray(args[0])) {
              touched.push(args[0] as Deno.KvKey);
            }
            const result = (value as (...a: unknown[]) => unknown).apply(target, args);
            return result === target ? proxy : result;
          };
        },
      });
      return proxy;
    };

    const wrapList = <T>(
      selector: Deno.KvListSelector,
      options: Deno.KvListOptions | undefined,
    ): Deno.KvListIterator<T> => {
      const keys: Deno.KvKey[] = [];
      if ("prefix" in selector) keys.push(selector.prefix);
      if ("start" in selector && selector.start) keys.push(selector.start);
      if ("end" in selector && selector.end) keys.push(selector.end);
      let inner: Deno.KvListIterator<T> | undefined;
      const it = {
        get cursor() {
          return inner?.cursor ?? "";
        },
        async next(): Promise<IteratorResult<Deno.KvEntry<T>, undefined>> {
          await self.#gate("list", keys);
          inner ??= kv.list<T>(selector, options);
          return await inner.next();
        },
        [Symbol.asyncIterator]() {
          return it;
        },
      };
      return it as unknown as Deno.KvListIterator<T>;
    };

    return new Proxy(kv, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        switch (prop) {
          case "get":
            return async (key: Deno.KvKey, opts?: { consistency?: Deno.KvConsistencyLevel }) => {
              await self.#gate("get", [key]);
              return await target.get(key, opts);
            };
          case "getMany":
            return async (
              keys: Deno.KvKey[],
              opts?: { consistency?: Deno.KvConsistencyLevel },
            ) => {
              await self.#gate("getMany", keys);
              return await target.getMany(keys, opts);
            };
          case "list":
            return (selector: Deno.KvListSelector, options?: Deno.KvListOptions) =>
              wrapList(selector, options);
          case "set":
            return async (key: Deno.KvKey, v: unknown, opts?: { expireIn?: number }) => {
              await self.#gate("set", [key]);
              return await target.set(key, v, opts);
            };
          case "delete":
            return async (key: Deno.KvKey) => {
              await self.#gate("delete", [key]);
              return await target.delete(key);
            };
          case "atomic":
            return () => wrapAtomic(target.atomic());
          case "enqueue":
            return async (...args: Parameters<Deno.Kv["enqueue"]>) => {
              await self.#gate("enqueue", []);
              return await target.enqueue(...args);
            };
          case "close":
            return () => self.close();
          default:
            return typeof value === "function" ? value.bind(target) : value;
        }
      },
    });
  }
}

/** Every entry in a KV as key text -> value text, for before/after comparisons. */
export async function dumpKv(kv: Deno.Kv): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of kv.list({ prefix: [] })) {
    out.set(JSON.stringify(e.key, bigintSafe), JSON.stringify(e.value, bigintSafe));
  }
  return out;
}

/** Keys added, removed or changed between two dumps. */
export function dumpDiff(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of after) {
    if (!before.has(k)) out.push(`+${k}`);
    else if (before.get(k) !== v) out.push(`~${k}`);
  }
  for (const k of before.keys()) if (!after.has(k)) out.push(`-${k}`);
  return out;
}

function bigintSafe(_k: string, v: unknown): unknown {
  if (v instanceof Deno.KvU64) return `${v.value}n`;
  return typeof v === "bigint" ? `${v}n` : v;
}
