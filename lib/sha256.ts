/**
 * The server's one SHA-256: lower-case hex of a string's UTF-8 bytes, synchronously, by
 * `node:crypto` (API keys, session tokens, emails, recovery codes).
 *
 * Until issue 21 one-block ASCII input was hashed here in plain JavaScript, measured then ~4.5 %
 * more API throughput than `createHash`. Re-measured for issue 21 (`deno run
 * bench/sha256_micro.ts`: a 46-character API key, median ns per hash over 28 rounds, Deno 2.9.6,
 * 2 shared cores, two runs): plain JS ~1,040, `createHash` ~910, the one-shot `hash` ~935,
 * `crypto.subtle.digest` ~18,000–21,000 (and asynchronous). The gain no longer holds, so the
 * plain-JS digest is gone; its code is kept only as that benchmark's comparison
 * (bench/_sha256_plain_js.ts). Checked against Web Crypto in tests/api_keys/sha256_test.ts for every
 * length from 0 to 200.
 */
import { createHash } from "node:crypto";

/** Lower-case hex SHA-256 of `text` (UTF-8), the same digest as Web Crypto's. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}
