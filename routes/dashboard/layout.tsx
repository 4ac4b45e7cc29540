/** The dashboard's page shell and the security headers every dashboard response carries. */
import type { Child } from "hono/jsx";

/**
 * No inline script or style anywhere: scripts and styles come from /assets on this origin only;
 * forms may post only here; no framing.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": CONTENT_SECURITY_POLICY,
  "X-Content-Type-Options": "nosniff",
  // Not "no-referrer": with it, browsers send `Origin: null` on same-origin form posts.
  "Referrer-Policy": "same-origin",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
};

/** The interactive API reference (routes/openapi/docs_page.ts), linked from the account bar. */
export const DOCS_LINK = "/api/e2/docs";

export type LayoutProps = {
  title: string;
  /** Signed-in account: shows the account bar with its sign-out button. */
  email?: string;
  narrow?: boolean;
  children?: Child;
};

/** The settings pages, linked from the account bar. */
export const SETTINGS_LINKS: { href: string; label: string }[] = [
  { href: "/settings/api-keys", label: "API Keys" },
  { href: "/settings/domains", label: "Domains" },
  { href: "/settings/endpoints", label: "Endpoints" },
  { href: "/settings/usage", label: "Usage" },
  { href: "/settings/security", label: "Security" },
  { href: "/settings/security-log", label: "Security log" },
];

/** The API reference's title: its link in the bar, and the page that shows it as current. */
export const DOCS_TITLE = "API docs";

/**
 * The bar on top of every page: signed in, the settings, the API docs and Sign out. Also on the
 * API reference (routes/openapi/docs_page.ts), which is not a Layout page (its own CSS and CSP).
 */
export function SiteHeader(props: { title: string; email?: string }) {
  return (
    <header class="top">
      <a class="brand" href="/">Inbound</a>
      {props.email
        ? (
          <nav class="settings" aria-label="Settings">
            {SETTINGS_LINKS.map((l) => (
              <a
                key={l.href}
                href={l.href}
                aria-current={l.label === props.title ? "page" : undefined}
              >
                {l.label}
              </a>
            ))}
            <a
              href={DOCS_LINK}
              aria-current={props.title === DOCS_TITLE ? "page" : undefined}
            >
              {DOCS_TITLE}
            </a>
          </nav>
        )
        : null}
      {props.email
        ? (
          <div class="who">
            <span>
              Signed in as <strong>{props.email}</strong>
            </span>
            <form method="post" action="/sign-out">
              <button type="submit" class="link">Sign out</button>
            </form>
          </div>
        )
        : null}
    </header>
  );
}

export function Layout(props: LayoutProps) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="color-scheme" content="light dark" />
        <title>{props.title} · Inbound</title>
        <link rel="icon" href="/assets/favicon.svg" type="image/svg+xml" />
        <link rel="stylesheet" href="/assets/dashboard.css" />
        <script src="/assets/dashboard.js" defer></script>
      </head>
      <body>
        <a class="skip" href="#main">Skip to content</a>
        <SiteHeader title={props.title} email={props.email} />
        <main id="main" class={props.narrow ? "narrow" : undefined}>{props.children}</main>
      </body>
    </html>
  );
}

/** An error or notice banner; errors are announced to screen readers at once. */
export function Banner(props: { kind: "error" | "ok"; id?: string; children?: Child }) {
  return (
    <div
      class={`alert ${props.kind}`}
      id={props.id}
      role={props.kind === "error" ? "alert" : "status"}
    >
      {props.children}
    </div>
  );
}

/**
 * A browser address no route answers (a mistyped or stale link): the page says so and offers the
 * way on. Signed in, the layout's settings navigation is there; signed out, sign-in links.
 */
export function NotFoundPage(props: { path: string; email?: string }) {
  return (
    <Layout title="Page not found" email={props.email} narrow={!props.email}>
      <h1>Page not found</h1>
      <p>
        There is no page at{" "}
        <code id="not-found-path">{props.path}</code>. Check the address for a typo{props.email
          ? ", or pick a page above"
          : ""}.
      </p>
      {props.email
        ? (
          <p>
            <a href={SETTINGS_LINKS[0].href}>Go to {SETTINGS_LINKS[0].label}</a>
          </p>
        )
        : (
          <p class="switch">
            <a href="/sign-in">Sign in</a> or <a href="/sign-up">create an account</a>
          </p>
        )}
    </Layout>
  );
}
