/**
 * E-mail verification in the dashboard (auth/email_verification.ts): the banner every settings
 * page shows an unverified account while EMAIL_VERIFICATION=required (inserted by mod.tsx's
 * session middleware), its "send the link again" form, and the page a link returns to.
 */
import type { Hono } from "hono";
import type { AccountService } from "../../auth/accounts/service.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { mailLinkOrigin } from "../../auth/sessions/manager.ts";
import { KEYS_PATH } from "../api_keys/pages.tsx";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";

export const VERIFY_EMAIL_RESEND_PATH = "/settings/verify-email";
export const EMAIL_VERIFIED_PATH = "/email-verified";

/** The banner after "Send the link again" (`?notice=`). */
export const EMAIL_VERIFICATION_NOTICES: Record<string, string> = {
  "verification-sent": "If this account's address is not verified yet, a link is on its way " +
    "(at most one every 5 minutes: the last one keeps working).",
};

/** What an unverified account may not do yet, in the words of the 403's message. */
export function VerifyEmailBanner(props: { email: string }) {
  return (
    <div class="alert cap" id="verify-email" role="status">
      <p>
        <strong>Verify your email address.</strong> We sent a link to{" "}
        {props.email}. Until you open it, this account cannot create API keys, add domains or set up
        two-factor sign-in.
      </p>
      <form method="post" action={VERIFY_EMAIL_RESEND_PATH}>
        <button type="submit" class="secondary">Send the link again</button>
      </form>
    </div>
  );
}

/**
 * The banner inserted at the top of a settings page's main content: one place for every page,
 * rather than a property each page would have to pass on. The pages are ours (layout.tsx), so
 * the marker is known; a response without it is returned as it was.
 */
export async function withVerifyEmailBanner(res: Response, email: string): Promise<Response> {
  if (!(res.headers.get("Content-Type") ?? "").startsWith("text/html")) return res;
  const html = await res.text();
  const marker = /<main id="main"[^>]*>/.exec(html);
  if (!marker) return new Response(html, res);
  const at = marker.index + marker[0].length;
  const banner = String(await <VerifyEmailBanner email={email} />);
  return new Response(html.slice(0, at) + banner + html.slice(at), {
    status: res.status,
    headers: res.headers,
  });
}

/** Where a verification link returns: verified, or why not (`?error=INVALID_TOKEN`). */
export function EmailVerifiedPage(props: { error: boolean }) {
  return (
    <Layout title={props.error ? "Link not valid" : "Email verified"} narrow>
      {props.error
        ? (
          <>
            <h1>This link does not work</h1>
            <Banner kind="error">
              This verification link is invalid, used or expired (links work once, for one hour).
            </Banner>
            <p>
              Sign in and choose "Send the link again" in the banner at the top of the page.
            </p>
          </>
        )
        : (
          <>
            <h1>Your email address is verified</h1>
            <Banner kind="ok">
              Your email address is verified. You can now create API keys, add domains and set up
              two-factor sign-in.
            </Banner>
          </>
        )}
      <p>
        <a href="/settings/api-keys">Go to your API keys</a>
      </p>
    </Layout>
  );
}

export type EmailVerificationPagesDeps = { kit: DashboardKit; accounts: AccountService };

/**
 * Registers the link's landing page and the banner's "send the link again" (a settings form:
 * registered after the session middleware).
 */
export function registerEmailVerificationPages(
  app: Hono<AppEnv>,
  deps: EmailVerificationPagesDeps,
): void {
  const { kit, accounts } = deps;
  app.get(
    EMAIL_VERIFIED_PATH,
    (c) => kit.page(<EmailVerifiedPage error={c.req.query("error") !== undefined} />),
  );
  app.post(VERIFY_EMAIL_RESEND_PATH, kit.sameOrigin, kit.formLimit, async (c) => {
    const user = await c.get("store").user();
    const origin = mailLinkOrigin(c.req.raw);
    if (origin !== null && user.emailVerified !== true) {
      accounts.emailVerification.resend(user.email, user, origin, EMAIL_VERIFIED_PATH);
    }
    return kit.redirect(`${KEYS_PATH}?notice=verification-sent`);
  });
}
