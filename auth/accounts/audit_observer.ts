/**
 * Sees each audit event once its commit has succeeded. The audit log is written in the commit
 * that makes each change (store/audit_log/events.ts), so "the event was committed" is exactly
 * "the change happened": watching those commits tells a listener about every security change
 * (a key created, two-factor turned off, …) without each flow having to report it a second time.
 *
 * `observeAuditCommits(kv, listener)` wraps a `Deno.Kv`: every atomic operation remembers the
 * audit events it sets (keys `[userId, "audit", timeMs, eventId]`, store/keys.ts) and hands them to
 * `listener` after a commit answers ok; a failed check or a thrown commit hands over nothing.
 * The listener is called synchronously and must not throw into the commit (errors are dropped).
 */
import type { AuditEvent } from "../../store/audit_log/events.ts";

export type AuditListener = (userId: string, event: AuditEvent) => void;

function isAuditKey(key: Deno.KvKey): key is [string, "audit", number, string] {
  return key.length === 4 && typeof key[0] === "string" && key[1] === "audit";
}

function observeAtomic(op: Deno.AtomicOperation, listener: AuditListener): Deno.AtomicOperation {
  const seen: [string, AuditEvent][] = [];
  const proxy: Deno.AtomicOperation = new Proxy(op, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      if (prop === "commit") {
        return async () => {
          const res = await target.commit();
          if (res.ok) {
            for (const [userId, event] of seen.splice(0)) {
              try {
                listener(userId, event);
              } catch {
                // The listener's failure is its own: the change is committed either way.
              }
            }
          }
          return res;
        };
      }
      return (...args: unknown[]) => {
        if (prop === "set" && isAuditKey(args[0] as Deno.KvKey)) {
          seen.push([(args[0] as Deno.KvKey)[0] as string, args[1] as AuditEvent]);
        }
        const result = (value as (...a: unknown[]) => unknown).apply(target, args);
        return result === target ? proxy : result;
      };
    },
  });
  return proxy;
}

/** `kv`, whose atomic commits report the audit events they wrote to `listener`. */
export function observeAuditCommits(kv: Deno.Kv, listener: AuditListener): Deno.Kv {
  return new Proxy(kv, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === "atomic") return () => observeAtomic(target.atomic(), listener);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}
