/**
 * Password hashing with scrypt (N = 2^cost, r = 8, p = 1; cost 17 is OWASP's current figure),
 * a 16-byte random salt per password, constant-time comparison. The encoded form carries its own
 * parameters so the cost can be raised without invalidating stored hashes.
 */
import { scrypt } from "node:crypto";
import { timingSafeEqual } from "../lib/crypto.ts";

const KEY_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 12;
export const MAX_PASSWORD_LENGTH = 256;

function derive(password: string, salt: Uint8Array, cost: number): Promise<Uint8Array> {
  const N = 2 ** cost;
  return new Promise((resolve, reject) => {
    // maxmem must exceed 128 * N * r bytes (128 MiB at cost 17).
    scrypt(
      password,
      salt,
      KEY_LENGTH,
      { N, r: 8, p: 1, maxmem: 256 * N * 8 + 1024 },
      (err, key) => err ? reject(err) : resolve(new Uint8Array(key)),
    );
  });
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unb64 = (text: string) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

export async function hashPassword(password: string, cost: number): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const key = await derive(password, salt, cost);
  return `scrypt$${cost}$8$1$${b64(salt)}$${b64(key)}`;
}

export async function verifyPassword(password: string, encoded: string): Promise<boolean> {
  const [scheme, cost, r, p, salt, key] = encoded.split("$");
  if (scheme !== "scrypt" || r !== "8" || p !== "1" || !salt || !key) return false;
  const derived = await derive(password, unb64(salt), Number(cost));
  return timingSafeEqual(derived, unb64(key));
}

const dummyHashes = new Map<number, Promise<string>>();

/**
 * Spends the same work as a real verification, for unknown emails, so that "no such account"
 * and "wrong password" cannot be told apart by timing.
 */
export async function verifyAgainstDummy(password: string, cost: number): Promise<false> {
  let dummy = dummyHashes.get(cost);
  if (!dummy) {
    dummy = hashPassword("not-a-real-password-" + crypto.randomUUID(), cost);
    dummyHashes.set(cost, dummy);
  }
  await verifyPassword(password, await dummy);
  return false;
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
