/**
 * The plain-JavaScript SHA-256 lib/sha256.ts used until issue 21, kept only as a side of
 * bench/sha256_micro.ts so that the measurement that retired it can be re-run. One 64-byte block
 * (ASCII input up to 55 characters) computed here with no allocation but the hex string;
 * anything else goes to `node:crypto`.
 */
import { createHash } from "node:crypto";

// deno-fmt-ignore
const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const H0 = [
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
];
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
/** The message schedule, reused: the function never yields, so one buffer serves every call. */
const W = new Uint32Array(64);
/** One block holds 55 bytes of message, the 0x80 marker and the 8-byte length. */
const ONE_BLOCK_MAX = 55;

const rotr = (x: number, n: number) => (x >>> n) | (x << (32 - n));

/** Lower-case hex SHA-256 of `text` (UTF-8), the same digest as Web Crypto's. */
export function plainJsSha256Hex(text: string): string {
  if (text.length > ONE_BLOCK_MAX) return _viaNodeCrypto(text);
  W.fill(0, 0, 16);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return _viaNodeCrypto(text);
    W[i >> 2] |= code << (24 - (i & 3) * 8);
  }
  W[text.length >> 2] |= 0x80 << (24 - (text.length & 3) * 8);
  W[15] = text.length * 8;
  for (let i = 16; i < 64; i++) {
    const x = W[i - 15];
    const y = W[i - 2];
    const s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >>> 3);
    const s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let [a, b, c, d, e, f, g, h] = H0;
  for (let i = 0; i < 64; i++) {
    const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) |
      0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  return _hex(a + H0[0]) + _hex(b + H0[1]) + _hex(c + H0[2]) + _hex(d + H0[3]) +
    _hex(e + H0[4]) + _hex(f + H0[5]) + _hex(g + H0[6]) + _hex(h + H0[7]);
}

function _hex(word: number): string {
  const w = word >>> 0;
  return HEX[w >>> 24] + HEX[(w >>> 16) & 255] + HEX[(w >>> 8) & 255] + HEX[w & 255];
}

function _viaNodeCrypto(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
