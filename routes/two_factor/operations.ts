/**
 * better-auth's two-factor plugin operations, under `/api/auth` (auth/two_factor.ts does the
 * work), and `POST /api/auth/reauthenticate` (sudo mode, auth/sudo.ts), each declared once:
 *
 *   POST /two-factor/enable {password}                -> { method: "totp", totpURI, backupCodes } (sudo)
 *   POST /two-factor/verify-totp {code}               -> { token: null, user }
 *        completes a pending sign-in (its cookie), or, signed in, completes the enrolment (sudo)
 *   POST /two-factor/verify-backup-code {code}        -> { token: null, user }      (pending sign-in)
 *   POST /two-factor/disable {password}               -> { status: true }           (sudo)
 *   POST /two-factor/generate-backup-codes {password} -> { status: true, backupCodes } (sudo)
 *   POST /reauthenticate {password} | {code}          -> { status: true, user }
 *
 * Every one is refused from another origin. Codes and recovery codes appear in no log or error.
 */
import { z } from "zod";
import { type AccountService, betterAuthUser } from "../../auth/accounts/service.ts";
import { MAX_PASSWORD_LENGTH } from "../../auth/passwords/hash.ts";
import type { SudoMode } from "../../auth/sudo.ts";
import { completedSignInResponse, type TwoFactorService } from "../../auth/two_factor.ts";
import { clientOf } from "../../lib/client.ts";
import { noStore } from "../accounts/responses.ts";
import { baUser, baVerified, SAME_ORIGIN, status, SUDO } from "../accounts/schemas.ts";
import type { RouteRegistry } from "../registry.ts";
import { TWO_FACTOR_EXAMPLES } from "./examples.ts";

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

export type TwoFactorRouteDeps = {
  accounts: AccountService;
  twoFactor: TwoFactorService;
  sudo: SudoMode;
};

const tags = ["Accounts"];
const signedInChange = { tags, session: "required", sameOrigin: true } as const;

export function registerTwoFactorRoutes(registry: RouteRegistry, deps: TwoFactorRouteDeps): void {
  registerEnrolment(registry, deps);
  registerSecondStep(registry, deps);
  registerReauthenticate(registry, deps);
}

/** Turning TOTP on and off, and new recovery codes: sudo mode. */
function registerEnrolment(registry: RouteRegistry, { twoFactor }: TwoFactorRouteDeps): void {
  registry.add({
    method: "post",
    path: "/api/auth/two-factor/enable",
    operationId: "enableTwoFactor",
    summary: "Start TOTP enrolment",
    description: "Checks the password, then answers the `otpauth://` URI and ten single-use " +
      "recovery codes (`backupCodes`, shown once: keep them until verify-totp accepts the first " +
      "code, which completes enrolment and keeps them). The dashboard shows its recovery codes " +
      `only after that first code. ${SUDO} ${SAME_ORIGIN}`,
    ...signedInChange,
    sudo: true,
    throttle: ["change-password:user"],
    body: enableTwoFactorBody,
    bodyName: "EnableTwoFactorParams",
    responses: {
      200: {
        description: "Enrolment started.",
        schema: z.object({
          method: z.literal("totp"),
          totpURI: z.string(),
          backupCodes: z.array(z.string()),
        }),
        name: "TwoFactorEnrolment",
      },
    },
    errors: [400, 403, 413, 415, 429],
    examples: TWO_FACTOR_EXAMPLES.enableTwoFactor,
    handler: async (c, { session, body }) => {
      const r = await twoFactor.enable(
        session!.user.id,
        body.password,
        clientOf(c.req.raw).address,
      );
      return noStore({ method: "totp", totpURI: r.totpURI, backupCodes: r.backupCodes });
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/two-factor/disable",
    operationId: "disableTwoFactor",
    summary: "Turn TOTP off",
    description: `Removes the authenticator and recovery codes. ${SUDO} ${SAME_ORIGIN}`,
    ...signedInChange,
    sudo: true,
    throttle: ["change-password:user"],
    audit: ["user.two_factor_changed"],
    body: passwordOnlyBody,
    bodyName: "PasswordParams",
    responses: { 200: { description: "Disabled.", schema: status } },
    errors: [400, 403, 413, 415, 429],
    examples: TWO_FACTOR_EXAMPLES.disableTwoFactor,
    handler: async (c, { session, body }) => {
      const s = session!;
      await twoFactor.disable(c.req.raw, s.user.id, s.session.id, body.password);
      return noStore({ status: true });
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/two-factor/generate-backup-codes",
    operationId: "generateBackupCodes",
    summary: "Replace the recovery codes",
    description: `The old codes stop working. ${SUDO} ${SAME_ORIGIN}`,
    ...signedInChange,
    sudo: true,
    throttle: ["change-password:user"],
    audit: ["user.two_factor_changed"],
    body: passwordOnlyBody,
    bodyName: "PasswordParams",
    responses: {
      200: {
        description: "The new codes, shown once.",
        schema: z.object({ status: z.boolean(), backupCodes: z.array(z.string()) }),
        name: "BackupCodes",
      },
    },
    errors: [400, 403, 413, 415, 429],
    examples: TWO_FACTOR_EXAMPLES.generateBackupCodes,
    handler: async (c, { session, body }) => {
      const s = session!;
      const codes = await twoFactor.generateBackupCodes(
        c.req.raw,
        s.user.id,
        s.session.id,
        body.password,
      );
      return noStore({ status: true, backupCodes: codes });
    },
  });
}

/** The second step of a sign-in (its pending cookie), or a signed-in enrolment's first code. */
function registerSecondStep(registry: RouteRegistry, { twoFactor }: TwoFactorRouteDeps): void {
  registry.add({
    method: "post",
    path: "/api/auth/two-factor/verify-totp",
    operationId: "verifyTotp",
    summary: "Verify an authenticator code",
    description: "With the pending cookie of a sign-in: completes it (sets the session " +
      "cookie). Signed in: completes a pending enrolment. A code is accepted once: used " +
      'again in its window it is refused with 401 `INVALID_CODE` and the message "This code ' +
      'was already used. Wait for the next one." (a wrong code says "Invalid code."). ' +
      `Every attempt is throttled per account and client. ${SAME_ORIGIN}`,
    tags,
    auth: false,
    session: "optional",
    sameOrigin: true,
    // Signed in, the code completes an enrolment: a change of the second factors.
    sudo: "session",
    throttle: ["two-factor:user", "two-factor:ip"],
    audit: ["session.created", "session.second_factor_failed", "user.two_factor_changed"],
    body: verifyTotpBody,
    bodyName: "VerifyTotpParams",
    responses: {
      200: { description: "Verified.", schema: baVerified, name: "TwoFactorVerified" },
    },
    errors: [400, 401, 403, 413, 415, 429],
    examples: TWO_FACTOR_EXAMPLES.verifyTotp,
    handler: async (c, { session, body }) => {
      if (session) {
        await twoFactor.verifySignedIn(c.req.raw, session.user.id, session.session.id, body.code);
        return noStore({ token: null, user: betterAuthUser(session.user) });
      }
      return completedSignInResponse(await twoFactor.completeWithTotp(c.req.raw, body.code));
    },
  });
  registry.add({
    method: "post",
    path: "/api/auth/two-factor/verify-backup-code",
    operationId: "verifyBackupCode",
    summary: "Complete a sign-in with a recovery code",
    description: `Each recovery code works once. ${SAME_ORIGIN}`,
    tags,
    auth: false,
    sameOrigin: true,
    throttle: ["two-factor:user", "two-factor:ip"],
    audit: ["session.created", "session.second_factor_failed"],
    body: verifyBackupCodeBody,
    bodyName: "VerifyBackupCodeParams",
    responses: { 200: { description: "Signed in.", schema: baVerified } },
    errors: [400, 401, 403, 413, 415, 429],
    examples: TWO_FACTOR_EXAMPLES.verifyBackupCode,
    handler: async (c, { body }) =>
      completedSignInResponse(await twoFactor.completeWithBackupCode(c.req.raw, body.code)),
  });
}

/** A fresh proof of identity for the session: sudo mode for SUDO_WINDOW_MS. */
function registerReauthenticate(registry: RouteRegistry, deps: TwoFactorRouteDeps): void {
  const { accounts, twoFactor, sudo } = deps;
  registry.add({
    method: "post",
    path: "/api/auth/reauthenticate",
    operationId: "reauthenticate",
    summary: "Re-authenticate (sudo mode)",
    description: "A password or an authenticator code puts the session in sudo mode for 10 " +
      `minutes. ${SAME_ORIGIN}`,
    ...signedInChange,
    throttle: ["change-password:user", "two-factor:user"],
    body: reauthenticateBody,
    bodyName: "ReauthenticateParams",
    responses: {
      200: {
        description: "Re-authenticated.",
        schema: z.object({ status: z.boolean(), user: baUser }),
        name: "Reauthenticated",
      },
    },
    errors: [400, 401, 403, 413, 415, 429],
    examples: TWO_FACTOR_EXAMPLES.reauthenticate,
    handler: async (c, { session, body }) => {
      const s = session!;
      if (body.password !== undefined) {
        await accounts.verifyPassword(s.user.id, body.password, clientOf(c.req.raw).address);
        await sudo.grant(s.user.id, s.session.id);
      } else {
        await twoFactor.reauthenticateWithCode(c.req.raw, s.user.id, s.session.id, body.code!);
      }
      return noStore({ status: true, user: betterAuthUser(s.user) });
    },
  });
}
