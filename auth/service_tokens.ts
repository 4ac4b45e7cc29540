/**
 * Service tokens (docs/forward-auth.md#service-tokens): what authenticates a service calling
 * `POST /api/e2/keys/verify`, and nothing else. A token is `inbsvc_` + 43 base62 characters
 * (~256 bits), made by `deno task admin service-token:create`, shown once and stored as its SHA-256
 * (store/service_tokens.ts). It is not an API key: its length and prefix differ, so every other
 * route refuses it as an unknown key (401), and the verify call refuses API keys the same way.
 *
 * Every verify call reads the token's record (one KV get, ~10 us on a local file): a revoked
 * token is refused by every process from the commit on, with no cache to expire. Verify calls are
 * a service's, per its own request, so they are far rarer than API calls; the read is kept.
 */
import type { Clock } from "../lib/clock.ts";
import { newId, randomBase62 } from "../lib/crypto.ts";
import { sha256Hex } from "../lib/sha256.ts";
import {
  createServiceToken,
  listServiceTokens,
  lookupServiceToken,
  revokeServiceToken,
  type ServiceTokenRecord,
} from "../store/service_tokens.ts";

export type { ServiceTokenRecord };

export const SERVICE_TOKEN_PREFIX = "inbsvc_";
const SECRET_LENGTH = 43;
export const SERVICE_TOKEN_LENGTH = SERVICE_TOKEN_PREFIX.length + SECRET_LENGTH;
const SHAPE = new RegExp(`^${SERVICE_TOKEN_PREFIX}[0-9A-Za-z]{${SECRET_LENGTH}}$`);
const MAX_NAME_LENGTH = 64;

/** Whether `token` looks like a service token (checked before hashing or reading anything). */
export function isServiceTokenShape(token: string): boolean {
  return token.length === SERVICE_TOKEN_LENGTH && SHAPE.test(token);
}

/** A token's name: 1 to 64 printable characters, trimmed. */
export function serviceTokenNameProblem(name: string): string | null {
  const t = name.trim();
  if (t.length === 0) return "is required";
  if (t.length > MAX_NAME_LENGTH) return `must be at most ${MAX_NAME_LENGTH} characters`;
  if (/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u.test(t)) {
    return "must not contain control characters";
  }
  return null;
}

/** Makes a token; the token is in the answer only (shown once), the record holds its digest. */
export async function issueServiceToken(
  kv: Deno.Kv,
  clock: Clock,
  input: { name: string; mayAssertIp: boolean },
): Promise<{ token: string; record: ServiceTokenRecord }> {
  const problem = serviceTokenNameProblem(input.name);
  if (problem) throw new RangeError(`name ${problem}`);
  for (;;) {
    const token = SERVICE_TOKEN_PREFIX + randomBase62(SECRET_LENGTH);
    const record: ServiceTokenRecord = {
      id: newId("svc"),
      name: input.name.trim(),
      start: token.slice(0, SERVICE_TOKEN_PREFIX.length + 4),
      mayAssertIp: input.mayAssertIp,
      createdAt: clock(),
    };
    if (await createServiceToken(kv, sha256Hex(token), record)) return { token, record };
  }
}

/** The record of a presented token; null: malformed, unknown or revoked. Throws if KV fails. */
export async function authenticateServiceToken(
  kv: Deno.Kv,
  token: string,
): Promise<ServiceTokenRecord | null> {
  if (!isServiceTokenShape(token)) return null;
  return await lookupServiceToken(kv, sha256Hex(token));
}

export { listServiceTokens, revokeServiceToken };
