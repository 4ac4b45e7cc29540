/**
 * OpenAPI descriptions of `/api/auth/*` (routes/auth.ts, mounted as a plain Hono router) and
 * `/healthz` (app.ts), using the request schemas those routes validate with. The openapi test
 * fails when one of them is served but not described here, or described but not served.
 */
import { z } from "zod";
import {
  changePasswordBody,
  deleteUserBody,
  requestPasswordResetBody,
  resetPasswordBody,
  revokeSessionBody,
  signInBody,
  signInEmailBody,
  signUpBody,
  signUpEmailBody,
  updateUserBody,
} from "./auth.ts";
import type { OperationExamples } from "./openapi_examples.ts";
import { sendVerificationEmailBody, verifyEmailQuery } from "./email_verification.ts";
import type { RouteRegistry } from "./registry.ts";
import {
  enableTwoFactorBody,
  passwordOnlyBody,
  reauthenticateBody,
  verifyBackupCodeBody,
  verifyTotpBody,
} from "./two_factor.ts";

const VERIFIED = "Whether the owner opened the verification link (or completed a password " +
  "reset). With EMAIL_VERIFICATION=required an unverified account cannot create API keys, add " +
  "domains or enrol second factors (403 `EMAIL_NOT_VERIFIED`).";

const user = z.object({
  id: z.string().describe("The account's id (usr_…)."),
  email: z.string(),
  name: z.string().nullable().describe("Display name; null for accounts made before names."),
  createdAt: z.string(),
  updatedAt: z.string(),
  emailVerified: z.boolean().describe(VERIFIED),
});

const baUser = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  emailVerified: z.boolean().describe(VERIFIED),
  image: z.null(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const baSession = z.object({
  id: z.string().describe("The session's id (ses_…)."),
  token: z.string().describe("The session's id again: the cookie token is never in a body."),
  userId: z.string(),
  expiresAt: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  lastSeenAt: z.string(),
  ipAddress: z.string().nullable(),
  userAgent: z.string().nullable(),
  current: z.boolean().describe("true for the session that made the request."),
});

const signedIn = z.object({
  user,
  session: z.object({ id: z.string(), expiresAt: z.string() }),
});

const baSignedIn = z.object({
  token: z.null().describe("Always null: the session travels in the cookie only."),
  redirect: z.boolean(),
  user: baUser,
});

const status = z.object({ status: z.boolean() });
const success = z.object({ success: z.boolean(), message: z.string() });

const COOKIE = "Sets the session cookie (and the device cookie).";
const SUDO = "Needs sudo mode: a sign-in or re-authentication (POST /api/auth/reauthenticate) in " +
  "the session's last 10 minutes, else 403 `REAUTHENTICATION_REQUIRED`.";
const SECOND_STEP = "An account with a second factor gets `{ twoFactorRedirect: true, " +
  "twoFactorMethods }` and a 10-minute pending cookie instead of a session; " +
  "POST /api/auth/two-factor/verify-totp (or verify-backup-code) completes it.";
const twoFactorRedirect = z.object({
  twoFactorRedirect: z.literal(true),
  twoFactorMethods: z.array(z.enum(["totp", "passkey"])),
});
const baVerified = z.object({
  token: z.null().describe("Always null: the session travels in the cookie only."),
  user: baUser,
});
const SAME_ORIGIN = "Refused with 403 from another origin (CSRF).";

export function describeAuthRoutes(registry: RouteRegistry): void {
  const tags = ["Accounts"];
  const open = { tags, auth: false } as const;
  const session = { tags, security: ["session" as const] };
  registry
    .describe({
      method: "get",
      path: "/healthz",
      operationId: "getHealth",
      summary: "Health check",
      description: "Answers 200 when the KV store answers within a second, 503 otherwise.",
      tags: ["Operations"],
      auth: false,
      responses: {
        200: {
          description: "The server and its KV store answer.",
          schema: z.object({ status: z.literal("ok"), kv: z.literal("ok") }),
          name: "Health",
        },
      },
      errors: [503],
    })
    .describe({
      method: "post",
      path: "/api/auth/sign-up",
      operationId: "signUp",
      summary: "Create an account",
      description: `Creates the account and signs it in. ${COOKIE} ${SAME_ORIGIN}`,
      ...open,
      body: signUpBody,
      bodyName: "SignUpParams",
      responses: { 201: { description: "Signed up.", schema: signedIn, name: "SignedIn" } },
      errors: [400, 403, 409, 413, 415, 429],
    })
    .describe({
      method: "post",
      path: "/api/auth/sign-in",
      operationId: "signIn",
      summary: "Sign in",
      description: `${COOKIE} ${SECOND_STEP} ${SAME_ORIGIN}`,
      ...open,
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
    })
    .describe({
      method: "post",
      path: "/api/auth/sign-out",
      operationId: "signOut",
      summary: "Sign out",
      description: `Ends the caller's session, if any, and clears the cookie. ${SAME_ORIGIN}`,
      ...open,
      responses: { 200: { description: "Signed out.", schema: success, name: "Success" } },
      errors: [403],
    })
    .describe({
      method: "get",
      path: "/api/auth/session",
      operationId: "getSession",
      summary: "The signed-in account",
      description: "401 without a live session; 403 `ACCOUNT_SUSPENDED` for a suspended account.",
      ...session,
      responses: { 200: { description: "The account and session.", schema: signedIn } },
      errors: [403],
    })
    .describe({
      method: "post",
      path: "/api/auth/sign-up/email",
      operationId: "signUpEmail",
      summary: "Create an account (better-auth)",
      description: `better-auth's sign-up. ${COOKIE} ${SAME_ORIGIN}`,
      ...open,
      body: signUpEmailBody,
      bodyName: "SignUpEmailParams",
      responses: {
        200: { description: "Signed up.", schema: baSignedIn, name: "BetterAuthSignedIn" },
      },
      errors: [400, 403, 409, 413, 415, 429],
    })
    .describe({
      method: "post",
      path: "/api/auth/sign-in/email",
      operationId: "signInEmail",
      summary: "Sign in (better-auth)",
      description: `better-auth's sign-in. ${COOKIE} ${SECOND_STEP} ${SAME_ORIGIN}`,
      ...open,
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
    })
    .describe({
      method: "get",
      path: "/api/auth/get-session",
      operationId: "getSessionBetterAuth",
      summary: "The current session (better-auth)",
      description: "`null` (200) when signed out, as better-auth answers.",
      ...open,
      responses: {
        200: {
          description: "The session and its user, or null.",
          schema: z.object({ session: baSession, user: baUser }).nullable(),
          name: "BetterAuthSession",
        },
      },
      errors: [403],
    })
    .describe({
      method: "post",
      path: "/api/auth/update-user",
      operationId: "updateUser",
      summary: "Change the display name",
      description: SAME_ORIGIN,
      ...session,
      body: updateUserBody,
      bodyName: "UpdateUserParams",
      responses: { 200: { description: "Updated.", schema: status, name: "Status" } },
      errors: [400, 403, 413, 415],
    })
    .describe({
      method: "post",
      path: "/api/auth/change-password",
      operationId: "changePassword",
      summary: "Change the password",
      description: "Keeps the caller's session; `revokeOtherSessions` defaults to true here. " +
        `${SUDO} ${SAME_ORIGIN}`,
      ...session,
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
    })
    .describe({
      method: "get",
      path: "/api/auth/list-sessions",
      operationId: "listSessions",
      summary: "List the account's sessions",
      ...session,
      responses: {
        200: { description: "Every live session.", schema: z.array(baSession), name: "Sessions" },
      },
      errors: [403],
    })
    .describe({
      method: "post",
      path: "/api/auth/revoke-session",
      operationId: "revokeSession",
      summary: "Sign one session out",
      description: "`token` is the session's id, as list-sessions gives it; revoking your own " +
        `signs you out. ${SAME_ORIGIN}`,
      ...session,
      body: revokeSessionBody,
      bodyName: "RevokeSessionParams",
      responses: { 200: { description: "Revoked (or no such session).", schema: status } },
      errors: [400, 403, 413, 415],
    })
    .describe({
      method: "post",
      path: "/api/auth/revoke-other-sessions",
      operationId: "revokeOtherSessions",
      summary: "Sign every other session out",
      description: SAME_ORIGIN,
      ...session,
      responses: { 200: { description: "Revoked.", schema: status } },
      errors: [403],
    })
    .describe({
      method: "post",
      path: "/api/auth/send-verification-email",
      operationId: "sendVerificationEmail",
      summary: "E-mail a new verification link",
      description: "better-auth's resend. With a session: for its own address only (400 " +
        "`EMAIL_MISMATCH`, `EMAIL_ALREADY_VERIFIED`); without one, the same answer for any " +
        "address. At most one mail per account every 5 minutes: inside that time nothing is " +
        "sent and the last link keeps working. 400 `VERIFICATION_EMAIL_NOT_ENABLED` when " +
        "EMAIL_VERIFICATION is off. " + SAME_ORIGIN,
      ...open,
      body: sendVerificationEmailBody,
      bodyName: "SendVerificationEmailParams",
      responses: { 200: { description: "Requested.", schema: status } },
      errors: [400, 403, 413, 415],
    })
    .describe({
      method: "get",
      path: "/api/auth/verify-email",
      operationId: "verifyEmail",
      summary: "Verify an e-mail address (the mailed link)",
      description: "Consumes the link's token (it works once, for one hour) and marks the " +
        "account verified. With `callbackURL` (a path on this site; the mailed links carry " +
        "one) the answer is a 302 there, with `?error=INVALID_TOKEN` for a wrong, used or " +
        "expired link; without it, JSON (401 `INVALID_TOKEN`).",
      ...open,
      query: verifyEmailQuery,
      responses: {
        200: {
          description: "Verified.",
          schema: z.object({ status: z.literal(true), user: z.null() }),
          name: "EmailVerified",
        },
        302: { description: "Back to `callbackURL`." },
      },
      errors: [400, 401],
    })
    .describe({
      method: "post",
      path: "/api/auth/request-password-reset",
      operationId: "requestPasswordReset",
      summary: "E-mail a password reset link",
      description: "The same answer whether or not the address has an account. " + SAME_ORIGIN,
      ...open,
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
    })
    .describe({
      method: "post",
      path: "/api/auth/reset-password",
      operationId: "resetPassword",
      summary: "Set a new password with a reset token",
      description: "Consumes the token and signs every session of the account out. " +
        SAME_ORIGIN,
      ...open,
      body: resetPasswordBody,
      bodyName: "ResetPasswordParams",
      responses: { 200: { description: "Password set.", schema: status } },
      errors: [400, 403, 413, 415, 429],
    })
    .describe({
      method: "post",
      path: "/api/auth/delete-user",
      operationId: "deleteUser",
      summary: "Delete the account",
      description: "Deletes the account and everything it holds; needs the password. " +
        `${SUDO} ${SAME_ORIGIN}`,
      ...session,
      body: deleteUserBody,
      bodyName: "DeleteUserParams",
      responses: { 200: { description: "Deleted.", schema: success } },
      errors: [400, 403, 413, 415],
    })
    .describe({
      method: "post",
      path: "/api/auth/two-factor/enable",
      operationId: "enableTwoFactor",
      summary: "Start TOTP enrolment",
      description: "Checks the password, then answers the `otpauth://` URI and ten single-use " +
        "recovery codes (shown once). Enrolment completes with the first code verified by " +
        `verify-totp. ${SUDO} ${SAME_ORIGIN}`,
      ...session,
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
    })
    .describe({
      method: "post",
      path: "/api/auth/two-factor/verify-totp",
      operationId: "verifyTotp",
      summary: "Verify an authenticator code",
      description: "With the pending cookie of a sign-in: completes it (sets the session " +
        "cookie). Signed in: completes a pending enrolment. A code is accepted once; wrong " +
        `codes are throttled per account and client. ${SAME_ORIGIN}`,
      ...open,
      body: verifyTotpBody,
      bodyName: "VerifyTotpParams",
      responses: {
        200: { description: "Verified.", schema: baVerified, name: "TwoFactorVerified" },
      },
      errors: [400, 401, 403, 413, 415, 429],
    })
    .describe({
      method: "post",
      path: "/api/auth/two-factor/verify-backup-code",
      operationId: "verifyBackupCode",
      summary: "Complete a sign-in with a recovery code",
      description: `Each recovery code works once. ${SAME_ORIGIN}`,
      ...open,
      body: verifyBackupCodeBody,
      bodyName: "VerifyBackupCodeParams",
      responses: { 200: { description: "Signed in.", schema: baVerified } },
      errors: [400, 401, 403, 413, 415, 429],
    })
    .describe({
      method: "post",
      path: "/api/auth/two-factor/disable",
      operationId: "disableTwoFactor",
      summary: "Turn TOTP off",
      description: `Removes the authenticator and recovery codes. ${SUDO} ${SAME_ORIGIN}`,
      ...session,
      body: passwordOnlyBody,
      bodyName: "PasswordParams",
      responses: { 200: { description: "Disabled.", schema: status } },
      errors: [400, 403, 413, 415, 429],
    })
    .describe({
      method: "post",
      path: "/api/auth/two-factor/generate-backup-codes",
      operationId: "generateBackupCodes",
      summary: "Replace the recovery codes",
      description: `The old codes stop working. ${SUDO} ${SAME_ORIGIN}`,
      ...session,
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
    })
    .describe({
      method: "post",
      path: "/api/auth/reauthenticate",
      operationId: "reauthenticate",
      summary: "Re-authenticate (sudo mode)",
      description: "A password or an authenticator code puts the session in sudo mode for 10 " +
        `minutes. ${SAME_ORIGIN}`,
      ...session,
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
    });
}

const EXAMPLE_USER = {
  id: "usr_5Qx8kP2mVt7nLr4WcZa9Hd",
  email: "ada@example.com",
  name: "Ada Lovelace",
  emailVerified: true,
  image: null,
  createdAt: "2026-03-14T09:26:53.000Z",
  updatedAt: "2026-03-14T09:26:53.000Z",
};
const EXAMPLE_CODES = [
  "k7m2p-x9c4t",
  "q3w8z-n5r2h",
  "b6v4j-t8y3k",
  "c9x2m-p7w5q",
  "h4n8r-z3b6v",
  "t2k9w-m5c8x",
  "y7p3q-j4n9b",
  "r5z8c-w2k6m",
  "v3b7t-h9x4p",
  "m8q2n-c5r7z",
];

/** Request and response examples of the two-factor routes (spread into routes/openapi_examples.ts). */
export const TWO_FACTOR_EXAMPLES: Record<string, OperationExamples> = {
  enableTwoFactor: {
    request: { password: "plum-orchard-7-lantern" },
    responses: {
      200: {
        method: "totp",
        totpURI:
          "otpauth://totp/Inbound:ada%40example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP" +
          "&issuer=Inbound&algorithm=SHA1&digits=6&period=30",
        backupCodes: EXAMPLE_CODES,
      },
    },
  },
  verifyTotp: {
    request: { code: "492039" },
    responses: { 200: { token: null, user: EXAMPLE_USER } },
  },
  verifyBackupCode: {
    request: { code: "k7m2p-x9c4t" },
    responses: { 200: { token: null, user: EXAMPLE_USER } },
  },
  disableTwoFactor: {
    request: { password: "plum-orchard-7-lantern" },
    responses: { 200: { status: true } },
  },
  generateBackupCodes: {
    request: { password: "plum-orchard-7-lantern" },
    responses: { 200: { status: true, backupCodes: EXAMPLE_CODES } },
  },
  reauthenticate: {
    request: { password: "plum-orchard-7-lantern" },
    responses: { 200: { status: true, user: EXAMPLE_USER } },
  },
};
