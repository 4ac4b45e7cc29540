/**
 * API key records. The plaintext key never reaches this module: callers pass its SHA-256 digest.
 * A key is live while its pointer index entry exists and `expiresAt` (kept in the pointer, checked
 * on every read) is in the future.
 */
import { newId } from "../lib/crypto.ts";
import type { Clock } from "../lib/clock.ts";
import { ConflictError, RETRY, withRetries } from "./errors.ts";
import { apiKeyCountKey, apiKeyHashIndexKey, apiKeyKey, apiKeyPrefix } from "./keys.ts";
import { commitRevocation, processRevocations, type RevocationHub } from "./revocation.ts";

export type ApiKeyRecord = {
  id: string;
  name: string;
  /** The first characters of the key, kept in clear for display. */
  start: string;
  /** SHA-256 hex digest of the key; needed to remove its pointer on delete. Never returned. */
  hash: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  /**
   * Set when the key was rolled with a grace period: the replacement's id. The key then lives
   * only until its (shortened) `expiresAt` and cannot be rolled again. Never returned.
   */
  replacedBy?: string;
};

/** What the pointer index stores: enough to authenticate with a single read. */
export type ApiKeyPointer = { userId: string; keyId: string; expiresAt: number | null };

/** The record as callers outside the server may see it: no digest. */
export type ApiKeyView = Omit<ApiKeyRecord, "hash" | "replacedBy">;

export function apiKeyView(
  { hash: _hash, replacedBy: _replacedBy, ...view }: ApiKeyRecord,
): ApiKeyView {
  return view;
}

/**
 * Only a live key that was not rolled yet can be rolled: an expired key is dead, and a key in its
 * grace period already has a replacement (roll that one instead).
 */
export class ApiKeyNotRollableError extends Error {
  constructor(readonly reason: "expired" | "rolled") {
    super(
      reason === "expired"
        ? "This API key has expired and cannot be rolled. Create a new key instead."
        : "This API key was already rolled and is in its grace period. Roll its replacement instead.",
    );
    this.name = "ApiKeyNotRollableError";
  }
}

export class ApiKeyLimitError extends Error {
  constructor(readonly max: number) {
    super(`An account can hold at most ${max} API keys. Delete unused keys first.`);
    this.name = "ApiKeyLimitError";
  }
}

/** Reads the pointer for a key digest. The only API key read on the request path. */
export async function lookupApiKeyPointer(
  kv: Deno.Kv,
  hash: string,
): Promise<Deno.KvEntryMaybe<ApiKeyPointer>> {
  return await kv.get<ApiKeyPointer>(apiKeyHashIndexKey(hash));
}

export type ApiKeyStoreOptions = {
  maxKeys: number;
  /**
   * Told (after the commit) of every key whose pointer was deleted or shortened, so this
   * process's caches drop it at once; defaults to the process's hub (store/revocation.ts).
   */
  revocations?: RevocationHub;
};

export type NewApiKey = { name: string; hash: string; start: string; expiresAtMs: number | null };

/**
 * A roll's replacement. `lifetimeMs` counts from the roll: a number, null for a key that never
 * expires, or undefined to give it the old key's own lifetime (its expiresAt - createdAt).
 */
export type Replacement = { hash: string; start: string; lifetimeMs?: number | null };

export function apiKeyStore(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: ApiKeyStoreOptions = { maxKeys: 50 },
) {
  const revocations = opts.revocations ?? processRevocations;
  const recordOf = (input: NewApiKey): ApiKeyRecord => ({
    id: newId("key"),
    name: input.name,
    start: input.start,
    hash: input.hash,
    createdAt: new Date(clock()).toISOString(),
    lastUsedAt: null,
    expiresAt: input.expiresAtMs === null ? null : new Date(input.expiresAtMs).toISOString(),
  });
  const pointerOf = (r: ApiKeyRecord): ApiKeyPointer => ({
    userId,
    keyId: r.id,
    expiresAt: r.expiresAt === null ? null : Date.parse(r.expiresAt),
  });

  async function getEntry(keyId: string): Promise<Deno.KvEntry<ApiKeyRecord>> {
    const entry = await kv.get<ApiKeyRecord>(apiKeyKey(userId, keyId));
    if (entry.versionstamp === null) throw new Deno.errors.NotFound("No such API key");
    return entry;
  }

  return {
    async list(): Promise<ApiKeyRecord[]> {
      const out: ApiKeyRecord[] = [];
      for await (const e of kv.list<ApiKeyRecord>({ prefix: apiKeyPrefix(userId) })) {
        out.push(e.value);
      }
      return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
    },

    async get(keyId: string): Promise<ApiKeyRecord> {
      return (await getEntry(keyId)).value;
    },

    async count(): Promise<number> {
      return (await kv.get<number>(apiKeyCountKey(userId))).value ?? 0;
    },

    /** Record, pointer and count in one checked commit; refuses past `maxKeys`. */
    async create(input: NewApiKey): Promise<ApiKeyRecord> {
      const record = recordOf(input);
      return await withRetries(async () => {
        const count = await kv.get<number>(apiKeyCountKey(userId));
        const n = count.value ?? 0;
        if (n >= opts.maxKeys) throw new ApiKeyLimitError(opts.maxKeys);
        const res = await kv.atomic()
          .check(count)
          .check({ key: apiKeyKey(userId, record.id), versionstamp: null })
          .check({ key: apiKeyHashIndexKey(record.hash), versionstamp: null })
          .set(apiKeyKey(userId, record.id), record)
          .set(apiKeyHashIndexKey(record.hash), pointerOf(record))
          .set(apiKeyCountKey(userId), n + 1)
          .commit();
        return res.ok ? record : RETRY;
      });
    },

    /** Removes record and pointer at once; other processes learn of it through the counter. */
    async delete(keyId: string): Promise<ApiKeyRecord> {
      return await withRetries(async () => {
        const entry = await getEntry(keyId);
        const count = await kv.get<number>(apiKeyCountKey(userId));
        const op = kv.atomic()
          .check(entry)
          .check(count)
          .delete(entry.key)
          .delete(apiKeyHashIndexKey(entry.value.hash))
          .set(apiKeyCountKey(userId), Math.max(0, (count.value ?? 1) - 1));
        const res = await commitRevocation(
          op,
          { kind: "api_key", hash: entry.value.hash },
          revocations,
        );
        return res.ok ? entry.value : RETRY;
      });
    },

    /**
     * Issues a replacement for `keyId` and shortens the old key's life to `graceMs` from now
     * (0 revokes it in the same commit). The new key inherits the old key's name, and gets a
     * lifetime of its own from now (see `Replacement`), never the old key's grace deadline.
     * Throws `ApiKeyNotRollableError` for an expired key or one already rolled.
     */
    async roll(
      keyId: string,
      replacement: Replacement,
      graceMs: number,
    ): Promise<{ created: ApiKeyRecord; old: ApiKeyRecord }> {
      return await withRetries(async () => {
        const oldEntry = await getEntry(keyId);
        const old = oldEntry.value;
        const now = clock();
        if (old.expiresAt !== null && Date.parse(old.expiresAt) <= now) {
          throw new ApiKeyNotRollableError("expired");
        }
        if (old.replacedBy !== undefined) throw new ApiKeyNotRollableError("rolled");
        const lifetimeMs = replacement.lifetimeMs !== undefined
          ? replacement.lifetimeMs
          : old.expiresAt === null
          ? null
          : Date.parse(old.expiresAt) - Date.parse(old.createdAt);
        const created = recordOf({
          name: old.name,
          hash: replacement.hash,
          start: replacement.start,
          expiresAtMs: lifetimeMs === null ? null : now + lifetimeMs,
        });
        const count = await kv.get<number>(apiKeyCountKey(userId));
        const n = count.value ?? 0;
        const op = kv.atomic()
          .check(oldEntry)
          .check(count)
          .check({ key: apiKeyKey(userId, created.id), versionstamp: null })
          .check({ key: apiKeyHashIndexKey(created.hash), versionstamp: null })
          .set(apiKeyKey(userId, created.id), created)
          .set(apiKeyHashIndexKey(created.hash), pointerOf(created));
        let updatedOld: ApiKeyRecord;
        if (graceMs <= 0) {
          updatedOld = { ...old, expiresAt: new Date(now).toISOString() };
          op.delete(oldEntry.key).delete(apiKeyHashIndexKey(old.hash));
          // n stays: one key replaced by another.
        } else {
          if (n >= opts.maxKeys) throw new ApiKeyLimitError(opts.maxKeys);
          const graceEnd = now + graceMs;
          const oldExpiry = old.expiresAt === null ? Infinity : Date.parse(old.expiresAt);
          updatedOld = {
            ...old,
            expiresAt: new Date(Math.min(graceEnd, oldExpiry)).toISOString(),
            replacedBy: created.id,
          };
          op.set(oldEntry.key, updatedOld)
            .set(apiKeyHashIndexKey(old.hash), pointerOf(updatedOld))
            .set(apiKeyCountKey(userId), n + 1);
        }
        const res = await commitRevocation(op, { kind: "api_key", hash: old.hash }, revocations);
        return res.ok ? { created, old: updatedOld } : RETRY;
      });
    },

    /**
     * Records use of a key. Callers throttle this (once a minute per key). The pointer's
     * versionstamp is checked so a write racing a delete or roll cannot resurrect anything.
     */
    async touchLastUsed(keyId: string, pointerVersionstamp: string): Promise<boolean> {
      const entry = await kv.get<ApiKeyRecord>(apiKeyKey(userId, keyId));
      if (entry.versionstamp === null) return false;
      const res = await kv.atomic()
        .check(entry)
        .check({ key: apiKeyHashIndexKey(entry.value.hash), versionstamp: pointerVersionstamp })
        .set(entry.key, { ...entry.value, lastUsedAt: new Date(clock()).toISOString() })
        .commit();
      return res.ok;
    },
  };
}

export type ApiKeyStore = ReturnType<typeof apiKeyStore>;

export { ConflictError };
