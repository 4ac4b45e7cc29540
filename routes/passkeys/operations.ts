/**
 * `/api/auth/passkey/*`: passkeys (WebAuthn), named as better-auth's passkey plugin names them,
 * each declared once (routes/registry.ts) with its access, policies, schemas and handler:
 *
 *   generate-register-options / verify-registration   signed in: add a passkey (sudo mode)
 *   generate-authenticate-options / verify-authentication
 *                                                     signed out: a passkey alone signs in; with
 *                                                     a pending sign-in: its second step
 *   list-user-passkeys, update-passkey (name), delete-passkey (sudo mode)
 *   generate-reauthenticate-options / reauthenticate  signed in: a fresh proof for sudo mode
 *
 * Every POST is refused from another origin. The ceremony's challenge is named by an HttpOnly
 * cookie (auth/passkeys.ts) and used once.
 */
import type { Context } from "hono";
import { z } from "zod";
import {
  type AccountService,
  betterAuthUser,
  clientAddress,
  publicUser,
} from "../../auth/accounts/service.ts";
import {
  deviceCookieHeader,
  deviceCookies,
  readDeviceCookie,
} from "../../auth/sessions/device_cookie.ts";
import { sessionCookieHeader, type SessionManager } from "../../auth/sessions/manager.ts";
import { accountSuspended, unauthorized } from "../../lib/errors.ts";
import { summariseUserAgent } from "../../lib/user_agent.ts";
import { isNewDevice } from "../../auth/sessions/new_device.ts";
import { getUser } from "../../store/accounts/users.ts";
import { betterAuthSession, noStore } from "../accounts/responses.ts";
import { auditContextOf } from "../../auth/audit_context.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import {
  authenticationOptions,
  clearChallengeCookie,
  newChallengeCookie,
  registrationOptions,
  verifyAuthentication,
  verifyRegistration,
} from "../../auth/passkeys.ts";
import type { Principal } from "../../auth/principal.ts";
import type { SudoMode } from "../../auth/sudo.ts";
import {
  completedSignInResponse,
  type PendingSignInRef,
  type TwoFactorService,
} from "../../auth/two_factor.ts";
import { throttleSubject } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import { HttpError } from "../../lib/errors.ts";
import type { AuditContext } from "../../store/audit_log/events.ts";
import { deletePasskey, listPasskeys, passkeyView, renamePasskey } from "../../store/passkeys.ts";
import { recordAttempt } from "../../store/throttle.ts";
import type { RouteRegistry, SignedInSession } from "../registry.ts";
import {
  asAuthentication,
  asRegistration,
  CHALLENGE,
  creationOptions,
  deletePasskeyBody,
  passkey,
  PASSKEY_EXAMPLES,
  requestOptions,
  SAME_ORIGIN,
  signedIn,
  status,
  SUDO,
  updatePasskeyBody,
  UV,
  verifyAuthenticationBody,
  verifyRegistrationBody,
} from "./docs.ts";
import { USER_VERIFICATION } from "../../auth/passkeys.ts";

export type PasskeyRouteDeps = {
  kv: Deno.Kv;
  clock: Clock;
  accounts: AccountService;
  sessions: SessionManager;
  /** The pending sign-ins a passkey may complete as their second step. */
  twoFactor: TwoFactorService;
  sudo: SudoMode;
  /** AUDIT_RETENTION_DAYS for the events these routes record. */
  auditRetentionDays?: number;
  /**
   * The sign-in limit: a client address may start PASSKEY_OPTIONS_FACTOR times as many signed-out
   * passkey ceremonies per window (each stores a challenge), then 429.
   */
  signInThrottle?: { max: number; windowMs: number };
};

export const PASSKEY_OPTIONS_FACTOR = 5;

const tags = ["Accounts"];

/** The request's audit context with AUDIT_RETENTION_DAYS. */
export function passkeyAuditContext(
  deps: Pick<PasskeyRouteDeps, "auditRetentionDays">,
  req: Request,
  who: Principal | { userId: string },
): AuditContext {
  return {
    ...auditContextOf(req, who),
    ...(deps.auditRetentionDays !== undefined ? { retentionDays: deps.auditRetentionDays } : {}),
  };
}

/** What a pending sign-in's challenge is bound to: its account and its cookie's digest. */
const pendingBinding = (p: PendingSignInRef) => ({
  userId: p.userId,
  sessionId: `pending:${p.hash}`,
});

/** The caller's session, as a `session: "required"` route gets it. */
function own(session: SignedInSession | undefined): SignedInSession {
  if (!session) throw new Error("a session route ran without its session");
  return session;
}

export function registerPasskeyRoutes(registry: RouteRegistry, deps: PasskeyRouteDeps): void {
  registerEnrolment(registry, deps);
  registerSignIn(registry, deps);
  registerReauthentication(registry, deps);
  registerManagement(registry, deps);
}

/** Adding a passkey: sudo mode, and a verified address (EMAIL_VERIFICATION=required). */
function registerEnrolment(registry: RouteRegistry, deps: PasskeyRouteDeps): void {
  const { kv, clock, accounts } = deps;
  const mayEnrol = (s: SignedInSession) =>
    accounts.emailVerification.requireVerified(s.user.id, "add a passkey");
  registry.add({
    method: "get",
    path: "/api/auth/passkey/generate-register-options",
    operationId: "passkeyGenerateRegisterOptions",
    summary: "Start registering a passkey",
    description: `Options for navigator.credentials.create(): a discoverable credential, ` +
      `userVerification "${USER_VERIFICATION}". ${CHALLENGE} ${SUDO}`,
    tags,
    session: "required",
    sudo: true,
    responses: { 200: { description: "The options.", schema: creationOptions } },
    errors: [403],
    examples: PASSKEY_EXAMPLES.passkeyGenerateRegisterOptions,
    handler: async (c, { session }) => {
      const s = own(session);
      await mayEnrol(s);
      const { options, challengeId } = await registrationOptions(kv, c.req.raw, {
        userId: s.user.id,
        sessionId: s.principal.sessionId,
        email: s.user.email,
        name: s.user.name,
      }, clock());
      return noStore(options, [["Set-Cookie", newChallengeCookie(c.req.raw, challengeId)]]);
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/passkey/verify-registration",
    operationId: "passkeyVerifyRegistration",
    summary: "Finish registering a passkey",
    description: `The credential's toJSON(), and a name. ${UV} (400) ${SUDO} ${SAME_ORIGIN}`,
    tags,
    session: "required",
    sameOrigin: true,
    sudo: true,
    audit: ["user.two_factor_changed"],
    body: verifyRegistrationBody,
    bodyName: "PasskeyRegistrationParams",
    responses: { 200: { description: "Registered.", schema: passkey, name: "Passkey" } },
    errors: [400, 403, 409, 413, 415],
    examples: PASSKEY_EXAMPLES.passkeyVerifyRegistration,
    handler: async (c, { session, body }) => {
      const s = own(session);
      await mayEnrol(s);
      const record = await verifyRegistration(
        kv,
        c.req.raw,
        { userId: s.user.id, sessionId: s.principal.sessionId },
        asRegistration(body.response),
        body.name ?? "Passkey",
        passkeyAuditContext(deps, c.req.raw, s.principal),
        clock(),
      );
      return noStore(passkeyView(record), [["Set-Cookie", clearChallengeCookie(c.req.raw)]]);
    },
  });
}

/** A passkey alone signs in; with a pending sign-in it is that sign-in's second step. */
function registerSignIn(registry: RouteRegistry, deps: PasskeyRouteDeps): void {
  const { kv, clock, twoFactor } = deps;
  registry.add({
    method: "get",
    path: "/api/auth/passkey/generate-authenticate-options",
    operationId: "passkeyGenerateAuthenticateOptions",
    summary: "Start a passkey sign-in",
    description: "Options for navigator.credentials.get(): any discoverable passkey of this " +
      "site, or with a pending sign-in only that account's passkeys; userVerification " +
      `"${USER_VERIFICATION}". ${CHALLENGE}`,
    tags,
    auth: false,
    throttle: ["passkey:ip"],
    responses: { 200: { description: "The options.", schema: requestOptions } },
    errors: [429],
    examples: PASSKEY_EXAMPLES.passkeyGenerateAuthenticateOptions,
    handler: async (c) => {
      await throttleCeremonies(deps, c);
      const pending = await twoFactor.readPending(c.req.raw);
      const bound = pending ? pendingBinding(pending) : null;
      const { options, challengeId } = await authenticationOptions(kv, c.req.raw, bound, clock());
      return noStore(options, [["Set-Cookie", newChallengeCookie(c.req.raw, challengeId)]]);
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/passkey/verify-authentication",
    operationId: "passkeyVerifyAuthentication",
    summary: "Sign in with a passkey",
    description: "A passkey alone signs in (sets the session and device cookies); with a " +
      `pending sign-in it completes that one as its second step. ${UV} (401, no session) ` +
      SAME_ORIGIN,
    tags,
    auth: false,
    sameOrigin: true,
    audit: ["session.created"],
    body: verifyAuthenticationBody,
    bodyName: "PasskeyAuthenticationParams",
    responses: { 200: { description: "Signed in.", schema: signedIn } },
    errors: [400, 401, 403, 413, 415],
    examples: PASSKEY_EXAMPLES.passkeyVerifyAuthentication,
    handler: async (c, { body }) => {
      const req = c.req.raw;
      const pending = await twoFactor.readPending(req);
      const { userId } = await verifyAuthentication(
        kv,
        req,
        asAuthentication(body.response),
        pending ? pendingBinding(pending) : null,
        clock(),
      );
      if (pending) {
        const res = completedSignInResponse(await twoFactor.finishPending(req, pending, "passkey"));
        res.headers.append("Set-Cookie", clearChallengeCookie(req));
        return res;
      }
      return await passkeySignIn(deps, c, userId);
    },
  });
}

/** Signed-out ceremonies store a challenge each: bounded per client address. */
async function throttleCeremonies(deps: PasskeyRouteDeps, c: Context<AppEnv>): Promise<void> {
  if (!deps.signInThrottle) return;
  const limit = deps.signInThrottle;
  const max = limit.max * PASSKEY_OPTIONS_FACTOR;
  const subject = throttleSubject(clientAddress(c));
  const r = await recordAttempt(deps.kv, "passkey:ip", subject, deps.clock(), { ...limit, max });
  if (r.allowed) return;
  throw new HttpError(
    429,
    `Too many passkey sign-in attempts. Retry after ${r.retryAfterSeconds} seconds.`,
    { code: "TOO_MANY_ATTEMPTS" },
    { "Retry-After": String(r.retryAfterSeconds) },
  );
}

/** A passkey of the signed-in account as a fresh proof of identity (sudo mode). */
function registerReauthentication(registry: RouteRegistry, deps: PasskeyRouteDeps): void {
  const { kv, clock } = deps;
  registry.add({
    method: "post",
    path: "/api/auth/passkey/generate-reauthenticate-options",
    operationId: "passkeyGenerateReauthenticateOptions",
    summary: "Start a passkey re-authentication",
    description: `Only the signed-in account's passkeys may answer; userVerification ` +
      `"${USER_VERIFICATION}". ${CHALLENGE} ${SAME_ORIGIN}`,
    tags,
    session: "required",
    sameOrigin: true,
    responses: { 200: { description: "The options.", schema: requestOptions } },
    errors: [403],
    examples: PASSKEY_EXAMPLES.passkeyGenerateReauthenticateOptions,
    handler: async (c, { session }) => {
      const s = own(session);
      const { options, challengeId } = await authenticationOptions(kv, c.req.raw, {
        userId: s.user.id,
        sessionId: s.principal.sessionId,
      }, clock());
      return noStore(options, [["Set-Cookie", newChallengeCookie(c.req.raw, challengeId)]]);
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/passkey/reauthenticate",
    operationId: "passkeyReauthenticate",
    summary: "Re-authenticate with a passkey (sudo mode)",
    description: `A fresh proof of identity for this session, standing in for the password. ` +
      `${UV} (401, sudo mode stays off) ${SAME_ORIGIN}`,
    tags,
    session: "required",
    sameOrigin: true,
    body: verifyAuthenticationBody,
    bodyName: "PasskeyAuthenticationParams",
    responses: { 200: { description: "Re-authenticated.", schema: status } },
    errors: [400, 403, 413, 415],
    examples: PASSKEY_EXAMPLES.passkeyReauthenticate,
    handler: async (c, { session, body }) => {
      const s = own(session);
      await verifyAuthentication(kv, c.req.raw, asAuthentication(body.response), {
        userId: s.user.id,
        sessionId: s.principal.sessionId,
      }, clock());
      await deps.sudo.grant(s.user.id, s.principal.sessionId);
      return noStore({ status: true }, [["Set-Cookie", clearChallengeCookie(c.req.raw)]]);
    },
  });
}

/** Listing, renaming and removing the account's passkeys. */
function registerManagement(registry: RouteRegistry, deps: PasskeyRouteDeps): void {
  const { kv, clock } = deps;
  const notFound = () => new HttpError(404, "No such passkey.", { code: "PASSKEY_NOT_FOUND" });
  registry.add({
    method: "get",
    path: "/api/auth/passkey/list-user-passkeys",
    operationId: "passkeyList",
    summary: "List the account's passkeys",
    description: "Never the public key.",
    tags,
    session: "required",
    responses: {
      200: { description: "The passkeys.", schema: z.array(passkey), name: "Passkeys" },
    },
    errors: [403],
    examples: PASSKEY_EXAMPLES.passkeyList,
    handler: async (_c, { session }) =>
      noStore((await listPasskeys(kv, own(session).user.id)).map(passkeyView)),
  });
  registry.add({
    method: "post",
    path: "/api/auth/passkey/update-passkey",
    operationId: "passkeyUpdate",
    summary: "Rename a passkey",
    description: SAME_ORIGIN,
    tags,
    session: "required",
    sameOrigin: true,
    body: updatePasskeyBody,
    bodyName: "UpdatePasskeyParams",
    responses: {
      200: { description: "Renamed.", schema: z.object({ passkey: passkey.nullable() }) },
    },
    errors: [400, 403, 404, 413, 415],
    examples: PASSKEY_EXAMPLES.passkeyUpdate,
    handler: async (_c, { session, body }) => {
      const userId = own(session).user.id;
      if (!await renamePasskey(kv, userId, body.id, body.name)) throw notFound();
      const updated = (await listPasskeys(kv, userId)).find((p) => p.id === body.id);
      return noStore({ passkey: updated ? passkeyView(updated) : null });
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/passkey/delete-passkey",
    operationId: "passkeyDelete",
    summary: "Remove a passkey",
    description: `${SUDO} ${SAME_ORIGIN}`,
    tags,
    session: "required",
    sameOrigin: true,
    sudo: true,
    audit: ["user.two_factor_changed"],
    body: deletePasskeyBody,
    bodyName: "DeletePasskeyParams",
    responses: { 200: { description: "Removed.", schema: status } },
    errors: [400, 403, 404, 413, 415],
    examples: PASSKEY_EXAMPLES.passkeyDelete,
    handler: async (c, { session, body }) => {
      const s = own(session);
      const ctx = passkeyAuditContext(deps, c.req.raw, s.principal);
      if (!await deletePasskey(kv, s.user.id, body.id, ctx, clock())) throw notFound();
      return noStore({ status: true });
    },
  });
}

/**
 * A passkey alone signs in: a fresh session, exactly as a password sign-in makes one (the
 * request's old session ended, the device cookie kept), answered as better-auth's passkey plugin
 * answers.
 */
async function passkeySignIn(
  deps: PasskeyRouteDeps,
  c: Context<AppEnv>,
  userId: string,
): Promise<Response> {
  const { kv, accounts, sessions } = deps;
  const req = c.req.raw;
  const user = await getUser(kv, userId);
  if (!user) throw unauthorized();
  if (user.status !== "active") throw accountSuspended();
  const ip = clientAddress(c);
  await sessions.end(req);
  const audit = passkeyAuditContext(deps, req, { userId: user.id });
  const session = await sessions.start(user.id, {
    ip,
    userAgent: summariseUserAgent(req.headers.get("User-Agent")),
    audit: { ...audit, actor: { type: "session", id: "passkey" } },
  });
  accounts.emitEvent(
    {
      type: "sign-in",
      userId: user.id,
      ip,
      sessionId: session.sessionId,
      newDevice: await isNewDevice(deviceCookies(kv), req, user),
      userAgent: summariseUserAgent(req.headers.get("User-Agent")),
    },
    deps.clock(),
  );
  const deviceCookie = await deviceCookies(kv).issue(user.id, user.email, readDeviceCookie(req));
  const listed = await accounts.currentSession({ userId: user.id, sessionId: session.sessionId });
  return noStore(
    {
      session: listed
        ? betterAuthSession(user.id, listed)
        : { id: session.sessionId, expiresAt: session.expiresAt },
      user: betterAuthUser(publicUser(user)),
    },
    [
      ["Set-Cookie", sessionCookieHeader(req, session.token, sessions.cookieMaxAgeSeconds)],
      ["Set-Cookie", deviceCookieHeader(req, deviceCookie)],
      ["Set-Cookie", clearChallengeCookie(req)],
    ],
  );
}
