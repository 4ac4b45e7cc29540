/** TOTP (lib/totp.ts) against RFC 6238 Appendix B and an independent implementation (otpauth). */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import {
  base32Decode,
  base32Encode,
  generateTotpSecret,
  matchTotp,
  totpCode,
  totpStep,
  totpUri,
} from "../../lib/totp.ts";

const RFC_SECRET = new TextEncoder().encode("12345678901234567890");

/** RFC 6238 Appendix B, the SHA-1 column: (T in seconds, 8-digit TOTP). */
const RFC_VECTORS: [number, string][] = [
  [59, "94287082"],
  [1111111109, "07081804"],
  [1111111111, "14050471"],
  [1234567890, "89005924"],
  [2000000000, "69279037"],
  [20000000000, "65353130"],
];

Deno.test("TOTP follows RFC 6238 and accepts one step of drift, no more", async (t) => {
  await t.step("the RFC 6238 Appendix B SHA-1 vectors give their 8-digit codes", async () => {
    for (const [seconds, expected] of RFC_VECTORS) {
      assert.equal(await totpCode(RFC_SECRET, seconds * 1000, 8), expected, `T=${seconds}`);
    }
  });

  await t.step("the 6-digit codes in use are the vectors' last six digits", async () => {
    for (const [seconds, expected] of RFC_VECTORS) {
      assert.equal(await totpCode(RFC_SECRET, seconds * 1000), expected.slice(2), `T=${seconds}`);
    }
  });

  await t.step("codes match otpauth's for random secrets and times", async () => {
    for (let i = 0; i < 20; i++) {
      const secret = generateTotpSecret();
      const nowMs = Math.floor(Math.random() * 4e12);
      const reference = new OTPAuth.TOTP({
        secret: OTPAuth.Secret.fromBase32(secret),
        algorithm: "SHA1",
        digits: 6,
        period: 30,
      }).generate({ timestamp: nowMs });
      assert.equal(await totpCode(base32Decode(secret), nowMs), reference);
    }
  });

  await t.step("a code is accepted one step early or late, and refused two steps off", async () => {
    const secret = generateTotpSecret();
    const key = base32Decode(secret);
    const now = 1_700_000_000_000;
    const step = totpStep(now);
    for (const d of [-1, 0, 1]) {
      const code = await totpCode(key, now + d * 30_000);
      assert.equal(await matchTotp(secret, code, now), step + d);
    }
    for (const d of [-2, 2]) {
      const code = await totpCode(key, now + d * 30_000);
      // A coincidental match within the window is possible in principle; check the step.
      const matched = await matchTotp(secret, code, now);
      assert.ok(matched === null || Math.abs(matched - step) <= 1);
      assert.notEqual(matched, step + d);
    }
  });

  await t.step("malformed codes never match", async () => {
    const secret = generateTotpSecret();
    for (const code of ["", "12345", "1234567", "abcdef", "12 456"]) {
      assert.equal(await matchTotp(secret, code, Date.now()), null);
    }
  });

  await t.step("base32 round-trips and the URI is what authenticator apps read", () => {
    const bytes = crypto.getRandomValues(new Uint8Array(20));
    assert.deepEqual(base32Decode(base32Encode(bytes)), bytes);
    const secret = generateTotpSecret();
    assert.equal(secret.length, 32);
    const uri = new URL(totpUri(secret, "Inbound", "a@example.com"));
    assert.equal(uri.protocol, "otpauth:");
    assert.equal(uri.searchParams.get("secret"), secret);
    assert.equal(uri.searchParams.get("digits"), "6");
    assert.equal(uri.searchParams.get("period"), "30");
    const parsed = OTPAuth.URI.parse(uri.href);
    assert.ok(parsed instanceof OTPAuth.TOTP);
    assert.equal(parsed.secret.base32, secret);
  });
});
