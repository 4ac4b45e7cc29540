import assert from "node:assert/strict";
import { sha256Hex } from "../../lib/sha256.ts";
import { generateApiKey } from "../../auth/api_keys/format.ts";

/** The reference: Web Crypto's digest of the UTF-8 bytes. */
async function webCryptoHex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("SHA-256 matches Web Crypto for every length from 0 to 200", async () => {
  const alphabet = "abcXYZ019_-+/= ~\t";
  for (let length = 0; length <= 200; length++) {
    for (let sample = 0; sample < 3; sample++) {
      let text = "";
      for (let i = 0; i < length; i++) {
        text += alphabet[(i * 7 + sample * 13 + length) % alphabet.length];
      }
      assert.equal(sha256Hex(text), await webCryptoHex(text), `length ${length}`);
    }
  }
});

Deno.test("SHA-256 matches the standard test vectors and non-ASCII input", async () => {
  assert.equal(
    sha256Hex(""),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  );
  assert.equal(
    sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  for (const text of ["é", "ключ", "🔑 inb_", "\u0000\u007f\u0080"]) {
    assert.equal(sha256Hex(text), await webCryptoHex(text));
  }
});

Deno.test("API keys hash to the same digest as Web Crypto's", async () => {
  for (let i = 0; i < 200; i++) {
    const key = generateApiKey();
    assert.equal(sha256Hex(key), await webCryptoHex(key));
  }
});
