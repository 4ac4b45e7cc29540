/**
 * `/api/auth/*`: sign up, sign in, sign out and the current session, as JSON. These routes sit
 * outside `/api/e2`, so they authenticate nothing with a Bearer key; their state-changing requests
 * are refused from other origins (login CSRF included).
 */
import { Hono } from "hono";
import { z } from "zod";
import { type AccountService, clientAddress, type SignedIn } from "../auth/accounts.ts";
import { assertSameOrigin } from "../auth/csrf.ts";
import { deviceCookieHeader } from "../auth/device_cookie.ts";
import type { AppEnv } from "../auth/middleware.ts";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../auth/password.ts";
import {
  clearSessionCookieHeader,
  sessionCookieHeader,
  type SessionManager,
} from "../auth/session.ts";
import { assertNever } from "../auth/principal.ts";
import { accountSuspended, jsonResponse, unauthorized } from "../lib/errors.ts";
import { parseJsonBody } from "./validation.ts";

export const emailSchema = z.string().trim().max(254, "must be at most 254 characters").pipe(
  z.email("must be a valid email address"),
);

/** Bodies are strict: an unknown field is a 400 that names it (routes/validation.ts). */
export const signUpBody = z.strictObject({
  email: emailSchema,
  password: z.string()
    .min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`)
    .max(MAX_PASSWORD_LENGTH, `must be at most ${MAX_PASSWORD_LENGTH} characters`),
});

/** Sign-in checks only the shape: length rules would tell an attacker which passwords to skip. */
export const signInBody = z.strictObject({
  email: z.string().trim().min(1, "is required").max(254, "must be at most 254 characters"),
  password: z.string().min(1, "is required").max(
    MAX_PASSWORD_LENGTH,
    `must be at most ${MAX_PASSWORD_LENGTH} characters`,
  ),
});

export type AuthRouteDeps = {
  accounts: AccountService;
  sessions: SessionManager;
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

export function authRoutes(deps: AuthRouteDeps) {
  const { accounts, sessions } = deps;
  const app = new Hono<AppEnv>();

  app.post("/sign-up", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, signUpBody);
    const r = await accounts.signUp(body, clientAddress(c));
    return signedInResponse(c.req.raw, sessions, r, 201);
  });

  app.post("/sign-in", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, signInBody);
    const r = await accounts.signIn(body, c.req.raw, clientAddress(c));
    return signedInResponse(c.req.raw, sessions, r, 200);
  });

  app.post("/sign-out", async (c) => {
    assertSameOrigin(c.req.raw);
    const ended = await sessions.end(c.req.raw);
    return jsonResponse(
      { success: true, message: ended ? "Signed out." : "There was no session to end." },
      200,
      [["Set-Cookie", clearSessionCookieHeader(c.req.raw)], ["Cache-Control", "no-store"]],
    );
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
