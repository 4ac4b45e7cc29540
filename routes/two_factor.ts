/**
 * better-auth's two-factor plugin routes, under `/api/auth` (auth/two_factor.ts does the work),
 * and `POST /api/auth/reauthenticate` (sudo mode, auth/sudo.ts):
 *
 *   POST /two-factor/enable {password}                -> { method: "totp", totpURI, backupCodes } (sudo)
 *   POST /two-factor/verify-totp {code}               -> { token: null, user }
 *        completes a pending sign-in (its cookie), or, signed in, completes the enrolment
 *   POST /two-factor/verify-backup-code {code}        -> { token: null, user }      (pending sign-in)
 *   POST /two-factor/disable {password}               -> { status: true }           (sudo)
 *   POST /two-factor/generate-backup-codes {password} -> { status: true, backupCodes } (sudo)
 *   POST /reauthenticate {password} | {code}          -> { status: true, authenticatedAt }
 *
 * Every one is refused from another origin. Codes and recovery codes appear in no log or error.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { type AccountService, betterAuthUser, publicUser } from "../auth/accounts.ts";
import { assertSameOrigin } from "../auth/csrf.ts";
import type { AppEnv } from "../auth/middleware.ts";
import { assertNever, type Principal } from "../auth/principal.ts";
import { requireRecentAuth } from "../auth/sudo.ts";
import { completedSignInResponse, twoFactorOf } from "../auth/two_factor.ts";
import { accountSuspended, jsonResponse, unauthorized } from "../lib/errors.ts";
import { MAX_PASSWORD_LENGTH } from "../auth/password.ts";
import { clientOf } from "../lib/client.ts";
import { markSessionReauthenticated } from "../store/sessions.ts";
import { getUser } from "../store/users.ts";
import { parseJsonBody } from "./validation.ts";

const passwordSchema = z.string().min(1, "is required").max(
  MAX_PASSWORD_LENGTH,
  `must be at most ${MAX_PASSWORD_LENGTH} characters`,
);
const codeSchema = z.string().trim().min(1, "is required").max(64, "must be at most 64 characters");

/** better-auth's body fields; `issuer`, `trustDevice`, `disableSession` are accepted and unused. */
export const enableTwoFactorBody = z.strictObject({
  password: passwordSchema,
  issuer: z.string().max(100).optional(),
});
export const passwordOnlyBody = z.strictObject({ password: passwordSchema });
export const verifyTotpBody = z.strictObject({
  code: codeSchema,
  trustDevice: z.boolean().optional(),
});
export const verifyBackupCodeBody = z.strictObject({
  code: codeSchema,
  trustDevice: z.boolean().optional(),
  disableSession: z.boolean().optional(),
});
/** Exactly one proof: the password or a current TOTP code (one closed object, so the OpenAPI
 * document says `additionalProperties: false` and unknown fields are named). */
export const reauthenticateBody = z.strictObject({
  password: passwordSchema.optional(),
  code: codeSchema.optional(),
}).refine((b) => (b.password === undefined) !== (b.code === undefined), {
  message: "Send exactly one of password or code.",
  path: ["password"],
});

function noStore(body: unknown): Response {
  return jsonResponse(body, 200, { "Cache-Control": "no-store" });
}

export type TwoFactorRouteDeps = { accounts: AccountService };

export function twoFactorRoutes(deps: TwoFactorRouteDeps) {
  const { accounts } = deps;
  const app = new Hono<AppEnv>();

  /** The signed-in session: 401 without one, 403 for a suspended account. */
  async function signedIn(c: Context<AppEnv>): Promise<Principal & { sessionId: string }> {
    const current = await accounts.current(c.req.raw);
    switch (current.kind) {
      case "ok":
        return { userId: current.user.id, method: "session", sessionId: current.session.id };
      case "suspended":
        throw accountSuspended();
      case "invalid":
        throw unauthorized();
      default:
        return assertNever(current);
    }
  }

  app.post("/two-factor/enable", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await signedIn(c);
    await requireRecentAuth(c, undefined, who);
    const body = await parseJsonBody(c, enableTwoFactorBody);
    const r = await twoFactorOf(c).enable(who.userId, body.password, clientOf(c.req.raw).address);
    return noStore({ method: "totp", totpURI: r.totpURI, backupCodes: r.backupCodes });
  });

  app.post("/two-factor/verify-totp", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, verifyTotpBody);
    const tf = twoFactorOf(c);
    const current = await accounts.current(c.req.raw);
    if (current.kind === "suspended") throw accountSuspended();
    if (current.kind === "ok") {
      await tf.verifySignedIn(c.req.raw, current.user.id, current.session.id, body.code);
      return noStore({ token: null, user: betterAuthUser(current.user) });
    }
    return completedSignInResponse(await tf.completeWithTotp(c.req.raw, body.code));
  });

  app.post("/two-factor/verify-backup-code", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, verifyBackupCodeBody);
    return completedSignInResponse(
      await twoFactorOf(c).completeWithBackupCode(c.req.raw, body.code),
    );
  });

  app.post("/two-factor/disable", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await signedIn(c);
    await requireRecentAuth(c, undefined, who);
    const body = await parseJsonBody(c, passwordOnlyBody);
    await twoFactorOf(c).disable(c.req.raw, who.userId, who.sessionId, body.password);
    return noStore({ status: true });
  });

  app.post("/two-factor/generate-backup-codes", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await signedIn(c);
    await requireRecentAuth(c, undefined, who);
    const body = await parseJsonBody(c, passwordOnlyBody);
    const codes = await twoFactorOf(c).generateBackupCodes(
      c.req.raw,
      who.userId,
      who.sessionId,
      body.password,
    );
    return noStore({ status: true, backupCodes: codes });
  });

  /** A fresh proof of identity for the session: sudo mode for SUDO_WINDOW_MS. */
  app.post("/reauthenticate", async (c) => {
    assertSameOrigin(c.req.raw);
    const who = await signedIn(c);
    const body = await parseJsonBody(c, reauthenticateBody);
    const tf = twoFactorOf(c);
    if (body.password !== undefined) {
      await accounts.verifyPassword(who.userId, body.password, clientOf(c.req.raw).address);
      await markSessionReauthenticated(
        tf.sudoDeps.kv,
        who.userId,
        who.sessionId,
        tf.sudoDeps.clock(),
      );
    } else {
      await tf.reauthenticateWithCode(c.req.raw, who.userId, who.sessionId, body.code!);
    }
    const user = await getUser(tf.sudoDeps.kv, who.userId);
    if (!user) throw unauthorized();
    return noStore({ status: true, user: betterAuthUser(publicUser(user)) });
  });

  return app;
}
