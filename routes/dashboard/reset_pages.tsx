/**
 * "Forgot password?": the request page (an email; the answer never says whether it has an
 * account) and the reset page a mailed link opens (`/reset-password?token=…`). Plain forms posted
 * to this origin; the token travels in the form, never to another site (Referrer-Policy:
 * same-origin, no third-party resources).
 */
import { MIN_PASSWORD_LENGTH } from "../../auth/password.ts";
import { EmailField, NewPasswordField } from "./auth_pages.tsx";
import { Banner, Layout } from "./layout.tsx";

export const FORGOT_PATH = "/forgot-password";
export const RESET_PATH = "/reset-password";

export function ForgotPasswordPage(props: { error?: string; notice?: string; email?: string }) {
  return (
    <Layout title="Reset your password" narrow>
      <h1>Reset your password</h1>
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      <form method="post" action={FORGOT_PATH} class="card" novalidate>
        <EmailField autocomplete="username" email={props.email} error={props.error}>
          <p class="hint">
            If an account uses this email, a link to choose a new password is sent to it. The link
            works once, for one hour.
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
