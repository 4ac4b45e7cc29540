/**
 * "Forgot password?": the request page (an email; the answer never says whether it has an
 * account) and the reset page a mailed link opens (`/reset-password?token=…`), with the same
 * account operations as `/api/auth/request-password-reset` and `/reset-password`. Plain forms
 * posted to this origin (Post/Redirect/Get); the token travels in the form, never to another site
 * (Referrer-Policy: same-origin, no third-party resources).
 */
import type { Context, Hono } from "hono";
import { type AccountService, clientAddress } from "../../auth/accounts/service.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { MIN_PASSWORD_LENGTH } from "../../auth/passwords/hash.ts";
import { clearSessionCookieHeader, mailLinkOrigin } from "../../auth/sessions/manager.ts";
import { newPasswordSchema } from "./schemas.ts";
import { EmailField, NewPasswordField } from "../dashboard/fields.tsx";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";

export const FORGOT_PATH = "/forgot-password";
export const RESET_PATH = "/reset-password";

/**
 * The banners a redirect after a reset step names (`?notice=`). Whether an address has an
 * account is no secret here (sign-up answers 409 EMAIL_TAKEN: sign_in_pages.tsx), so the
 * wording does not pretend otherwise: it says what happens to each, so a person with no mail
 * knows what to check. The answer itself stays the same for any address (the API's contract).
 */
export const PASSWORD_RESET_NOTICES: Record<string, string> = {
  "reset-sent": "A reset link is on its way if an account uses that email; it works for one " +
    "hour. No mail? Check the address, or create an account with it.",
  "password-reset": "Password changed. Every session was signed out: sign in with the new one.",
};

export function ForgotPasswordPage(props: { error?: string; notice?: string; email?: string }) {
  return (
    <Layout title="Reset your password" narrow>
      <h1>Reset your password</h1>
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      <form method="post" action={FORGOT_PATH} class="card" novalidate>
        <EmailField autocomplete="username" email={props.email} error={props.error}>
          <p class="hint">
            The email you signed up with: a link to choose a new password is sent to it (an address
            with no account here gets no mail). The link works once, for one hour.
          </p>
        </EmailField>
        <button type="submit">Send the reset link</button>
      </form>
      <p class="switch">
        Remembered it? <a href="/sign-in">Sign in</a>
      </p>
    </Layout>
  );
}

export function ResetPasswordPage(props: { token: string; valid: boolean; error?: string }) {
  return (
    <Layout title="Choose a new password" narrow>
      <h1>Choose a new password</h1>
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      {props.valid
        ? (
          <form method="post" action={RESET_PATH} class="card" novalidate>
            <input type="hidden" name="token" value={props.token} />
            <NewPasswordField id="password" name="password" label="New password">
              At least {MIN_PASSWORD_LENGTH}{" "}
              characters. Saving it signs out every session of the account.
            </NewPasswordField>
            <button type="submit">Set the new password</button>
          </form>
        )
        : (
          <p id="reset-invalid">
            This reset link is invalid, used or expired.{" "}
            <a href={FORGOT_PATH}>Ask for a new one</a>.
          </p>
        )}
    </Layout>
  );
}

// --- Routes ----------------------------------------------------------------------------------

export type PasswordResetPagesDeps = { kit: DashboardKit; accounts: AccountService };

/** Registers the forgot-password and reset-password pages and their forms. */
export function registerPasswordResetPages(app: Hono<AppEnv>, deps: PasswordResetPagesDeps): void {
  const { kit, accounts } = deps;
  app.get(FORGOT_PATH, (c) => {
    return kit.page(<ForgotPasswordPage notice={kit.notice(c.req.query("notice") ?? "")} />);
  });
  app.post(FORGOT_PATH, kit.sameOrigin, kit.formLimit, (c) => requestReset(c, deps));
  app.get(RESET_PATH, async (c) => {
    const token = (c.req.query("token") ?? "").slice(0, 200);
    const valid = token !== "" && await accounts.resetTokenValid(token);
    return kit.page(<ResetPasswordPage token={token} valid={valid} />, valid ? 200 : 400);
  });
  app.post(RESET_PATH, kit.sameOrigin, kit.formLimit, (c) => resetPassword(c, deps));
}

async function requestReset(c: Context<AppEnv>, deps: PasswordResetPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const email = (form.email ?? "").trim();
  if (email === "" || email.length > 254) {
    return kit.page(<ForgotPasswordPage error="Email is required." email={form.email} />, 400);
  }
  try {
    await deps.accounts.requestPasswordReset(
      { email },
      mailLinkOrigin(c.req.raw),
      clientAddress(c),
    );
    return kit.redirect(`${FORGOT_PATH}?notice=reset-sent`);
  } catch (err) {
    const e = kit.errorInfo(err);
    return kit.page(
      <ForgotPasswordPage error={e.message} email={form.email} />,
      e.status,
      e.headers,
    );
  }
}

async function resetPassword(c: Context<AppEnv>, deps: PasswordResetPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const token = (form.token ?? "").slice(0, 200);
  const parsed = newPasswordSchema.safeParse(form.password ?? "");
  if (!parsed.success) {
    const error = `New password ${parsed.error.issues[0]?.message ?? "is not valid"}.`;
    return kit.page(<ResetPasswordPage token={token} valid error={error} />, 400);
  }
  try {
    await deps.accounts.resetPassword(
      { token, newPassword: parsed.data },
      clientAddress(c),
      c.req.raw,
    );
    return kit.redirect("/sign-in?notice=password-reset", [[
      "Set-Cookie",
      clearSessionCookieHeader(c.req.raw),
    ]]);
  } catch (err) {
    const e = kit.errorInfo(err);
    const valid = e.status !== 400;
    return kit.page(
      <ResetPasswordPage token={token} valid={valid} error={e.message} />,
      e.status,
      e.headers,
    );
  }
}
