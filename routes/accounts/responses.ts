/**
 * How the account operations answer: JSON never cached, the session and device cookies set on
 * sign-up and sign-in, better-auth's shapes for its routes. Secrets travel only in Set-Cookie.
 */
import type { AccountSession, SecondStepRequired, SignedIn } from "../../auth/accounts/service.ts";
import { betterAuthUser } from "../../auth/accounts/service.ts";
import { deviceCookieHeader } from "../../auth/sessions/device_cookie.ts";
import { sessionCookieHeader, type SessionManager } from "../../auth/sessions/manager.ts";
import { pendingCookieHeader } from "../../auth/two_factor.ts";
import { jsonResponse } from "../../lib/errors.ts";

export function noStore(body: unknown, headers: [string, string][] = []): Response {
  return jsonResponse(body, 200, [...headers, ["Cache-Control", "no-store"]]);
}

/**
 * better-auth's session object. Its `token` is the session's id: the cookie token is a secret
 * and appears in no response body (docs: accounts). `lastSeenAt` and `current` are extras.
 */
export function betterAuthSession(userId: string, s: AccountSession) {
  return {
    id: s.id,
    token: s.id,
    userId,
    expiresAt: s.expiresAt,
    createdAt: s.createdAt,
    updatedAt: s.lastSeenAt,
    lastSeenAt: s.lastSeenAt,
    ipAddress: s.ip,
    userAgent: s.userAgent,
    current: s.current,
  };
}

/** The cookies a new session sets: the session's, and the device cookie (auth/sessions/device_cookie.ts). */
function sessionCookies(req: Request, sessions: SessionManager, r: SignedIn): [string, string][] {
  return [
    ["Set-Cookie", sessionCookieHeader(req, r.session.token, sessions.cookieMaxAgeSeconds)],
    // Sign-out leaves the device cookie in place.
    ["Set-Cookie", deviceCookieHeader(req, r.deviceCookie)],
    ["Cache-Control", "no-store"],
  ];
}

export function signedInResponse(
  req: Request,
  sessions: SessionManager,
  r: SignedIn,
  status: number,
): Response {
  return jsonResponse(
    { user: r.user, session: { id: r.session.sessionId, expiresAt: r.session.expiresAt } },
    status,
    sessionCookies(req, sessions, r),
  );
}

/** better-auth's `{ token, user }` answer to sign-up and sign-in; `token` is always null. */
export function betterAuthSignedIn(req: Request, sessions: SessionManager, r: SignedIn): Response {
  return jsonResponse(
    { token: null, redirect: false, user: betterAuthUser(r.user) },
    200,
    sessionCookies(req, sessions, r),
  );
}

/**
 * The password was right, a second factor is due: better-auth's `{ twoFactorRedirect: true,
 * twoFactorMethods }` and the pending cookie, no session (auth/two_factor.ts).
 */
export function secondStepResponse(req: Request, r: SecondStepRequired): Response {
  return jsonResponse(
    { twoFactorRedirect: true, twoFactorMethods: r.twoFactorMethods },
    200,
    [
      ["Set-Cookie", pendingCookieHeader(req, r.pendingCookie, r.pendingMaxAgeSeconds)],
      ["Cache-Control", "no-store"],
    ],
  );
}
