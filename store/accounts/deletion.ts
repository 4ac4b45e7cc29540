/**
 * Account deletion: every key under [userId, …] and every pointer index entry naming the account
 * goes, in commits that a crash at any point leaves resumable.
 *
 *   1. `beginAccountDeletion`: ONE checked commit writes the tombstone ["meta", "deleting",
 *      userId], deletes the user record and the email pointer, and is a revocation
 *      (store/revocation.ts, kind "account"): this process's key caches drop the account's keys
 *      at once, other processes' within a second. With the user record gone, every session and
 *      key of the account resolves as invalid (401) from this commit on, no new session can be
 *      started, and the email can sign up again.
 *   2. `purgeAccount`: lists the account's prefix in batches and deletes each entry with the
 *      pointer it owns (API key and session digests, a verified domain's name, which releases
 *      it) in the same commit, so no pointer outlives its record. Each commit stays within every
 *      KV backend's limits (MAX_MUTATIONS, MAX_CHECKS, MAX_KEY_BYTES here; local Deno KV allows
 *      1000 mutations, 100 checks, 80 KiB of keys and 800 KiB in all, and denokv / KV Connect
 *      only 10 checks): an account with 1,000 domains (~8 keys each, one or two checks) and 50
 *      keys takes about 130 commits (tests/kv_connect/kv_connect_limits_test.ts). A domain record is
 *      checked as it was read (with its name pointer when it holds one), so a verification
 *      racing the deletion either lands first (the retry sees and deletes its pointer) or fails
 *      its own check on the record.
 *   3. The tombstone goes last, once a listing of the prefix comes back empty.
 *
 * A process killed anywhere leaves the tombstone: `admin verify` reports it
 * ("deletion_unfinished") and `admin user:delete --id usr_…` (or `deleteAccount`) finishes it.
 * A request that authenticated before step 1 and writes after the last listing could leave a
 * stray key; `admin verify` would show it as orphan data, and `user:delete --id` removes it.
 * Usage counts are the writes most likely to come late (each process flushes them up to
 * USAGE_FLUSH_MS after the request, routes/usage/recorder.ts), so their one writer checks the user record
 * in every commit (store/usage.ts `addUsage`): counts of an account deleted by step 1 are
 * dropped, and nothing of the kind re-creates keys under a purged account.
 */
import { ConflictError } from "../errors.ts";
import {
  accountDeletionKey,
  accountDeletionPrefix,
  accountPrefix,
  apiKeyHashIndexKey,
  domainNameIndexKey,
  emailIndexKey,
  sessionHashIndexKey,
  userKey,
} from "../keys.ts";
import { commitRevocation, processRevocations, type RevocationHub } from "../revocation.ts";
import type { UserRecord } from "./users.ts";

/** What the tombstone records: which account, its email (gone from the index), and when. */
export type DeletionTombstone = { userId: string; email: string | null; startedAt: string };

/** What one run deleted (a resumed run counts only its own part). */
export type DeletionSummary = {
  userId: string;
  email: string | null;
  /** Every key under [userId, …] deleted, the user record included. */
  accountKeys: number;
  apiKeys: number;
  sessions: number;
  domains: number;
  /** Verified domain names whose pointer was deleted: any account may verify them now. */
  namesReleased: number;
  /** Pointer index entries deleted (email, key and session digests, domain names). */
  pointers: number;
  commits: number;
};

/** Per-commit budgets, well within KV's limits (see the header). */
export const MAX_MUTATIONS = 500;
export const MAX_CHECKS = 10;
export const MAX_KEY_BYTES = 48 * 1024;
const LIST_BATCH = 250;
/** Listings in a row whose commits all lost a check before the run gives up (ConflictError). */
const MAX_FRUITLESS_ROUNDS = 16;

const encoder = new TextEncoder();

/** An upper bound of a key's encoded size (KV counts key bytes per commit). */
export function keySize(key: Deno.KvKey): number {
  let n = 0;
  for (const part of key) {
    if (typeof part === "string") n += encoder.encode(part).length + 2;
    else if (part instanceof Uint8Array) n += part.byteLength + 2;
    else if (typeof part === "bigint") n += 20;
    else n += 10;
  }
  return n;
}

export async function getDeletionTombstone(
  kv: Deno.Kv,
  userId: string,
): Promise<DeletionTombstone | null> {
  return (await kv.get<DeletionTombstone>(accountDeletionKey(userId))).value;
}

/** Every unfinished deletion (few: each is finished by the request or command that began it). */
export async function listUnfinishedDeletions(kv: Deno.Kv): Promise<DeletionTombstone[]> {
  const out: DeletionTombstone[] = [];
  for await (const e of kv.list<DeletionTombstone>({ prefix: accountDeletionPrefix() })) {
    out.push(e.value);
  }
  return out;
}

function emptySummary(userId: string, email: string | null): DeletionSummary {
  return {
    userId,
    email,
    accountKeys: 0,
    apiKeys: 0,
    sessions: 0,
    domains: 0,
    namesReleased: 0,
    pointers: 0,
    commits: 0,
  };
}

/**
 * Step 1 (see the header). Returns the tombstone, or null when the account has neither a user
 * record nor a tombstone. With `passwordHash`, the commit also requires the stored hash to be
 * that one (the caller just checked the password against it). Idempotent: an existing tombstone
 * is returned as is.
 */
/**
 * `passwordHash`: only while the account's hash is still this one (409 otherwise); `onlyIf`: only
 * when the user record, as the first commit checks it, passes (null otherwise: nothing deleted).
 */
export type DeletionOptions = {
  nowMs: number;
  passwordHash?: string;
  revocations?: RevocationHub;
  onlyIf?: (user: UserRecord) => boolean;
};

export async function beginAccountDeletion(
  kv: Deno.Kv,
  userId: string,
  opts: DeletionOptions,
): Promise<{ tombstone: DeletionTombstone; began: boolean } | null> {
  for (let attempt = 0; attempt < MAX_FRUITLESS_ROUNDS; attempt++) {
    const [user, tomb] = await kv.getMany<[UserRecord, DeletionTombstone]>([
      userKey(userId),
      accountDeletionKey(userId),
    ]);
    if (tomb.value) return { tombstone: tomb.value, began: false };
    if (!user.value) {
      // No record: only stray keys can be left (an interrupted write); clean them up too.
      const stray = await Array.fromAsync(kv.list({ prefix: accountPrefix(userId) }, { limit: 1 }));
      if (stray.length === 0) return null;
    }
    if (opts.passwordHash !== undefined && user.value?.passwordHash !== opts.passwordHash) {
      throw new ConflictError("The password changed meanwhile.");
    }
    // Decided on the record this commit checks, so a change in between cannot slip past it.
    if (opts.onlyIf && (!user.value || !opts.onlyIf(user.value))) return null;
    const email = user.value?.email ?? null;
    const tombstone: DeletionTombstone = {
      userId,
      email,
      startedAt: new Date(opts.nowMs).toISOString(),
    };
    const op = kv.atomic().check(user).check(tomb).set(tomb.key, tombstone).delete(user.key);
    if (email !== null) {
      const pointer = await kv.get<{ userId: string }>(emailIndexKey(email));
      op.check(pointer);
      if (pointer.value?.userId === userId) op.delete(pointer.key);
    }
    const res = await commitRevocation(
      op,
      { kind: "account", userId },
      opts.revocations ?? processRevocations,
    );
    if (res.ok) return { tombstone, began: true };
  }
  throw new ConflictError();
}

type Unit = {
  deletes: Deno.KvKey[];
  checks: Deno.AtomicCheck[];
  count: (s: DeletionSummary) => void;
};

/**
 * Steps 2 and 3 (see the header) for an account whose tombstone exists. Throws
 * `Deno.errors.NotFound` without one.
 */
export async function purgeAccount(kv: Deno.Kv, userId: string): Promise<DeletionSummary> {
  const tomb = await kv.get<DeletionTombstone>(accountDeletionKey(userId));
  if (!tomb.value) throw new Deno.errors.NotFound("No account deletion under way");
  const summary = emptySummary(userId, tomb.value.email);
  let fruitless = 0;
  for (;;) {
    const batch = await Array.fromAsync(
      kv.list<unknown>({ prefix: accountPrefix(userId) }, { limit: LIST_BATCH }),
    );
    if (batch.length === 0) break;
    const units = await planUnits(kv, userId, batch);
    const progressed = await commitUnits(kv, units, summary);
    fruitless = progressed ? 0 : fruitless + 1;
    if (fruitless >= MAX_FRUITLESS_ROUNDS) throw new ConflictError();
  }
  const last = await kv.atomic().check(tomb).delete(tomb.key).commit();
  if (last.ok) summary.commits++;
  return summary;
}

/** Begins (unless under way) and finishes the deletion; null when there is no such account. */
export async function deleteAccount(
  kv: Deno.Kv,
  userId: string,
  opts: DeletionOptions,
): Promise<DeletionSummary | null> {
  const begun = await beginAccountDeletion(kv, userId, opts);
  if (!begun) return null;
  const summary = await purgeAccount(kv, userId);
  if (begun.began) {
    summary.commits++;
    if (begun.tombstone.email !== null) {
      summary.accountKeys++; // the user record
      summary.pointers++; // the email pointer
    }
  }
  return summary;
}

/** Point reads of `keys`, 10 to a `getMany`. */
async function readAll(kv: Deno.Kv, keys: Deno.KvKey[]): Promise<Deno.KvEntryMaybe<unknown>[]> {
  const out: Deno.KvEntryMaybe<unknown>[] = [];
  for (let i = 0; i < keys.length; i += 10) out.push(...await kv.getMany(keys.slice(i, i + 10)));
  return out;
}

function field(value: unknown, name: string): unknown {
  return typeof value === "object" && value !== null
    ? (value as Record<string, unknown>)[name]
    : undefined;
}

/** Each listed entry with the pointer it owns (read to make sure it names this account). */
async function planUnits(
  kv: Deno.Kv,
  userId: string,
  batch: Deno.KvEntry<unknown>[],
): Promise<Unit[]> {
  const pointerKeyOf = (e: Deno.KvEntry<unknown>): Deno.KvKey | null => {
    const [, family] = e.key;
    if (e.key.length !== 3) return null;
    const digest = field(e.value, "hash");
    if (family === "api_key" && typeof digest === "string") return apiKeyHashIndexKey(digest);
    if (family === "session" && typeof digest === "string") return sessionHashIndexKey(digest);
    const name = field(e.value, "domain");
    if (family === "domain" && typeof name === "string") return domainNameIndexKey(name);
    return null;
  };
  const wanted = batch.map(pointerKeyOf);
  const present = wanted.filter((k): k is Deno.KvKey => k !== null);
  const read = await readAll(kv, present);
  let next = 0;
  return batch.map((e, i): Unit => {
    const family = e.key[1];
    const unit: Unit = { deletes: [], checks: [], count: () => {} };
    const pointer = wanted[i] === null ? null : read[next++];
    const owned = pointer?.value !== null && pointer !== null &&
      field(pointer.value, "userId") === userId;
    if (family === "domain" && e.key.length === 3) {
      // A verification racing this commit fails on the record's check, or lands first.
      unit.checks.push(e);
      if (owned && field(pointer.value, "domainId") === e.key[2]) {
        unit.checks.push(pointer);
        unit.deletes.push(pointer.key);
        unit.count = (s) => {
          s.domains++;
          s.namesReleased++;
          s.pointers++;
        };
      } else unit.count = (s) => s.domains++;
    } else if (owned && pointer) {
      unit.deletes.push(pointer.key);
      unit.count = (s) => {
        if (family === "api_key") s.apiKeys++;
        else s.sessions++;
        s.pointers++;
      };
    } else if (e.key.length === 3 && (family === "api_key" || family === "session")) {
      unit.count = (s) => family === "api_key" ? s.apiKeys++ : s.sessions++;
    }
    // Pointer first, then the record it points from (one commit either way).
    unit.deletes.push(e.key);
    return unit;
  });
}

/**
 * Commits the units in as few commits as the budgets allow, a unit never split across two.
 * Returns whether any commit succeeded; a commit whose check failed is skipped (the next listing
 * reads those entries again).
 */
async function commitUnits(kv: Deno.Kv, units: Unit[], s: DeletionSummary): Promise<boolean> {
  let progressed = false;
  let op = kv.atomic();
  let pending: Unit[] = [];
  let mutations = 0, checks = 0, keyBytes = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const res = await op.commit();
    if (res.ok) {
      progressed = true;
      s.commits++;
      for (const u of pending) {
        u.count(s);
        s.accountKeys++;
      }
    }
    op = kv.atomic();
    pending = [];
    mutations = checks = keyBytes = 0;
  };
  for (const u of units) {
    const bytes = [...u.deletes, ...u.checks.map((c) => c.key)].reduce(
      (n, k) => n + keySize(k),
      0,
    );
    if (
      mutations + u.deletes.length > MAX_MUTATIONS || checks + u.checks.length > MAX_CHECKS ||
      keyBytes + bytes > MAX_KEY_BYTES
    ) await flush();
    for (const c of u.checks) op.check(c);
    for (const k of u.deletes) op.delete(k);
    mutations += u.deletes.length;
    checks += u.checks.length;
    keyBytes += bytes;
    pending.push(u);
  }
  await flush();
  return progressed;
}
