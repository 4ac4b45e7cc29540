/** Minting keys: the only place a plaintext key exists, returned once to the caller. */
import { sha256Hex } from "../lib/sha256.ts";
import type { ApiKeyRecord, ApiKeyStore } from "../store/api_keys.ts";
import { displayStart, generateApiKey } from "./api_key_format.ts";

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
  input: { name: string; expiresInDays?: number | null; nowMs: number },
): Promise<IssuedApiKey> {
  const { key, hash, start } = mint();
  const expiresAtMs = input.expiresInDays ? input.nowMs + input.expiresInDays * DAY_MS : null;
  const record = await store.create({ name: input.name, hash, start, expiresAtMs });
  return { key, record };
}

/** A replacement for `keyId`; the old key keeps working for `graceMs` (0: revoked now). */
export async function rollApiKey(
  store: ApiKeyStore,
  keyId: string,
  graceMs: number,
): Promise<IssuedApiKey & { old: ApiKeyRecord }> {
  const { key, hash, start } = mint();
  const old = await store.get(keyId);
  const expiresAtMs = old.expiresAt === null ? null : Date.parse(old.expiresAt);
  const { created, old: updated } = await store.roll(keyId, { hash, start, expiresAtMs }, graceMs);
  return { key, record: created, old: updated };
}
