/**
 * Password hashing with scrypt (N = 2^cost, r = 8, p = 1; cost 17 is OWASP's current figure),
 * a 16-byte random salt per password, constant-time comparison. The encoded form carries its own
 * parameters so the cost can be raised without invalidating stored hashes.
 *
 * These functions do the work unbounded: requests reach them only through the bounded pool in
 * auth/passwords/pool.ts, which caps how many derivations (128 MiB each at cost 17) run at once.
 */
import { scrypt } from "node:crypto";
import { MAX_PASSWORD_HASH_MEMORY_BYTES, passwordHashMemoryBytes } from "../../lib/config.ts";
import { timingSafeEqual } from "../../lib/crypto.ts";

const KEY_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;

/** One key derivation at N = 2^cost. Injectable so tests can count and gate the work. */
export type Kdf = (password: string, salt: Uint8Array, cost: number) => Promise<Uint8Array>;

export const scryptKdf: Kdf = (password, salt, cost) => {
  const N = 2 ** cost;
  return new Promise((resolve, reject) => {
    // maxmem must exceed 128 * N * r bytes (128 MiB at cost 17).
    scrypt(
      password,
      salt,
      KEY_LENGTH,
      { N, r: 8, p: 1, maxmem: 2 * passwordHashMemoryBytes(cost) + 1024 },
      (err, key) => err ? reject(err) : resolve(new Uint8Array(key)),
    );
  });
};

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

export async function hashPassword(
  password: string,
  cost: number,
  kdf: Kdf = scryptKdf,
): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const key = await kdf(password, salt, cost);
  return `scrypt$${cost}$8$1$${b64(salt)}$${b64(key)}`;
}

type StoredHash = { cost: number; salt: Uint8Array; key: Uint8Array };

/**
 * The parameters of an encoded hash, or null when this server cannot check it: another scheme,
 * a malformed value, or a cost whose derivation would not fit the hashing memory bound.
 */
function parseHash(encoded: string): StoredHash | null {
  const [scheme, cost, r, p, salt, key] = encoded.split("$");
  if (scheme !== "scrypt" || r !== "8" || p !== "1" || !salt || !key) return null;
  const n = Number(cost);
  if (!Number.isInteger(n) || n < 1) return null;
  if (passwordHashMemoryBytes(n) > MAX_PASSWORD_HASH_MEMORY_BYTES) return null;
  try {
    return { cost: n, salt: unb64(salt), key: unb64(key) };
  } catch {
    return null;
  }
}

const dummySalt = crypto.getRandomValues(new Uint8Array(16));
const dummyKey = crypto.getRandomValues(new Uint8Array(KEY_LENGTH));

export type PasswordCheck = {
  ok: boolean;
  /** On success with a stored hash of other parameters: the password hashed at `cost`. */
  rehash: string | null;
};

/**
 * Checks `password` against `stored` (null: no such account). A failure always costs the work of
 * one derivation at `cost`, whatever the stored hash was made with, so neither an unknown email
 * nor an account hashed at an older, cheaper cost can be told apart by timing:
 * - no account, or a hash this server cannot check: one derivation at `cost` against a dummy;
 * - a stored cost below `cost`: the check at the stored cost c, then padding derivations at
 *   c, c+1, ..., cost-1, which add up to exactly 2^cost (2^c + 2^c + 2^(c+1) + ... = 2^cost).
 * A stored cost above `cost` (the cost was lowered) costs more until that account signs in and
 * is rehashed; success rehashes at `cost` whenever the parameters differ.
 */
export async function checkPassword(
  password: string,
  stored: string | null,
  cost: number,
  kdf: Kdf = scryptKdf,
): Promise<PasswordCheck> {
  const parsed = stored === null ? null : parseHash(stored);
  if (!parsed) {
    timingSafeEqual(await kdf(password, dummySalt, cost), dummyKey);
    return { ok: false, rehash: null };
  }
  const ok = timingSafeEqual(await kdf(password, parsed.salt, parsed.cost), parsed.key);
  if (ok) {
    return { ok, rehash: parsed.cost === cost ? null : await hashPassword(password, cost, kdf) };
  }
  for (let c = parsed.cost; c < cost; c++) await kdf(password, dummySalt, c);
  return { ok: false, rehash: null };
}

export function passwordProblem(password: unknown): string | null {
  if (typeof password !== "string") return "Password must be a string.";
  if (password.length < MIN_PASSWORD_LENGTH) {
    return `Password must be at least ${MIN_PASSWORD_LENGTH} characters.`;
  }
  if (password.length > MAX_PASSWORD_LENGTH) {
    return `Password must be at most ${MAX_PASSWORD_LENGTH} characters.`;
  }
  return null;
}
