/**
 * Sign-up, sign-in and sign-out in the dashboard: plain forms posted to this origin, readable
 * errors, and the same account operations and body schemas as `/api/auth/*` (auth/accounts/service.ts,
 * routes/accounts/schemas.ts). A sign-in that needs a second factor continues on the two-factor
 * page (two_factor_pages.tsx); SIGN_UP=closed shows the closed page instead of the form.
 */
import type { Context, Hono } from "hono";
import {
  type AccountService,
  clientAddress,
  requestOrigin,
  type SignedIn,
} from "../../auth/accounts/service.ts";
import { deviceCookieHeader } from "../../auth/sessions/device_cookie.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from "../../auth/passwords/hash.ts";
import {
  clearSessionCookieHeader,
  mailLinkOrigin,
  sessionCookieDropped,
  sessionCookieHeader,
  type SessionManager,
} from "../../auth/sessions/manager.ts";
import { pendingCookieHeader } from "../../auth/two_factor.ts";
import type { z } from "zod";
import { HttpError } from "../../lib/errors.ts";
import { NEXT_PARAM, safeNextPath, withNext } from "./next_path.ts";
import { signInBody, signUpBody } from "./schemas.ts";
import { KEYS_PATH } from "../api_keys/pages.tsx";
import { EMAIL_VERIFIED_PATH } from "../email_verification/pages.tsx";
import { EmailField, NewPasswordField } from "../dashboard/fields.tsx";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";
import { PasskeySignIn } from "../passkeys/pages.tsx";
import { TWO_FACTOR_SIGN_IN_PATH } from "../two_factor/pages.tsx";

/** The banners a redirect to the sign-in page names (`?notice=`). */
export const SIGN_IN_NOTICES: Record<string, string> = {
  "signed-out": "You have signed out.",
  // The session guard's (routes/dashboard/mod.tsx); the page it names is in `next=`.
  "session-expired": "Your session expired. Sign in again to continue.",
  "session-expired-form": "Your session expired. Sign in again to continue. What you submitted " +
    "was not done: you will be back on its page to send it again.",
};

/** Sign-up's fields, each of which can be in error at once (`SignUpPage`'s `problems`). */
type SignUpField = "name" | "email" | "password";

const SIGN_UP_LABELS: Record<SignUpField, string> = {
  name: "Name",
  email: "Email",
  password: "Password",
};

export type AuthPageProps = {
  error?: string;
  notice?: string;
  email?: string;
  /**
   * The site's origin when it is plain HTTP off loopback with no PUBLIC_URL chosen: the browser
   * will drop the Secure session cookie, so the page says so (auth/sessions/manager.ts).
   */
  plainHttpOrigin?: string;
  /** Where signing in lands (`next=`, checked by routes/accounts/next_path.ts). */
  next?: string | null;
};

export type SignUpPageProps = AuthPageProps & {
  /** Each field's own problem, all at once; the first one gets the focus. */
  problems?: Partial<Record<SignUpField, string>>;
  /** The email's problem is that an account uses it: offer sign-in and reset beside it. */
  emailTaken?: boolean;
  name?: string;
};

/** The hidden field that carries `next=` through a form post. */
function NextField(props: { next?: string | null }) {
  return props.next ? <input type="hidden" name={NEXT_PARAM} value={props.next} /> : null;
}

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
        docs/reverse-proxies.md in the project). Or, only on a private network you trust, restart
        the server with <code>PUBLIC_URL={props.origin}</code>{" "}
        to accept plain HTTP: the session cookie then travels unencrypted, and anyone on the network
        can read and reuse it.
      </p>
    </div>
  );
}

/**
 * The sign-up form. Every field in error is marked at once (`aria-invalid`, its message beside
 * it, the first one focused) and the banner sums them up; what was typed, except the password,
 * is filled back in.
 */
export function SignUpPage(props: SignUpPageProps) {
  const problems = props.problems ?? {};
  const first = (["name", "email", "password"] as const).find((f) => problems[f]);
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
          <input
            id="name"
            name="name"
            type="text"
            maxlength={100}
            autocomplete="name"
            value={props.name ?? ""}
            aria-invalid={problems.name ? "true" : undefined}
            autofocus={first === "name" ? true : undefined}
            aria-describedby={problems.name ? "name-problem" : undefined}
          />
          {problems.name ? <p class="field-error" id="name-problem">{problems.name}</p> : null}
        </div>
        <EmailField
          autocomplete="email"
          email={props.email}
          problem={problems.email}
          focus={first === "email"}
        >
          {props.emailTaken
            ? (
              <p class="hint">
                <a href="/sign-in">Sign in</a> or <a href="/forgot-password">reset its password</a>.
              </p>
            )
            : null}
        </EmailField>
        <NewPasswordField
          id="password"
          name="password"
          label="Password"
          problem={problems.password}
          focus={first === "password"}
        >
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

/** SIGN_UP=closed: no form, and where accounts come from instead. */
export function SignUpClosedPage() {
  return (
    <Layout title="Sign-up is closed" narrow>
      <h1>Sign-up is closed</h1>
      <Banner kind="error" id="form-error">
        Sign-up is closed on this server. Ask its operator for an account.
      </Banner>
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
      {props.notice ? <Banner kind="ok" id="sign-in-notice">{props.notice}</Banner> : null}
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      <form method="post" action="/sign-in" class="card" novalidate>
        <NextField next={props.next} />
        <EmailField autocomplete="username" email={props.email} error={props.error} />
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

// --- Routes ----------------------------------------------------------------------------------

export type SignInPagesDeps = {
  kit: DashboardKit;
  accounts: AccountService;
  sessions: SessionManager;
  /** SIGN_UP: false shows the closed page instead of the form (the API answers 403 too). */
  signUpOpen: boolean;
};

/** The sign-in and sign-up pages' warning when the browser will drop the session cookie. */
export function plainHttp(c: Context<AppEnv>): { plainHttpOrigin?: string } {
  const site = c.get("client").site;
  return sessionCookieDropped(site) ? { plainHttpOrigin: site.origin } : {};
}

/** Registers `/sign-up`, `/sign-in` and `/sign-out` on the dashboard app. */
export function registerSignInPages(app: Hono<AppEnv>, deps: SignInPagesDeps): void {
  const { kit } = deps;
  app.get("/sign-up", (c) => {
    if (!deps.signUpOpen) return kit.page(<SignUpClosedPage />, 403);
    return kit.page(<SignUpPage {...plainHttp(c)} />);
  });
  app.post("/sign-up", kit.sameOrigin, kit.formLimit, (c) => signUp(c, deps));
  app.get("/sign-in", (c) => {
    const notice = kit.notice(c.req.query("notice") ?? "");
    const next = safeNextPath(c.req.query(NEXT_PARAM));
    return kit.page(<SignInPage {...plainHttp(c)} notice={notice} next={next} />);
  });
  app.post("/sign-in", kit.sameOrigin, kit.formLimit, (c) => signIn(c, deps));
  app.post("/sign-out", kit.sameOrigin, async (c) => {
    await deps.accounts.signOut(c.req.raw);
    return kit.redirect("/sign-in?notice=signed-out", [[
      "Set-Cookie",
      clearSessionCookieHeader(c.req.raw),
    ]]);
  });
}

/**
 * Signed in (or up): to `next` (the page a lapsed session was sent away from) or the keys page,
 * with the session and device cookies.
 */
function signedIn(
  c: Context<AppEnv>,
  deps: SignInPagesDeps,
  r: SignedIn,
  next: string | null = null,
): Response {
  return deps.kit.redirect(next ?? KEYS_PATH, [
    [
      "Set-Cookie",
      sessionCookieHeader(c.req.raw, r.session.token, deps.sessions.cookieMaxAgeSeconds),
    ],
    ["Set-Cookie", deviceCookieHeader(c.req.raw, r.deviceCookie)],
  ]);
}

/** Each sign-up field's first problem, as a sentence ("Password must be at least 12 characters."). */
function signUpProblems(error: z.ZodError): Partial<Record<SignUpField, string>> {
  const problems: Partial<Record<SignUpField, string>> = {};
  for (const issue of error.issues) {
    const field = String(issue.path[0] ?? "") as SignUpField;
    if (!(field in SIGN_UP_LABELS) || problems[field]) continue;
    problems[field] = `${SIGN_UP_LABELS[field]} ${issue.message}.`;
  }
  return problems;
}

/**
 * The sign-up form again, with what was typed (not the password) and every problem at once:
 * beside its field, and summed up in the banner screen readers announce.
 */
function signUpAgain(
  c: Context<AppEnv>,
  deps: SignInPagesDeps,
  form: Record<string, string>,
  refused: {
    problems?: Partial<Record<SignUpField, string>>;
    emailTaken?: boolean;
    message?: string;
  },
  status: number,
  headers: HeadersInit = {},
): Promise<Response> {
  const problems = refused.problems ?? {};
  const error = refused.message ?? Object.values(problems).join(" ");
  return deps.kit.page(
    <SignUpPage
      {...plainHttp(c)}
      error={error}
      problems={problems}
      emailTaken={refused.emailTaken}
      email={form.email}
      name={form.name}
    />,
    status,
    headers,
  );
}

/**
 * A taken address is said plainly (409 EMAIL_TAKEN, as the API answers): sign-up signs the new
 * account in at once, so it cannot hide whether an address is in use, and this server does not
 * pretend to (docs/accounts-and-security.md).
 */
async function signUp(c: Context<AppEnv>, deps: SignInPagesDeps): Promise<Response> {
  const { kit, accounts } = deps;
  if (!deps.signUpOpen) return kit.page(<SignUpClosedPage />, 403);
  const form = await kit.formFields(c);
  const name = (form.name ?? "").trim();
  const parsed = signUpBody.safeParse({
    email: form.email ?? "",
    password: form.password ?? "",
    ...(name === "" ? {} : { name }),
  });
  if (!parsed.success) {
    return signUpAgain(c, deps, form, { problems: signUpProblems(parsed.error) }, 400);
  }
  try {
    const origin = requestOrigin(c);
    const r = await accounts.signUp(parsed.data, origin.ip, origin.userAgent, c.req.raw, {
      origin: mailLinkOrigin(c.req.raw),
      callbackPath: EMAIL_VERIFIED_PATH,
    });
    return signedIn(c, deps, r);
  } catch (err) {
    const e = kit.errorInfo(err);
    if (err instanceof HttpError && err.extra.code === "EMAIL_TAKEN") {
      const refused = { problems: { email: e.message }, emailTaken: true };
      return signUpAgain(c, deps, form, refused, e.status, e.headers);
    }
    return signUpAgain(c, deps, form, { message: e.message }, e.status, e.headers);
  }
}

async function signIn(c: Context<AppEnv>, deps: SignInPagesDeps): Promise<Response> {
  const { kit, accounts } = deps;
  const form = await kit.formFields(c);
  const next = safeNextPath(form[NEXT_PARAM]);
  const again = (error: string, status: number, headers: HeadersInit = {}) =>
    kit.page(
      <SignInPage {...plainHttp(c)} error={error} email={form.email} next={next} />,
      status,
      headers,
    );
  const parsed = signInBody.safeParse({ email: form.email ?? "", password: form.password ?? "" });
  if (!parsed.success) {
    return again(kit.firstProblem(parsed.error, { email: "Email", password: "Password" }), 400);
  }
  try {
    const r = await accounts.signIn(parsed.data, c.req.raw, clientAddress(c));
    if ("twoFactorRedirect" in r) {
      // The second step (routes/two_factor/pages.tsx): no session yet; `next` goes along.
      return kit.redirect(withNext(TWO_FACTOR_SIGN_IN_PATH, next), [[
        "Set-Cookie",
        pendingCookieHeader(c.req.raw, r.pendingCookie, r.pendingMaxAgeSeconds),
      ]]);
    }
    return signedIn(c, deps, r, next);
  } catch (err) {
    const e = kit.errorInfo(err);
    return again(e.message, e.status, e.headers);
  }
}
