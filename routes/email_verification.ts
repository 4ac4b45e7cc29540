/**
 * better-auth's e-mail verification routes under `/api/auth` (auth/email_verification.ts has the
 * rules): `POST /send-verification-email` and `GET /verify-email`, the link's target.
 */
import { Hono } from "hono";
import { z } from "zod";
import { auditContextOf } from "../auth/audit_context.ts";
import { type AccountService, resetRedirectPath } from "../auth/accounts.ts";
import { assertSameOrigin } from "../auth/csrf.ts";
import { DEFAULT_VERIFIED_PATH, type EmailVerification } from "../auth/email_verification.ts";
import type { AppEnv } from "../auth/middleware.ts";
import { mailLinkOrigin, siteFor } from "../auth/session.ts";
import type { Clock } from "../lib/clock.ts";
import { HttpError, jsonResponse } from "../lib/errors.ts";
import { parseJsonBody } from "./validation.ts";

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
  accounts: AccountService;
  emailVerification: EmailVerification;
  clock: Clock;
  auditRetentionDays: number;
};

function noStore(body: unknown): Response {
  return jsonResponse(body, 200, { "Cache-Control": "no-store" });
}

export function emailVerificationRoutes(deps: EmailVerificationRouteDeps) {
  const { accounts, emailVerification } = deps;
  const app = new Hono<AppEnv>();

  app.post("/send-verification-email", async (c) => {
    assertSameOrigin(c.req.raw);
    const body = await parseJsonBody(c, sendVerificationEmailBody);
    const origin = mailLinkOrigin(c.req.raw);
    const callback = verifiedCallbackPath(body.callbackURL, origin ?? siteFor(c.req.raw).origin);
    const current = await accounts.current(c.req.raw);
    const session = current.kind === "ok" ? current.user : null;
    if (origin === null) {
      // As for reset links: no link to a Host the client chose (auth/session.ts).
      throw new HttpError(400, "Verification links need PUBLIC_URL to be set on this server.", {
        code: "PUBLIC_URL_REQUIRED",
      });
    }
    emailVerification.resend(body.email, session, origin, callback);
    return noStore({ status: true });
  });

  /**
   * The link's target. With `callbackURL` (the mailed links carry one) the answer is a redirect
   * there, with `?error=INVALID_TOKEN` when the link is wrong, used or expired; without, JSON.
   */
  app.get("/verify-email", async (c) => {
    const parsed = verifyEmailQuery.safeParse(c.req.query());
    const origin = siteFor(c.req.raw).origin;
    const callback = parsed.success && parsed.data.callbackURL
      ? verifiedCallbackPath(parsed.data.callbackURL, origin)
      : null;
    // The actor is the link itself: whoever opens it proves the mailbox, signed in or not.
    const audit = { ...auditContextOf(c.req.raw, { userId: "" }), actor: LINK_ACTOR };
    const user = parsed.success
      ? await emailVerification.verify(parsed.data.token, {
        ctx: { ...audit, retentionDays: deps.auditRetentionDays },
        nowMs: deps.clock(),
      })
      : null;
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
  });

  return app;
}
