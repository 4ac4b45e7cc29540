/**
 * What the account operations (routes/accounts/operations.ts) take and answer: the request body
 * schemas they validate with (the dashboard's forms validate with the same ones), the response
 * schemas the OpenAPI document shows, and the sentences their descriptions share.
 */
import { z } from "zod";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/passwords/hash.ts";
import { MAX_NAME_LENGTH } from "../../store/accounts/users.ts";

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

export const VERIFIED = "Whether the owner opened the verification link (or completed a password " +
  "reset). With EMAIL_VERIFICATION=required an unverified account cannot create API keys, add " +
  "domains or enrol second factors (403 `EMAIL_NOT_VERIFIED`).";

export const user = z.object({
  id: z.string().describe("The account's id (usr_…)."),
  email: z.string(),
  name: z.string().nullable().describe("Display name; null for accounts made before names."),
  createdAt: z.string(),
  updatedAt: z.string(),
  emailVerified: z.boolean().describe(VERIFIED),
});

export const baUser = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  emailVerified: z.boolean().describe(VERIFIED),
  image: z.null(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const baSession = z.object({
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

export const signedIn = z.object({
  user,
  session: z.object({ id: z.string(), expiresAt: z.string() }),
});

export const baSignedIn = z.object({
  token: z.null().describe("Always null: the session travels in the cookie only."),
  redirect: z.boolean(),
  user: baUser,
});

export const status = z.object({ status: z.boolean() });
export const success = z.object({ success: z.boolean(), message: z.string() });

export const COOKIE = "Sets the session cookie (and the device cookie).";
export const SUDO =
  "Needs sudo mode: a sign-in or re-authentication (POST /api/auth/reauthenticate) in " +
  "the session's last 10 minutes, else 403 `REAUTHENTICATION_REQUIRED`.";
export const SECOND_STEP = "An account with a second factor gets `{ twoFactorRedirect: true, " +
  "twoFactorMethods }` and a 10-minute pending cookie instead of a session; " +
  "POST /api/auth/two-factor/verify-totp (or verify-backup-code) completes it.";
export const twoFactorRedirect = z.object({
  twoFactorRedirect: z.literal(true),
  twoFactorMethods: z.array(z.enum(["totp", "passkey"])),
});
export const baVerified = z.object({
  token: z.null().describe("Always null: the session travels in the cookie only."),
  user: baUser,
});
export const SAME_ORIGIN = "Refused with 403 from another origin (CSRF).";
