import assert from "node:assert/strict";
import {
  API_KEY_LENGTH,
  API_KEY_PREFIX,
  checksumOf,
  crc32,
  displayStart,
  generateApiKey,
  isWellFormedApiKey,
} from "../../auth/api_keys/format.ts";

Deno.test("a generated key is inb_, 36 random base62 characters and a 6-character checksum", () => {
  const key = generateApiKey();
  assert.equal(key.length, API_KEY_LENGTH);
  assert.ok(key.startsWith(API_KEY_PREFIX));
  assert.match(key, /^inb_[0-9A-Za-z]{42}$/);
  assert.equal(key.slice(-6), checksumOf(key.slice(0, -6)));
  assert.ok(isWellFormedApiKey(key));
});

Deno.test("generated keys carry at least 190 bits of randomness and do not repeat", () => {
  // 36 characters of a 62-letter alphabet: log2(62) * 36.
  assert.ok(Math.log2(62) * 36 >= 190);
  const keys = new Set(Array.from({ length: 2000 }, generateApiKey));
  assert.equal(keys.size, 2000);
});

Deno.test("the random part uses every base62 character with no visible bias", () => {
  const counts = new Map<string, number>();
  for (let i = 0; i < 2000; i++) {
    for (const ch of generateApiKey().slice(4, 40)) counts.set(ch, (counts.get(ch) ?? 0) + 1);
  }
  assert.equal(counts.size, 62);
  const expected = (2000 * 36) / 62;
  for (const n of counts.values()) assert.ok(Math.abs(n - expected) < expected * 0.25);
});

Deno.test("CRC32 matches the standard check value", () => {
  assert.equal(crc32("123456789"), 0xcbf43926);
  assert.equal(crc32(""), 0);
});

Deno.test("a key with any single character changed fails the checksum", () => {
  const key = generateApiKey();
  let rejected = 0;
  for (let i = API_KEY_PREFIX.length; i < key.length; i++) {
    const replacement = key[i] === "a" ? "b" : "a";
    const mutated = key.slice(0, i) + replacement + key.slice(i + 1);
    if (!isWellFormedApiKey(mutated)) rejected++;
  }
  assert.equal(rejected, key.length - API_KEY_PREFIX.length);
});

Deno.test("malformed tokens are not well formed", () => {
  const key = generateApiKey();
  for (
    const bad of [
      "",
      "inb_",
      key.slice(0, -1),
      key + "a",
      key.replace("inb_", "INB_"),
      key.replace("inb_", "sk_l"),
      key.slice(0, 10) + "-" + key.slice(11),
      "inb_" + "a".repeat(42),
    ]
  ) {
    assert.equal(isWellFormedApiKey(bad), false, bad);
  }
});

Deno.test("the display start is the prefix and six characters, never the whole key", () => {
  const key = generateApiKey();
  assert.equal(displayStart(key), key.slice(0, 10));
});
