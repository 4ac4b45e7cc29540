/**
 * Request ids: `req_` + 10 random base62 characters fixed per process + 12 characters that
 * encode a per-process counter run through a keyed permutation of 64-bit values (a 6-round
 * Feistel network on two 32-bit halves, round keys drawn once per process). Unique across
 * processes (the random part) and within one (the permutation is a bijection) without drawing
 * randomness on every request, and consecutive ids look unrelated, so they do not reveal how
 * many requests the server has answered. They identify, they do not authorise: the permutation
 * hides the counter from a casual reader; it is not a cipher to bet secrets on.
 */
import { BASE62, randomBase62 } from "./crypto.ts";

const PROCESS_PART = randomBase62(10);
const ROUNDS = 6;
const KEYS = crypto.getRandomValues(new Uint32Array(ROUNDS));
let counter = 0;

/** murmur3's 32-bit finaliser of `x ^ key`: cheap and well mixed. */
function round(x: number, key: number): number {
  let h = (x ^ key) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Every two-character base62 string, in order: 3,844 entries, so three lookups per half. */
const PAIRS: string[] = [];
for (const a of BASE62) for (const b of BASE62) PAIRS.push(a + b);

/** A 32-bit value as 6 base62 characters (3844^3 = 62^6 > 2^32). */
function base62x6(n: number): string {
  const low = n % 3844;
  n = Math.floor(n / 3844);
  return PAIRS[Math.floor(n / 3844)] + PAIRS[n % 3844] + PAIRS[low];
}

export function nextRequestId(): string {
  const n = counter++;
  let left = Math.floor(n / 0x1_0000_0000) >>> 0;
  let right = n >>> 0;
  for (let r = 0; r < ROUNDS; r++) {
    const next = (left ^ round(right, KEYS[r])) >>> 0;
    left = right;
    right = next;
  }
  return `req_${PROCESS_PART}${base62x6(left)}${base62x6(right)}`;
}
