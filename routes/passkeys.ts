/**
 * `/api/auth/passkey/*`: passkeys (WebAuthn), named as better-auth's passkey plugin names them.
 *
 *   generate-register-options / verify-registration   signed in: add a passkey (sudo-guarded)
 *   generate-authenticate-options / verify-authentication
 *                                                     signed out: a passkey alone signs in; with
 *                                                     a pending sign-in: its second step
 *   list-user-passkeys, update-passkey (name), delete-passkey (sudo-guarded)
 *   generate-reauthenticate-options / reauthenticate  signed in: a fresh proof for sudo mode
 *
 * Every POST is refused from another origin. The ceremony's challenge is named by an HttpOnly
 * cookie (auth/passkeys.ts) and used once.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from "@simplewebauthn/server";
import {
  type AccountService,
  betterAuthUser,
  clientAddress,
  emitAccountEvent,
  type PublicUser,
  publicUser,
} from "../auth/accounts.ts";
import { auditContextOf } from "../auth/audit_context.ts";
import { assertSameOrigin } from "../auth/csrf.ts";
import { deviceCookieHeader, deviceCookies, readDeviceCookie } from "../auth/device_cookie.ts";
import type { AppEnv } from "../auth/middleware.ts";
import {
  authenticationOptions,
  clearChallengeCookie,
  newChallengeCookie,
  registrationOptions,
  verifyAuthentication,
  verifyRegistration,
} from "../auth/passkeys.ts";
import { assertNever, type Principal } from "../auth/principal.ts";
import { requireRecentAuth } from "../auth/sudo.ts";
import {
  completePendingSignIn,
  type PendingSignInRef,
  readPendingSignIn,
  twoFactorOf,
} from "../auth/two_factor.ts";
import { sessionCookieHeader, type SessionManager } from "../auth/session.ts";
import { throttleSubject } from "../lib/client.ts";
import type { Clock } from "../lib/clock.ts";
import { accountSuspended, HttpError, jsonResponse, unauthorized } from "../lib/errors.ts";
import { summariseUserAgent } from "../lib/user_agent.ts";
import {
  deletePasskey,
  listPasskeys,
  MAX_PASSKEY_NAME,
  passkeyView,
  renamePasskey,
} from "../store/passkeys.ts";
import { markSessionReauthenticated } from "../store/sessions.ts";
import { recordAttempt } from "../store/throttle.ts";
import { getUser } from "../store/users.ts";
import { betterAuthSession } from "./auth.ts";
import { parseJsonBody } from "./validation.ts";
import type { AuditContext } from "../store/audit.ts";

const b64url = z.string().min(1).max(4096).regex(/^[A-Za-z0-9_-]*$/, "must be base64url");

/** A credential as `PublicKeyCredential.toJSON()` gives it; the library checks the rest. */
const credentialBase = {
  id: b64url,
  rawId: b64url,
  type: z.literal("public-key"),
  authenticatorAttachment: z.string().max(32).nullable().optional(),
  clientExtensionResults: z.looseObject({}).optional().default({}),
};

const registrationResponse = z.looseObject({
  ...credentialBase,
  response: z.looseObject({
    clientDataJSON: b64url,
    attestationObject: b64url,
    transports: z.array(z.string().max(32)).max(10).optional(),
  }),
});

const authenticationResponse = z.looseObject({
  ...credentialBase,
  response: z.looseObject({
    clientDataJSON: b64url,
    authenticatorData: b64url,
    signature: b64url,
    userHandle: z.string().max(512).regex(/^[A-Za-z0-9_-]*$/).nullable().optional(),
  }),
});

export const passkeyNameSchema = z.string().trim().min(1, "is required").max(
  MAX_PASSKEY_NAME,
  `must be at most ${MAX_PASSKEY_NAME} characters`,
);

export const verifyRegistrationBody = z.strictObject({
  response: registrationResponse,
  name: passkeyNameSchema.optional(),
});

export const verifyAuthenticationBody = z.strictObject({ response: authenticationResponse });

export const passkeyIdSchema = z.string().regex(/^pky_[A-Za-z0-9]{22}$/, "is not a passkey id");
export const updatePasskeyBody = z.strictObject({ id: passkeyIdSchema, name: passkeyNameSchema });
export const deletePasskeyBody = z.strictObject({ id: passkeyIdSchema });

export type PasskeyRouteDeps = {
  kv: Deno.Kv;
  clock: Clock;
  accounts: AccountService;
  sessions: SessionManager;
  /** AUDIT_RETENTION_DAYS for the events these routes record. */
  auditRetentionDays?: number;
  /**
   * The sign-in limit: a client address may start PASSKEY_OPTIONS_FACTOR times as many signed-out
   * passkey ceremonies per window (each stores a challenge), then 429.
   */
  signInThrottle?: { max: number; windowMs: number };
};

export const PASSKEY_OPTIONS_FACTOR = 5;

function noStore(body: unknown, headers: [string, string][] = []): Response {
  return jsonResponse(body, 200, [...headers, ["Cache-Control", "no-store"]]);
}

/** The response's credential as the library types it (the schema checked the shape). */
function asRegistration(v: z.output<typeof registrationResponse>): RegistrationResponseJSON {
  return v as unknown as RegistrationResponseJSON;
}
function asAuthentication(v: z.output<typeof authenticationResponse>): AuthenticationResponseJSON {
  const r = v as unknown as AuthenticationResponseJSON;
  // `null` (what toJSON() gives a credential without one) means none.
  if (r.response.userHandle === null) delete r.response.userHandle;
  return r;
}

export function passkeyRoutes(deps: PasskeyRouteDeps) {
  const { kv, clock, accounts, sessions } = deps;
  /** The request's audit context with AUDIT_RETENTION_DAYS. */
  const auditCtx = (req: Request, who: Principal | { userId: string }): AuditContext => ({
    ...auditContextOf(req, who),
    ...(deps.auditRetentionDays !== undefined ? { retentionDays: deps.auditRetentionDays } : {}),
  });
  const devices = deviceCookies(kv);
  const app = new Hono<AppEnv>();

  type SignedInCaller = { principal: Principal; user: PublicUser; sessionId: string };

  /** The signed-in caller: 401 without a live session, 403 for a suspended account. */
  async function caller(c: Context<AppEnv>): Promise<SignedInCaller> {
    const outcome = await sessions.resolve(c.req.raw);
    switch (outcome.kind) {
      case "ok":
        return {
          principal: outcome.principal,
          user: publicUser(outcome.user),
          sessionId: outcome.session.sessionId,
        };
      case "suspended":
        throw accountSuspended();
      case "invalid":
        throw unauthorized();
      default:
        return assertNever(outcome);
    }
  }

  /** The pending second step of a sign-in (auth/two_factor.ts), or null. */
  async function pendingSignIn(c: Context<AppEnv>): Promise<PendingSignInRef | null> {
    try {
      twoFactorOf(c);
    } catch {
      return null; // An app built without the two-factor service has no pending sign-ins.
    }
    return await readPendingSignIn(c);
  }

  /** What a pending sign-in's challenge is bound to: its account and its cookie's digest. */
  const pendingBinding = (p: PendingSignInRef) => ({
    userId: p.userId,
    sessionId: `pending:${p.hash}`,
  });

  /** Registering a passkey changes the second factors: sudo mode (auth/sudo.ts). */
  const sudo = (c: Context<AppEnv>, who: SignedInCaller) =>
    requireRecentAuth(c, { kv, clock }, who.principal);

  /**
   * Enrolling a passkey: sudo mode, and a verified address when EMAIL_VERIFICATION=required
   * (auth/email_verification.ts), before any challenge is made or credential stored.
   */
  const mayEnrol = async (c: Context<AppEnv>, who: SignedInCaller) => {
    await sudo(c, who);
    await accounts.emailVerification.requireVerified(who.user.id, "add a passkey");
  };

  /** GET, as better-auth's plugin answers it. */
  app.get("/generate-register-options", async (c) => {
    const who = await caller(c);
    await mayEnrol(c, who);
    const { options, challengeId } = await registrationOptions(kv, c.req.raw, {
      userId: who.user.id,
      sessionId: who.sessionId,
      email: who.user.email,
      name: who.user.name,
    }, clock());
    return noStore(options, [["Set-Cookie", newChallengeCookie(c.req.raw, challengeId)]]);
  });

  app.post("/verify-registration", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await caller(c);
    await mayEnrol(c, who);
    const body = await parseJsonBody(c, verifyRegistrationBody);
    const nowMs = clock();
    const record = await verifyRegistration(
      kv,
      c.req.raw,
      { userId: who.user.id, sessionId: who.sessionId },
      asRegistration(body.response),
      body.name ?? "Passkey",
      auditCtx(c.req.raw, who.principal),
      nowMs,
    );
    return noStore(passkeyView(record), [["Set-Cookie", clearChallengeCookie(c.req.raw)]]);
  });

  /** With a pending sign-in, only that account's passkeys may answer (its second step). */
  app.get("/generate-authenticate-options", async (c) => {
    if (deps.signInThrottle) {
      const limit = deps.signInThrottle;
      const max = limit.max * PASSKEY_OPTIONS_FACTOR;
      const subject = throttleSubject(clientAddress(c));
      const r = await recordAttempt(kv, "passkey:ip", subject, clock(), { ...limit, max });
      if (!r.allowed) {
        throw new HttpError(
          429,
          `Too many passkey sign-in attempts. Retry after ${r.retryAfterSeconds} seconds.`,
          { code: "TOO_MANY_ATTEMPTS" },
          { "Retry-After": String(r.retryAfterSeconds) },
        );
      }
    }
    const pending = await pendingSignIn(c);
    const bound = pending ? pendingBinding(pending) : null;
    const { options, challengeId } = await authenticationOptions(kv, c.req.raw, bound, clock());
    return noStore(options, [["Set-Cookie", newChallengeCookie(c.req.raw, challengeId)]]);
  });

  /**
   * A passkey alone signs in: a fresh session, exactly as a password sign-in makes one. With a
   * pending sign-in (password given, second step due), it completes that one instead: the
   * passkey must be that account's (auth/two_factor.ts).
   */
  app.post("/verify-authentication", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, verifyAuthenticationBody);
    const req = c.req.raw;
    const pending = await pendingSignIn(c);
    const { userId } = await verifyAuthentication(
      kv,
      req,
      asAuthentication(body.response),
      pending ? pendingBinding(pending) : null,
      clock(),
    );
    if (pending) {
      const res = await completePendingSignIn(c, pending, "passkey");
      res.headers.append("Set-Cookie", clearChallengeCookie(req));
      return res;
    }
    const user = await getUser(kv, userId);
    if (!user) throw unauthorized();
    if (user.status !== "active") throw accountSuspended();
    const ip = clientAddress(c);
    await sessions.end(req);
    const session = await sessions.start(user.id, {
      ip,
      userAgent: summariseUserAgent(req.headers.get("User-Agent")),
      audit: { ...auditCtx(req, { userId: user.id }), actor: { type: "session", id: "passkey" } },
    });
    emitAccountEvent(
      { type: "sign-in", userId: user.id, ip, sessionId: session.sessionId },
      clock(),
    );
    const deviceCookie = await devices.issue(user.id, user.email, readDeviceCookie(req));
    const view = publicUser(user);
    const listed = await accounts.currentSession({ userId: user.id, sessionId: session.sessionId });
    return noStore(
      {
        session: listed
          ? betterAuthSession(user.id, listed)
          : { id: session.sessionId, expiresAt: session.expiresAt },
        user: betterAuthUser(view),
      },
      [
        ["Set-Cookie", sessionCookieHeader(req, session.token, sessions.cookieMaxAgeSeconds)],
        ["Set-Cookie", deviceCookieHeader(req, deviceCookie)],
        ["Set-Cookie", clearChallengeCookie(req)],
      ],
    );
  });

  /** Options for a re-authentication: only the signed-in account's passkeys may answer. */
  app.post("/generate-reauthenticate-options", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await caller(c);
    const { options, challengeId } = await authenticationOptions(kv, c.req.raw, {
      userId: who.user.id,
      sessionId: who.sessionId,
    }, clock());
    return noStore(options, [["Set-Cookie", newChallengeCookie(c.req.raw, challengeId)]]);
  });

  /** A passkey of the signed-in account as a fresh proof of identity (sudo mode). */
  app.post("/reauthenticate", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await caller(c);
    const body = await parseJsonBody(c, verifyAuthenticationBody);
    const nowMs = clock();
    await verifyAuthentication(kv, c.req.raw, asAuthentication(body.response), {
      userId: who.user.id,
      sessionId: who.sessionId,
    }, nowMs);
    await markSessionReauthenticated(kv, who.user.id, who.sessionId, nowMs);
    return noStore({ status: true }, [["Set-Cookie", clearChallengeCookie(c.req.raw)]]);
  });

  app.get("/list-user-passkeys", async (c) => {
    const who = await caller(c);
    return noStore((await listPasskeys(kv, who.user.id)).map(passkeyView));
  });

  app.post("/update-passkey", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await caller(c);
    const body = await parseJsonBody(c, updatePasskeyBody);
    if (!await renamePasskey(kv, who.user.id, body.id, body.name)) {
      throw new HttpError(404, "No such passkey.", { code: "PASSKEY_NOT_FOUND" });
    }
    const list = await listPasskeys(kv, who.user.id);
    const updated = list.find((p) => p.id === body.id);
    return noStore({ passkey: updated ? passkeyView(updated) : null });
  });

  app.post("/delete-passkey", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await caller(c);
    await sudo(c, who);
    const body = await parseJsonBody(c, deletePasskeyBody);
    const deleted = await deletePasskey(
      kv,
      who.user.id,
      body.id,
      auditCtx(c.req.raw, who.principal),
      clock(),
    );
    if (!deleted) throw new HttpError(404, "No such passkey.", { code: "PASSKEY_NOT_FOUND" });
    return noStore({ status: true });
  });

  return app;
}
