/**
 * `/api/auth/*`: sign up, sign in, sign out, the session, the account's own changes and password
 * resets, as JSON, in this server's shapes and better-auth's. Each operation is declared once
 * (routes/registry.ts) with who may call it, its policies (same-origin for every state change,
 * sudo mode for password change and deletion), its schemas and its handler; the work is the
 * account service's (auth/accounts/service.ts), which the dashboard's forms call too. These routes sit
 * outside `/api/e2`: no Bearer key authenticates here.
 */
import type { Context } from "hono";
import { z } from "zod";
import {
  type AccountService,
  betterAuthUser,
  type Caller,
  clientAddress,
  requestOrigin,
  RESET_REQUESTED_MESSAGE,
} from "../../auth/accounts/service.ts";
import { auditContextOf } from "../../auth/audit_context.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import {
  clearSessionCookieHeader,
  mailLinkOrigin,
  type SessionManager,
  siteFor,
} from "../../auth/sessions/manager.ts";
import { jsonResponse } from "../../lib/errors.ts";
import { verifiedCallbackPath } from "../email_verification/operations.ts";
import type { RouteRegistry, SignedInSession } from "../registry.ts";
import {
  betterAuthSession,
  betterAuthSignedIn,
  noStore,
  secondStepResponse,
  signedInResponse,
} from "./responses.ts";
import {
  baSession,
  baSignedIn,
  baUser,
  changePasswordBody,
  COOKIE,
  deleteUserBody,
  requestPasswordResetBody,
  resetPasswordBody,
  revokeSessionBody,
  SAME_ORIGIN,
  SECOND_STEP,
  signedIn,
  signInBody,
  signInEmailBody,
  signUpBody,
  signUpEmailBody,
  status,
  success,
  SUDO,
  twoFactorRedirect,
  updateUserBody,
} from "./schemas.ts";

export type AccountRouteDeps = { accounts: AccountService; sessions: SessionManager };

const tags = ["Accounts"];

/** The account operation's caller: the session's account, with the request's audit context. */
export function callerOf(c: Context<AppEnv>, session: SignedInSession | undefined): Caller {
  if (!session) throw new Error("a session route ran without its session");
  return {
    userId: session.user.id,
    sessionId: session.principal.sessionId,
    audit: auditContextOf(c.req.raw, session.principal),
  };
}

export function registerAccountRoutes(registry: RouteRegistry, deps: AccountRouteDeps): void {
  registerSignUp(registry, deps);
  registerSignIn(registry, deps);
  registerSessionRoutes(registry, deps);
  registerAccountChanges(registry, deps);
  registerPasswordReset(registry, deps);
}

/** `callbackURL`: where the verification link returns (better-auth's sign-up/email). */
async function signUp(
  accounts: AccountService,
  c: Context<AppEnv>,
  body: z.output<typeof signUpBody> & { callbackURL?: string },
) {
  const origin = requestOrigin(c);
  const input = { email: body.email, password: body.password, name: body.name };
  return await accounts.signUp(input, origin.ip, origin.userAgent, c.req.raw, {
    origin: mailLinkOrigin(c.req.raw),
    callbackPath: verifiedCallbackPath(body.callbackURL, siteFor(c.req.raw).origin),
  });
}

function registerSignUp(registry: RouteRegistry, { accounts, sessions }: AccountRouteDeps): void {
  const policies = {
    tags,
    auth: false,
    sameOrigin: true,
    throttle: ["sign-up:ip"],
    audit: ["session.created"],
  } as const;
  registry.add({
    method: "post",
    path: "/api/auth/sign-up",
    operationId: "signUp",
    summary: "Create an account",
    description: `Creates the account and signs it in. ${COOKIE} ${SAME_ORIGIN}`,
    ...policies,
    body: signUpBody,
    bodyName: "SignUpParams",
    responses: { 201: { description: "Signed up.", schema: signedIn, name: "SignedIn" } },
    errors: [400, 403, 409, 413, 415, 429],
    handler: async (c, { body }) =>
      signedInResponse(c.req.raw, sessions, await signUp(accounts, c, body), 201),
  });
  registry.add({
    method: "post",
    path: "/api/auth/sign-up/email",
    operationId: "signUpEmail",
    summary: "Create an account (better-auth)",
    description: `better-auth's sign-up. ${COOKIE} ${SAME_ORIGIN}`,
    ...policies,
    body: signUpEmailBody,
    bodyName: "SignUpEmailParams",
    responses: {
      200: { description: "Signed up.", schema: baSignedIn, name: "BetterAuthSignedIn" },
    },
    errors: [400, 403, 409, 413, 415, 429],
    handler: async (c, { body }) =>
      betterAuthSignedIn(c.req.raw, sessions, await signUp(accounts, c, body)),
  });
}

function registerSignIn(registry: RouteRegistry, { accounts, sessions }: AccountRouteDeps): void {
  const policies = {
    tags,
    auth: false,
    sameOrigin: true,
    throttle: ["sign-in:ip", "sign-in:email", "sign-in:device", "sign-in:ip-device"],
    audit: ["session.created", "session.sign_in_failed", "session.second_factor_required"],
  } as const;
  registry.add({
    method: "post",
    path: "/api/auth/sign-in",
    operationId: "signIn",
    summary: "Sign in",
    description: `${COOKIE} ${SECOND_STEP} ${SAME_ORIGIN}`,
    ...policies,
    body: signInBody,
    bodyName: "SignInParams",
    responses: {
      200: {
        description: "Signed in, or the second step is due.",
        schema: signedIn.or(twoFactorRedirect),
        name: "SignedIn",
      },
    },
    errors: [400, 401, 403, 413, 415, 429],
    handler: async (c, { body }) => {
      const r = await accounts.signIn(body, c.req.raw, clientAddress(c));
      if ("twoFactorRedirect" in r) return secondStepResponse(c.req.raw, r);
      return signedInResponse(c.req.raw, sessions, r, 200);
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/sign-in/email",
    operationId: "signInEmail",
    summary: "Sign in (better-auth)",
    description: `better-auth's sign-in. ${COOKIE} ${SECOND_STEP} ${SAME_ORIGIN}`,
    ...policies,
    body: signInEmailBody,
    bodyName: "SignInEmailParams",
    responses: {
      200: {
        description: "Signed in, or the second step is due.",
        schema: baSignedIn.or(twoFactorRedirect),
        name: "BetterAuthSignedIn",
      },
    },
    errors: [400, 401, 403, 413, 415, 429],
    handler: async (c, { body }) => {
      const input = { email: body.email, password: body.password };
      const r = await accounts.signIn(input, c.req.raw, clientAddress(c));
      if ("twoFactorRedirect" in r) return secondStepResponse(c.req.raw, r);
      return betterAuthSignedIn(c.req.raw, sessions, r);
    },
  });
}

/** The session itself: who is signed in, the account's sessions, signing out. */
function registerSessionRoutes(registry: RouteRegistry, { accounts }: AccountRouteDeps): void {
  registry.add({
    method: "post",
    path: "/api/auth/sign-out",
    operationId: "signOut",
    summary: "Sign out",
    description: `Ends the caller's session, if any, and clears the cookie. ${SAME_ORIGIN}`,
    tags,
    auth: false,
    sameOrigin: true,
    audit: ["session.revoked"],
    responses: { 200: { description: "Signed out.", schema: success, name: "Success" } },
    errors: [403],
    handler: async (c) => {
      const ended = await accounts.signOut(c.req.raw);
      return jsonResponse(
        { success: true, message: ended ? "Signed out." : "There was no session to end." },
        200,
        [["Set-Cookie", clearSessionCookieHeader(c.req.raw)], ["Cache-Control", "no-store"]],
      );
    },
  });
  registry.add({
    method: "get",
    path: "/api/auth/session",
    operationId: "getSession",
    summary: "The signed-in account",
    description: "401 without a live session; 403 `ACCOUNT_SUSPENDED` for a suspended account.",
    tags,
    session: "required",
    responses: { 200: { description: "The account and session.", schema: signedIn } },
    errors: [403],
    handler: (_c, { session }) => {
      const s = session!;
      return jsonResponse({ user: s.user, session: s.session }, 200, {
        "Cache-Control": "no-store",
      });
    },
  });
  registry.add({
    method: "get",
    path: "/api/auth/get-session",
    operationId: "getSessionBetterAuth",
    summary: "The current session (better-auth)",
    description: "`null` (200) when signed out, as better-auth answers.",
    tags,
    auth: false,
    session: "optional",
    responses: {
      200: {
        description: "The session and its user, or null.",
        schema: z.object({ session: baSession, user: baUser }).nullable(),
        name: "BetterAuthSession",
      },
    },
    errors: [403],
    handler: async (_c, { session }) => {
      if (!session) return noStore(null);
      const userId = session.user.id;
      const listed = await accounts.currentSession({ userId, sessionId: session.session.id });
      if (!listed) return noStore(null);
      return noStore({
        session: betterAuthSession(userId, listed),
        user: betterAuthUser(session.user),
      });
    },
  });
  registry.add({
    method: "get",
    path: "/api/auth/list-sessions",
    operationId: "listSessions",
    summary: "List the account's sessions",
    tags,
    session: "required",
    responses: {
      200: { description: "Every live session.", schema: z.array(baSession), name: "Sessions" },
    },
    errors: [403],
    handler: async (c, { session }) => {
      const who = callerOf(c, session);
      const list = await accounts.listSessions(who);
      return noStore(list.map((s) => betterAuthSession(who.userId, s)));
    },
  });
  registerRevocations(registry, accounts);
}

/** Signing one session, or every other one, out. */
function registerRevocations(registry: RouteRegistry, accounts: AccountService): void {
  registry.add({
    method: "post",
    path: "/api/auth/revoke-session",
    operationId: "revokeSession",
    summary: "Sign one session out",
    description: "`token` is the session's id, as list-sessions gives it; revoking your own " +
      `signs you out. ${SAME_ORIGIN}`,
    tags,
    session: "required",
    sameOrigin: true,
    audit: ["session.revoked"],
    body: revokeSessionBody,
    bodyName: "RevokeSessionParams",
    responses: { 200: { description: "Revoked (or no such session).", schema: status } },
    errors: [400, 403, 413, 415],
    handler: async (c, { session, body }) => {
      const who = callerOf(c, session);
      // As better-auth: `{ status: true }` whether or not the account had a session by that id.
      await accounts.revokeSession(who, body.token);
      const own = body.token === who.sessionId;
      return noStore(
        { status: true },
        own ? [["Set-Cookie", clearSessionCookieHeader(c.req.raw)]] : [],
      );
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/revoke-other-sessions",
    operationId: "revokeOtherSessions",
    summary: "Sign every other session out",
    description: SAME_ORIGIN,
    tags,
    session: "required",
    sameOrigin: true,
    audit: ["session.revoked"],
    responses: { 200: { description: "Revoked.", schema: status } },
    errors: [403],
    handler: async (c, { session }) => {
      await accounts.revokeOtherSessions(callerOf(c, session));
      return noStore({ status: true });
    },
  });
}

/** The signed-in account's own changes: name, password, deletion. */
function registerAccountChanges(registry: RouteRegistry, { accounts }: AccountRouteDeps): void {
  const signedInChange = { tags, session: "required", sameOrigin: true } as const;
  registry.add({
    method: "post",
    path: "/api/auth/update-user",
    operationId: "updateUser",
    summary: "Change the display name",
    description: SAME_ORIGIN,
    ...signedInChange,
    body: updateUserBody,
    bodyName: "UpdateUserParams",
    responses: { 200: { description: "Updated.", schema: status, name: "Status" } },
    errors: [400, 403, 413, 415],
    handler: async (c, { session, body }) => {
      await accounts.updateName(callerOf(c, session), body.name);
      return noStore({ status: true });
    },
  });
  /** Keeps the caller's session (no new cookie), so `token` is null as well. */
  registry.add({
    method: "post",
    path: "/api/auth/change-password",
    operationId: "changePassword",
    summary: "Change the password",
    description: "Keeps the caller's session; `revokeOtherSessions` defaults to true here. " +
      `${SUDO} ${SAME_ORIGIN}`,
    ...signedInChange,
    sudo: true,
    throttle: ["change-password:user"],
    audit: ["user.password_changed", "session.revoked"],
    body: changePasswordBody,
    bodyName: "ChangePasswordParams",
    responses: {
      200: {
        description: "Changed.",
        schema: z.object({ token: z.null(), user: baUser }),
        name: "PasswordChanged",
      },
    },
    errors: [400, 403, 413, 415],
    handler: async (c, { session, body }) => {
      const r = await accounts.changePassword(callerOf(c, session), body, clientAddress(c));
      return noStore({ token: null, user: betterAuthUser(r.user) });
    },
  });
  /** Deletes the account and everything it holds (docs: accounts); clears the cookie. */
  registry.add({
    method: "post",
    path: "/api/auth/delete-user",
    operationId: "deleteUser",
    summary: "Delete the account",
    description: "Deletes the account and everything it holds; needs the password. " +
      `${SUDO} ${SAME_ORIGIN}`,
    ...signedInChange,
    sudo: true,
    throttle: ["delete-user:user"],
    body: deleteUserBody,
    bodyName: "DeleteUserParams",
    responses: { 200: { description: "Deleted.", schema: success } },
    errors: [400, 403, 413, 415],
    handler: async (c, { session, body }) => {
      const who = callerOf(c, session);
      await accounts.deleteUser(who, { password: body.password }, clientAddress(c));
      return noStore(
        { success: true, message: "User deleted" },
        [["Set-Cookie", clearSessionCookieHeader(c.req.raw)]],
      );
    },
  });
}

/** Forgotten passwords: the mailed link, then the new password. */
function registerPasswordReset(registry: RouteRegistry, { accounts }: AccountRouteDeps): void {
  /** The same answer whether or not the email has an account; the mail goes out afterwards. */
  registry.add({
    method: "post",
    path: "/api/auth/request-password-reset",
    operationId: "requestPasswordReset",
    summary: "E-mail a password reset link",
    description: "The same answer whether or not the address has an account. " + SAME_ORIGIN,
    tags,
    auth: false,
    sameOrigin: true,
    throttle: ["password-reset:ip", "password-reset:email"],
    body: requestPasswordResetBody,
    bodyName: "RequestPasswordResetParams",
    responses: {
      200: {
        description: "Requested.",
        schema: z.object({ status: z.boolean(), message: z.string() }),
        name: "ResetRequested",
      },
    },
    errors: [400, 403, 413, 415, 429],
    handler: async (c, { body }) => {
      await accounts.requestPasswordReset(body, mailLinkOrigin(c.req.raw), clientAddress(c));
      return noStore({ status: true, message: RESET_REQUESTED_MESSAGE });
    },
  });
  /** Sets the new password, consumes the token, signs every session of the account out. */
  registry.add({
    method: "post",
    path: "/api/auth/reset-password",
    operationId: "resetPassword",
    summary: "Set a new password with a reset token",
    description: "Consumes the token and signs every session of the account out. " +
      SAME_ORIGIN,
    tags,
    auth: false,
    sameOrigin: true,
    throttle: ["reset-password:ip"],
    audit: ["user.password_reset", "user.email_verified"],
    body: resetPasswordBody,
    bodyName: "ResetPasswordParams",
    responses: { 200: { description: "Password set.", schema: status } },
    errors: [400, 403, 413, 415, 429],
    handler: async (c, { body }) => {
      await accounts.resetPassword(body, clientAddress(c), c.req.raw);
      return noStore({ status: true }, [["Set-Cookie", clearSessionCookieHeader(c.req.raw)]]);
    },
  });
}
