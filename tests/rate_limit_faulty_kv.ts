/**
 * A Deno.Kv wrapper whose reads and commits touching chosen keys can be made to fail: throw an
 * error, stall (never answer), or throw SQLite's transient `database is locked` on some calls.
 * Everything else passes through to the real KV.
 */
export type FaultMode = "ok" | "throw" | "stall" | "locked";

export type FaultyKv = {
  kv: Deno.Kv;
  mode: FaultMode;
  /** In "locked" mode, the share of affected calls that throw `database is locked`. */
  lockedRate: number;
  /** Affected calls that failed (thrown or stalled). */
  failures: number;
  /** Affected calls made (failed or not). */
  calls: number;
};

export function faultyKv(inner: Deno.Kv, affects: (key: Deno.KvKey) => boolean): FaultyKv {
  // A seeded generator, so a run's sequence of locked calls is the same every time.
  let seed = 0x2545f491;
  const random = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 2 ** 32;
  };
  const state: FaultyKv = {
    kv: inner,
    mode: "ok",
    lockedRate: 0.3,
    failures: 0,
    calls: 0,
  };

  /** Undefined: go ahead; else the promise to return instead of the real call. */
  const fault = (): Promise<never> | undefined => {
    state.calls++;
    switch (state.mode) {
      case "ok":
        return undefined;
      case "throw":
        state.failures++;
        return Promise.reject(new Error("injected store failure"));
      case "stall":
        state.failures++;
        return new Promise<never>(() => {});
      case "locked":
        if (random() >= state.lockedRate) return undefined;
        state.failures++;
        return Promise.reject(new TypeError("database is locked"));
    }
  };

  const wrapAtomic = (op: Deno.AtomicOperation): Deno.AtomicOperation => {
    let touched = false;
    return new Proxy(op, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (prop === "check") {
            touched ||= (args as Deno.AtomicCheck[]).some((c) => affects(c.key));
          } else if (prop === "mutate") {
            touched ||= (args as Deno.KvMutation[]).some((m) => affects(m.key));
          } else if (["set", "delete", "sum", "min", "max"].includes(String(prop))) {
            touched ||= affects(args[0] as Deno.KvKey);
          } else if (prop === "commit" && touched) {
            const f = fault();
            if (f) return f;
          }
          const result = value.apply(target, args);
          return result === target ? receiver : result;
        };
      },
    });
  };

  state.kv = new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (prop === "atomic") return wrapAtomic(value.apply(target, args));
        if (prop === "get" && affects(args[0] as Deno.KvKey)) {
          const f = fault();
          if (f) return f;
        }
        return value.apply(target, args);
      };
    },
  });
  return state;
}

/** Keys of the rate limiter: [userId, "rate", windowStartMs]. */
export const isRateKey = (key: Deno.KvKey): boolean => key[1] === "rate";
