/**
 * The browser cookies this server sets, named and attributed in one place, and read and written
 * with hono's cookie helpers (`hono/utils/cookie`'s `parse`, `hono/cookie`'s `generateCookie`)
 * rather than by hand. Every one is `HttpOnly; Path=/`, and `Secure` with the `__Host-` name
 * prefix unless the site (lib/client.ts: PUBLIC_URL, else the scheme and host the client used, as
 * a trusted proxy reports them) is plain HTTP on loopback or a plain-HTTP PUBLIC_URL the operator
 * chose; so on a real deployment none can be read by scripts, sent over plain HTTP, or planted by
 * a sibling subdomain. Only the name that fits the site is read: a `__Host-`-less cookie is
 * ignored on a real deployment, and the prefixed one on plain HTTP.
 *
 * Reading takes the first cookie of that name the browser sends (browsers send the most specific
 * path first; a `__Host-` cookie can only have Path=/, so it has no rival).
 */
import { generateCookie } from "hono/cookie";
import { parse } from "hono/utils/cookie";
import { clientOf, resolveClient, type Site, siteOf, TRUST_NOTHING } from "../lib/client.ts";

/** A cookie's unprefixed name and the SameSite it needs. */
export type BrowserCookie = { readonly base: string; readonly sameSite: "Lax" | "Strict" };

/** The signed-in session (auth/sessions/manager.ts). */
export const SESSION_COOKIE: BrowserCookie = { base: "inbound_session", sameSite: "Lax" };
/** The browser's device cookie, for the sign-in throttle (auth/sessions/device_cookie.ts). */
export const DEVICE_COOKIE: BrowserCookie = { base: "inbound_device", sameSite: "Lax" };
/** A password sign-in waiting for its second step (auth/two_factor.ts). */
export const PENDING_COOKIE: BrowserCookie = { base: "inbound_two_factor", sameSite: "Lax" };
/**
 * A WebAuthn ceremony's challenge id (auth/passkeys.ts): Strict, since every ceremony is a
 * same-site fetch from the server's own pages.
 */
export const CHALLENGE_COOKIE: BrowserCookie = { base: "inbound_webauthn", sameSite: "Strict" };

/**
 * Whether cookies on `site` get `Secure` and the `__Host-` prefix: always over HTTPS; over plain
 * HTTP only when the host is not loopback and no plain-HTTP PUBLIC_URL was chosen (the browser
 * then drops the cookie, and the sign-in page says so: routes/accounts/sign_in_pages.tsx).
 */
export function secureCookies(site: Site): boolean {
  return site.https || !(site.configured || site.loopback);
}

/**
 * The site a response goes to: the request's resolved client (proxy-aware, PUBLIC_URL), or for a
 * bare URL (older callers) the URL alone, trusting no proxy.
 */
export function siteFor(target: Request | string | URL): Site {
  if (target instanceof Request) return clientOf(target).site;
  return siteOf(resolveClient("unknown", new Headers(), String(target), TRUST_NOTHING), null);
}

/** The cookie's name for the site of `target` (the request, or its URL). */
export function cookieName(cookie: BrowserCookie, target: Request | string | URL): string {
  return secureCookies(siteFor(target)) ? `__Host-${cookie.base}` : cookie.base;
}

/** The value of the request's cookie under the name that fits its site, or null. */
export function readCookie(req: Request, cookie: BrowserCookie): string | null {
  const header = req.headers.get("Cookie");
  if (!header) return null;
  const name = cookieName(cookie, req);
  return parse(header, name)[name] ?? null;
}

/**
 * `Set-Cookie` value carrying `value` for `maxAgeSeconds` (an empty value and 0 clear it), for
 * the response to `target`.
 */
export function cookieHeader(
  cookie: BrowserCookie,
  target: Request | string,
  value: string,
  maxAgeSeconds: number,
): string {
  return generateCookie(cookie.base, value, {
    path: "/",
    httpOnly: true,
    sameSite: cookie.sameSite,
    maxAge: maxAgeSeconds,
    ...(secureCookies(siteFor(target)) ? { secure: true, prefix: "host" as const } : {}),
  });
}
