/**
 * Which webhook URLs may be stored and called. `validateWebhookUrl` checks the URL's form and,
 * when the host is an address literal, the address; names are resolved and their addresses
 * checked at delivery time (`deliver.ts`), since DNS can change between the two.
 *
 * The URL is parsed by WHATWG `new URL()`, which already turns every IPv4 spelling (decimal
 * `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`, short `127.1`, full-width digits) into dotted
 * quad and every IPv6 spelling into its canonical bracketed form, so the decision sees one form.
 */
import { isAllowedAddress, isIpLiteral, isLoopbackAddress } from "./address_ranges.ts";

export { isAllowedAddress } from "./address_ranges.ts";

/** Names that are local by definition (RFC 6761, RFC 8375, cloud metadata), refused as hosts. */
const LOCAL_NAMES = new Set(["localhost", "metadata", "metadata.google.internal", "instance-data"]);
const LOCAL_SUFFIXES = [".localhost", ".local", ".internal", ".home.arpa", ".localdomain"];

const MAX_URL_LENGTH = 2048;

/** The URL's host without brackets and without a trailing dot, lower case. */
export function targetHost(url: URL): string {
  const host = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

/** The port the URL names or its scheme's default. */
export function targetPort(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

/** True for host names that only mean something on the local machine or network. */
export function isLocalName(host: string): boolean {
  const name = host.toLowerCase().replace(/\.$/, "");
  return LOCAL_NAMES.has(name) || LOCAL_SUFFIXES.some((s) => name.endsWith(s));
}

function validHostName(host: string): boolean {
  if (host.length === 0 || host.length > 253) return false;
  return host.split(".").every((label) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label));
}

/**
 * An error message for a URL that may not be a webhook target, or null when it may. Rules:
 * absolute URL; `https:` only (`http:` only when `allowPrivate` and the host is a loopback literal
 * or `localhost`); no user name or password; port 1-65535; host a valid DNS name or IP literal;
 * unless `allowPrivate`, no address literal in a refused range and no local-only name.
 */
export function validateWebhookUrl(url: string, opts: { allowPrivate: boolean }): string | null {
  if (typeof url !== "string" || url.length === 0) return "URL is required";
  if (url.length > MAX_URL_LENGTH) return `URL must be at most ${MAX_URL_LENGTH} characters`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return "URL must be an absolute http(s) URL";
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    return "URL must use https";
  }
  if (parsed.username !== "" || parsed.password !== "") {
    return "URL must not contain a user name or password";
  }
  if (parsed.port === "0") return "URL port must be between 1 and 65535";
  const host = targetHost(parsed);
  const literal = isIpLiteral(host);
  if (!literal && !validHostName(host)) return "URL host is not a valid host name";
  if (parsed.protocol === "http:") {
    const loopback = literal ? isLoopbackAddress(host) : host === "localhost";
    if (!(opts.allowPrivate && loopback)) return "URL must use https";
  }
  if (opts.allowPrivate) return null;
  if (literal && !isAllowedAddress(host)) {
    return "URL host is a private, loopback or otherwise non-public address";
  }
  if (!literal && isLocalName(host)) return "URL host is a local-only name";
  return null;
}
