/**
 * The API key format: `inb_` + 36 random base62 characters (~214 bits) + a 6-character base62
 * CRC32 of everything before it. The checksum lets secret scanners recognise a key offline and
 * lets the server reject typos and garbage before touching KV, as GitHub's tokens do.
 */
import { BASE62, randomBase62 } from "../../lib/crypto.ts";

export const API_KEY_PREFIX = "inb_";
const RANDOM_LENGTH = 36;
const CHECKSUM_LENGTH = 6;
export const API_KEY_LENGTH = API_KEY_PREFIX.length + RANDOM_LENGTH + CHECKSUM_LENGTH;
const SHAPE = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}$`);
/** Characters kept in clear for display ("inb_" + 6). */
const START_LENGTH = API_KEY_PREFIX.length + 6;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) {
    crc = CRC_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function base62Fixed(value: number, width: number): string {
  let out = "";
  let v = value;
  for (let i = 0; i < width; i++) {
    out = BASE62[v % 62] + out;
    v = Math.floor(v / 62);
  }
  return out;
}

export function checksumOf(body: string): string {
  return base62Fixed(crc32(body), CHECKSUM_LENGTH);
}

export function generateApiKey(): string {
  const body = API_KEY_PREFIX + randomBase62(RANDOM_LENGTH);
  return body + checksumOf(body);
}

/** Shape and checksum only; says nothing about whether the key was ever issued. */
export function isWellFormedApiKey(token: string): boolean {
  if (token.length !== API_KEY_LENGTH || !SHAPE.test(token)) return false;
  const body = token.slice(0, -CHECKSUM_LENGTH);
  return checksumOf(body) === token.slice(-CHECKSUM_LENGTH);
}

export function displayStart(key: string): string {
  return key.slice(0, START_LENGTH);
}
