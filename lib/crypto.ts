/** Randomness, encodings and comparisons shared by every layer. Web Crypto and hono only. */
import { encodeBase64Url } from "hono/utils/encode";

export const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * `length` uniformly random base62 characters from `crypto.getRandomValues`. Bytes >= 248 are
 * rejected so that `byte % 62` is unbiased (248 = 4 * 62).
 */
export function randomBase62(length: number): string {
  let out = "";
  const buf = new Uint8Array(length * 2);
  while (out.length < length) {
    crypto.getRandomValues(buf);
    for (const b of buf) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

/** Prefixed opaque identifier, e.g. `usr_4Zx…`. 22 base62 chars carry ~131 bits. */
export function newId(prefix: string): string {
  return `${prefix}_${randomBase62(22)}`;
}

/**
 * Unpadded base64url of `bytes` (RFC 4648 section 5, the `=` padding stripped), the form every
 * token and MAC here takes in a cookie, a link or a cursor.
 */
export function base64Url(bytes: Uint8Array): string {
  // `slice()`: exactly the view's bytes, in an ArrayBuffer of their own.
  return encodeBase64Url(bytes.slice().buffer).replace(/=+$/, "");
}

/** `byteLength` random bytes as unpadded base64url: session, pending and reset-link tokens. */
export function randomBase64Url(byteLength: number): string {
  return base64Url(crypto.getRandomValues(new Uint8Array(byteLength)));
}

/** Constant-time comparison for equal-length byte arrays. */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
