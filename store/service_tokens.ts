/**
 * Service tokens: the operator's credentials for `POST /api/e2/keys/verify` (auth/service_tokens.ts),
 * owned by no account. One record per token, keyed by the SHA-256 of the token (store/keys.ts
 * `serviceTokenKey`): the token itself is shown once by `admin service-token:create` and never
 * stored. Revoking deletes the record; the verify call reads it on every call, so a revocation
 * holds at once in every process sharing the KV.
 */
import { serviceTokenKey, serviceTokenPrefix } from "./keys.ts";

export type ServiceTokenRecord = {
  /** `svc_…`: names the token in list and revoke, never authenticates. */
  id: string;
  name: string;
  /** The first characters of the token, for recognising it. */
  start: string;
  /** Whether the verify call honours the `ip` its caller passes (the client's address). */
  mayAssertIp: boolean;
  createdAt: number;
};

/** Writes a new token's record; false if that digest is already taken (never, in practice). */
export async function createServiceToken(
  kv: Deno.Kv,
  hash: string,
  record: ServiceTokenRecord,
): Promise<boolean> {
  const key = serviceTokenKey(hash);
  const res = await kv.atomic().check({ key, versionstamp: null }).set(key, record).commit();
  return res.ok;
}

/** The record of a token digest; null: no such (or a revoked) token. */
export async function lookupServiceToken(
  kv: Deno.Kv,
  hash: string,
): Promise<ServiceTokenRecord | null> {
  return (await kv.get<ServiceTokenRecord>(serviceTokenKey(hash))).value;
}

/** Every token's record (never a token), oldest first. */
export async function listServiceTokens(kv: Deno.Kv): Promise<ServiceTokenRecord[]> {
  const out: ServiceTokenRecord[] = [];
  for await (const e of kv.list<ServiceTokenRecord>({ prefix: serviceTokenPrefix() })) {
    out.push(e.value);
  }
  return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
}

/**
 * Deletes the token with id `id` (checked: the record read is the one deleted); the deleted
 * record, or null when no token has that id.
 */
export async function revokeServiceToken(
  kv: Deno.Kv,
  id: string,
): Promise<ServiceTokenRecord | null> {
  for await (const e of kv.list<ServiceTokenRecord>({ prefix: serviceTokenPrefix() })) {
    if (e.value.id !== id) continue;
    const res = await kv.atomic().check(e).delete(e.key).commit();
    // Changed under us: another revoke won (the token is gone either way).
    return res.ok ? e.value : null;
  }
  return null;
}
