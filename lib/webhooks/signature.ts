/**
 * Standard Webhooks signing (https://www.standardwebhooks.com): a delivery carries
 * `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64 sig>`, where
 * sig = HMAC-SHA256(key, `${id}.${timestamp}.${body}`) and key is the base64-decoded part of the
 * secret after `whsec_`. A receiver accepts when any of the space-separated `v1,` signatures
 * matches and the timestamp is within its tolerance (default 5 minutes) of its clock.
 */
import { decodeBase64, encodeBase64 } from "./base64.ts";

export const SECRET_PREFIX = "whsec_";
export const DEFAULT_TOLERANCE_SEC = 300;
const SECRET_BYTES = 32;

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes. Shown once, then stored. */
export function newWebhookSecret(): string {
  return SECRET_PREFIX + encodeBase64(crypto.getRandomValues(new Uint8Array(SECRET_BYTES)));
}

/** The HMAC key of a secret, or null when it is not `whsec_<base64>` (or bare base64). */
export function secretKeyBytes(secret: string): Uint8Array | null {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const bytes = decodeBase64(b64);
  return bytes !== null && bytes.length > 0 ? bytes : null;
}

async function hmac(key: Uint8Array, content: string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = await crypto.subtle.sign("HMAC", k, new TextEncoder().encode(content));
  return new Uint8Array(sig);
}

/** Unix seconds of a date, as Standard Webhooks puts them in `webhook-timestamp`. */
export function unixSeconds(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

/** The `webhook-signature` value (`v1,<base64>`) for one message. Throws on a malformed secret. */
export async function signWebhook(
  secret: string,
  messageId: string,
  timestamp: Date,
  body: string,
): Promise<string> {
  const key = secretKeyBytes(secret);
  if (key === null) throw new Error("webhook secret is malformed");
  const sig = await hmac(key, `${messageId}.${unixSeconds(timestamp)}.${body}`);
  return `v1,${encodeBase64(sig)}`;
}

function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Whether `headers` carry a valid signature of `body` under `secret`, with a timestamp within
 * `toleranceSec` (default 300) of `now`. False for anything missing or malformed; never throws.
 */
export async function verifyWebhook(
  secret: string,
  headers: Headers,
  body: string,
  opts: { now?: Date; toleranceSec?: number } = {},
): Promise<boolean> {
  const id = headers.get("webhook-id");
  const ts = headers.get("webhook-timestamp");
  const signatures = headers.get("webhook-signature");
  const key = secretKeyBytes(secret);
  if (!id || !ts || !signatures || key === null || !/^[0-9]{1,12}$/.test(ts)) return false;
  const now = unixSeconds(opts.now ?? new Date());
  if (Math.abs(now - Number(ts)) > (opts.toleranceSec ?? DEFAULT_TOLERANCE_SEC)) return false;
  const expected = await hmac(key, `${id}.${ts}.${body}`);
  let ok = false;
  for (const entry of signatures.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    const given = decodeBase64(entry.slice(comma + 1));
    if (given !== null && constantTimeEqual(given, expected)) ok = true;
  }
  return ok;
}
