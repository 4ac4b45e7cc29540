/**
 * TOTP (RFC 6238) as this server uses it: HMAC-SHA-1, 30-second steps, 6 digits, 20-byte secrets
 * shown as RFC 4648 base32 in the `otpauth://` URI authenticator apps read. The codes, secrets
 * and URIs are `otpauth`'s; what stays here is the server's policy around them, which
 * `otpauth`'s own `validate` does not give: the accepted *step* (callers refuse a step at or
 * before the last one they accepted, the replay rule), the earliest matching step in the window,
 * and every candidate computed and compared in constant time, with no early exit to time.
 *
 * Measured for issue 21 (`deno run bench/totp_micro.ts`: a wrong code, three steps, median over
 * 10–18 rounds, 2 shared cores, two runs): `otpauth` ~23–26 µs a check against ~148–158 µs for
 * the Web Crypto HMAC-SHA-1 (a key import and an awaited sign per step) this module used before.
 */
import * as OTPAuth from "otpauth";
import { timingSafeEqual } from "./crypto.ts";

export const TOTP_PERIOD_SECONDS = 30;
export const TOTP_DIGITS = 6;
/** Steps of clock drift accepted either way. */
export const TOTP_WINDOW = 1;
const SECRET_BYTES = 20;
const ALGORITHM = "SHA1";
const encoder = new TextEncoder();

export function base32Encode(bytes: Uint8Array): string {
  return new OTPAuth.Secret({ buffer: bytes.slice().buffer }).base32;
}

/** Decodes base32 (case-insensitive, spaces and `=` padding ignored); throws on other characters. */
export function base32Decode(text: string): Uint8Array {
  return OTPAuth.Secret.fromBase32(text).bytes;
}

/** A fresh random secret, base32. */
export function generateTotpSecret(): string {
  return new OTPAuth.Secret({ size: SECRET_BYTES }).base32;
}

/** The time step of `nowMs`. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_SECONDS);
}

function codeAt(secret: OTPAuth.Secret, step: number, digits = TOTP_DIGITS): string {
  return OTPAuth.HOTP.generate({ secret, algorithm: ALGORITHM, digits, counter: step });
}

/** The code for `nowMs` (`digits` other than 6 only for the RFC's 8-digit test vectors). */
export function totpCode(key: Uint8Array, nowMs: number, digits = TOTP_DIGITS): string {
  return codeAt(new OTPAuth.Secret({ buffer: key.slice().buffer }), totpStep(nowMs), digits);
}

/**
 * The step whose code `code` is, within TOTP_WINDOW steps of `nowMs`, or null. Callers refuse a
 * step at or before the last one they accepted (replay).
 */
export function matchTotp(secretBase32: string, code: string, nowMs: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const secret = OTPAuth.Secret.fromBase32(secretBase32);
  const given = encoder.encode(code);
  const now = totpStep(nowMs);
  let found: number | null = null;
  for (let step = now - TOTP_WINDOW; step <= now + TOTP_WINDOW; step++) {
    // Every candidate is computed and compared, found or not: no early exit to time.
    const same = timingSafeEqual(encoder.encode(codeAt(secret, step)), given);
    if (same && found === null) found = step;
  }
  return found;
}

/** The `otpauth://totp/…` URI authenticator apps read (Key Uri Format). */
export function totpUri(secretBase32: string, issuer: string, account: string): string {
  return new OTPAuth.TOTP({
    issuer,
    label: account,
    secret: OTPAuth.Secret.fromBase32(secretBase32),
    algorithm: ALGORITHM,
    digits: TOTP_DIGITS,
    period: TOTP_PERIOD_SECONDS,
  }).toString();
}
