/**
 * better-auth's e-mail verification operations under `/api/auth` (auth/email_verification.ts
 * has the rules): `POST /send-verification-email` and `GET /verify-email`, the link's target.
 */
import { z } from "zod";
import { resetRedirectPath } from "../../auth/accounts/service.ts";
import { auditContextOf } from "../../auth/audit_context.ts";
import { DEFAULT_VERIFIED_PATH, type EmailVerification } from "../../auth/email_verification.ts";
import { mailLinkOrigin, siteFor } from "../../auth/sessions/manager.ts";
import type { Clock } from "../../lib/clock.ts";
import { HttpError } from "../../lib/errors.ts";
import { noStore } from "../accounts/responses.ts";
import { SAME_ORIGIN, status } from "../accounts/schemas.ts";
import type { RouteRegistry } from "../registry.ts";

/** better-auth's `POST /send-verification-email`. */
export const sendVerificationEmailBody = z.strictObject({
  email: z.string().trim().min(1, "is required").max(254, "must be at most 254 characters"),
  callbackURL: z.string().max(2048, "must be at most 2048 characters").optional(),
});

/** better-auth's `GET /verify-email` query. */
export const verifyEmailQuery = z.object({
  token: z.string().min(1, "is required").max(200, "must be at most 200 characters"),
  callbackURL: z.string().max(2048, "must be at most 2048 characters").optional(),
});

/** A same-site path for `callbackURL` (400 INVALID_REDIRECT otherwise), or the default page. */
export function verifiedCallbackPath(callbackURL: string | undefined, origin: string): string {
  if (callbackURL === undefined || callbackURL === "") return DEFAULT_VERIFIED_PATH;
  return resetRedirectPath(callbackURL, origin, "callbackURL");
}

const LINK_ACTOR = { type: "session", id: "verification-link" } as const;

export type EmailVerificationRouteDeps = {
  emailVerification: EmailVerification;
  clock: Clock;
  auditRetentionDays: number;
};

const tags = ["Accounts"];

export function registerEmailVerificationRoutes(
  registry: RouteRegistry,
  deps: EmailVerificationRouteDeps,
): void {
  const { emailVerification } = deps;
  registry.add({
    method: "post",
    path: "/api/auth/send-verification-email",
    operationId: "sendVerificationEmail",
    summary: "E-mail a new verification link",
    description: "better-auth's resend. With a session: for its own address only (400 " +
      "`EMAIL_MISMATCH`, `EMAIL_ALREADY_VERIFIED`); without one, the same answer for any " +
      "address. At most one mail per account every 5 minutes: inside that time nothing is " +
      "sent and the last link keeps working. 400 `VERIFICATION_EMAIL_NOT_ENABLED` when " +
      "EMAIL_VERIFICATION is off. " + SAME_ORIGIN,
    tags,
    auth: false,
    session: "optional",
    sameOrigin: true,
    body: sendVerificationEmailBody,
    bodyName: "SendVerificationEmailParams",
    responses: { 200: { description: "Requested.", schema: status } },
    errors: [400, 403, 413, 415],
    handler: (c, { body, session }) => {
      const origin = mailLinkOrigin(c.req.raw);
      const callback = verifiedCallbackPath(body.callbackURL, origin ?? siteFor(c.req.raw).origin);
      if (origin === null) {
        // As for reset links: no link to a Host the client chose (auth/sessions/manager.ts).
        throw new HttpError(400, "Verification links need PUBLIC_URL to be set on this server.", {
          code: "PUBLIC_URL_REQUIRED",
        });
      }
      emailVerification.resend(body.email, session?.user ?? null, origin, callback);
      return noStore({ status: true });
    },
  });
  registerVerifyEmail(registry, deps);
}

/**
 * The link's target. With `callbackURL` (the mailed links carry one) the answer is a redirect
 * there, with `?error=INVALID_TOKEN` when the link is wrong, used or expired; without, JSON.
 */
function registerVerifyEmail(registry: RouteRegistry, deps: EmailVerificationRouteDeps): void {
  registry.add({
    method: "get",
    path: "/api/auth/verify-email",
    operationId: "verifyEmail",
    summary: "Verify an e-mail address (the mailed link)",
    description: "Consumes the link's token (it works once, for one hour) and marks the " +
      "account verified. With `callbackURL` (a path on this site; the mailed links carry " +
      "one) the answer is a 302 there, with `?error=INVALID_TOKEN` for a wrong, used or " +
      "expired link; without it, JSON (401 `INVALID_TOKEN`).",
    tags,
    auth: false,
    audit: ["user.email_verified"],
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
    handler: async (c, { query }) => {
      const origin = siteFor(c.req.raw).origin;
      const callback = query.callbackURL ? verifiedCallbackPath(query.callbackURL, origin) : null;
      // The actor is the link itself: whoever opens it proves the mailbox, signed in or not.
      const audit = { ...auditContextOf(c.req.raw, { userId: "" }), actor: LINK_ACTOR };
      const user = await deps.emailVerification.verify(query.token, {
        ctx: { ...audit, retentionDays: deps.auditRetentionDays },
        nowMs: deps.clock(),
      });
      if (callback !== null) {
        const to = new URL(callback, origin);
        if (!user) to.searchParams.set("error", "INVALID_TOKEN");
        return c.redirect(`${to.pathname}${to.search}`, 302);
      }
      if (!user) {
        throw new HttpError(401, "The verification link is invalid, used or expired.", {
          code: "INVALID_TOKEN",
        });
      }
      return noStore({ status: true, user: null });
    },
  });
}
