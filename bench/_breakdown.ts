/**
 * For bench/auth_breakdown.ts: switches that turn parts of the authenticated hot path off in the
 * bench process, and a KV wrapper that counts the app's KV calls. Production code has no such
 * switch: each part is turned off by replacing one method of its class in this process
 * (`switchOff`; methods are looked up at each call, so an app already built follows at once):
 *   headers     the rate-limit headers are not written (RateLimiter#decorate does nothing)
 *   usage       usage is not counted (UsageRecorder#record does nothing)
 *   lastUsedAt  a key's lastUsedAt is not written (ApiKeyStore#touchLastUsed resolves at once)
 *   limiter     every request is admitted without the limiter's state or leases (RateLimiter#check
 *               answers a constant decision, #prepare does nothing; the headers, unless off too,
 *               still describe it)
 * `countingKv` counts reads (get, getMany, list), keys read, commits and mutations: the SQLite work
 * of Deno's KV thread is CPU of the process too.
 */
import { type RateLimitDecision, RateLimiter } from "../auth/rate_limit.ts";
import { UsageRecorder } from "../routes/usage/recorder.ts";
import { ApiKeyStore } from "../store/api_keys.ts";

export const SWITCHES = ["headers", "usage", "lastUsedAt", "limiter"] as const;
export type Switch = typeof SWITCHES[number];

/** KV calls made by the app since start. */
export type KvCounts = { reads: number; keysRead: number; commits: number; mutations: number };

/** `kv` with every read and commit counted in `counts` (a Proxy; behaviour unchanged). */
export function countingKv(kv: Deno.Kv, counts: KvCounts): Deno.Kv {
  const MUTATIONS = new Set(["set", "delete", "sum", "min", "max", "enqueue"]);
  const atomic = (): Deno.AtomicOperation => {
    const op = kv.atomic();
    const proxy: Deno.AtomicOperation = new Proxy(op, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== "function") return value;
        if (prop === "commit") {
          return () => {
            counts.commits++;
            return target.commit();
          };
        }
        return (...args: unknown[]) => {
          if (MUTATIONS.has(String(prop))) counts.mutations++;
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          return result === target ? proxy : result;
        };
      },
    });
    return proxy;
  };
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      switch (prop) {
        case "atomic":
          return atomic;
        case "get":
          return (key: Deno.KvKey, o?: { consistency?: Deno.KvConsistencyLevel }) => {
            counts.reads++;
            counts.keysRead++;
            return target.get(key, o);
          };
        case "getMany":
          return (keys: Deno.KvKey[], o?: { consistency?: Deno.KvConsistencyLevel }) => {
            counts.reads++;
            counts.keysRead += keys.length;
            return target.getMany(keys, o);
          };
        case "list":
          return (s: Deno.KvListSelector, o?: Deno.KvListOptions) => {
            counts.reads++;
            return target.list(s, o);
          };
        case "set":
        case "delete":
          return (...args: unknown[]) => {
            counts.commits++;
            counts.mutations++;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        default:
          return value.bind(target);
      }
    },
  });
}

const ORIGINAL = {
  decorate: RateLimiter.prototype.decorate,
  check: RateLimiter.prototype.check,
  prepare: RateLimiter.prototype.prepare,
  record: UsageRecorder.prototype.record,
  touchLastUsed: ApiKeyStore.prototype.touchLastUsed,
};

/** A limiter that admits everything: a constant decision, no state, no lease. */
function admitAll(this: RateLimiter): RateLimitDecision {
  const { max, windowMs } = this.policy;
  const now = Date.now();
  const resetMs = now - (now % windowMs) + windowMs;
  return { allowed: true, info: { limit: max, windowMs, remaining: max, resetMs, now } };
}

/**
 * Switches off, in this process, the parts `off` names and on again the others (see the header).
 * Methods are looked up at each call, so an app already built follows the switches at once.
 */
export function switchOff(off: Set<Switch>): void {
  RateLimiter.prototype.decorate = off.has("headers") ? () => {} : ORIGINAL.decorate;
  UsageRecorder.prototype.record = off.has("usage") ? () => {} : ORIGINAL.record;
  ApiKeyStore.prototype.touchLastUsed = off.has("lastUsedAt")
    ? () => Promise.resolve(true)
    : ORIGINAL.touchLastUsed;
  RateLimiter.prototype.check = off.has("limiter") ? admitAll : ORIGINAL.check;
  RateLimiter.prototype.prepare = off.has("limiter") ? () => {} : ORIGINAL.prepare;
}
