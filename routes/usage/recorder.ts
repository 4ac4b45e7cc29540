/**
 * The usage recorder: counts each Bearer-key request's outcome in memory and flushes the counts to
 * KV (store/usage.ts) off the request path.
 *
 * Hot path (`record`): one Map lookup by keyId and one increment; no await, no promise, and no
 * allocation except the key's map entry when the process first sees it (or sees it again after a
 * whole idle interval), and one small record when its UTC hour changes. A timer, started by the first count after a flush and unref'd, flushes
 * `flushMs` later, so each key is flushed at most once per `flushMs` per process; `idle()`
 * flushes at once and clears the timer (graceful shutdown, tests).
 *
 * Crash bound: counts reach KV within `flushMs` plus one commit of arriving, so a crash (SIGKILL,
 * power loss) loses at most the requests this process answered in the last `flushMs` plus the
 * commit in flight; a graceful stop loses nothing.
 *
 * A failed flush keeps its counts for the next one. What is kept is bounded: at most
 * MAX_CARRIED key-hours (about 100 bytes each); past that, the oldest are dropped and logged,
 * and hours older than the 90-day retention are dropped too.
 *
 * Counts of an account deleted before its flush lands are dropped by the flush (store/usage.ts
 * `addUsage` checks each account's user record in the commit), so nothing is written under a
 * deleted account, whichever process counted it and however late it flushes.
 */
import type { Context } from "hono";
import type { Clock } from "../../lib/clock.ts";
import type { Logger } from "../../lib/log.ts";
import type { TenantStore } from "../../store/tenant.ts";
import {
  addUsage,
  type DayUsage,
  eachBounded,
  hasUsage,
  type HourUsage,
  pruneUsage,
  readDailyUsage,
  readDeletedKeysUsage,
  readRuleUsage,
  type RuleUsage,
  USAGE_READ_CONCURRENCY,
} from "../../store/usage.ts";
import type { AppEnv } from "../../auth/middleware.ts";

/** Key-hours kept across failed flushes before the oldest are dropped. */
export const MAX_CARRIED = 100_000;
const PRUNE_EVERY_MS = 86_400_000;
const MAX_SLOTS = 100_000;

/** The outcome column of a status: 429, other 4xx, 5xx, and everything else as 2xx. */
export function outcomeIndex(status: number): number {
  return status === 429 ? 2 : status >= 500 ? 3 : status >= 400 ? 1 : 0;
}

const requestsOf = (hours: HourUsage[]) =>
  hours.reduce((s, u) => s + u.counts.reduce((a, b) => a + b, 0), 0);

/** One key's counts (or one key's under one forward-auth rule) for its current hour here. */
type Slot = {
  userId: string;
  keyId: string;
  hourMs: number;
  counts: [number, number, number, number];
  dirty: boolean;
  /** Forward auth's rule (`recordRule`); absent: the key's own counts. */
  rule?: string;
};

export class UsageRecorder {
  readonly #slots = new Map<string, Slot>();
  /** Per key and forward-auth rule (`recordRule`), keyed "keyId rule" (a rule name has no space). */
  readonly #ruleSlots = new Map<string, Slot>();
  /** Hours closed (the hour rolled over) or refused by a failed flush, waiting to be written. */
  #carried: HourUsage[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #flushing: Promise<void> | null = null;
  readonly #pruned = new Map<string, number>();

  constructor(
    private readonly kv: Deno.Kv,
    private readonly clock: Clock,
    private readonly log: Logger,
    readonly flushMs: number,
  ) {}

  /** Counts one answered request of `keyId`. Synchronous; never throws. */
  record(userId: string, keyId: string, status: number): void {
    this.#count(this.#slots, keyId, userId, keyId, undefined, status);
  }

  /**
   * Counts one forward-auth (or verify) answer of `keyId` under `rule` (its name), beside the
   * key's own count made by `record`: the key's usage by rule (store/usage.ts `usage_rule`).
   */
  recordRule(userId: string, keyId: string, rule: string, status: number): void {
    this.#count(this.#ruleSlots, `${keyId} ${rule}`, userId, keyId, rule, status);
  }

  #count(
    slots: Map<string, Slot>,
    id: string,
    userId: string,
    keyId: string,
    rule: string | undefined,
    status: number,
  ): void {
    const now = this.clock();
    const hour = now - (now % 3_600_000);
    let slot = slots.get(id);
    if (slot === undefined) {
      if (slots.size >= MAX_SLOTS) this.#closeAll(slots);
      slot = { userId, keyId, hourMs: hour, counts: [0, 0, 0, 0], dirty: false };
      if (rule !== undefined) slot.rule = rule;
      slots.set(id, slot);
    } else if (slot.hourMs !== hour) {
      if (slot.dirty) this.#carry(slot);
      slot.hourMs = hour;
    }
    slot.counts[outcomeIndex(status)]++;
    slot.dirty = true;
    if (this.#timer === undefined) this.#schedule();
  }

  #schedule(): void {
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch(() => {/* logged in flush */});
    }, this.flushMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Moves a slot's counts to the carried list and zeroes it. */
  #carry(slot: Slot): void {
    this.#carried.push({
      userId: slot.userId,
      keyId: slot.keyId,
      hourMs: slot.hourMs,
      counts: [...slot.counts],
      ...(slot.rule !== undefined ? { rule: slot.rule } : {}),
    });
    slot.counts.fill(0);
    slot.dirty = false;
  }

  #closeAll(slots: Map<string, Slot>): void {
    for (const slot of slots.values()) if (slot.dirty) this.#carry(slot);
    slots.clear();
  }

  /** Counts not yet written, by outcome (tests; a rule's counts included). */
  pending(): number {
    let n = 0;
    for (const s of this.#slots.values()) for (const c of s.counts) n += c;
    for (const s of this.#ruleSlots.values()) for (const c of s.counts) n += c;
    for (const u of this.#carried) for (const c of u.counts) n += c;
    return n;
  }

  /** Writes every count held; one flush at a time (a second call waits for the first). */
  flush(): Promise<void> {
    if (this.#flushing) return this.#flushing.then(() => this.flush());
    const run = this.#flush().finally(() => {
      this.#flushing = null;
    });
    this.#flushing = run;
    return run;
  }

  async #flush(): Promise<void> {
    const hours = this.#carried;
    this.#carried = [];
    for (const slots of [this.#slots, this.#ruleSlots]) {
      for (const [id, slot] of slots) {
        if (slot.dirty) {
          this.#carry(slot);
        } else {
          // Idle for a whole interval: forget the slot (its next request makes a new one).
          slots.delete(id);
        }
      }
    }
    hours.push(...this.#carried);
    this.#carried = [];
    if (hours.length === 0) return;
    const now = this.clock();
    let firstError: unknown = null;
    const { failed, dropped } = await addUsage(this.kv, hours, now, (err) => {
      firstError ??= err;
    });
    if (dropped.length > 0) {
      this.log({
        level: "info",
        msg: "usage of deleted accounts dropped",
        keyHours: dropped.length,
        requests: requestsOf(dropped),
      });
    }
    if (failed.length > 0) {
      const kept = this.#keep(failed);
      this.log({
        level: "warn",
        msg: "usage flush failed; counts kept for the next flush",
        keyHours: failed.length,
        kept,
        error: firstError instanceof Error ? firstError.name : "non-error thrown",
      });
      if (this.#timer === undefined) this.#schedule();
    }
    const gone = new Set(dropped.map((u) => u.userId));
    await this.#prune(hours.filter((u) => !gone.has(u.userId)), now);
  }

  /** Puts failed hours back, oldest dropped past MAX_CARRIED; returns how many were kept. */
  #keep(failed: HourUsage[]): number {
    this.#carried = [...failed, ...this.#carried];
    const over = this.#carried.length - MAX_CARRIED;
    if (over > 0) {
      const dropped = this.#carried.splice(0, over);
      this.log({
        level: "error",
        msg: "usage counts dropped",
        keyHours: over,
        requests: requestsOf(dropped),
      });
    }
    return failed.length;
  }

  /** Deletes past-retention hours of the keys just flushed, once a day per key. */
  async #prune(hours: HourUsage[], now: number): Promise<void> {
    for (const u of hours) {
      const last = this.#pruned.get(u.keyId);
      if (last !== undefined && now - last < PRUNE_EVERY_MS) continue;
      this.#pruned.set(u.keyId, now);
      if (this.#pruned.size > MAX_SLOTS) this.#pruned.clear();
      try {
        await pruneUsage(this.kv, u.userId, u.keyId, now);
      } catch (err) {
        this.log({
          level: "warn",
          msg: "usage prune failed",
          error: err instanceof Error ? err.name : "non-error thrown",
        });
      }
    }
  }

  /** Flushes everything now and stops the timer (graceful shutdown and tests). */
  async idle(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    await this.flush().catch(() => {});
    if (this.#timer !== undefined) {
      // A failed flush rescheduled itself; idle() must leave no timer behind.
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }
}

/**
 * Counts the answer to a Bearer-key request. Called by the outermost middleware once the final
 * response exists (routes/request_context.ts `decorate`), so refusals thrown after the key was
 * identified (429, 403), errors thrown by handlers (already turned into their response by the
 * app's error handler) and deadline answers are counted too, and no middleware layer is added to
 * the hot path. A 401 identifies no key and is not counted; sessions are not keys.
 */
export function countUsage(recorder: UsageRecorder, c: Context<AppEnv>): void {
  const p = c.get("principal");
  if (p !== undefined && p.method === "api_key" && p.keyId !== undefined) {
    recorder.record(p.userId, p.keyId, c.get("usageStatus") ?? c.res.status);
  }
}

/**
 * Reads of the usage counters for the routes and the dashboard, bound to the account of the
 * tenant store they are handed (so a handler never names a userId or touches KV itself). This is
 * the one place the shape of an account's usage is decided, for the JSON API and both dashboard
 * pages: live keys one series each, every deleted key together in one (issue 20), so the work
 * and the answer are bounded by the account's live keys (at most its key limit), never by how
 * many keys it has created and deleted.
 */
export type UsageReads = {
  /** A key of the store's account: its days, oldest first, zeros included. */
  forKey(store: TenantStore, keyId: string, days: number): Promise<DayUsage[]>;
  /**
   * A key's forward-auth and verify answers over the same days, per rule (its name), busiest
   * first; `truncated` when the key has more rules' counters than one read takes.
   */
  rulesForKey(
    store: TenantStore,
    keyId: string,
    days: number,
  ): Promise<{ rules: RuleUsage[]; truncated: boolean }>;
  /**
   * Every key of the account (newest first), each with its days, then, when deleted keys still
   * have usage in the retention, ONE series of them all (`name` null, see DELETED_KEYS_ID).
   * `{ deleted: false }` leaves that series out and reads none of them (the API keys page).
   */
  forAccount(
    store: TenantStore,
    days: number,
    opts?: { deleted?: boolean },
  ): Promise<KeyUsage[]>;
  /**
   * One key of the account, live or deleted (its own days; `name` null once deleted), or null
   * when the account has no such key and no usage of one. `keyId` must be well formed.
   */
  forAccountKey(store: TenantStore, keyId: string, days: number): Promise<KeyUsage | null>;
};

/**
 * One series of an account's usage. The deleted keys' series has `name` null and `deletedKeys`
 * (how many it sums); its `keyId` is the deleted key's own id while there is one, and
 * DELETED_KEYS_ID once there are several.
 */
export type KeyUsage = {
  keyId: string;
  name: string | null;
  days: DayUsage[];
  deletedKeys?: number;
};

/** The `keyId` of the series that sums two or more deleted keys (never a key's id: `key_…`). */
export const DELETED_KEYS_ID = "deleted";

export function usageReads(kv: Deno.Kv, clock: Clock): UsageReads {
  const forKey = (store: TenantStore, keyId: string, days: number) =>
    readDailyUsage(kv, store.userId, keyId, days, clock());
  return {
    forKey,
    rulesForKey: (store, keyId, days) => readRuleUsage(kv, store.userId, keyId, days, clock()),
    async forAccount(store, days, opts = {}) {
      const nowMs = clock();
      const keys = await store.apiKeys.list();
      const out: KeyUsage[] = keys.map((k) => ({ keyId: k.id, name: k.name, days: [] }));
      await eachBounded(out, USAGE_READ_CONCURRENCY, async (k) => {
        k.days = await readDailyUsage(kv, store.userId, k.keyId, days, nowMs);
      });
      if (opts.deleted === false) return out;
      const live = new Set(keys.map((k) => k.id));
      const gone = await readDeletedKeysUsage(kv, store.userId, live, days, nowMs);
      if (gone.keys > 0) {
        out.push({
          keyId: gone.onlyKeyId ?? DELETED_KEYS_ID,
          name: null,
          days: gone.days,
          deletedKeys: gone.keys,
        });
      }
      return out;
    },
    async forAccountKey(store, keyId, days) {
      const key = await store.apiKeys.get(keyId).catch((err) => {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      });
      if (key === null && !await hasUsage(kv, store.userId, keyId)) return null;
      return { keyId, name: key?.name ?? null, days: await forKey(store, keyId, days) };
    },
  };
}
