/**
 * `/api/auth/*`: sign up, sign in, sign out and the current session, as JSON. These routes sit
 * outside `/api/e2`, so they authenticate nothing with a Bearer key; their state-changing requests
 * are refused from other origins (login CSRF included).
 */
import { Hono } from "hono";
import { z } from "zod";
import type { Context } from "hono";
import {
  type AccountService,
  type AccountSession,
  betterAuthUser,
  type Caller,
  clientAddress,
  type PublicUser,
  requestOrigin,
  RESET_REQUESTED_MESSAGE,
  type SecondStepRequired,
  type SignedIn,
} from "../auth/accounts.ts";
import { pendingCookieHeader } from "../auth/two_factor.ts";
import { requireRecentAuth } from "../auth/sudo.ts";
import { twoFactorRoutes } from "./two_factor.ts";
import { auditContextOf } from "../auth/audit_context.ts";
import { assertSameOrigin } from "../auth/csrf.ts";
import { deviceCookieHeader } from "../auth/device_cookie.ts";
import type { AppEnv } from "../auth/middleware.ts";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../auth/password.ts";
import {
  clearSessionCookieHeader,
  mailLinkOrigin,
  sessionCookieHeader,
  type SessionManager,
  siteFor,
} from "../auth/session.ts";
import { assertNever } from "../auth/principal.ts";
import { accountSuspended, jsonResponse, unauthorized } from "../lib/errors.ts";
import { MAX_NAME_LENGTH } from "../store/users.ts";
import { parseJsonBody } from "./validation.ts";
import { emailVerificationRoutes, verifiedCallbackPath } from "./email_verification.ts";
import type { Clock } from "../lib/clock.ts";

export const emailSchema = z.string().trim().max(254, "must be at most 254 characters").pipe(
  z.email("must be a valid email address"),
);

/** A display name: 1-100 characters once trimmed. */
export const nameSchema = z.string().trim()
  .min(1, "is required")
  .max(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`);

export const newPasswordSchema = z.string()
  .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`)
  .max(MAX_PASSWORD_LENGTH, `must be at most ${MAX_PASSWORD_LENGTH} characters`);

const currentPasswordSchema = z.string().min(1, "is required").max(
  MAX_PASSWORD_LENGTH,
  `must be at most ${MAX_PASSWORD_LENGTH} characters`,
);

/** Bodies are strict: an unknown field is a 400 that names it (routes/validation.ts). */
export const signUpBody = z.strictObject({
  email: emailSchema,
  password: newPasswordSchema,
  name: nameSchema.optional(),
});

/** better-auth's `POST /sign-up/email`: the name is required there. */
export const signUpEmailBody = z.strictObject({
  name: nameSchema,
  email: emailSchema,
  password: newPasswordSchema,
  callbackURL: z.string().max(2048).optional(),
  rememberMe: z.boolean().optional(),
});

export const changePasswordBody = z.strictObject({
  currentPassword: currentPasswordSchema,
  newPassword: newPasswordSchema,
  /** Defaults to true here (better-auth's default is false): see README, Accounts. */
  revokeOtherSessions: z.boolean().optional(),
});

export const updateUserBody = z.strictObject({ name: nameSchema });

/** better-auth's `POST /request-password-reset`. */
export const requestPasswordResetBody = z.strictObject({
  email: z.string().trim().min(1, "is required").max(254, "must be at most 254 characters"),
  redirectTo: z.string().max(2048, "must be at most 2048 characters").optional(),
});

/** better-auth's `POST /reset-password`. */
export const resetPasswordBody = z.strictObject({
  newPassword: newPasswordSchema,
  token: z.string().min(1, "is required").max(200, "must be at most 200 characters"),
});

/**
 * The origin a reset link may point to: PUBLIC_URL's, or in development a loopback origin; null
 * otherwise, since the Host header is the client's to choose (a link to it would hand the token
 * to whoever asked for the reset).
 */
export function resetLinkOrigin(req: Request): string | null {
  return mailLinkOrigin(req);
}

/** better-auth names the session to revoke `token`; here it is the session's id, never a token. */
export const revokeSessionBody = z.strictObject({
  token: z.string().min(1, "is required").max(100, "must be at most 100 characters"),
});

/**
 * better-auth's `POST /delete-user`. The password is required here (better-auth also takes a
 * fresh session or an e-mailed token instead); `callbackURL` is accepted and ignored.
 */
export const deleteUserBody = z.strictObject({
  password: currentPasswordSchema,
  callbackURL: z.string().max(2048).optional(),
});

/** Sign-in checks only the shape: length rules would tell an attacker which passwords to skip. */
export const signInBody = z.strictObject({
  email: z.string().trim().min(1, "is required").max(254, "must be at most 254 characters"),
  password: currentPasswordSchema,
});

/** better-auth's `POST /sign-in/email`. */
export const signInEmailBody = signInBody.extend({
  callbackURL: z.string().max(2048).optional(),
  rememberMe: z.boolean().optional(),
});

/**
 * better-auth's session object. Its `token` is the session's id: the cookie token is a secret
 * and appears in no response body (README, Accounts). `lastSeenAt` and `current` are extras.
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

export type AuthRouteDeps = {
  accounts: AccountService;
  sessions: SessionManager;
  clock: Clock;
  auditRetentionDays: number;
};

function signedInResponse(req: Request, sessions: SessionManager, r: SignedIn, status: number) {
  return jsonResponse(
    { user: r.user, session: { id: r.session.sessionId, expiresAt: r.session.expiresAt } },
    status,
    [
      ["Set-Cookie", sessionCookieHeader(req, r.session.token, sessions.cookieMaxAgeSeconds)],
      // The device cookie (auth/device_cookie.ts); sign-out leaves it in place.
      ["Set-Cookie", deviceCookieHeader(req, r.deviceCookie)],
      ["Cache-Control", "no-store"],
    ],
  );
}

/** better-auth's `{ token, user }` answer to sign-up and sign-in; `token` is always null. */
function betterAuthSignedIn(req: Request, sessions: SessionManager, r: SignedIn) {
  return jsonResponse(
    { token: null, redirect: false, user: betterAuthUser(r.user) },
    200,
    [
      ["Set-Cookie", sessionCookieHeader(req, r.session.token, sessions.cookieMaxAgeSeconds)],
      ["Set-Cookie", deviceCookieHeader(req, r.deviceCookie)],
      ["Cache-Control", "no-store"],
    ],
  );
}

/**
 * The password was right, a second factor is due: better-auth's `{ twoFactorRedirect: true,
 * twoFactorMethods }` and the pending cookie, no session (auth/two_factor.ts).
 */
function secondStepResponse(req: Request, r: SecondStepRequired): Response {
  return jsonResponse(
    { twoFactorRedirect: true, twoFactorMethods: r.twoFactorMethods },
    200,
    [
      ["Set-Cookie", pendingCookieHeader(req, r.pendingCookie, r.pendingMaxAgeSeconds)],
      ["Cache-Control", "no-store"],
    ],
  );
}

function noStore(body: unknown, headers: [string, string][] = []): Response {
  return jsonResponse(body, 200, [...headers, ["Cache-Control", "no-store"]]);
}

export function authRoutes(deps: AuthRouteDeps) {
  const { accounts, sessions } = deps;
  const app = new Hono<AppEnv>();

  /** The signed-in caller: 401 without a live session, 403 for a suspended account. */
  async function caller(c: Context<AppEnv>): Promise<{ caller: Caller; user: PublicUser }> {
    const current = await accounts.current(c.req.raw);
    switch (current.kind) {
      case "ok":
        return {
          caller: {
            userId: current.user.id,
            sessionId: current.session.id,
            audit: auditContextOf(c.req.raw, {
              userId: current.user.id,
              method: "session",
              sessionId: current.session.id,
            }),
          },
          user: current.user,
        };
      case "suspended":
        throw accountSuspended();
      case "invalid":
        throw unauthorized();
      default:
        return assertNever(current);
    }
  }

  /** `callbackURL`: where the verification link returns (better-auth's sign-up/email). */
  async function signUp(
    c: Context<AppEnv>,
    body: z.output<typeof signUpBody> & { callbackURL?: string },
  ) {
    const origin = requestOrigin(c);
    const input = { email: body.email, password: body.password, name: body.name };
    const linkOrigin = resetLinkOrigin(c.req.raw);
    const callbackPath = verifiedCallbackPath(body.callbackURL, siteFor(c.req.raw).origin);
    return await accounts.signUp(input, origin.ip, origin.userAgent, c.req.raw, {
      origin: linkOrigin,
      callbackPath,
    });
  }

  async function signOut(c: Context<AppEnv>) {
    assertSameOrigin(c.req.raw);
    const ended = await accounts.signOut(c.req.raw);
    return jsonResponse(
      { success: true, message: ended ? "Signed out." : "There was no session to end." },
      200,
      [["Set-Cookie", clearSessionCookieHeader(c.req.raw)], ["Cache-Control", "no-store"]],
    );
  }

  app.post("/sign-up", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, signUpBody);
    return signedInResponse(c.req.raw, sessions, await signUp(c, body), 201);
  });

  app.post("/sign-in", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, signInBody);
    const r = await accounts.signIn(body, c.req.raw, clientAddress(c));
    if ("twoFactorRedirect" in r) return secondStepResponse(c.req.raw, r);
    return signedInResponse(c.req.raw, sessions, r, 200);
  });

  app.post("/sign-out", signOut);

  // Second factors and re-authentication (routes/two_factor.ts).
  app.route("/", twoFactorRoutes({ accounts }));
  // E-mail verification (routes/email_verification.ts).
  app.route(
    "/",
    emailVerificationRoutes({ ...deps, emailVerification: accounts.emailVerification }),
  );

  // --- better-auth's routes (README, Accounts) -------------------------------------------

  app.post("/sign-up/email", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, signUpEmailBody);
    return betterAuthSignedIn(c.req.raw, sessions, await signUp(c, body));
  });

  app.post("/sign-in/email", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, signInEmailBody);
    const input = { email: body.email, password: body.password };
    const r = await accounts.signIn(input, c.req.raw, clientAddress(c));
    if ("twoFactorRedirect" in r) return secondStepResponse(c.req.raw, r);
    return betterAuthSignedIn(c.req.raw, sessions, r);
  });

  /** `{ session, user }`, or `null` (200) when signed out, as better-auth answers. */
  app.get("/get-session", async (c) => {
    const current = await accounts.current(c.req.raw);
    switch (current.kind) {
      case "ok": {
        const session = await accounts.currentSession({
          userId: current.user.id,
          sessionId: current.session.id,
        });
        if (!session) return noStore(null);
        return noStore({
          session: betterAuthSession(current.user.id, session),
          user: betterAuthUser(current.user),
        });
      }
      case "suspended":
        throw accountSuspended();
      case "invalid":
        return noStore(null);
      default:
        return assertNever(current);
    }
  });

  app.post("/update-user", async (c) => {
    assertSameOrigin(c.req.raw);
    const { caller: who } = await caller(c);
    const body = await parseJsonBody(c, updateUserBody);
    await accounts.updateName(who, body.name);
    return noStore({ status: true });
  });

  /** Keeps the caller's session (no new cookie), so `token` is null as well. */
  app.post("/change-password", async (c) => {
    assertSameOrigin(c.req.raw);
    const { caller: who } = await caller(c);
    await requireRecentAuth(c, undefined, { ...who, method: "session" });
    const body = await parseJsonBody(c, changePasswordBody);
    const r = await accounts.changePassword(who, body, clientAddress(c));
    return noStore({ token: null, user: betterAuthUser(r.user) });
  });

  app.get("/list-sessions", async (c) => {
    const { caller: who } = await caller(c);
    const list = await accounts.listSessions(who);
    return noStore(list.map((s) => betterAuthSession(who.userId, s)));
  });

  /** `token` names the session by id (as list-sessions gives it); revoking your own signs out. */
  app.post("/revoke-session", async (c) => {
    assertSameOrigin(c.req.raw);
    const { caller: who } = await caller(c);
    const body = await parseJsonBody(c, revokeSessionBody);
    // As better-auth: `{ status: true }` whether or not the account had a session by that id.
    await accounts.revokeSession(who, body.token);
    const own = body.token === who.sessionId;
    return noStore(
      { status: true },
      own ? [["Set-Cookie", clearSessionCookieHeader(c.req.raw)]] : [],
    );
  });

  app.post("/revoke-other-sessions", async (c) => {
    assertSameOrigin(c.req.raw);
    const { caller: who } = await caller(c);
    await accounts.revokeOtherSessions(who);
    return noStore({ status: true });
  });

  /** Deletes the account and everything it holds (README, Accounts); clears the cookie. */
  app.post("/delete-user", async (c) => {
    assertSameOrigin(c.req.raw);
    const { caller: who } = await caller(c);
    await requireRecentAuth(c, undefined, { ...who, method: "session" });
    const body = await parseJsonBody(c, deleteUserBody);
    await accounts.deleteUser(who, { password: body.password }, clientAddress(c));
    return noStore(
      { success: true, message: "User deleted" },
      [["Set-Cookie", clearSessionCookieHeader(c.req.raw)]],
    );
  });

  /**
   * The same answer whether or not the email has an account, and whether or not a mail goes out
   * (at most one per account per 5 minutes: auth/accounts.ts RESET_MAIL_INTERVAL_MS).
   */
  app.post("/request-password-reset", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, requestPasswordResetBody);
    await accounts.requestPasswordReset(body, resetLinkOrigin(c.req.raw), clientAddress(c));
    return noStore({ status: true, message: RESET_REQUESTED_MESSAGE });
  });

  /** Sets the new password, consumes the token, signs every session of the account out. */
  app.post("/reset-password", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, resetPasswordBody);
    await accounts.resetPassword(body, clientAddress(c), c.req.raw);
    return noStore({ status: true }, [["Set-Cookie", clearSessionCookieHeader(c.req.raw)]]);
  });

  /** The signed-in account: 401 without a live session, 403 ACCOUNT_SUSPENDED as on /api/e2. */
  app.get("/session", async (c) => {
    const current = await accounts.current(c.req.raw);
    switch (current.kind) {
      case "ok":
        return jsonResponse({ user: current.user, session: current.session }, 200, {
          "Cache-Control": "no-store",
        });
      case "suspended":
        throw accountSuspended();
      case "invalid":
        throw unauthorized();
      default:
        return assertNever(current);
    }
  });

  return app;
}
