/**
 * Per-key usage in KV: one Deno.KvU64 per key, UTC hour and outcome
 * (`[userId, "usage", keyId, hourStartMs, outcome]`), moved only by commutative `sum` mutations,
 * so any number of processes flush into the same counters without reads, checks or conflicts.
 *
 * Retention: 90 days. `sum` takes no `expireIn` (Deno 2.9.6 honours it for `set` only), so the
 * hour in the key does the work: reads never look at hours older than 90 days, and a flush deletes
 * a key's older hours (at most once a day per key and process). A key that goes quiet keeps its
 * last 90 days of counters until it is used again or its account is deleted: at most
 * 90 x 24 x 4 entries per key.
 *
 * `[userId, "usage_key", keyId]` records that a key has usage (deleted keys too), refreshed by
 * every flush with `expireIn` 91 days, so the account's usage is found without a scan.
 *
 * Only under an account that exists (issue 20): `addUsage` is the one writer, and each of its
 * commits checks the user record of every account it writes for, as read just before. Counts
 * still in memory when their account is deleted (or whose commit races the deletion: the
 * deletion deletes the user record first, so the check loses) are dropped, never written under
 * the gone account after its purge. The check costs one `getMany` per commit (at most
 * MAX_ACCOUNTS_PER_COMMIT accounts), once per flush interval, off the request path.
 *
 * Reads are bounded by the account's live keys, not by how many keys it ever had: the keys of the
 * account come one by one, and the deleted keys that still have usage are summed into ONE series
 * (`readDeletedKeysUsage`), at most USAGE_READ_CONCURRENCY range reads at a time, so memory
 * holds one series per live key plus one, however many keys were created, used and deleted.
 *
 * Forward auth (issue 25) also counts a key's answers by the rule they fell under:
 * `[userId, "usage_rule", keyId, dayStartMs, rule, outcome]`, one counter per UTC day (not hour:
 * a key's rules multiply its counters), written by the same `addUsage` (an `HourUsage` with
 * `rule`), pruned with the key's hours, read as totals per rule (`readRuleUsage`, at most
 * MAX_RULE_ENTRIES_READ counters per read).
 */
import {
  usageCounterKey,
  usageHourStart,
  usageIndexKey,
  usageIndexPrefix,
  usageKeyPrefix,
  usageRuleCounterKey,
  usageRuleDayStart,
  usageRulePrefix,
  userKey,
} from "./keys.ts";

export const USAGE_OUTCOMES = ["2xx", "4xx", "429", "5xx"] as const;
export type UsageOutcome = (typeof USAGE_OUTCOMES)[number];

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const USAGE_RETENTION_DAYS = 90;
/** Mutations per commit: far inside denokv's 1000 (and its 800 KiB commit size). */
export const MAX_MUTATIONS_PER_COMMIT = 100;
/** Accounts per commit, one user-record check each: denokv / KV Connect allow 10 checks. */
export const MAX_ACCOUNTS_PER_COMMIT = 10;
/** Range reads of one usage request running at once. */
export const USAGE_READ_CONCURRENCY = 8;
/** Commits of one batch retried after a lost check (a user record changed meanwhile). */
const CHECK_ATTEMPTS = 3;
const INDEX_EXPIRE_MS = (USAGE_RETENTION_DAYS + 1) * DAY_MS;

/** Requests of one key in one hour, by outcome (indexes as USAGE_OUTCOMES). */
export type HourUsage = {
  userId: string;
  keyId: string;
  hourMs: number;
  counts: [number, number, number, number];
  /**
   * Forward auth: the rule the answers fell under. Such counts go to the rule's daily counters
   * (`usage_rule`) only; the key's own hourly counts are recorded without a rule.
   */
  rule?: string;
};

export const hourOf = (ms: number) => ms - (ms % HOUR_MS);
export const dayOf = (ms: number) => ms - (ms % DAY_MS);

/** The oldest hour reads and writes still keep at `nowMs`. */
export const retentionStartMs = (nowMs: number) =>
  hourOf(nowMs) - USAGE_RETENTION_DAYS * DAY_MS + HOUR_MS;

/** The mutations that add one hour's counts: a `sum` per non-zero outcome, and the index. */
export function usageMutations(u: HourUsage, nowMs: number): Deno.KvMutation[] {
  const out: Deno.KvMutation[] = [];
  for (let i = 0; i < USAGE_OUTCOMES.length; i++) {
    const n = u.counts[i];
    if (n <= 0) continue;
    out.push({
      type: "sum",
      key: u.rule === undefined
        ? usageCounterKey(u.userId, u.keyId, u.hourMs, USAGE_OUTCOMES[i])
        : usageRuleCounterKey(u.userId, u.keyId, dayOf(u.hourMs), u.rule, USAGE_OUTCOMES[i]),
      value: new Deno.KvU64(BigInt(n)),
    });
  }
  if (out.length > 0) {
    out.push({
      type: "set",
      key: usageIndexKey(u.userId, u.keyId),
      value: { lastHourMs: u.hourMs },
      expireIn: INDEX_EXPIRE_MS - Math.max(0, nowMs - u.hourMs),
    });
  }
  return out;
}

/** What `addUsage` could not write. */
export type AddUsageResult = {
  /** Hours whose commit failed (store error, or checks lost every attempt): keep and retry. */
  failed: HourUsage[];
  /** Hours of accounts that no longer exist (deleted, or being deleted): dropped for good. */
  dropped: HourUsage[];
};

/**
 * Adds every hour's counts in commits of at most MAX_MUTATIONS_PER_COMMIT mutations and
 * MAX_ACCOUNTS_PER_COMMIT accounts (an hour's mutations never straddle two commits). Each commit
 * checks the user record of each of its accounts: hours of an account without one are dropped
 * (see the header). Hours older than the retention are skipped. Never throws.
 */
export async function addUsage(
  kv: Deno.Kv,
  hours: HourUsage[],
  nowMs: number,
  onError: (err: unknown) => void = () => {},
): Promise<AddUsageResult> {
  const result: AddUsageResult = { failed: [], dropped: [] };
  const oldest = retentionStartMs(nowMs);
  let batch: HourUsage[] = [];
  let users = new Set<string>();
  let mutations = 0;
  for (const u of hours) {
    if (u.hourMs < oldest) continue;
    const n = usageMutations(u, nowMs).length;
    if (n === 0) continue;
    const newUser = !users.has(u.userId);
    if (
      mutations + n > MAX_MUTATIONS_PER_COMMIT ||
      (newUser && users.size >= MAX_ACCOUNTS_PER_COMMIT)
    ) {
      await commitChecked(kv, batch, nowMs, result, onError);
      [batch, users, mutations] = [[], new Set(), 0];
    }
    batch.push(u);
    users.add(u.userId);
    mutations += n;
  }
  await commitChecked(kv, batch, nowMs, result, onError);
  return result;
}

/**
 * One commit of `hours`, checked against its accounts' user records as just read; an account
 * found gone has its hours dropped, a lost check (a record changed or went meanwhile) reads again.
 */
async function commitChecked(
  kv: Deno.Kv,
  hours: HourUsage[],
  nowMs: number,
  result: AddUsageResult,
  onError: (err: unknown) => void,
): Promise<void> {
  let pending = hours;
  try {
    for (let attempt = 0; attempt < CHECK_ATTEMPTS && pending.length > 0; attempt++) {
      const ids = [...new Set(pending.map((u) => u.userId))];
      // Strong: checked in the commit below (an eventual read would only fail its checks).
      const records = await kv.getMany(ids.map(userKey));
      const present = new Set(records.filter((e) => e.versionstamp !== null).map((e) => e.key[0]));
      result.dropped.push(...pending.filter((u) => !present.has(u.userId)));
      pending = pending.filter((u) => present.has(u.userId));
      if (pending.length === 0) return;
      const op = kv.atomic();
      for (const e of records) if (e.versionstamp !== null) op.check(e);
      for (const u of pending) op.mutate(...usageMutations(u, nowMs));
      if ((await op.commit()).ok) return;
    }
    if (pending.length > 0) throw new Error("usage commit refused");
  } catch (err) {
    onError(err);
    result.failed.push(...pending);
  }
}

/**
 * Deletes a key's counters older than the retention (its hours, then its rules' days), in
 * commits of bounded size.
 */
export async function pruneUsage(
  kv: Deno.Kv,
  userId: string,
  keyId: string,
  nowMs: number,
): Promise<number> {
  const oldest = retentionStartMs(nowMs);
  return await pruneRange(
    kv,
    usageKeyPrefix(userId, keyId),
    usageHourStart(userId, keyId, oldest),
  ) +
    await pruneRange(
      kv,
      usageRulePrefix(userId, keyId),
      usageRuleDayStart(userId, keyId, dayOf(oldest)),
    );
}

async function pruneRange(kv: Deno.Kv, start: Deno.KvKey, end: Deno.KvKey): Promise<number> {
  let deleted = 0;
  for (;;) {
    const keys: Deno.KvKey[] = [];
    for await (const e of kv.list({ start, end }, { limit: MAX_MUTATIONS_PER_COMMIT })) {
      keys.push(e.key);
    }
    if (keys.length === 0) return deleted;
    const op = kv.atomic();
    for (const k of keys) op.delete(k);
    await op.commit();
    deleted += keys.length;
    if (keys.length < MAX_MUTATIONS_PER_COMMIT) return deleted;
  }
}

/** One forward-auth rule's answers to a key over some days, by outcome. */
export type RuleUsage = {
  rule: string;
  requests: number;
  "2xx": number;
  "4xx": number;
  "429": number;
  "5xx": number;
};

/**
 * Counters one rule-usage read looks at, at most: 90 days of 4 outcomes of 50 rules. A key used
 * under more rules than that shows the first ones (by day, then name) and `truncated`.
 */
export const MAX_RULE_ENTRIES_READ = 90 * 4 * 50;

/**
 * A key's forward-auth answers per rule over the last `days` UTC days (today included), each
 * rule's totals by outcome, busiest first. Days past the retention are never read.
 */
export async function readRuleUsage(
  kv: Deno.Kv,
  userId: string,
  keyId: string,
  days: number,
  nowMs: number,
): Promise<{ rules: RuleUsage[]; truncated: boolean }> {
  const from = Math.max(dayOf(nowMs) - (days - 1) * DAY_MS, dayOf(retentionStartMs(nowMs)));
  const byRule = new Map<string, RuleUsage>();
  let read = 0;
  // Eventual, like the hourly counts (readDailyUsage).
  const iter = kv.list<Deno.KvU64>({
    start: usageRuleDayStart(userId, keyId, from),
    end: usageRuleDayStart(userId, keyId, dayOf(nowMs) + DAY_MS),
  }, { batchSize: 1000, consistency: "eventual", limit: MAX_RULE_ENTRIES_READ });
  for await (const e of iter) {
    read++;
    const [, , , , rule, outcome] = e.key;
    if (typeof rule !== "string" || !(e.value instanceof Deno.KvU64)) continue;
    if (!USAGE_OUTCOMES.includes(outcome as UsageOutcome)) continue;
    let r = byRule.get(rule);
    if (!r) {
      r = { rule, requests: 0, "2xx": 0, "4xx": 0, "429": 0, "5xx": 0 };
      byRule.set(rule, r);
    }
    const n = Number(e.value.value);
    r[outcome as UsageOutcome] += n;
    r.requests += n;
  }
  const rules = [...byRule.values()].sort((a, b) =>
    b.requests - a.requests || a.rule.localeCompare(b.rule)
  );
  return { rules, truncated: read >= MAX_RULE_ENTRIES_READ };
}

/** One day of one key (or of several keys, summed). */
export type DayUsage = {
  /** The UTC day's start, ISO 8601. */
  start: string;
  requests: number;
  "2xx": number;
  "4xx": number;
  "429": number;
  "5xx": number;
};

function emptyDays(days: number, nowMs: number): DayUsage[] {
  const first = dayOf(nowMs) - (days - 1) * DAY_MS;
  return Array.from({ length: days }, (_, i) => ({
    start: new Date(first + i * DAY_MS).toISOString(),
    requests: 0,
    "2xx": 0,
    "4xx": 0,
    "429": 0,
    "5xx": 0,
  }));
}

/**
 * A key's requests per UTC day for the last `days` days (1..90; the last is today, so far),
 * oldest first, every day present (zeros included). Hours past the retention are never read.
 */
export async function readDailyUsage(
  kv: Deno.Kv,
  userId: string,
  keyId: string,
  days: number,
  nowMs: number,
): Promise<DayUsage[]> {
  const out = emptyDays(days, nowMs);
  const firstDay = Date.parse(out[0].start);
  const from = Math.max(firstDay, retentionStartMs(nowMs));
  // Eventual (a nearby replica on Deploy; the local file and KV Connect read strongly anyway):
  // counts reach KV up to USAGE_FLUSH_MS late already, a replica's lag adds little, and nothing
  // is decided from them (issue 24).
  const iter = kv.list<Deno.KvU64>({
    start: usageHourStart(userId, keyId, from),
    end: usageHourStart(userId, keyId, hourOf(nowMs) + HOUR_MS),
  }, { batchSize: 1000, consistency: "eventual" });
  for await (const e of iter) {
    const hourMs = e.key[3];
    const outcome = e.key[4] as UsageOutcome;
    if (typeof hourMs !== "number" || !(e.value instanceof Deno.KvU64)) continue;
    if (!USAGE_OUTCOMES.includes(outcome)) continue;
    const day = out[Math.floor((hourMs - firstDay) / DAY_MS)];
    if (!day) continue;
    const n = Number(e.value.value);
    day[outcome] += n;
    day.requests += n;
  }
  return out;
}

/** Whether the account has usage of `keyId` in the last 91 days (a deleted key's outlives it). */
export async function hasUsage(kv: Deno.Kv, userId: string, keyId: string): Promise<boolean> {
  // Eventual, like the counts it announces (readDailyUsage).
  const entry = await kv.get(usageIndexKey(userId, keyId), { consistency: "eventual" });
  return entry.versionstamp !== null;
}

/** Adds `from`'s counts into `into`, day by day (the same days, as readDailyUsage makes them). */
export function addDays(into: DayUsage[], from: DayUsage[]): void {
  for (let d = 0; d < into.length && d < from.length; d++) {
    into[d].requests += from[d].requests;
    for (const o of USAGE_OUTCOMES) into[d][o] += from[d][o];
  }
}

/** The usage of an account's deleted keys, summed into one series. */
export type DeletedKeysUsage = {
  /** Deleted keys with usage in the last 91 days (0: `days` are all zeros). */
  keys: number;
  /** The deleted key's id when there is exactly one, else null. */
  onlyKeyId: string | null;
  days: DayUsage[];
};

/**
 * Every key of the account with usage in the last 91 days that is not in `live`, its days summed
 * into one series: the index is streamed and at most USAGE_READ_CONCURRENCY keys are read at a
 * time, so memory is one series (plus the reads in flight) however many keys were deleted.
 */
export async function readDeletedKeysUsage(
  kv: Deno.Kv,
  userId: string,
  live: ReadonlySet<string>,
  days: number,
  nowMs: number,
): Promise<DeletedKeysUsage> {
  const out: DeletedKeysUsage = { keys: 0, onlyKeyId: null, days: emptyDays(days, nowMs) };
  async function* deleted(): AsyncGenerator<string> {
    // Eventual, like the counts it finds (readDailyUsage).
    const index = kv.list({ prefix: usageIndexPrefix(userId) }, {
      batchSize: 500,
      consistency: "eventual",
    });
    for await (const e of index) {
      const keyId = e.key[2];
      if (typeof keyId === "string" && !live.has(keyId)) yield keyId;
    }
  }
  await eachBounded(deleted(), USAGE_READ_CONCURRENCY, async (keyId) => {
    out.keys++;
    out.onlyKeyId = out.keys === 1 ? keyId : null;
    addDays(out.days, await readDailyUsage(kv, userId, keyId, days, nowMs));
  });
  return out;
}

/**
 * Runs `fn` on each item, at most `limit` at once, pulling items only as slots free up (an async
 * source is read no faster than the work goes). After a failure no new item starts; the first
 * error is thrown once those running have settled.
 */
export async function eachBounded<T>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | null = null;
  for await (const item of items) {
    if (failure) break;
    const p: Promise<void> = fn(item)
      .catch((err) => {
        failure ??= { err };
      })
      .finally(() => running.delete(p));
    running.add(p);
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw (failure as { err: unknown }).err;
}
