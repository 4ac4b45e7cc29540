/** Minting keys: the only place a plaintext key exists, returned once to the caller. */
import { sha256Hex } from "../../lib/sha256.ts";
import type { ApiKeyRecord, ApiKeyStore, KeyGrant } from "../../store/api_keys.ts";
import type { AuditContext } from "../../store/audit_log/events.ts";
import { displayStart, generateApiKey } from "./format.ts";

export const MAX_KEY_NAME_LENGTH = 100;
export const MAX_EXPIRES_IN_DAYS = 3650;
const DAY_MS = 86_400_000;

/**
 * Parses `expiresAt` as the API and the form take it: an ISO 8601 date-time with an offset
 * ("2027-01-31T12:00:00Z") or a date alone ("2027-01-31", meaning 00:00 UTC that day, so the
 * key's page shows the very date that was chosen). NaN when it is neither.
 */
export function parseExpiresAt(s: string): number {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(s);
  const dateTime = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i.test(
    s,
  );
  if (!dateOnly && !dateTime) return NaN;
  const ms = Date.parse(dateOnly ? `${s}T00:00:00Z` : s);
  if (Number.isNaN(ms)) return NaN;
  // A day that does not exist (2027-02-31) must not roll over into the next month.
  if (dateOnly && new Date(ms).toISOString().slice(0, 10) !== s) return NaN;
  return ms;
}

/**
 * Why `expiresAtMs` cannot be a new key's expiry, or null when it can: it must lie in the future
 * and no further than the longest lifetime `expiresInDays` allows, so both ways of saying it
 * admit the same keys.
 */
export function expiresAtProblem(expiresAtMs: number, nowMs: number): string | null {
  if (Number.isNaN(expiresAtMs)) {
    return "must be an ISO 8601 date (2027-01-31) or date-time (2027-01-31T12:00:00Z)";
  }
  if (expiresAtMs <= nowMs) return "must be in the future";
  if (expiresAtMs > nowMs + MAX_EXPIRES_IN_DAYS * DAY_MS) {
    return `must be at most ${MAX_EXPIRES_IN_DAYS} days from now`;
  }
  return null;
}

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
    /** An absolute expiry instead of `expiresInDays` (checked by `expiresAtProblem`). */
    expiresAtMs?: number;
    nowMs: number;
    /** Scopes and restrictions (absent: the default grant). */
    grant?: Partial<KeyGrant>;
    /** Who is creating it: the `api_key.created` event is written in the same commit. */
    audit?: AuditContext;
  },
): Promise<IssuedApiKey> {
  const { key, hash, start } = mint();
  const expiresAtMs = input.expiresAtMs ??
    (input.expiresInDays ? input.nowMs + input.expiresInDays * DAY_MS : null);
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
