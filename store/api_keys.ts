/**
 * API key records. The plaintext key never reaches this module: callers pass its SHA-256 digest.
 * A key is live while its pointer index entry exists and `expiresAt` (kept in the pointer, checked
 * on every read) is in the future.
 */
import { newId } from "../lib/crypto.ts";
import type { Clock } from "../lib/clock.ts";
import { DEFAULT_SCOPES, type KeyScope, LEGACY_DEFAULT_SCOPES } from "../lib/scopes.ts";
import {
  appendAudit,
  type AuditAction,
  type AuditContext,
  type AuditSource,
} from "./audit_log/events.ts";
import { auditChange } from "./batch.ts";
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
  /**
   * The client address of that last use (proxy-aware, lib/client.ts), written with `lastUsedAt`
   * so it costs no extra commit. Absent on records made before it was recorded.
   */
  lastUsedIp?: string | null;
  expiresAt: string | null;
  /**
   * Set when the key was rolled with a grace period: the replacement's id. The key then lives
   * only until its (shortened) `expiresAt` and cannot be rolled again. Never returned.
   */
  replacedBy?: string;
  /**
   * The last expiry notice mailed to the account (auth/api_keys/expiry_notices.ts): "7d" a week
   * before, "1d" a day before. Set in a checked commit before the mail goes, so each goes once
   * however many instances sweep. Never returned.
   */
  expiryNotified?: "7d" | "1d";
} & Partial<KeyGrant>;

/** A per-key rate limit, never looser than the account's (checked by the route). */
export type KeyRateLimit = { max: number; windowMs: number };

/**
 * What a key may do (issue 13). A record or pointer without these fields (written before grants
 * existed, or a pointer written before issue 23 for a key with the then default) reads as
 * `LEGACY_GRANT` (`grantOf`): domains:read and domains:write, what such a key could do. A key
 * created now gets its grant written out in its record and its pointer (`newGrant`: without
 * `scopes`, DEFAULT_SCOPES), so a change of DEFAULT_SCOPES never widens an existing key.
 */
export type KeyGrant = {
  /** Built-in scopes and operator scopes (lib/scopes.ts KeyScope). */
  scopes: KeyScope[];
  /** The only domains the key sees; null: every domain of the account. */
  domainIds: string[] | null;
  /** CIDRs (IPv4/IPv6) the key may be used from; null: anywhere. */
  allowedIps: string[] | null;
  rateLimit: KeyRateLimit | null;
  /** A disabled key authenticates nothing (the seed's 401) until enabled again. */
  disabled: boolean;
};

/** The grant of a key created without one: DEFAULT_SCOPES, no restriction, enabled. */
export const DEFAULT_GRANT: Readonly<KeyGrant> = Object.freeze({
  scopes: [...DEFAULT_SCOPES],
  domainIds: null,
  allowedIps: null,
  rateLimit: null,
  disabled: false,
});

/** What a stored record or pointer without grant fields may do (issue 23: no upgrade window). */
export const LEGACY_GRANT: Readonly<KeyGrant> = Object.freeze({
  scopes: [...LEGACY_DEFAULT_SCOPES],
  domainIds: null,
  allowedIps: null,
  rateLimit: null,
  disabled: false,
});

function filled(r: Partial<KeyGrant> | undefined, base: Readonly<KeyGrant>): KeyGrant {
  return {
    scopes: r?.scopes ?? [...base.scopes],
    domainIds: r?.domainIds ?? null,
    allowedIps: r?.allowedIps ?? null,
    rateLimit: r?.rateLimit ?? null,
    disabled: r?.disabled ?? false,
  };
}

/** The grant of a stored record or pointer; missing fields read as `LEGACY_GRANT`'s. */
export function grantOf(r: Partial<KeyGrant> | undefined): KeyGrant {
  return filled(r, LEGACY_GRANT);
}

/** The grant a new key is written with; missing fields are `DEFAULT_GRANT`'s. */
export function newGrant(r: Partial<KeyGrant> | undefined): KeyGrant {
  return filled(r, DEFAULT_GRANT);
}

/** True when `g` is what a pointer without a grant stands for (`LEGACY_GRANT`). */
export function isLegacyGrant(g: KeyGrant): boolean {
  return JSON.stringify(g) === JSON.stringify(LEGACY_GRANT);
}

/**
 * What the pointer index stores: enough to authenticate, and to check the key's scopes, domains,
 * addresses and limit, with a single read (the verifier caches it). Written in the same commit as
 * the record, always with its `grant` spelled out; absent (pointers written before issue 23)
 * it means `LEGACY_GRANT`.
 */
export type ApiKeyPointer = {
  userId: string;
  keyId: string;
  expiresAt: number | null;
  grant?: KeyGrant;
};

/** The record as callers outside the server may see it: no digest, the grant always spelled out. */
export type ApiKeyView =
  & Omit<ApiKeyRecord, "hash" | "replacedBy" | "lastUsedIp" | "expiryNotified" | keyof KeyGrant>
  & KeyGrant
  & { lastUsedIp: string | null };

export function apiKeyView(
  {
    hash: _hash,
    replacedBy: _replacedBy,
    expiryNotified: _expiryNotified,
    scopes: _s,
    domainIds: _d,
    allowedIps: _a,
    rateLimit: _r,
    disabled: _x,
    lastUsedIp,
    ...view
  }: ApiKeyRecord,
): ApiKeyView {
  return {
    ...view,
    lastUsedIp: lastUsedIp ?? null,
    ...grantOf({ scopes: _s, domainIds: _d, allowedIps: _a, rateLimit: _r, disabled: _x }),
  };
}

/** The fields `update` may change (PATCH /api/e2/api-keys/{id}); absent fields stay. */
export type ApiKeyPatch = Partial<KeyGrant> & { name?: string };

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
  /** AUDIT_RETENTION_DAYS for the `api_key.*` events (else the context's, else the default). */
  auditRetentionDays?: number;
  /**
   * Who acts through this store (a request's `auditContextOf`, the CLI's ADMIN_AUDIT_CONTEXT):
   * used for the `api_key.*` events when a call passes no context of its own.
   */
  audit?: AuditSource;
};

export type NewApiKey = {
  name: string;
  hash: string;
  start: string;
  expiresAtMs: number | null;
  /** Absent, or fields absent: `DEFAULT_GRANT`'s (`newGrant`). */
  grant?: Partial<KeyGrant>;
};

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
): ApiKeyStore {
  return new ApiKeyStore(kv, userId, clock, opts);
}

/**
 * One account's API keys: every method is bound to `userId`. A class with true private fields
 * (not a bundle of closures): a caller holding it cannot reach the raw KV, and building one per
 * request allocates one object instead of a closure per method.
 */
export class ApiKeyStore {
  readonly #kv: Deno.Kv;
  readonly #userId: string;
  readonly #clock: Clock;
  readonly #opts: ApiKeyStoreOptions;
  readonly #revocations: RevocationHub;

  constructor(
    kv: Deno.Kv,
    userId: string,
    clock: Clock,
    opts: ApiKeyStoreOptions = { maxKeys: 50 },
  ) {
    this.#kv = kv;
    this.#userId = userId;
    this.#clock = clock;
    this.#opts = opts;
    this.#revocations = opts.revocations ?? processRevocations;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const out: ApiKeyRecord[] = [];
    for await (const e of this.#kv.list<ApiKeyRecord>({ prefix: apiKeyPrefix(this.#userId) })) {
      out.push(e.value);
    }
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  }

  async get(keyId: string): Promise<ApiKeyRecord> {
    return (await this.#getEntry(keyId)).value;
  }

  async count(): Promise<number> {
    return (await this.#kv.get<number>(apiKeyCountKey(this.#userId))).value ?? 0;
  }

  /** Record, pointer and count in one checked commit; refuses past `maxKeys`. */
  async create(input: NewApiKey, ctx?: AuditContext): Promise<ApiKeyRecord> {
    const kv = this.#kv, userId = this.#userId, maxKeys = this.#opts.maxKeys;
    const record = this.#recordOf(input);
    return await withRetries(async () => {
      const count = await kv.get<number>(apiKeyCountKey(userId));
      const n = count.value ?? 0;
      if (n >= maxKeys) throw new ApiKeyLimitError(maxKeys);
      const op = kv.atomic()
        .check(count)
        .check({ key: apiKeyKey(userId, record.id), versionstamp: null })
        .check({ key: apiKeyHashIndexKey(record.hash), versionstamp: null })
        .set(apiKeyKey(userId, record.id), record)
        .set(apiKeyHashIndexKey(record.hash), this.#pointerOf(record))
        .set(apiKeyCountKey(userId), n + 1);
      this.#audit(op, ctx, "api_key.created", record, { scopes: grantOf(record).scopes });
      const res = await op.commit();
      return res.ok ? record : RETRY;
    });
  }

  /**
   * Changes a key's name and grant: record and pointer in one commit that bumps the revocation
   * counter, so every process's cached grant of the key is dropped (this one at once, others
   * within a second), exactly like a revocation. Returns the updated record.
   */
  async update(keyId: string, patch: ApiKeyPatch, ctx?: AuditContext): Promise<ApiKeyRecord> {
    return await withRetries(async () => {
      const entry = await this.#getEntry(keyId);
      const before = entry.value;
      const grant = grantOf(before);
      const changed = (Object.keys(patch) as (keyof ApiKeyPatch)[]).filter((f) =>
        patch[f] !== undefined &&
        JSON.stringify(patch[f]) !==
          JSON.stringify(f === "name" ? before.name : grant[f as keyof KeyGrant])
      );
      const updated: ApiKeyRecord = {
        ...before,
        ...grant,
        ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)),
      };
      if (changed.length === 0) return before;
      const op = this.#kv.atomic()
        .check(entry)
        .set(entry.key, updated)
        .set(apiKeyHashIndexKey(before.hash), this.#pointerOf(updated));
      this.#audit(op, ctx, "api_key.updated", updated, { changed });
      const revoked = { kind: "api_key", hash: before.hash } as const;
      const res = await commitRevocation(op, revoked, this.#revocations);
      return res.ok ? updated : RETRY;
    });
  }

  /**
   * Records a refused request (scope or address) as `api_key.denied`. A refusal changes
   * nothing, so this is a commit of its own, made off the request path by a caller that keeps
   * it to at most one per key per minute (auth/api_keys/policy.ts).
   */
  async recordDenied(
    keyId: string,
    keyName: string | undefined,
    ctx: AuditContext,
    details: Record<string, string>,
  ): Promise<void> {
    const op = this.#kv.atomic();
    appendAudit(
      op,
      this.#userId,
      ctx,
      {
        action: "api_key.denied",
        target: { type: "api_key", id: keyId, ...(keyName ? { name: keyName } : {}) },
        outcome: "denied",
        details,
      },
      this.#clock(),
      this.#opts.auditRetentionDays,
    );
    await op.commit();
  }

  /**
   * Removes record and pointer at once; other processes learn of it through the counter.
   * `action`: "api_key.revoked" when the key revoked itself, else "api_key.deleted".
   */
  async delete(
    keyId: string,
    ctx?: AuditContext,
    action: "api_key.deleted" | "api_key.revoked" = "api_key.deleted",
  ): Promise<ApiKeyRecord> {
    return await withRetries(async () => {
      const entry = await this.#getEntry(keyId);
      const count = await this.#kv.get<number>(apiKeyCountKey(this.#userId));
      const op = this.#kv.atomic()
        .check(entry)
        .check(count)
        .delete(entry.key)
        .delete(apiKeyHashIndexKey(entry.value.hash))
        .set(apiKeyCountKey(this.#userId), Math.max(0, (count.value ?? 1) - 1));
      this.#audit(op, ctx, action, entry.value);
      const res = await commitRevocation(
        op,
        { kind: "api_key", hash: entry.value.hash },
        this.#revocations,
      );
      return res.ok ? entry.value : RETRY;
    });
  }

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
    ctx?: AuditContext,
  ): Promise<{ created: ApiKeyRecord; old: ApiKeyRecord }> {
    const kv = this.#kv, userId = this.#userId;
    return await withRetries(async () => {
      const oldEntry = await this.#getEntry(keyId);
      const old = oldEntry.value;
      const now = this.#clock();
      const created = this.#replacementOf(old, replacement, now);
      const count = await kv.get<number>(apiKeyCountKey(userId));
      const n = count.value ?? 0;
      const op = kv.atomic()
        .check(oldEntry)
        .check(count)
        .check({ key: apiKeyKey(userId, created.id), versionstamp: null })
        .check({ key: apiKeyHashIndexKey(created.hash), versionstamp: null })
        .set(apiKeyKey(userId, created.id), created)
        .set(apiKeyHashIndexKey(created.hash), this.#pointerOf(created));
      let updatedOld: ApiKeyRecord;
      if (graceMs <= 0) {
        updatedOld = { ...old, expiresAt: new Date(now).toISOString() };
        op.delete(oldEntry.key).delete(apiKeyHashIndexKey(old.hash));
        // n stays: one key replaced by another.
      } else {
        if (n >= this.#opts.maxKeys) throw new ApiKeyLimitError(this.#opts.maxKeys);
        const graceEnd = now + graceMs;
        const oldExpiry = old.expiresAt === null ? Infinity : Date.parse(old.expiresAt);
        updatedOld = {
          ...old,
          expiresAt: new Date(Math.min(graceEnd, oldExpiry)).toISOString(),
          replacedBy: created.id,
        };
        op.set(oldEntry.key, updatedOld)
          .set(apiKeyHashIndexKey(old.hash), this.#pointerOf(updatedOld))
          .set(apiKeyCountKey(userId), n + 1);
      }
      this.#audit(op, ctx, "api_key.rolled", old, {
        replacementId: created.id,
        graceMs: Math.max(0, graceMs),
      });
      const revoked = { kind: "api_key", hash: old.hash } as const;
      const res = await commitRevocation(op, revoked, this.#revocations);
      return res.ok ? { created, old: updatedOld } : RETRY;
    });
  }

  /**
   * Records use of a key, and from which address (`ip`; null when unknown). Callers throttle this
   * (once a minute per key), so the address is that of a use within the last ~90 s, not
   * necessarily the very last. The pointer's versionstamp is checked so a write racing a delete
   * or roll cannot resurrect anything.
   */
  async touchLastUsed(
    keyId: string,
    pointerVersionstamp: string,
    ip: string | null = null,
  ): Promise<boolean> {
    const entry = await this.#kv.get<ApiKeyRecord>(apiKeyKey(this.#userId, keyId));
    if (entry.versionstamp === null) return false;
    const res = await this.#kv.atomic()
      .check(entry)
      .check({ key: apiKeyHashIndexKey(entry.value.hash), versionstamp: pointerVersionstamp })
      .set(entry.key, {
        ...entry.value,
        lastUsedAt: new Date(this.#clock()).toISOString(),
        lastUsedIp: ip,
      })
      .commit();
    return res.ok;
  }

  /**
   * The replacement record a roll of `old` creates at `now`, after the refusals: an expired key
   * is dead, and a key already rolled has its replacement (ApiKeyNotRollableError).
   */
  #replacementOf(old: ApiKeyRecord, replacement: Replacement, now: number): ApiKeyRecord {
    if (old.expiresAt !== null && Date.parse(old.expiresAt) <= now) {
      throw new ApiKeyNotRollableError("expired");
    }
    if (old.replacedBy !== undefined) throw new ApiKeyNotRollableError("rolled");
    const lifetimeMs = replacement.lifetimeMs !== undefined
      ? replacement.lifetimeMs
      : old.expiresAt === null
      ? null
      : Date.parse(old.expiresAt) - Date.parse(old.createdAt);
    return this.#recordOf({
      name: old.name,
      hash: replacement.hash,
      start: replacement.start,
      expiresAtMs: lifetimeMs === null ? null : now + lifetimeMs,
      // The replacement may do exactly what the old key could.
      grant: grantOf(old),
    });
  }

  #recordOf(input: NewApiKey): ApiKeyRecord {
    return {
      id: newId("key"),
      name: input.name,
      start: input.start,
      hash: input.hash,
      createdAt: new Date(this.#clock()).toISOString(),
      lastUsedAt: null,
      lastUsedIp: null,
      expiresAt: input.expiresAtMs === null ? null : new Date(input.expiresAtMs).toISOString(),
      ...newGrant(input.grant),
    };
  }

  #pointerOf(r: ApiKeyRecord): ApiKeyPointer {
    return {
      userId: this.#userId,
      keyId: r.id,
      expiresAt: r.expiresAt === null ? null : Date.parse(r.expiresAt),
      // Always spelled out: a pointer without a grant means LEGACY_GRANT.
      grant: grantOf(r),
    };
  }

  /** Adds the audit event of a key change to `op` when the caller says who made it. */
  #audit(
    op: Deno.AtomicOperation,
    ctx: AuditContext | undefined,
    action: AuditAction,
    r: ApiKeyRecord,
    details?: Record<string, string | number | boolean | string[] | null>,
  ): void {
    const store = { ...this.#opts, userId: this.#userId, clock: this.#clock };
    auditChange(op, store, action, { type: "api_key", id: r.id, name: r.name }, details, ctx);
  }

  async #getEntry(keyId: string): Promise<Deno.KvEntry<ApiKeyRecord>> {
    const entry = await this.#kv.get<ApiKeyRecord>(apiKeyKey(this.#userId, keyId));
    if (entry.versionstamp === null) throw new Deno.errors.NotFound("No such API key");
    return entry;
  }
}

export { ConflictError };
