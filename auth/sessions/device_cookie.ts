/**
 * Device cookies (OWASP, "Slow Down Online Guessing Attacks with Device Cookies"): a browser that
 * signs in to an account, or signs it up, is given a long-lived cookie that says "this browser has
 * known this account's password". Sign-in attempts carrying a valid one for the email are limited
 * per device instead of per email and address (auth/accounts/service.ts), so guessing at a known email
 * from many addresses cannot lock its owner out.
 *
 * The value is up to MAX_ACCOUNTS entries `<deviceId>.<userId>.<mac>` joined by `~`, one per
 * account signed in from this browser (most recent first), so a browser used for a work and a
 * personal account keeps the exemption for both: 128 random bits naming the browser (kept
 * across sign-ins, so its per-device count is not reset by succeeding), the account, and
 * HMAC-SHA-256 over both and the SHA-256 of the account's normalised email, under a secret that
 * all instances share (["meta", "device_cookie_secret"], created once with a `versionstamp: null`
 * check and cached in memory). It grants nothing but the per-device limit: it authenticates no
 * request, and it is valid only for sign-ins at that account's email. It is HttpOnly,
 * SameSite=Lax, Path=/, kept for a year, and Secure with the `__Host-` prefix under the same rule
 * as the session cookie. It is never logged.
 */
import { decodeBase64Url } from "hono/utils/encode";
import { base64Url, randomBase64Url } from "../../lib/crypto.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { deviceCookieSecretKey } from "../../store/keys.ts";
import { cookieHeader, cookieName, DEVICE_COOKIE, readCookie } from "../cookies.ts";

export const DEVICE_COOKIE_MAX_AGE_SECONDS = 365 * 24 * 60 * 60;
const SECRET_BYTES = 32;
const DEVICE_ID_BYTES = 16;
const ENTRY_SHAPE = /^([A-Za-z0-9_-]{22})\.(usr_[A-Za-z0-9]{1,64})\.([A-Za-z0-9_-]{43})$/;
/** Accounts one browser's device cookie vouches for (the cookie stays under ~1 KB). */
export const MAX_ACCOUNTS = 5;
const SEPARATOR = "~";

/** The well-formed entries of a cookie value, at most MAX_ACCOUNTS. */
function entriesOf(value: string): RegExpExecArray[] | null {
  const parts = value.split(SEPARATOR);
  if (parts.length > MAX_ACCOUNTS) return null;
  const entries = parts.map((p) => ENTRY_SHAPE.exec(p));
  return entries.every((e) => e !== null) ? entries as RegExpExecArray[] : null;
}
const encoder = new TextEncoder();

/**
 * The cookie's name for the site of `target` (the request, or its URL): Secure and `__Host-`
 * named exactly when the session cookie is (auth/cookies.ts).
 */
export function deviceCookieName(target: Request | string): string {
  return cookieName(DEVICE_COOKIE, target);
}

/** The well-formed device cookie the request carries under the name that fits it, or null. */
export function readDeviceCookie(req: Request): string | null {
  const value = readCookie(req, DEVICE_COOKIE);
  return value !== null && entriesOf(value) ? value : null;
}

/** `Set-Cookie` value carrying the device cookie `value` for a year, for the response to `req`. */
export function deviceCookieHeader(req: Request | string, value: string): string {
  return cookieHeader(DEVICE_COOKIE, req, value, DEVICE_COOKIE_MAX_AGE_SECONDS);
}

/** What the MAC covers: the device, the account and the account's email (normalised). */
function signedText(deviceId: string, userId: string, email: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(`inbound-device-v1\n${deviceId}\n${userId}\n${sha256Hex(email)}`);
}

/** The shared secret: read, or created by whichever instance commits first. */
async function loadSecret(kv: Deno.Kv): Promise<CryptoKey> {
  const key = deviceCookieSecretKey();
  for (let attempt = 0; attempt < 5; attempt++) {
    const entry = await kv.get<Uint8Array>(key);
    let raw: Uint8Array<ArrayBuffer>;
    if (entry.versionstamp !== null) {
      if (!(entry.value instanceof Uint8Array) || entry.value.byteLength !== SECRET_BYTES) {
        throw new Error("The device cookie secret in KV is malformed.");
      }
      raw = new Uint8Array(entry.value);
    } else {
      raw = crypto.getRandomValues(new Uint8Array(SECRET_BYTES));
      const res = await kv.atomic().check({ key, versionstamp: null }).set(key, raw).commit();
      // Another instance created it meanwhile: read theirs.
      if (!res.ok) continue;
    }
    return await crypto.subtle.importKey(
      "raw",
      raw,
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
  }
  throw new Error("Could not read or create the device cookie secret.");
}

export type DeviceClaim = { deviceId: string; userId: string };

export function deviceCookies(kv: Deno.Kv) {
  let secret: Promise<CryptoKey> | null = null;
  function key(): Promise<CryptoKey> {
    if (!secret) {
      secret = loadSecret(kv);
      // A failed load (KV unavailable) is tried again by the next caller.
      secret.catch(() => (secret = null));
    }
    return secret;
  }

  return {
    /**
     * The device cookie value after `userId` (normalised email `email`) signed in or up in a
     * browser that carried `current` (null: none): this account's entry first, the browser's
     * other accounts after it (at most MAX_ACCOUNTS in all), the browser's device id kept.
     */
    async issue(userId: string, email: string, current: string | null = null): Promise<string> {
      const all = current ? entriesOf(current) ?? [] : [];
      const others = all.filter((e) => e[2] !== userId);
      const deviceId = all[0]?.[1] ?? randomBase64Url(DEVICE_ID_BYTES);
      const mac = await crypto.subtle.sign(
        "HMAC",
        await key(),
        signedText(deviceId, userId, email),
      );
      const entry = `${deviceId}.${userId}.${base64Url(new Uint8Array(mac))}`;
      return [entry, ...others.map((e) => e[0])].slice(0, MAX_ACCOUNTS).join(SEPARATOR);
    },

    /**
     * The device and account `value` was issued for, when it is a genuine device cookie for a
     * sign-in at `email` (normalised); null otherwise. The MAC is checked in constant time.
     */
    async verify(value: string | null, email: string): Promise<DeviceClaim | null> {
      for (const [, deviceId, userId, mac] of (value ? entriesOf(value) : null) ?? []) {
        const ok = await crypto.subtle.verify(
          "HMAC",
          await key(),
          decodeBase64Url(mac),
          signedText(deviceId, userId, email),
        );
        if (ok) return { deviceId, userId };
      }
      return null;
    },
  };
}

export type DeviceCookies = ReturnType<typeof deviceCookies>;
