/** Minting keys: the only place a plaintext key exists, returned once to the caller. */
import { sha256Hex } from "../../lib/sha256.ts";
import type { ApiKeyRecord, ApiKeyStore, KeyGrant } from "../../store/api_keys.ts";
import type { AuditContext } from "../../store/audit_log/events.ts";
import { displayStart, generateApiKey } from "./format.ts";

export const MAX_KEY_NAME_LENGTH = 100;
export const MAX_EXPIRES_IN_DAYS = 3650;
const DAY_MS = 86_400_000;

export type IssuedApiKey = { key: string; record: ApiKeyRecord };

function mint() {
  const key = generateApiKey();
  return { key, hash: sha256Hex(key), start: displayStart(key) };
}

export async function issueApiKey(
  store: ApiKeyStore,
  input: {
    name: string;
    expiresInDays?: number | null;
    nowMs: number;
    /** Scopes and restrictions (absent: the default grant). */
    grant?: Partial<KeyGrant>;
    /** Who is creating it: the `api_key.created` event is written in the same commit. */
    audit?: AuditContext;
  },
): Promise<IssuedApiKey> {
  const { key, hash, start } = mint();
  const expiresAtMs = input.expiresInDays ? input.nowMs + input.expiresInDays * DAY_MS : null;
  const record = await store.create(
    { name: input.name, hash, start, expiresAtMs, grant: input.grant },
    input.audit,
  );
  return { key, record };
}

/**
 * A replacement for `keyId`; the old key keeps working for `graceMs` (0: revoked now). The
 * replacement lives `expiresInDays` from now when given (null: never expires), else as long as
 * the old key was meant to (its expiresAt - createdAt) from now. Throws the store's
 * `ApiKeyNotRollableError` for an expired key or one already in its grace period.
 */
export async function rollApiKey(
  store: ApiKeyStore,
  keyId: string,
  graceMs: number,
  opts: { expiresInDays?: number | null; audit?: AuditContext } = {},
): Promise<IssuedApiKey & { old: ApiKeyRecord }> {
  const { key, hash, start } = mint();
  const lifetimeMs = opts.expiresInDays === undefined
    ? undefined
    : opts.expiresInDays === null
    ? null
    : opts.expiresInDays * DAY_MS;
  const { created, old } = await store.roll(
    keyId,
    { hash, start, lifetimeMs },
    graceMs,
    opts.audit,
  );
  return { key, record: created, old };
}
