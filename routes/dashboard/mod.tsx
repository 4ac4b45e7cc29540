/**
 * The dashboard: server-rendered pages (hono/jsx) whose forms post back here. Every response
 * carries the security headers of layout.tsx; every POST is refused from another origin (403
 * JSON); pages under /settings need a session and reach KV only through `c.get("store")`.
 */
import { Hono } from "hono";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import {
  type AccountService,
  type Caller,
  clientAddress,
  requestOrigin,
} from "../../auth/accounts.ts";
import { auditContextOf } from "../../auth/audit_context.ts";
import { assertSameOrigin } from "../../auth/csrf.ts";
import { deviceCookieHeader } from "../../auth/device_cookie.ts";
import { issueApiKey, rollApiKey } from "../../auth/issue_api_key.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { assertNever } from "../../auth/principal.ts";
import {
  clearSessionCookieHeader,
  sessionCookieDropped,
  sessionCookieHeader,
  type SessionManager,
} from "../../auth/session.ts";
import { bindClient } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import { accountSuspended, HttpError, writeConflict } from "../../lib/errors.ts";
import { ConflictError } from "../../store/errors.ts";
import { type ApiKeyRecord, apiKeyView } from "../../store/api_keys.ts";
import type { AuditSource } from "../../store/audit.ts";
import type { TenantStore } from "../../store/tenant.ts";
import { checkKeyGrant, createKeyBody, keyErrors, keyIdParam, rollKeyBody } from "../api_keys.ts";
import {
  changePasswordBody,
  deleteUserBody,
  newPasswordSchema,
  resetLinkOrigin,
  signInBody,
  signUpBody,
  updateUserBody,
} from "../auth.ts";
import {
  ApiKeysPage,
  type ApiKeysPageProps,
  formatDate,
  grantFromForm,
  type NewKeyShown,
  type RollLinks,
} from "./api_keys_page.tsx";
import { DASHBOARD_CSS, DASHBOARD_JS, FAVICON_SVG } from "./assets.ts";
import { SignInPage, SignUpPage } from "./auth_pages.tsx";
import { pendingCookieHeader } from "../../auth/two_factor.ts";
import {
  dashboardSudo,
  registerTwoFactorPages,
  TWO_FACTOR_NOTICES,
  TWO_FACTOR_SIGN_IN_PATH,
  type TwoFactorPagesKit,
  twoFactorView,
} from "./two_factor_pages.tsx";
import { PASSKEYS_JS, PASSKEYS_JS_PATH } from "./passkeys_section.tsx";
import { FORGOT_PATH, ForgotPasswordPage, RESET_PATH, ResetPasswordPage } from "./reset_pages.tsx";
import { Banner, Layout, SECURITY_HEADERS } from "./layout.tsx";
import {
  EMAIL_VERIFIED_PATH,
  EmailVerifiedPage,
  SignUpClosedPage,
  VERIFY_EMAIL_RESEND_PATH,
  withVerifyEmailBanner,
} from "./email_verification_pages.tsx";
import { emailNotVerified, EmailNotVerifiedError } from "../../auth/email_verification.ts";
import { SECURITY_PATH, SecurityPage, type SecurityPageProps } from "./security_page.tsx";
import { USAGE_PATH, USAGE_PERIODS, UsagePage } from "./usage_page.tsx";
import {
  SECURITY_LOG_PAGE_SIZE,
  SECURITY_LOG_PATH,
  SecurityLogPage,
} from "./security_log_page.tsx";
import { InvalidCursorError, isAuditAction } from "../../store/audit_log.ts";
import { accountTotals, type UsageReads } from "../usage.ts";
import { registerDomainPages } from "./domains_page.tsx";
import { apiDocsAsset, ASSETS_PREFIX as API_DOCS_ASSETS_PREFIX } from "../api_docs_page.ts";
import type { DomainActions } from "../domains.ts";

export type DashboardDeps = {
  accounts: AccountService;
  sessions: SessionManager;
  storeFor: (userId: string, audit?: AuditSource) => TenantStore;
  clock: Clock;
  maxKeys: number;
  /** The domain rules the API uses (routes/domains.ts): Settings > Domains calls the same ones. */
  domains: DomainActions;
  /** Per-key usage (routes/usage.ts): the keys' sparklines and Settings > Usage. */
  usage: UsageReads;
  /** The account rate limit, drawn against the daily requests on Settings > Usage. */
  rateLimit: { max: number; windowMs: number };
  /** SIGN_UP: false shows the closed page instead of the form (the API answers 403 too). */
  signUpOpen?: boolean;
};

const MAX_FORM_BYTES = 16 * 1024;
const KEYS_PATH = "/settings/api-keys";

/** What a key POST hands to the page after its redirect, through the one-time flash. */
type KeyFlash = { newKey: NewKeyShown; notice?: string };

/** "replaced by" / "replaces" marks for keys rolled with a grace period that has not ended. */
function rollLinks(records: ApiKeyRecord[], nowMs: number): RollLinks {
  const byId = new Map(records.map((r) => [r.id, r]));
  const links: RollLinks = {};
  for (const old of records) {
    if (old.replacedBy === undefined) continue;
    if (old.expiresAt !== null && Date.parse(old.expiresAt) <= nowMs) continue;
    const created = byId.get(old.replacedBy);
    if (!created) continue;
    links[old.id] = { ...links[old.id], replacedBy: { name: created.name, start: created.start } };
    links[created.id] = { ...links[created.id], replaces: { name: old.name, start: old.start } };
  }
  return links;
}

type Html = string | Promise<string>;

/** A full HTML page with the security headers; never cached (pages may show a fresh key). */
async function page(node: Html, status = 200, headers: HeadersInit = {}): Promise<Response> {
  const h = new Headers(headers);
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) h.set(name, value);
  h.set("Content-Type", "text/html; charset=utf-8");
  h.set("Cache-Control", "no-store");
  return new Response("<!DOCTYPE html>" + String(await node), { status, headers: h });
}

function redirect(location: string, headers: [string, string][] = []): Response {
  const h = new Headers(headers);
  h.set("Location", location);
  h.set("Cache-Control", "no-store");
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) h.set(name, value);
  return new Response(null, { status: 303, headers: h });
}

function asset(body: string, type: string): Response {
  return new Response(body, {
    headers: {
      "Content-Type": type,
      "Cache-Control": "public, max-age=300",
      "X-Content-Type-Options": "nosniff",
      "Cross-Origin-Resource-Policy": "same-origin",
    },
  });
}

/** A form the dashboard will not read: answered with an HTML page (`formErrorPage`). */
class FormError extends HttpError {}

const URLENCODED = /^application\/x-www-form-urlencoded\s*(;|$)/i;

function formTooLarge(): FormError {
  return new FormError(413, `Forms must be at most ${MAX_FORM_BYTES} bytes.`);
}

/**
 * The dashboard's one form reader, for every form and for the sudo guard's copy of one
 * (two_factor_pages.tsx `dashboardSudo`): the fields of an `application/x-www-form-urlencoded`
 * body of at most MAX_FORM_BYTES, as strings (a repeated field keeps its last value). A request
 * with neither a body nor a Content-Type is an empty form. Anything else is refused before a
 * byte is parsed: 415 for another type, multipart included (the dashboard's forms never send it,
 * and a parser that never runs cannot fail on a broken body), 413 over the limit, 400 for bytes
 * that are not UTF-8.
 */
async function readForm(req: Request): Promise<Record<string, string>> {
  const type = req.headers.get("Content-Type");
  if (type === null && req.body === null) return {};
  if (type === null || !URLENCODED.test(type)) {
    throw new FormError(415, "Forms must be posted as application/x-www-form-urlencoded.");
  }
  const bytes = req.body ? await readAtMost(req.body, MAX_FORM_BYTES) : new Uint8Array();
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new FormError(400, "The form could not be read: its body is not valid UTF-8.");
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/** The stream's bytes; 413 (and the rest left unread) once they pass `max`. */
async function readAtMost(body: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw formTooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.byteLength;
  }
  return bytes;
}

/** The posted form's fields (`readForm` of the request's body). */
function formFields(c: Context): Promise<Record<string, string>> {
  return readForm(c.req.raw);
}

/** A form refused before its handler ran (wrong type, too large, unreadable), as a page. */
function formErrorPage(err: HttpError): Promise<Response> {
  return page(
    <Layout title="Form not accepted" narrow>
      <h1>Form not accepted</h1>
      <Banner kind="error" id="form-error">{err.message}</Banner>
      <p class="switch">
        <a href="/">Back to the dashboard</a>
      </p>
    </Layout>,
    err.status,
  );
}

/** The first validation problem as a sentence a person can act on, e.g. "Name is required." */
function firstProblem(error: z.ZodError, labels: Record<string, string>): string {
  const issue = error.issues[0];
  const field = String(issue?.path[0] ?? "");
  const label = labels[field] ?? "A field";
  return `${label} ${issue?.message ?? "is not valid"}.`;
}

/** Re-renders `render` with the error's message and status (and Retry-After for 429). */
function errorInfo(err: unknown): { message: string; status: number; headers: HeadersInit } {
  if (err instanceof ConflictError) err = writeConflict();
  if (err instanceof EmailNotVerifiedError) err = emailNotVerified(err);
  if (err instanceof HttpError) {
    const h = new Headers(err.headers);
    const retry = h.get("Retry-After");
    return {
      message: err.message,
      status: err.status,
      headers: retry ? { "Retry-After": retry } : {},
    };
  }
  throw err;
}

/** The sign-in and sign-up pages' warning when the browser will drop the session cookie. */
function plainHttp(c: Context<AppEnv>): { plainHttpOrigin?: string } {
  const site = c.get("client").site;
  return sessionCookieDropped(site) ? { plainHttpOrigin: site.origin } : {};
}

const NOTICES: Record<string, string> = {
  "verification-sent": "If this account's address is not verified yet, a link is on its way " +
    "(at most one every 5 minutes: the last one keeps working).",
  deleted: "API key deleted. It no longer authenticates.",
  "signed-out": "You have signed out.",
  "name-saved": "Name saved.",
  "password-changed": "Password changed. Every other session was signed out.",
  "session-ended": "That session was signed out.",
  "others-ended": "Every other session was signed out.",
  "reset-sent": "If an account uses that email, a reset link is on its way. It works for one hour.",
  "password-reset": "Password changed. Every session was signed out: sign in with the new one.",
  "account-deleted": "Your account was deleted: its API keys, sessions and domains are gone, " +
    "and its domain names are free.",
};

export function dashboardRoutes(deps: DashboardDeps) {
  const { accounts, sessions, storeFor, clock, maxKeys } = deps;
  const app = new Hono<AppEnv>();
  const signUpOpen = deps.signUpOpen ?? true;

  // A form the reader refuses is a bad input like any other: a page, before any handler acts.
  app.onError((err) => {
    if (err instanceof FormError) return formErrorPage(err);
    throw err;
  });

  const limitBody = bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: () => formErrorPage(formTooLarge()),
  });
  /**
   * The body limit replaces `c.req.raw` with a wrapped Request: the resolved client is bound to
   * the new one too, so cookie and session code that is handed the Request still finds it.
   */
  const formLimit: MiddlewareHandler<AppEnv> = (c, next) =>
    limitBody(c, async () => {
      bindClient(c.req.raw, c.get("client"));
      await next();
    });

  /** Same-origin check for every state-changing dashboard request. */
  const sameOrigin: MiddlewareHandler<AppEnv> = async (c, next) => {
    assertSameOrigin(c.req.raw);
    await next();
  };

  /**
   * Pages under /settings need a session; without one, go to the sign-in page. A suspended
   * account's session opens nothing: the sign-in page says the account cannot be used (403).
   */
  const requireSession: MiddlewareHandler<AppEnv> = async (c, next) => {
    const outcome = await sessions.resolve(c.req.raw);
    switch (outcome.kind) {
      case "ok":
        c.set("principal", outcome.principal);
        c.set(
          "store",
          storeFor(outcome.principal.userId, auditContextOf(c.req.raw, outcome.principal)),
        );
        await next();
        // EMAIL_VERIFICATION=required: every settings page says what is missing, and offers
        // to send the link again (routes/dashboard/email_verification_pages.tsx).
        if (accounts.emailVerification.required && outcome.user.emailVerified !== true) {
          c.res = await withVerifyEmailBanner(c.res, outcome.user.email);
        }
        return;
      case "suspended":
        return page(<SignInPage {...plainHttp(c)} error={accountSuspended().message} />, 403);
      case "invalid":
        return redirect("/sign-in");
      default:
        return assertNever(outcome);
    }
  };

  app.get("/assets/dashboard.js", () => asset(DASHBOARD_JS, "text/javascript; charset=utf-8"));
  app.get(PASSKEYS_JS_PATH, () => asset(PASSKEYS_JS, "text/javascript; charset=utf-8"));
  app.get("/assets/dashboard.css", () => asset(DASHBOARD_CSS, "text/css; charset=utf-8"));
  app.get("/assets/favicon.svg", () => asset(FAVICON_SVG, "image/svg+xml"));
  // The API reference's Swagger UI files (routes/api_docs_page.ts), outside /api/e2's auth.
  app.get(
    `${API_DOCS_ASSETS_PREFIX}/:name`,
    async (c) =>
      await apiDocsAsset(c.req.param("name"), c.req.header("Accept-Encoding")) ?? c.notFound(),
  );
  app.get("/favicon.ico", () => redirect("/assets/favicon.svg"));

  app.get("/", async (c) => {
    const outcome = await sessions.resolve(c.req.raw);
    switch (outcome.kind) {
      case "ok":
        return redirect(KEYS_PATH);
      case "suspended":
      case "invalid":
        return redirect("/sign-in");
      default:
        return assertNever(outcome);
    }
  });

  // --- Sign up, sign in, sign out ---------------------------------------------------------

  app.get("/sign-up", (c) => {
    if (!signUpOpen) return page(<SignUpClosedPage />, 403);
    return page(<SignUpPage {...plainHttp(c)} />);
  });
  app.post("/sign-up", sameOrigin, formLimit, async (c) => {
    if (!signUpOpen) return page(<SignUpClosedPage />, 403);
    const form = await formFields(c);
    const name = (form.name ?? "").trim();
    const parsed = signUpBody.safeParse({
      email: form.email ?? "",
      password: form.password ?? "",
      ...(name === "" ? {} : { name }),
    });
    if (!parsed.success) {
      const error = firstProblem(parsed.error, {
        email: "Email",
        password: "Password",
        name: "Name",
      });
      return page(<SignUpPage {...plainHttp(c)} error={error} email={form.email} />, 400);
    }
    try {
      const origin = requestOrigin(c);
      const r = await accounts.signUp(parsed.data, origin.ip, origin.userAgent, c.req.raw, {
        origin: resetLinkOrigin(c.req.raw),
        callbackPath: EMAIL_VERIFIED_PATH,
      });
      return redirect(KEYS_PATH, [
        [
          "Set-Cookie",
          sessionCookieHeader(c.req.raw, r.session.token, sessions.cookieMaxAgeSeconds),
        ],
        ["Set-Cookie", deviceCookieHeader(c.req.raw, r.deviceCookie)],
      ]);
    } catch (err) {
      const e = errorInfo(err);
      return page(
        <SignUpPage {...plainHttp(c)} error={e.message} email={form.email} />,
        e.status,
        e.headers,
      );
    }
  });

  app.get("/sign-in", (c) => {
    const notice = NOTICES[c.req.query("notice") ?? ""];
    return page(<SignInPage {...plainHttp(c)} notice={notice} />);
  });
  app.post("/sign-in", sameOrigin, formLimit, async (c) => {
    const form = await formFields(c);
    const parsed = signInBody.safeParse({ email: form.email ?? "", password: form.password ?? "" });
    if (!parsed.success) {
      const error = firstProblem(parsed.error, { email: "Email", password: "Password" });
      return page(<SignInPage {...plainHttp(c)} error={error} email={form.email} />, 400);
    }
    try {
      const r = await accounts.signIn(parsed.data, c.req.raw, clientAddress(c));
      if ("twoFactorRedirect" in r) {
        // The second step (routes/dashboard/two_factor_pages.tsx): no session yet.
        return redirect(TWO_FACTOR_SIGN_IN_PATH, [[
          "Set-Cookie",
          pendingCookieHeader(c.req.raw, r.pendingCookie, r.pendingMaxAgeSeconds),
        ]]);
      }
      return redirect(KEYS_PATH, [
        [
          "Set-Cookie",
          sessionCookieHeader(c.req.raw, r.session.token, sessions.cookieMaxAgeSeconds),
        ],
        ["Set-Cookie", deviceCookieHeader(c.req.raw, r.deviceCookie)],
      ]);
    } catch (err) {
      const e = errorInfo(err);
      return page(
        <SignInPage {...plainHttp(c)} error={e.message} email={form.email} />,
        e.status,
        e.headers,
      );
    }
  });

  app.post("/sign-out", sameOrigin, async (c) => {
    await accounts.signOut(c.req.raw);
    return redirect("/sign-in?notice=signed-out", [[
      "Set-Cookie",
      clearSessionCookieHeader(c.req.raw),
    ]]);
  });

  // --- Forgot password: request a link, then reset with it (Post/Redirect/Get) -------------

  app.get(FORGOT_PATH, (c) => {
    return page(<ForgotPasswordPage notice={NOTICES[c.req.query("notice") ?? ""]} />);
  });
  app.post(FORGOT_PATH, sameOrigin, formLimit, async (c) => {
    const form = await formFields(c);
    const email = (form.email ?? "").trim();
    if (email === "" || email.length > 254) {
      return page(<ForgotPasswordPage error="Email is required." email={form.email} />, 400);
    }
    try {
      await accounts.requestPasswordReset({ email }, resetLinkOrigin(c.req.raw), clientAddress(c));
      return redirect(`${FORGOT_PATH}?notice=reset-sent`);
    } catch (err) {
      const e = errorInfo(err);
      return page(<ForgotPasswordPage error={e.message} email={form.email} />, e.status, e.headers);
    }
  });

  app.get(RESET_PATH, async (c) => {
    const token = (c.req.query("token") ?? "").slice(0, 200);
    const valid = token !== "" && await accounts.resetTokenValid(token);
    return page(<ResetPasswordPage token={token} valid={valid} />, valid ? 200 : 400);
  });
  app.post(RESET_PATH, sameOrigin, formLimit, async (c) => {
    const form = await formFields(c);
    const token = (form.token ?? "").slice(0, 200);
    const parsed = newPasswordSchema.safeParse(form.password ?? "");
    if (!parsed.success) {
      const error = `New password ${parsed.error.issues[0]?.message ?? "is not valid"}.`;
      return page(<ResetPasswordPage token={token} valid error={error} />, 400);
    }
    try {
      await accounts.resetPassword(
        { token, newPassword: parsed.data },
        clientAddress(c),
        c.req.raw,
      );
      return redirect("/sign-in?notice=password-reset", [[
        "Set-Cookie",
        clearSessionCookieHeader(c.req.raw),
      ]]);
    } catch (err) {
      const e = errorInfo(err);
      const valid = e.status !== 400;
      return page(
        <ResetPasswordPage token={token} valid={valid} error={e.message} />,
        e.status,
        e.headers,
      );
    }
  });

  // --- Settings > API Keys ----------------------------------------------------------------

  app.get("/settings", () => redirect(KEYS_PATH));
  app.use("/settings/*", requireSession);
  // Sudo mode for key and account changes: asks inline for a proof (two_factor_pages.tsx).
  const twoFactorKit: TwoFactorPagesKit = {
    page,
    redirect,
    formFields,
    readForm,
    errorInfo,
    sameOrigin,
    formLimit,
    accounts,
    callerOf,
    securityError: (c, err) => {
      const e = errorInfo(err);
      return securityPage(c, { error: e.message }, e.status, e.headers);
    },
  };
  app.use("/settings/*", dashboardSudo(twoFactorKit));

  // --- Settings > Domains (routes/dashboard/domains_page.tsx) -------------------------------
  registerDomainPages(app, {
    actions: deps.domains,
    clock,
    kit: { page, redirect, formFields, errorInfo, sameOrigin, formLimit },
  });

  async function keysPage(
    c: Context<AppEnv>,
    extra: Partial<ApiKeysPageProps>,
    status = 200,
    headers: HeadersInit = {},
  ): Promise<Response> {
    const store = c.get("store");
    const [user, keys, used] = await Promise.all([
      store.user(),
      store.apiKeys.list(),
      deps.usage.forAccount(store, 30, { deleted: false }),
    ]);
    const nowMs = clock();
    const usage = Object.fromEntries(used.map((u) => [u.keyId, {
      values: u.days.map((d) => d.requests),
      starts: u.days.map((d) => d.start),
    }]));
    return page(
      <ApiKeysPage
        usage={usage}
        email={user.email}
        origin={c.get("client").site.origin}
        keys={keys.map(apiKeyView)}
        rolls={rollLinks(keys, nowMs)}
        nowMs={nowMs}
        maxKeys={maxKeys}
        {...extra}
      />,
      status,
      headers,
    );
  }

  /** Post/Redirect/Get: the new key waits in a one-time server-side flash named by an opaque id. */
  async function redirectWithKey(c: Context<AppEnv>, flash: KeyFlash): Promise<Response> {
    const id = await c.get("store").flash.put(flash);
    return redirect(`${KEYS_PATH}?flash=${id}`);
  }

  // E-mail verification: the link's landing page, and the banner's "send the link again".
  app.get(
    EMAIL_VERIFIED_PATH,
    (c) => page(<EmailVerifiedPage error={c.req.query("error") !== undefined} />),
  );
  app.post(VERIFY_EMAIL_RESEND_PATH, sameOrigin, formLimit, async (c) => {
    const user = await c.get("store").user();
    const origin = resetLinkOrigin(c.req.raw);
    if (origin !== null && user.emailVerified !== true) {
      accounts.emailVerification.resend(user.email, user, origin, EMAIL_VERIFIED_PATH);
    }
    return redirect(`${KEYS_PATH}?notice=verification-sent`);
  });

  app.get(KEYS_PATH, async (c) => {
    const flashId = c.req.query("flash");
    const flash = flashId ? await c.get("store").flash.take<KeyFlash>(flashId) : null;
    const notice = flash?.notice ?? NOTICES[c.req.query("notice") ?? ""];
    return keysPage(c, { notice, ...(flash ? { newKey: flash.newKey } : {}) });
  });

  app.post(KEYS_PATH, sameOrigin, formLimit, async (c) => {
    const form = await formFields(c);
    const days = (form.expiresInDays ?? "").trim();
    // The same schema and grant checks as POST /api/e2/api-keys (routes/api_keys.ts).
    const parsed = createKeyBody.safeParse({
      name: form.name ?? "",
      expiresInDays: days === "" ? null : Number(days),
      ...grantFromForm(form),
    });
    if (!parsed.success) {
      const error = firstProblem(parsed.error, {
        name: "Name",
        expiresInDays: "Expiry",
        scopes: "Scopes",
        domainIds: "Domains",
        allowedIps: "Allowed addresses",
        rateLimit: "Rate limit",
      });
      return keysPage(c, { error, formName: form.name }, 400);
    }
    try {
      const grant = await checkKeyGrant(c, parsed.data, deps.rateLimit);
      const { key, record } = await keyErrors(() =>
        issueApiKey(c.get("store").apiKeys, {
          name: parsed.data.name,
          expiresInDays: parsed.data.expiresInDays ?? null,
          nowMs: clock(),
          grant,
        })
      );
      return await redirectWithKey(c, {
        newKey: { key, id: record.id, name: record.name, expiresAt: record.expiresAt },
      });
    } catch (err) {
      const e = errorInfo(err);
      return keysPage(c, { error: e.message, formName: form.name }, e.status, e.headers);
    }
  });

  app.post(`${KEYS_PATH}/:id/delete`, sameOrigin, formLimit, async (c) => {
    try {
      const id = keyIdParam(c.req.param("id"));
      await keyErrors(() => c.get("store").apiKeys.delete(id));
      return redirect(`${KEYS_PATH}?notice=deleted`);
    } catch (err) {
      const e = errorInfo(err);
      return keysPage(c, { error: e.message }, e.status, e.headers);
    }
  });

  app.post(`${KEYS_PATH}/:id/roll`, sameOrigin, formLimit, async (c) => {
    try {
      const id = keyIdParam(c.req.param("id"));
      const form = await formFields(c);
      const parsed = rollKeyBody.safeParse({ expiresInHours: Number(form.expiresInHours ?? "") });
      if (!parsed.success) {
        throw new HttpError(400, firstProblem(parsed.error, { expiresInHours: "Grace period" }));
      }
      const hours = parsed.data.expiresInHours;
      const { key, record, old } = await keyErrors(() =>
        rollApiKey(c.get("store").apiKeys, id, hours * 3_600_000)
      );
      const notice = hours === 0 || old.expiresAt === null
        ? `Rolled “${old.name}”: the old key was revoked.`
        : `Rolled “${old.name}”: the old key keeps working until ${
          formatDate(old.expiresAt)
        }. Update your applications before then.`;
      return await redirectWithKey(c, {
        notice,
        newKey: { key, id: record.id, name: record.name, expiresAt: record.expiresAt },
      });
    } catch (err) {
      const e = errorInfo(err);
      return keysPage(c, { error: e.message }, e.status, e.headers);
    }
  });

  // --- Settings > Usage -------------------------------------------------------------------

  app.get(USAGE_PATH, async (c) => {
    const asked = Number(c.req.query("days") ?? "30");
    const days = (USAGE_PERIODS as readonly number[]).includes(asked) ? asked : 30;
    const store = c.get("store");
    const [user, keys] = await Promise.all([store.user(), deps.usage.forAccount(store, days)]);
    return page(
      <UsagePage
        email={user.email}
        days={days}
        totals={accountTotals(keys, days, clock())}
        keys={keys}
        rateLimit={deps.rateLimit}
      />,
    );
  });

  // --- Settings > Security log ------------------------------------------------------------

  app.get(SECURITY_LOG_PATH, async (c) => {
    const store = c.get("store");
    const rawAction = c.req.query("action") ?? "";
    const rawSince = c.req.query("since") ?? "";
    const cursor = c.req.query("cursor") || undefined;
    const action = isAuditAction(rawAction) ? rawAction : null;
    const sinceOk = /^\d{4}-\d{2}-\d{2}$/.test(rawSince) && !isNaN(Date.parse(rawSince));
    const errors: string[] = [];
    if (rawAction && !action) errors.push("That event type does not exist.");
    if (rawSince && !sinceOk) errors.push("Since must be a date (YYYY-MM-DD).");
    const filter = {
      action: action ?? undefined,
      sinceMs: sinceOk ? Date.parse(rawSince) : undefined,
    };
    let result;
    try {
      result = await store.auditLog.page({ ...filter, limit: SECURITY_LOG_PAGE_SIZE, cursor });
    } catch (err) {
      if (!(err instanceof InvalidCursorError)) throw err;
      errors.push("That page link is not valid; showing the newest events.");
      result = await store.auditLog.page({ ...filter, limit: SECURITY_LOG_PAGE_SIZE });
    }
    const user = await store.user();
    return page(
      <SecurityLogPage
        email={user.email}
        events={result.data}
        action={action}
        since={sinceOk ? rawSince : ""}
        nextCursor={result.nextCursor}
        paged={cursor !== undefined && errors.length === 0}
        error={errors.length ? errors.join(" ") : undefined}
      />,
      errors.length ? 400 : 200,
    );
  });

  // --- Settings > Security ----------------------------------------------------------------

  function callerOf(c: Context<AppEnv>): Caller {
    const p = c.get("principal");
    if (p.method !== "session" || !p.sessionId) throw new HttpError(401, "Sign in to continue.");
    return { userId: p.userId, sessionId: p.sessionId, audit: auditContextOf(c.req.raw, p) };
  }

  async function securityPage(
    c: Context<AppEnv>,
    extra: Partial<SecurityPageProps>,
    status = 200,
    headers: HeadersInit = {},
  ): Promise<Response> {
    const [user, list] = await Promise.all([
      c.get("store").user(),
      accounts.listSessions(callerOf(c)),
    ]);
    return page(
      <SecurityPage
        email={user.email}
        name={user.name ?? null}
        twoFactor={await twoFactorView(c, user.id)}
        sessions={list}
        nowMs={clock()}
        {...extra}
      />,
      status,
      headers,
    );
  }

  app.get(SECURITY_PATH, (c) => {
    const key = c.req.query("notice") ?? "";
    return securityPage(c, { notice: NOTICES[key] ?? TWO_FACTOR_NOTICES[key] });
  });
  registerTwoFactorPages(app, twoFactorKit);

  app.post(`${SECURITY_PATH}/name`, sameOrigin, formLimit, async (c) => {
    const form = await formFields(c);
    const parsed = updateUserBody.safeParse({ name: form.name ?? "" });
    if (!parsed.success) {
      return securityPage(c, { error: firstProblem(parsed.error, { name: "Name" }) }, 400);
    }
    try {
      await accounts.updateName(callerOf(c), parsed.data.name);
      return redirect(`${SECURITY_PATH}?notice=name-saved`);
    } catch (err) {
      const e = errorInfo(err);
      return securityPage(c, { error: e.message }, e.status, e.headers);
    }
  });

  app.post(`${SECURITY_PATH}/password`, sameOrigin, formLimit, async (c) => {
    const form = await formFields(c);
    const parsed = changePasswordBody.safeParse({
      currentPassword: form.currentPassword ?? "",
      newPassword: form.newPassword ?? "",
    });
    if (!parsed.success) {
      const labels = { currentPassword: "Current password", newPassword: "New password" };
      return securityPage(c, { error: firstProblem(parsed.error, labels) }, 400);
    }
    try {
      await accounts.changePassword(callerOf(c), parsed.data, clientAddress(c));
      return redirect(`${SECURITY_PATH}?notice=password-changed`);
    } catch (err) {
      const e = errorInfo(err);
      return securityPage(c, { error: e.message }, e.status, e.headers);
    }
  });

  app.post(`${SECURITY_PATH}/delete`, sameOrigin, formLimit, async (c) => {
    const form = await formFields(c);
    const parsed = deleteUserBody.safeParse({ password: form.password ?? "" });
    if (!parsed.success) {
      return securityPage(c, { error: firstProblem(parsed.error, { password: "Password" }) }, 400);
    }
    try {
      await accounts.deleteUser(callerOf(c), parsed.data, clientAddress(c));
      return redirect("/sign-in?notice=account-deleted", [[
        "Set-Cookie",
        clearSessionCookieHeader(c.req.raw),
      ]]);
    } catch (err) {
      const e = errorInfo(err);
      return securityPage(c, { error: e.message }, e.status, e.headers);
    }
  });

  app.post(`${SECURITY_PATH}/other-sessions/revoke`, sameOrigin, formLimit, async (c) => {
    try {
      await accounts.revokeOtherSessions(callerOf(c));
      return redirect(`${SECURITY_PATH}?notice=others-ended`);
    } catch (err) {
      const e = errorInfo(err);
      return securityPage(c, { error: e.message }, e.status, e.headers);
    }
  });

  app.post(`${SECURITY_PATH}/sessions/:id/revoke`, sameOrigin, formLimit, async (c) => {
    try {
      const caller = callerOf(c);
      const id = c.req.param("id");
      if (!/^ses_[A-Za-z0-9_-]{1,64}$/.test(id)) throw new HttpError(404, "No such session.");
      await accounts.revokeSession(caller, id);
      if (id === caller.sessionId) {
        return redirect("/sign-in?notice=signed-out", [[
          "Set-Cookie",
          clearSessionCookieHeader(c.req.raw),
        ]]);
      }
      return redirect(`${SECURITY_PATH}?notice=session-ended`);
    } catch (err) {
      const e = errorInfo(err);
      return securityPage(c, { error: e.message }, e.status, e.headers);
    }
  });

  return app;
}
