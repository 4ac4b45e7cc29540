/** Sign-up and sign-in pages: plain forms, posted to this origin, readable errors. */
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/password.ts";
import { Banner, Layout } from "./layout.tsx";
import { PasskeySignIn } from "./passkeys_section.tsx";

export type AuthPageProps = {
  error?: string;
  notice?: string;
  email?: string;
  /**
   * The site's origin when it is plain HTTP off loopback with no PUBLIC_URL chosen: the browser
   * will drop the Secure session cookie, so the page says so (auth/session.ts).
   */
  plainHttpOrigin?: string;
};

/** Why signing in cannot work here, and the two ways out, in plain words. */
function PlainHttpWarning(props: { origin: string }) {
  return (
    <div class="warning" id="plain-http-warning" role="note">
      <p>
        <strong>You will not stay signed in on this address.</strong>{" "}
        This page came over plain HTTP from{" "}
        {props.origin}, and your browser only keeps the secure session cookie for HTTPS sites (or
        localhost). Signing in or up would succeed and then send you straight back here.
      </p>
      <p>
        To fix it, open the server over HTTPS (put a TLS-terminating reverse proxy in front: see
        "Behind a reverse proxy" in the README). Or, only on a private network you trust, restart
        the server with <code>PUBLIC_URL={props.origin}</code>{" "}
        to accept plain HTTP: the session cookie then travels unencrypted, and anyone on the network
        can read and reuse it.
      </p>
    </div>
  );
}

/** The email field both forms share; `username` lets password managers pair it on sign-in. */
export function EmailField(
  props: { email?: string; error?: string; autocomplete: "email" | "username"; children?: unknown },
) {
  return (
    <div class="field">
      <label for="email">Email</label>
      <input
        type="email"
        id="email"
        name="email"
        autocomplete={props.autocomplete}
        required
        maxlength={254}
        value={props.email ?? ""}
        aria-describedby={props.error ? "form-error" : undefined}
      />
      {props.children}
    </div>
  );
}

/** A new password's input with its length rules and a hint (sign-up, reset, password change). */
export function NewPasswordField(
  props: { id: string; name: string; label: string; children: unknown },
) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        type="password"
        id={props.id}
        name={props.name}
        autocomplete="new-password"
        required
        minlength={MIN_PASSWORD_LENGTH}
        maxlength={MAX_PASSWORD_LENGTH}
        aria-describedby={`${props.id}-hint`}
      />
      <p class="hint" id={`${props.id}-hint`}>{props.children}</p>
    </div>
  );
}

export function SignUpPage(props: AuthPageProps) {
  return (
    <Layout title="Create your account" narrow>
      <h1>Create your account</h1>
      {props.plainHttpOrigin ? <PlainHttpWarning origin={props.plainHttpOrigin} /> : null}
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      <form method="post" action="/sign-up" class="card" novalidate>
        <div class="field">
          <label for="name">
            Name <span class="muted">(optional)</span>
          </label>
          <input id="name" name="name" type="text" maxlength={100} autocomplete="name" />
        </div>
        <EmailField autocomplete="email" {...props} />
        <NewPasswordField id="password" name="password" label="Password">
          At least {MIN_PASSWORD_LENGTH} characters. A passphrase of several words works well.
        </NewPasswordField>
        <button type="submit">Create account</button>
      </form>
      <p class="switch">
        Already have an account? <a href="/sign-in">Sign in</a>
      </p>
    </Layout>
  );
}

export function SignInPage(props: AuthPageProps) {
  return (
    <Layout title="Sign in" narrow>
      <h1>Sign in</h1>
      {props.plainHttpOrigin ? <PlainHttpWarning origin={props.plainHttpOrigin} /> : null}
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      <form method="post" action="/sign-in" class="card" novalidate>
        <EmailField autocomplete="username" {...props} />
        <div class="field">
          <label for="password">Password</label>
          <input
            type="password"
            id="password"
            name="password"
            autocomplete="current-password"
            required
            maxlength={MAX_PASSWORD_LENGTH}
          />
        </div>
        <button type="submit">Sign in</button>
      </form>
      <PasskeySignIn />
      <p class="switch">
        <a href="/forgot-password" id="forgot-password">Forgot password?</a>
      </p>
      <p class="switch">
        New here? <a href="/sign-up">Create an account</a>
      </p>
    </Layout>
  );
}
