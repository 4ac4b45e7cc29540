/**
 * The dashboard: server-rendered pages (hono/jsx) whose forms post back here. This module holds
 * what every page shares (the kit: page, redirect and asset responses, the one form reader,
 * error info, the notices) and the session middleware, and wires each feature's pages, which
 * live in the module of the feature's name (sign_in, password_reset, api_keys, domains, usage,
 * audit_log, security, two_factor_pages, email_verification). Every response carries the
 * security headers of layout.tsx; every POST is refused from another origin (403 JSON); pages
 * under /settings need a session and reach KV only through `c.get("store")`.
 */
import { Hono } from "hono";
import type { Context, MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import type { AccountService } from "../../auth/accounts/service.ts";
import { auditContextOf } from "../../auth/audit_context.ts";
import { assertSameOrigin } from "../../auth/csrf.ts";
import { emailNotVerified, EmailNotVerifiedError } from "../../auth/email_verification.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { refusalOf } from "../../auth/principal.ts";
import { DEVICE_COOKIE, readCookie } from "../../auth/cookies.ts";
import { readSessionToken, type SessionManager } from "../../auth/sessions/manager.ts";
import type { SudoMode } from "../../auth/sudo.ts";
import type { TwoFactorService } from "../../auth/two_factor.ts";
import { bindClient } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import { HttpError, writeConflict } from "../../lib/errors.ts";
import type { AuditSource } from "../../store/audit_log/events.ts";
import { ConflictError } from "../../store/errors.ts";
import type { TenantStore } from "../../store/tenant.ts";
import { apiDocsAsset, ASSETS_PREFIX as API_DOCS_ASSETS_PREFIX } from "../openapi/docs_page.ts";
import type { DomainActions } from "../domains/operations.ts";
import type { UsageReads } from "../usage/operations.ts";
import { BUILT_IN_VOCABULARY, type ScopeVocabulary } from "../../lib/scopes.ts";
import { KEY_NOTICES, KEYS_PATH, registerKeyPages } from "../api_keys/pages.tsx";
import { registerKeyDetailPage } from "../api_keys/detail_page.tsx";
import { DASHBOARD_CSS, DASHBOARD_JS, FAVICON_SVG } from "./assets.ts";
import { registerAuditLogPages } from "../audit_log/pages.tsx";
import { registerDomainPages } from "../domains/pages.tsx";
import { registerAddressPages } from "../email_addresses/pages.tsx";
import { registerEndpointPages } from "../endpoints/pages.tsx";
import type { EndpointRouteOptions } from "../endpoints/test_operation.ts";
import {
  EMAIL_VERIFICATION_NOTICES,
  registerEmailVerificationPages,
  withVerifyEmailBanner,
} from "../email_verification/pages.tsx";
import type { DashboardKit, ErrorInfo, Html } from "./kit.ts";
import { Banner, Layout, NotFoundPage, SECURITY_HEADERS } from "./layout.tsx";
import { PASSKEYS_JS, PASSKEYS_JS_PATH } from "../passkeys/pages.tsx";
import {
  PASSWORD_RESET_NOTICES,
  registerPasswordResetPages,
} from "../accounts/password_reset_pages.tsx";
import {
  registerSecurityPages,
  SECURITY_NOTICES,
  twoFactorPagesKit,
} from "../accounts/security_pages.tsx";
import {
  plainHttp,
  registerSignInPages,
  SIGN_IN_NOTICES,
  SignInPage,
} from "../accounts/sign_in_pages.tsx";
import { withNext } from "../accounts/next_path.ts";
import { dashboardSudo } from "../two_factor/pages.tsx";
import { registerUsagePages } from "../usage/pages.tsx";

export type DashboardDeps = {
  accounts: AccountService;
  sessions: SessionManager;
  storeFor: (userId: string, audit?: AuditSource) => TenantStore;
  clock: Clock;
  maxKeys: number;
  /** The domain rules the API uses (routes/domains/operations.ts): Settings > Domains calls the same ones. */
  domains: DomainActions;
  /** Per-key usage (routes/usage/operations.ts): the keys' sparklines and Settings > Usage. */
  usage: UsageReads;
  /** The account rate limit, drawn against the daily requests on Settings > Usage. */
  rateLimit: { max: number; windowMs: number };
  /**
   * The scopes keys may be granted (the built-in ones and FORWARD_AUTH_RULES's, lib/scopes.ts);
   * default: the built-in ones.
   */
  scopes?: ScopeVocabulary;
  /** SIGN_UP: false shows the closed page instead of the form (the API answers 403 too). */
  signUpOpen?: boolean;
  /** Second factors: Settings > Security and the sign-in's second step. */
  twoFactor: TwoFactorService;
  sudo: SudoMode;
  /** The operations whose declaration asks for sudo mode (routes/registry.ts). */
  sudoOperations: ReadonlyMap<string, true | "session">;
  /** What the API's endpoint operations run with (app.ts): Settings › Endpoints uses the same. */
  endpoints: EndpointRouteOptions;
};

const MAX_FORM_BYTES = 16 * 1024;

/**
 * Every `?notice=` banner, whichever page a redirect names: each feature declares the ones its
 * forms redirect with, and any page that shows notices looks them up here.
 */
const NOTICES: Record<string, string> = {
  ...EMAIL_VERIFICATION_NOTICES,
  ...KEY_NOTICES,
  ...SIGN_IN_NOTICES,
  ...SECURITY_NOTICES,
  ...PASSWORD_RESET_NOTICES,
};

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
function errorInfo(err: unknown): ErrorInfo {
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

/**
 * The kit every feature's pages are built with (kit.ts). The middleware are made here, once per
 * app: the body limit's instance is the app's own.
 */
function dashboardKit(): DashboardKit {
  const limitBody = bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: () => formErrorPage(formTooLarge()),
  });
  return {
    page,
    redirect,
    formFields,
    readForm,
    errorInfo,
    firstProblem,
    notice: (key) => NOTICES[key],
    /**
     * The body limit replaces `c.req.raw` with a wrapped Request: the resolved client is bound to
     * the new one too, so cookie and session code that is handed the Request still finds it.
     */
    formLimit: (c, next) =>
      limitBody(c, async () => {
        bindClient(c.req.raw, c.get("client"));
        await next();
      }),
    /** Same-origin check for every state-changing dashboard request. */
    sameOrigin: async (c, next) => {
      assertSameOrigin(c.req.raw);
      await next();
    },
  };
}

/**
 * Where to go to sign in, for a request under /settings that has no live session. A browser
 * that shows it signed in here before (a session cookie, now dead, or the year-long device
 * cookie: the session cookie itself expires with its session) is told its session expired and
 * sent back afterwards (`next=`); a first visit just goes to sign in. A form posted without a
 * session is not carried out: its body is not kept (it may hold a password or a proof), so it
 * returns to the page it was on, whose sign-in banner says it was not done.
 */
function signInAgain(c: Context<AppEnv>): string {
  const req = c.req.raw;
  if (readSessionToken(req) === null && readCookie(req, DEVICE_COOKIE) === null) return "/sign-in";
  const url = new URL(req.url);
  const get = req.method === "GET" || req.method === "HEAD";
  const notice = get ? "session-expired" : "session-expired-form";
  return withNext(
    `/sign-in?notice=${notice}`,
    get ? url.pathname + url.search : formPagePath(c, url.pathname),
  );
}

/**
 * The page a form posted to `path` was on: the Referer when it is a page of this site under
 * /settings (Referrer-Policy same-origin sends it), else the section the form's address is in
 * ("/settings/api-keys/key_…/roll" was posted from "/settings/api-keys").
 */
function formPagePath(c: Context<AppEnv>, path: string): string {
  const referer = c.req.header("Referer");
  if (referer) {
    try {
      const from = new URL(referer);
      if (from.origin === c.get("client").site.origin && from.pathname.startsWith("/settings/")) {
        return from.pathname;
      }
    } catch {
      // Not a URL: fall back to the form's own section.
    }
  }
  return path.split("/").slice(0, 3).join("/");
}

/**
 * Pages under /settings need a session; without one, go to the sign-in page (`signInAgain`). A
 * suspended account's session opens nothing: the sign-in page says the account cannot be used
 * (403).
 */
function requireSession(deps: DashboardDeps): MiddlewareHandler<AppEnv> {
  const { accounts, sessions, storeFor } = deps;
  return async (c, next) => {
    const outcome = await sessions.resolve(c.req.raw);
    if (outcome.kind !== "ok") {
      // The refusal the API would answer (auth/principal.ts), as a page: 401 goes to sign in.
      const refused = refusalOf(outcome);
      return refused.status === 401
        ? redirect(signInAgain(c))
        : page(<SignInPage {...plainHttp(c)} error={refused.message} />, refused.status);
    }
    c.set("principal", outcome.principal);
    c.set(
      "store",
      storeFor(outcome.principal.userId, auditContextOf(c.req.raw, outcome.principal)),
    );
    await next();
    // EMAIL_VERIFICATION=required: every settings page says what is missing, and offers
    // to send the link again (routes/email_verification/pages.tsx).
    if (accounts.emailVerification.required && outcome.user.emailVerified !== true) {
      c.res = await withVerifyEmailBanner(c.res, outcome.user.email);
    }
  };
}

/**
 * The answer for a browser path no route matches (app.ts sends every path outside /api/ and
 * /healthz here): an HTML 404 page with the navigation, the settings links when the request
 * carries a live session. A mistyped address is a person's mistake, not an API client's.
 */
export function dashboardNotFound(
  sessions: SessionManager,
): (c: Context<AppEnv>) => Promise<Response> {
  return async (c) => {
    const outcome = await sessions.resolve(c.req.raw);
    const email = outcome.kind === "ok" ? outcome.user.email : undefined;
    return page(<NotFoundPage path={new URL(c.req.url).pathname} email={email} />, 404);
  };
}

/** The dashboard's static files, embedded (assets.ts), and the API reference's Swagger UI. */
function registerAssets(app: Hono<AppEnv>): void {
  app.get("/assets/dashboard.js", () => asset(DASHBOARD_JS, "text/javascript; charset=utf-8"));
  app.get(PASSKEYS_JS_PATH, () => asset(PASSKEYS_JS, "text/javascript; charset=utf-8"));
  app.get("/assets/dashboard.css", () => asset(DASHBOARD_CSS, "text/css; charset=utf-8"));
  app.get("/assets/favicon.svg", () => asset(FAVICON_SVG, "image/svg+xml"));
  // The API reference's Swagger UI files (routes/openapi/docs_page.ts), outside /api/e2's auth.
  app.get(
    `${API_DOCS_ASSETS_PREFIX}/:name`,
    async (c) =>
      await apiDocsAsset(c.req.param("name"), c.req.header("Accept-Encoding")) ?? c.notFound(),
  );
  app.get("/favicon.ico", () => redirect("/assets/favicon.svg"));
}

/**
 * The dashboard app. Order matters where paths meet: the public pages first, then the session
 * middleware and the sudo guard for /settings/*, then the settings pages behind them.
 */
export function dashboardRoutes(deps: DashboardDeps) {
  const { accounts, sessions, clock } = deps;
  const app = new Hono<AppEnv>();
  const kit = dashboardKit();

  // A form the reader refuses is a bad input like any other: a page, before any handler acts.
  app.onError((err) => {
    if (err instanceof FormError) return formErrorPage(err);
    throw err;
  });

  registerAssets(app);
  // Signed out: a browser with neither a session cookie (live or dead) nor the year-long device
  // cookie has never signed in or up here, so it is most likely a first visit (on a fresh server,
  // certainly): sign up, which links to sign in. The cookies cost no store read, and unlike "are
  // there any accounts" they tell a new user on a shared server from a returning one.
  app.get("/", async (c) => {
    const outcome = await sessions.resolve(c.req.raw);
    if (outcome.kind === "ok") return redirect(KEYS_PATH);
    const req = c.req.raw;
    const firstVisit = readSessionToken(req) === null && readCookie(req, DEVICE_COOKIE) === null;
    return redirect(firstVisit && (deps.signUpOpen ?? true) ? "/sign-up" : "/sign-in");
  });
  registerSignInPages(app, { kit, accounts, sessions, signUpOpen: deps.signUpOpen ?? true });
  registerPasswordResetPages(app, { kit, accounts });

  app.get("/settings", () => redirect(KEYS_PATH));
  app.use("/settings/*", requireSession(deps));
  const security = { kit, accounts, clock, twoFactor: deps.twoFactor };
  const twoFactorPages = twoFactorPagesKit({
    ...security,
    sudo: deps.sudo,
    sudoOperations: deps.sudoOperations,
  });
  // Sudo mode for key and account changes: asks inline for a proof (two_factor_pages.tsx).
  app.use("/settings/*", dashboardSudo(twoFactorPages));

  const domainPage = registerDomainPages(app, { actions: deps.domains, clock, kit });
  registerAddressPages(app, { kit, domainPage });
  registerEndpointPages(app, { kit, endpoints: deps.endpoints });
  registerEmailVerificationPages(app, { kit, accounts });
  registerKeyPages(app, {
    kit,
    clock,
    maxKeys: deps.maxKeys,
    usage: deps.usage,
    rateLimit: deps.rateLimit,
    scopes: deps.scopes ?? BUILT_IN_VOCABULARY,
  });
  registerUsagePages(app, { kit, clock, usage: deps.usage, rateLimit: deps.rateLimit });
  registerKeyDetailPage(app, {
    kit,
    clock,
    usage: deps.usage,
    rateLimit: deps.rateLimit,
    accounts,
  });
  registerAuditLogPages(app, { kit, accounts });
  registerSecurityPages(app, { ...security, twoFactorPages });
  return app;
}
