/**
 * Cross-site request forgery defence for cookie-authenticated requests. Browsers label every
 * request with `Sec-Fetch-Site` and (for state-changing ones) `Origin`; a request whose labels
 * say it came from another origin must not act with the victim's cookie. `SameSite=Lax` alone is
 * not enough: another port or subdomain of the same site is "same-site" and gets the cookie.
 *
 * Requests carrying neither header come from non-browser clients (curl, SDKs), which cannot be
 * made to send a victim's cookie, so they are let through. Bearer-authenticated requests never
 * reach this check.
 */
import { clientOf } from "../lib/client.ts";
import { HttpError } from "../lib/errors.ts";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export const CROSS_SITE_MESSAGE =
  "Cross-site request refused. A request authenticated by a session cookie must come from this " +
  "site's own pages; API clients should use a Bearer key.";

/** Marks a request as state-changing whatever its method (e.g. `GET ...?check=true`). */
export type CrossOriginOptions = { stateChanging?: boolean };

/**
 * Why `req` looks cross-origin, or null when it does not (or its method is safe and it is not
 * marked state-changing).
 */
export function crossOriginReason(req: Request, opts: CrossOriginOptions = {}): string | null {
  if (!opts.stateChanging && SAFE_METHODS.has(req.method.toUpperCase())) return null;
  // Sec-Fetch-Site is set by the browser and cannot be changed by a page: when present it decides.
  // "same-site" covers other ports and subdomains of this site: still another origin.
  const site = req.headers.get("Sec-Fetch-Site");
  if (site !== null) {
    return site === "same-origin" || site === "none" ? null : `Sec-Fetch-Site: ${site}`;
  }
  // Older browsers: compare Origin with the site's origin (lib/client.ts): PUBLIC_URL's when set,
  // else the scheme and host the client used (as a trusted proxy reports them).
  const origin = req.headers.get("Origin");
  if (origin !== null) {
    let url: URL;
    try {
      url = new URL(origin);
    } catch {
      return "unparseable Origin";
    }
    const site = clientOf(req).site;
    if (site.schemeKnown) {
      if (url.origin !== site.origin) return "Origin mismatch";
    } else {
      // Hosts only: behind a TLS-terminating proxy that is not trusted (or says nothing of the
      // scheme) the server sees http:// while the browser's Origin says https://; the host (and
      // port) still identifies the origin. Default ports are normalised away on both sides.
      if (url.host !== new URL(site.origin).host) return "Origin mismatch";
    }
  }
  return null;
}

/**
 * Throws 403 JSON when a state-changing request comes from another origin. Unsafe methods are
 * state-changing; a route whose GET changes state (or starts costly work) passes
 * `{ stateChanging: true }` for its cookie-authenticated requests.
 */
export function assertSameOrigin(req: Request, opts: CrossOriginOptions = {}): void {
  if (crossOriginReason(req, opts) !== null) throw forbiddenCrossSite();
}

export function forbiddenCrossSite(): HttpError {
  return new HttpError(403, CROSS_SITE_MESSAGE, { code: "CROSS_SITE_REQUEST" });
}
