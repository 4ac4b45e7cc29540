/**
 * A Deno.Kv wrapper that records every key read or written (gets, lists, atomic checks and
 * mutations) while passing each call through to the real KV.
 */
export type KeyAccess = { op: string; key: Deno.KvKey };

export function recordingKv(kv: Deno.Kv): { kv: Deno.Kv; accesses: KeyAccess[] } {
  const accesses: KeyAccess[] = [];
  const note = (op: string, key: Deno.KvKey) => accesses.push({ op, key });
  const selectorKeys = (s: Deno.KvListSelector): Deno.KvKey[] =>
    ["prefix", "start", "end"].flatMap((k) => k in s ? [(s as Record<string, Deno.KvKey>)[k]] : []);

  const wrapAtomic = (op: Deno.AtomicOperation): Deno.AtomicOperation =>
    new Proxy(op, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (prop === "check") {
            for (const c of args as Deno.AtomicCheck[]) note("check", c.key);
          } else if (prop === "mutate") {
            for (const m of args as Deno.KvMutation[]) note(`mutate:${m.type}`, m.key);
          } else if (["set", "delete", "sum", "min", "max"].includes(String(prop))) {
            note(String(prop), args[0] as Deno.KvKey);
          }
          const result = value.apply(target, args);
          return result === target ? receiver : result;
        };
      },
    });

  const wrapped = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        switch (prop) {
          case "get":
          case "set":
          case "delete":
            note(String(prop), args[0] as Deno.KvKey);
            break;
          case "getMany":
            for (const k of args[0] as Deno.KvKey[]) note("getMany", k);
            break;
          case "list":
            for (const k of selectorKeys(args[0] as Deno.KvListSelector)) note("list", k);
            break;
          case "watch":
            for (const k of args[0] as Deno.KvKey[]) note("watch", k);
            break;
          case "atomic":
            return wrapAtomic(value.apply(target, args));
        }
        return value.apply(target, args);
      };
    },
  });
  return { kv: wrapped, accesses };
}
