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
 */
import {
  usageCounterKey,
  usageHourStart,
  usageIndexKey,
  usageIndexPrefix,
  usageKeyPrefix,
} from "./keys.ts";

export const USAGE_OUTCOMES = ["2xx", "4xx", "429", "5xx"] as const;
export type UsageOutcome = (typeof USAGE_OUTCOMES)[number];

export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const USAGE_RETENTION_DAYS = 90;
/** Mutations per commit: far inside denokv's 1000 (and its 800 KiB commit size). */
export const MAX_MUTATIONS_PER_COMMIT = 100;
const INDEX_EXPIRE_MS = (USAGE_RETENTION_DAYS + 1) * DAY_MS;

/** Requests of one key in one hour, by outcome (indexes as USAGE_OUTCOMES). */
export type HourUsage = {
  userId: string;
  keyId: string;
  hourMs: number;
  counts: [number, number, number, number];
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
      key: usageCounterKey(u.userId, u.keyId, u.hourMs, USAGE_OUTCOMES[i]),
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

/**
 * Adds every hour's counts in commits of at most MAX_MUTATIONS_PER_COMMIT mutations (an hour's
 * mutations never straddle two commits). Hours older than the retention are skipped. Returns the
 * hours whose commit failed, for the caller to keep and retry; never throws.
 */
export async function addUsage(
  kv: Deno.Kv,
  hours: HourUsage[],
  nowMs: number,
  onError: (err: unknown) => void = () => {},
): Promise<HourUsage[]> {
  const failed: HourUsage[] = [];
  const oldest = retentionStartMs(nowMs);
  let batch: HourUsage[] = [];
  let mutations: Deno.KvMutation[] = [];
  const commit = async () => {
    if (mutations.length === 0) return;
    const [b, m] = [batch, mutations];
    batch = [];
    mutations = [];
    try {
      const res = await kv.atomic().mutate(...m).commit();
      if (!res.ok) throw new Error("usage commit refused");
    } catch (err) {
      onError(err);
      failed.push(...b);
    }
  };
  for (const u of hours) {
    if (u.hourMs < oldest) continue;
    const m = usageMutations(u, nowMs);
    if (m.length === 0) continue;
    if (mutations.length + m.length > MAX_MUTATIONS_PER_COMMIT) await commit();
    batch.push(u);
    mutations.push(...m);
  }
  await commit();
  return failed;
}

/** Deletes a key's counters older than the retention, in commits of bounded size. */
export async function pruneUsage(
  kv: Deno.Kv,
  userId: string,
  keyId: string,
  nowMs: number,
): Promise<number> {
  let deleted = 0;
  const end = usageHourStart(userId, keyId, retentionStartMs(nowMs));
  for (;;) {
    const keys: Deno.KvKey[] = [];
    for await (
      const e of kv.list({ start: usageKeyPrefix(userId, keyId), end }, {
        limit: MAX_MUTATIONS_PER_COMMIT,
      })
    ) keys.push(e.key);
    if (keys.length === 0) return deleted;
    const op = kv.atomic();
    for (const k of keys) op.delete(k);
    await op.commit();
    deleted += keys.length;
    if (keys.length < MAX_MUTATIONS_PER_COMMIT) return deleted;
  }
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
  const iter = kv.list<Deno.KvU64>({
    start: usageHourStart(userId, keyId, from),
    end: usageHourStart(userId, keyId, hourOf(nowMs) + HOUR_MS),
  }, { batchSize: 1000 });
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

/** The ids of the account's keys with usage in the last 91 days (deleted keys included). */
export async function keysWithUsage(kv: Deno.Kv, userId: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const e of kv.list({ prefix: usageIndexPrefix(userId) })) {
    if (typeof e.key[2] === "string") ids.push(e.key[2]);
  }
  return ids;
}
