/**
 * The interactive API reference at `GET /api/e2/docs`: Swagger UI (npm swagger-ui-dist, pinned in
 * deno.json) over this server's own OpenAPI document, with try-it, served entirely from this
 * origin. No CDN and no inline script: the bundle, its CSS, our init script and our CSS fixes are
 * files under ASSETS_PREFIX, and the page's CSP allows scripts and styles from 'self' only.
 *
 * Why Swagger UI 5.35.0 and not @scalar/api-reference 1.72.1: swagger-ui-dist is one
 * self-contained file pair with no dependencies (1.7 MB JS + 0.19 MB CSS, ~0.5 MB gzipped), while
 * Scalar's standalone build is about twice that and pulls in ~150 npm packages for the install.
 * Swagger UI's axe findings (method badge contrast, unlabelled selects, regions) are few and
 * fixed here by CSS overrides and by the page's own landmarks, so the page passes axe.
 *
 * How the bundle is read: `import … with { type: "text" }` (stable in Deno 2.9). The files are
 * part of the module graph, so the server needs no --allow-read for the npm cache, and Deno
 * Deploy (which builds the module graph on deploy) ships them with the code.
 */
import { DOCS_TITLE, SiteHeader } from "../dashboard/layout.tsx";
import swaggerCss from "swagger-ui-dist/swagger-ui.css" with { type: "text" };
import swaggerJs from "swagger-ui-dist/swagger-ui-bundle.js" with { type: "text" };

/** The Swagger UI version: part of the asset URLs, so they can be cached for good. */
export const SWAGGER_UI_VERSION = "5.35.0";
export const ASSETS_PREFIX = `/assets/api-docs/${SWAGGER_UI_VERSION}`;

/** Scripts, styles, fetches (the document and try-it) from this origin only. */
export const DOCS_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  // Swagger UI's CSS draws its icons as data: SVGs.
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

const INIT_JS = `// Inbound API reference: starts Swagger UI on this server's OpenAPI document.
"use strict";
(function () {
  var root = document.getElementById("swagger-ui");
  var SwaggerUIBundle = window.SwaggerUIBundle;
  if (!root || typeof SwaggerUIBundle !== "function") return;
  var specUrl = new URL(root.getAttribute("data-openapi-url"), location.href).href;

  // Swagger UI's own layout brings a second <main> and content outside any landmark; this one
  // renders the same parts inside the page's <main>, in a named region for servers and auth.
  function InboundLayoutPlugin(system) {
    var h = system.React.createElement;
    function InboundLayout(props) {
      var get = props.getComponent;
      var status = props.specSelectors.loadingStatus();
      if (status !== "success") {
        return h("div", { className: "swagger-ui" }, h("p", { className: "loading-status", role: "status" },
          status === "loading" ? "Loading the API reference…" : "The API reference could not be loaded."));
      }
      var Errors = get("errors", true);
      var Markdown = get("Markdown", true);
      var Servers = get("ServersContainer", true);
      var Authorize = get("AuthorizeBtnContainer", true);
      var Operations = get("operations", true);
      var Models = get("Models", true);
      // Swagger UI's Info is a second h1 (the page has one): its version and description here.
      var info = props.specSelectors.info();
      // One server only (PUBLIC_URL, else this origin): said in words, not as a bare "Servers /"
      // select; the select stays mounted, hidden, since it is what picks try-it's base URL.
      var servers = props.specSelectors.servers();
      var server = servers && servers.size ? servers.first().get("url") : "/";
      return h("div", { className: "swagger-ui" },
        h(Errors),
        h("div", { className: "information-container wrapper" },
          h("div", { className: "info" },
            h("p", null, "Version ", h("code", null, info.get("version")), " · OpenAPI ",
              h("code", null, props.specSelectors.specJson().get("openapi"))),
            h(Markdown, { source: info.get("description") }))),
        h("section", { className: "scheme-container", "aria-label": "Server and authorization" },
          h("div", { className: "schemes wrapper" },
            h("div", { className: "schemes-server-container" },
              h("p", { className: "docs-server" }, "Try it out calls ",
                h("code", null, new URL(server, location.href).href.replace(/[/]$/, ""))),
              h("div", { hidden: true }, h(Servers)), h(Authorize)))),
        h("div", { className: "wrapper" }, h("h2", { className: "visually-hidden" }, "Operations"),
          h(Operations)),
        h("div", { className: "wrapper" }, h(Models)));
    }
    return { components: { InboundLayout: InboundLayout } };
  }

  // Swagger UI warns about a jsonSchemaDialect other than its default; the document is valid
  // OpenAPI 3.1, so the viewer gets it without that field.
  function responseInterceptor(res) {
    if (res && res.url === specUrl && typeof res.text === "string") {
      try {
        var doc = JSON.parse(res.text);
        delete doc.jsonSchemaDialect;
        res.text = JSON.stringify(doc);
        res.body = doc;
        res.obj = doc;
      } catch (e) { /* not JSON: shown as Swagger UI's error */ }
    }
    return res;
  }

  // Names for the few controls Swagger UI leaves unnamed (axe: select-name).
  function nameControls() {
    var servers = document.getElementById("servers");
    if (servers && !servers.hasAttribute("aria-label")) servers.setAttribute("aria-label", "Server");
    var selects = root.querySelectorAll("select:not([aria-label]):not([id])");
    for (var i = 0; i < selects.length; i++) selects[i].setAttribute("aria-label", "Media type");
    // The Authorize dialog: a named close button, buttons named by their visible text, and its
    // heading one level under the page's.
    var closers = root.querySelectorAll(".close-modal:not([aria-label])");
    for (var j = 0; j < closers.length; j++) closers[j].setAttribute("aria-label", "Close");
    var applies = root.querySelectorAll(".auth-container button[aria-label='Apply credentials']");
    for (var k = 0; k < applies.length; k++) {
      var scheme = applies[k].closest(".auth-container").querySelector("h4 code");
      applies[k].setAttribute("aria-label", "Authorize" + (scheme ? " " + scheme.textContent : ""));
    }
    var heads = root.querySelectorAll(".modal-ux-header h3:not([aria-level])");
    for (var m = 0; m < heads.length; m++) heads[m].setAttribute("aria-level", "2");
    // Its token field says "auth-bearer-value" to screen readers: let its visible label name it.
    var token = document.getElementById("auth-bearer-value");
    if (token && token.getAttribute("aria-label") === token.id) token.removeAttribute("aria-label");
    // Code blocks that may scroll sideways must be reachable from the keyboard.
    var blocks = root.querySelectorAll("pre:not([tabindex])");
    for (var q = 0; q < blocks.length; q++) blocks[q].setAttribute("tabindex", "0");
    var subheads = root.querySelectorAll(".modal-ux-content h4:not([aria-level])");
    for (var n = 0; n < subheads.length; n++) subheads[n].setAttribute("aria-level", "3");
  }
  new MutationObserver(nameControls).observe(root, { childList: true, subtree: true });

  window.ui = SwaggerUIBundle({
    url: specUrl,
    domNode: root,
    deepLinking: false,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    displayRequestDuration: true,
    persistAuthorization: false,
    tryItOutEnabled: false,
    validatorUrl: null,
    responseInterceptor: responseInterceptor,
    presets: [SwaggerUIBundle.presets.apis],
    plugins: [InboundLayoutPlugin],
    layout: "InboundLayout",
    requestSnippetsEnabled: true,
    // Plain code blocks: the highlighter's inline colours fail WCAG contrast on its dark theme.
    syntaxHighlight: { activated: false }
  });
})();
`;

/**
 * Fixes for axe (WCAG AA contrast): Swagger UI's method badges, links and muted texts are too
 * light on white. Kept small and scoped to .swagger-ui.
 */
const OVERRIDES_CSS =
  `body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1d2330; background: #fff; }
/* The dashboard's bar (routes/dashboard/layout.tsx SiteHeader), as dashboard.css draws it in
   light mode; that stylesheet's element rules would restyle Swagger UI, so it is not loaded. */
header.top { display: flex; align-items: center; justify-content: space-between;
  gap: .5rem 1rem; flex-wrap: wrap; padding: .75rem 1.5rem; background: #151a2d; color: #fff; }
header.top .brand { font-weight: 700; font-size: 1.1rem; color: #fff; text-decoration: none; }
header.top a { color: #dfe4f2; }
header.top nav.settings { display: flex; flex-wrap: wrap; gap: .25rem 1rem; }
header.top nav.settings a[aria-current="page"] { font-weight: 600; color: #fff; }
header.top .who { display: flex; align-items: center; flex-wrap: wrap; gap: .25rem .75rem;
  color: #dfe4f2; font-size: .9rem; min-width: 0; }
header.top .who span { overflow-wrap: anywhere; min-width: 0; }
header.top form { margin: 0; }
header.top button.link { background: none; border: none; color: #dfe4f2; padding: 0;
  font: inherit; text-decoration: underline; cursor: pointer; }
header.top button.link:hover { color: #fff; }
header.top a:focus-visible, header.top button:focus-visible { outline: 3px solid #8fa0ff;
  outline-offset: 2px; }
.docs-server { margin: 0; color: #1d2330; }
.docs-server code { overflow-wrap: anywhere; }
.docs-intro { max-width: 1460px; margin: 0 auto; padding: 1rem 20px 0; }
.docs-intro h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
.docs-intro p { margin: .25rem 0; color: #4a5263; }
.docs-intro a { color: #2433a8; }
.skip { position: absolute; left: -9999px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); white-space: nowrap; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; color: #1d2330; padding: .5rem; z-index: 10; }
.swagger-ui .opblock .opblock-summary-method { color: #fff; text-shadow: none; }
.swagger-ui .opblock.opblock-get .opblock-summary-method { background: #1f5fa8; }
.swagger-ui .opblock.opblock-post .opblock-summary-method { background: #1d6b45; }
.swagger-ui .opblock.opblock-put .opblock-summary-method { background: #8a4b00; }
.swagger-ui .opblock.opblock-patch .opblock-summary-method { background: #1f6b63; }
.swagger-ui .opblock.opblock-delete .opblock-summary-method { background: #b4232c; }
.swagger-ui .opblock .opblock-summary-path, .swagger-ui .opblock .opblock-summary-description,
.swagger-ui .opblock-tag, .swagger-ui .opblock-tag small, .swagger-ui .info .title,
.swagger-ui .info p, .swagger-ui .info li, .swagger-ui table thead tr th,
.swagger-ui table thead tr td, .swagger-ui .parameter__name, .swagger-ui .parameter__type,
.swagger-ui .parameter__in, .swagger-ui .response-col_status, .swagger-ui .tab li,
.swagger-ui .opblock-description-wrapper p, .swagger-ui .opblock-title_normal p,
.swagger-ui .model-title, .swagger-ui .model, .swagger-ui section.models h4,
.swagger-ui .responses-inner h4, .swagger-ui .responses-inner h5, .swagger-ui label,
.swagger-ui .prop-format, .swagger-ui .renderedMarkdown p, .swagger-ui .response-col_links,
.swagger-ui .opblock-section-header h4, .swagger-ui .scheme-container .schemes-title,
.swagger-ui .servers-title, .swagger-ui .btn { color: #1d2330; }
.swagger-ui .parameter__name.required span, .swagger-ui .parameter__name.required::after,
.swagger-ui .opblock .opblock-summary-operation-id { color: #9d1c24; }
.swagger-ui .parameter__in, .swagger-ui .prop-format, .swagger-ui .parameter__deprecated,
.swagger-ui .response-control-media-type__accept-message { color: #4a5263; }
.swagger-ui .info a, .swagger-ui a.nostyle, .swagger-ui .info .link,
.swagger-ui .opblock-tag a, .swagger-ui .renderedMarkdown a { color: #2433a8; }
.swagger-ui .info .title small { background: #4a5263; }
.swagger-ui .info .title small.version-stamp { background: #1d6b45; }
.swagger-ui .info .title small pre { color: #fff; }
.swagger-ui .btn.authorize { color: #1d6b45; border-color: #1d6b45; }
.swagger-ui .btn.authorize svg { fill: #1d6b45; }
.swagger-ui .btn.execute { background: #1f5fa8; border-color: #1f5fa8; color: #fff; }
.swagger-ui .btn.cancel { color: #9d1c24; border-color: #9d1c24; }
.swagger-ui .opblock-summary-control:focus, .swagger-ui .btn:focus,
.swagger-ui a:focus-visible, .swagger-ui button:focus-visible { outline: 3px solid #3547d4; }
.swagger-ui .response-col_status .response-undocumented { color: #4a5263; }
.swagger-ui .markdown code, .swagger-ui .renderedMarkdown code { color: #6b2a8f; }
.swagger-ui .highlight-code .microlight, .swagger-ui .microlight { color: #fff; }
.swagger-ui .model-toggle::after { opacity: 1; }
.swagger-ui .download-contents { background: #3a4253; color: #fff; }
.swagger-ui pre:focus-visible { outline: 3px solid #3547d4; outline-offset: 2px; }
@media (max-width: 700px) {
  header.top { padding: .6rem 1rem; }
  .swagger-ui .wrapper { padding: 0 10px; }
  .swagger-ui .opblock .opblock-summary { flex-wrap: wrap; }
  .swagger-ui .opblock .opblock-summary-path { max-width: 100%; overflow-wrap: anywhere; }
  .swagger-ui .opblock-summary-description { flex-basis: 100%; }
  .swagger-ui table, .swagger-ui .table-container { max-width: 100%; overflow-x: auto; display: block; }
  .swagger-ui .info { margin: 20px 0; }
}
`;

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

/**
 * The page: the dashboard's own bar (SiteHeader: the settings, API docs and Sign out when signed
 * in, so the reference is one more page of the dashboard), our landmarks and the page's one h1;
 * Swagger UI renders into #swagger-ui.
 */
export function renderApiDocsPage(
  opts: { openApiUrl: string; plainUrl: string; email?: string },
): string {
  const header = String(SiteHeader({ title: DOCS_TITLE, email: opts.email }));
  const keys = opts.email
    ? `<a href="/settings/api-keys">API Keys</a>`
    : `<a href="/settings/api-keys">API Keys</a> (after <a href="/sign-in">signing in</a>)`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>API reference · Inbound</title>
<link rel="icon" href="/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="${ASSETS_PREFIX}/swagger-ui.css">
<link rel="stylesheet" href="${ASSETS_PREFIX}/overrides.css">
<script src="${ASSETS_PREFIX}/swagger-ui-bundle.js" defer></script>
<script src="${ASSETS_PREFIX}/init.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
${header}
<main id="main">
<div class="docs-intro">
<h1>Inbound e2 API reference</h1>
<p>Every operation with its parameters, examples and a “Try it out” button. Choose
<strong>Authorize</strong> and paste an API key (from ${keys}) to call the API from this page.
The document itself: <a href="${esc(opts.openApiUrl)}">OpenAPI JSON</a>.</p>
<noscript><p>This reference needs JavaScript. Read the <a href="${
    esc(opts.plainUrl)
  }">plain-text reference</a> instead.</p></noscript>
</div>
<div id="swagger-ui" data-openapi-url="${esc(opts.openApiUrl)}"></div>
</main>
</body>
</html>
`;
}

export type DocsAsset = { body: string; type: string };

/** The files under ASSETS_PREFIX, by name. */
export const API_DOCS_ASSETS: Record<string, DocsAsset> = {
  "swagger-ui-bundle.js": { body: swaggerJs, type: "text/javascript; charset=utf-8" },
  "swagger-ui.css": { body: swaggerCss, type: "text/css; charset=utf-8" },
  "init.js": { body: INIT_JS, type: "text/javascript; charset=utf-8" },
  "overrides.css": { body: OVERRIDES_CSS, type: "text/css; charset=utf-8" },
};

const gzipped = new Map<string, Promise<ArrayBuffer>>();

async function gzip(text: string): Promise<ArrayBuffer> {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return await new Response(stream).arrayBuffer();
}

/**
 * An asset by name, cacheable for good (the version is in its URL), gzipped once and kept when
 * the client accepts it (the bundle: 1.7 MB, about 0.5 MB gzipped); null when unknown.
 */
export async function apiDocsAsset(name: string, acceptEncoding = ""): Promise<Response | null> {
  const a = Object.hasOwn(API_DOCS_ASSETS, name) ? API_DOCS_ASSETS[name] : undefined;
  if (!a) return null;
  const headers: Record<string, string> = {
    "Content-Type": a.type,
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Vary": "Accept-Encoding",
  };
  if (!/\bgzip\b/i.test(acceptEncoding)) return new Response(a.body, { headers });
  let body = gzipped.get(name);
  if (!body) gzipped.set(name, body = gzip(a.body));
  return new Response(await body, { headers: { ...headers, "Content-Encoding": "gzip" } });
}
