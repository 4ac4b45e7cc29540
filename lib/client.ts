/**
 * Who is on the other end of a request: the client's address, and the scheme and host it used.
 *
 * With no `TRUST_PROXY` the address is the socket peer and the scheme and host are the request
 * URL's (Deno builds it from the Host header); forwarding headers are not even read. When the
 * peer is a trusted proxy (a hop count, or CIDR ranges), the address comes from `Forwarded`
 * (RFC 7239) or `X-Forwarded-For` (the rightmost untrusted entry), the scheme and host from
 * `Forwarded` or `X-Forwarded-Proto` / `X-Forwarded-Host`. Anything malformed falls back to the
 * peer (address) or the request URL (scheme, host): a hostile header never fails a request and
 * never yields an address the proxy did not write.
 *
 * `PUBLIC_URL`, when set, decides the site's origin (cookie names, the CSRF origin, snippets).
 *
 * One `RequestClient` per request (routes/request_context.ts), resolved lazily: with no proxy
 * trusted, reading the address costs a property read.
 */

/** An address as 16 bytes (IPv4 as IPv4-mapped IPv6). */
type IpBytes = Uint8Array;

export type Cidr = { readonly bytes: IpBytes; readonly bits: number };

export type TrustProxy =
  | { readonly kind: "none" }
  /** The peer and the next `hops - 1` proxies toward the client are trusted. */
  | { readonly kind: "hops"; readonly hops: number }
  /** Peers (and forwarded entries) inside these ranges are trusted. */
  | { readonly kind: "cidrs"; readonly ranges: readonly Cidr[]; readonly text: string };

export const TRUST_NOTHING: TrustProxy = { kind: "none" };

export type ClientPolicy = {
  trustProxy: TrustProxy;
  /** The normalised origin of `PUBLIC_URL` (`https://api.example.com`), or null. */
  publicUrl: string | null;
};

export const DEFAULT_POLICY: ClientPolicy = { trustProxy: TRUST_NOTHING, publicUrl: null };

export type Scheme = "http" | "https";

export type Client = {
  /** The client's address (the socket peer unless a trusted proxy said otherwise). */
  address: string;
  scheme: Scheme;
  /** `host[:port]` as the client addressed it, default port omitted. */
  host: string;
  /** True when the scheme was told by a trusted proxy rather than read from the request URL. */
  schemeForwarded: boolean;
};

/** The site as the browser sees it: what cookies, the CSRF check and snippets go by. */
export type Site = {
  /** `scheme://host[:port]`: PUBLIC_URL's when set, else the resolved client's. */
  origin: string;
  https: boolean;
  /** PUBLIC_URL decides (the operator chose the scheme, plain HTTP included). */
  configured: boolean;
  /** The host is localhost, 127.0.0.1 or [::1]. */
  loopback: boolean;
  /** The scheme is known (PUBLIC_URL, or a trusted proxy), not guessed from the socket. */
  schemeKnown: boolean;
};

const LOCAL_HOSTNAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);
const MAX_HEADER_CHARS = 8192;
const MAX_HOPS = 32;

// --- Addresses -----------------------------------------------------------------------------

function parseIpv4(text: string, out: IpBytes, at: number): boolean {
  const parts = text.split(".");
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i];
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return false;
    const n = Number(p);
    if (n > 255) return false;
    out[at + i] = n;
  }
  return true;
}

/** 16 bytes for an IPv4 or IPv6 address (no brackets, no port, no zone), or null. */
export function parseIp(text: string): IpBytes | null {
  const out = new Uint8Array(16);
  if (text.length === 0 || text.length > 45) return null;
  if (!text.includes(":")) {
    out[10] = 0xff;
    out[11] = 0xff;
    return parseIpv4(text, out, 12) ? out : null;
  }
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  const words: number[] = [];
  const push = (list: string[], last: boolean): boolean => {
    for (let i = 0; i < list.length; i++) {
      const g = list[i];
      if (last && i === list.length - 1 && g.includes(".")) {
        const v4 = new Uint8Array(16);
        if (!parseIpv4(g, v4, 12)) return false;
        words.push((v4[12] << 8) | v4[13], (v4[14] << 8) | v4[15]);
      } else {
        if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return false;
        words.push(parseInt(g, 16));
      }
    }
    return true;
  };
  if (!push(head, halves.length === 1)) return null;
  const headLen = words.length;
  if (!push(tail, true)) return null;
  const tailLen = words.length - headLen;
  if (halves.length === 1) {
    if (words.length !== 8) return null;
  } else {
    if (words.length > 7) return null;
    words.splice(headLen, 0, ...new Array(8 - headLen - tailLen).fill(0));
  }
  for (let i = 0; i < 8; i++) {
    out[2 * i] = words[i] >> 8;
    out[2 * i + 1] = words[i] & 0xff;
  }
  return out;
}

function isV4Mapped(b: IpBytes): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

/** Canonical text: dotted quad for IPv4 (and IPv4-mapped), RFC 5952 for IPv6. */
export function formatIp(b: IpBytes): string {
  if (isV4Mapped(b)) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((b[2 * i] << 8) | b[2 * i + 1]);
  // The longest run (>= 2) of zero words becomes "::".
  let bestAt = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestAt < 0) return hex(words);
  return `${hex(words.slice(0, bestAt))}::${hex(words.slice(bestAt + bestLen))}`;
}

/**
 * What per-address limits count by: the address itself for IPv4, its /64 for IPv6 (one host is
 * routinely given a whole /64, so counting single IPv6 addresses would give it unlimited
 * buckets). Anything that does not parse (e.g. "unknown" in process) is counted as it is. Logs
 * keep the full address; only throttles and the hashing pool's per-address place use this.
 */
export function throttleSubject(address: string): string {
  const b = parseIp(address);
  if (!b || isV4Mapped(b)) return b ? formatIp(b) : address;
  const prefix = new Uint8Array(16);
  prefix.set(b.subarray(0, 8));
  return `${formatIp(prefix)}/64`;
}

/** Whether the address (16 bytes, parseIp) lies in the range (also used for API key allowlists). */
export function inCidr(b: IpBytes, c: Cidr): boolean {
  let bits = c.bits;
  for (let i = 0; i < 16 && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((b[i] & mask) !== (c.bytes[i] & mask)) return false;
  }
  return true;
}

/** "10.0.0.0/8", "2001:db8::/32" or a single address; null when malformed. */
export function parseCidr(text: string): Cidr | null {
  const slash = text.indexOf("/");
  const addr = slash < 0 ? text : text.slice(0, slash);
  const bytes = parseIp(addr);
  if (!bytes) return null;
  const v4 = !addr.includes(":");
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const raw = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(raw) || Number(raw) > max) return null;
    bits = Number(raw);
  }
  return { bytes, bits: v4 ? 96 + bits : bits };
}

// --- Settings ------------------------------------------------------------------------------

/**
 * `TRUST_PROXY`: empty (trust nothing), a hop count (`1`), or comma-separated CIDRs or addresses
 * (`127.0.0.0/8,10.0.0.0/8,::1`). Throws a RangeError whose message completes "TRUST_PROXY ...".
 */
export function parseTrustProxy(raw: string | undefined): TrustProxy {
  const text = (raw ?? "").trim();
  if (text === "" || text === "0") return TRUST_NOTHING;
  if (/^[0-9]+$/.test(text)) {
    const hops = Number(text);
    if (hops > MAX_HOPS) {
      throw new RangeError(
        `must be a hop count from 0 to ${MAX_HOPS} or a list of CIDRs, got "${raw}"`,
      );
    }
    return { kind: "hops", hops };
  }
  const ranges: Cidr[] = [];
  for (const item of text.split(",")) {
    const cidr = parseCidr(item.trim());
    if (!cidr) {
      throw new RangeError(
        `must be a hop count (e.g. 1) or comma-separated CIDRs (e.g. 127.0.0.0/8,::1/128); ` +
          `"${item.trim()}" is neither`,
      );
    }
    ranges.push(cidr);
  }
  return { kind: "cidrs", ranges, text };
}

/**
 * `PUBLIC_URL`: an absolute http(s) URL with no path, query, fragment or credentials; returns
 * its origin. Throws a RangeError whose message completes "PUBLIC_URL ...".
 */
export function parsePublicUrl(raw: string | undefined): string | null {
  const text = (raw ?? "").trim();
  if (text === "") return null;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new RangeError(`must be an absolute URL such as https://api.example.com, got "${raw}"`);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new RangeError(`must start with https:// or http://, got "${raw}"`);
  }
  if (url.username || url.password || url.search || url.hash || url.pathname !== "/") {
    throw new RangeError(
      `must be an origin only (scheme, host, optional port; no path, query or credentials), ` +
        `got "${raw}"`,
    );
  }
  return url.origin;
}

/** Whether `origin`'s host is localhost, 127.0.0.1 or [::1]. */
export function isLoopbackOrigin(origin: string): boolean {
  return LOCAL_HOSTNAMES.has(new URL(origin).hostname);
}

/** `TRUST_PROXY` as a short phrase for the start-up line. */
export function describeTrustProxy(t: TrustProxy): string {
  switch (t.kind) {
    case "none":
      return "none";
    case "hops":
      return `${t.hops} hop${t.hops === 1 ? "" : "s"}`;
    case "cidrs":
      return t.text;
  }
}

// --- Forwarding headers --------------------------------------------------------------------

type ForwardedElement = { for?: string; proto?: string; host?: string };

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** RFC 7239 `Forwarded`, left to right; null when malformed. */
export function parseForwarded(header: string): ForwardedElement[] | null {
  if (header.length > MAX_HEADER_CHARS) return null;
  const elements: ForwardedElement[] = [];
  let el: ForwardedElement = {};
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && (header[i] === " " || header[i] === "\t")) i++;
  };
  while (true) {
    skipSpace();
    // A pair (possibly none: empty elements and pairs are tolerated, as the grammar allows).
    if (i < n && header[i] !== "," && header[i] !== ";") {
      const eq = header.indexOf("=", i);
      if (eq < 0) return null;
      const name = header.slice(i, eq).trim().toLowerCase();
      if (!TOKEN.test(name)) return null;
      i = eq + 1;
      let value: string;
      if (header[i] === '"') {
        i++;
        value = "";
        while (i < n && header[i] !== '"') {
          if (header[i] === "\\") i++;
          if (i >= n) return null;
          value += header[i++];
        }
        if (i >= n) return null;
        i++;
      } else {
        const start = i;
        while (i < n && !",; \t".includes(header[i])) i++;
        value = header.slice(start, i);
        if (!TOKEN.test(value)) return null;
      }
      if (name === "for" || name === "proto" || name === "host") {
        if (el[name] !== undefined) return null; // a parameter repeated within one element
        el[name] = value;
      }
      skipSpace();
    }
    if (i >= n) {
      elements.push(el);
      break;
    }
    if (header[i] === ";") {
      i++;
    } else if (header[i] === ",") {
      elements.push(el);
      el = {};
      i++;
    } else {
      return null;
    }
    if (elements.length > MAX_HOPS * 4) return null;
  }
  return elements;
}

/** An address from a `for=` value or an X-Forwarded-For entry (port and brackets allowed). */
function nodeAddress(raw: string | undefined): IpBytes | null {
  if (raw === undefined) return null;
  const s = raw.trim();
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) return null;
    const rest = s.slice(close + 1);
    if (rest !== "" && !/^:[0-9]{1,5}$/.test(rest)) return null;
    const inner = s.slice(1, close);
    return inner.includes(":") ? parseIp(inner) : null;
  }
  const colon = s.indexOf(":");
  if (colon >= 0 && colon === s.lastIndexOf(":")) {
    // IPv4 with a port.
    if (!/^:[0-9]{1,5}$/.test(s.slice(colon))) return null;
    const v4 = s.slice(0, colon);
    return v4.includes(".") ? parseIp(v4) : null;
  }
  return parseIp(s);
}

const HOST_SHAPE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;

/** `host[:port]` normalised for `scheme` (lower case, default port dropped), or null. */
function normaliseHost(raw: string | undefined, scheme: Scheme): string | null {
  if (raw === undefined) return null;
  const s = raw.trim();
  if (s.length === 0 || s.length > 260 || !HOST_SHAPE.test(s)) return null;
  try {
    const url = new URL(`${scheme}://${s}`);
    return url.host;
  } catch {
    return null;
  }
}

function normaliseScheme(raw: string | undefined): Scheme | null {
  if (raw === undefined) return null;
  const s = raw.trim().toLowerCase();
  return s === "https" || s === "http" ? s : null;
}

/** The last comma-separated value of a header (the one our nearest proxy wrote), or undefined. */
function lastValue(header: string | null): string | undefined {
  if (header === null || header.length > MAX_HEADER_CHARS) return undefined;
  const comma = header.lastIndexOf(",");
  return (comma < 0 ? header : header.slice(comma + 1)).trim();
}

/**
 * Given the forwarded entries (left: client side), the index of the client's entry, -1 when the
 * peer itself is the client, or null when the entry needed is malformed.
 */
function clientIndex(
  entries: readonly (IpBytes | null)[],
  peerTrusted: boolean,
  trust: TrustProxy,
): number | null {
  if (!peerTrusted || entries.length === 0) return -1;
  if (trust.kind === "hops") {
    // The peer is hop 1; hop k (k >= 2) is entries[length - k + 1].
    const j = Math.max(0, entries.length - trust.hops);
    return entries[j] ? j : null;
  }
  if (trust.kind !== "cidrs") return -1;
  for (let j = entries.length - 1; j >= 0; j--) {
    const e = entries[j];
    if (!e) return null;
    if (!trust.ranges.some((r) => inCidr(e, r))) return j;
  }
  return 0;
}

/**
 * Resolves the client of one request. `peer` is the socket peer's address as Deno reports it,
 * `url` the request URL. Never throws.
 */
export function resolveClient(
  peer: string,
  headers: Headers,
  url: string,
  trust: TrustProxy,
): Client {
  const u = new URL(url);
  const urlScheme: Scheme = u.protocol === "https:" ? "https" : "http";
  const direct: Client = { address: peer, scheme: urlScheme, host: u.host, schemeForwarded: false };
  if (trust.kind === "none") return direct;
  const peerBytes = parseIp(peer);
  const peerTrusted = trust.kind === "hops"
    ? trust.hops >= 1
    : peerBytes !== null && trust.ranges.some((r) => inCidr(peerBytes, r));
  if (!peerTrusted) return direct;

  // Each source yields an address, or null when it is absent; a malformed or inconsistent
  // source makes the peer the answer.
  let address: string | null = null;
  let malformed = false;
  let fwdProto: string | undefined;
  let fwdHost: string | undefined;

  const forwarded = headers.get("Forwarded");
  if (forwarded !== null) {
    const elements = parseForwarded(forwarded);
    if (!elements) {
      malformed = true;
    } else {
      if (elements.every((e) => e.for === undefined)) {
        // Scheme and host only (no address): the element our nearest proxy wrote.
        fwdProto = elements[elements.length - 1].proto;
        fwdHost = elements[elements.length - 1].host;
      } else {
        const j = clientIndex(elements.map((e) => nodeAddress(e.for)), true, trust);
        if (j === null) malformed = true;
        else if (j >= 0) {
          // The element written by the proxy the client connected to: its scheme and host.
          address = formatIp(nodeAddress(elements[j].for)!);
          fwdProto = elements[j].proto;
          fwdHost = elements[j].host;
        }
      }
    }
  }
  const xff = headers.get("X-Forwarded-For");
  if (xff !== null && !malformed) {
    if (xff.length > MAX_HEADER_CHARS) {
      malformed = true;
    } else {
      const j = clientIndex(xff.split(",").map(nodeAddress), true, trust);
      if (j === null) malformed = true;
      else if (j >= 0) {
        const a = formatIp(nodeAddress(xff.split(",")[j])!);
        // Both headers present: they must agree (a proxy that writes one passes the other
        // through from the client, who could otherwise pick any address).
        if (address !== null && address !== a) malformed = true;
        address = a;
      }
    }
  }

  const scheme = pick(normaliseScheme(fwdProto), headers.get("X-Forwarded-Proto"), normaliseScheme);
  const finalScheme = scheme ?? urlScheme;
  const host = pick(
    normaliseHost(fwdHost, finalScheme),
    headers.get("X-Forwarded-Host"),
    (v) => normaliseHost(v, finalScheme),
  );
  return {
    address: malformed || address === null ? peer : address,
    scheme: finalScheme,
    host: host ??
      (finalScheme === urlScheme ? u.host : normaliseHost(u.host, finalScheme) ?? u.host),
    schemeForwarded: scheme !== null,
  };
}

/**
 * The value from `Forwarded` and/or the X-Forwarded-* header: when both are given they must
 * agree; null when neither gives a valid one (or they disagree).
 */
function pick<T>(
  fromForwarded: T | null,
  xHeader: string | null,
  normalise: (v: string | undefined) => T | null,
): T | null {
  const fromX = xHeader === null ? null : normalise(lastValue(xHeader));
  if (fromForwarded !== null && fromX !== null) return fromForwarded === fromX ? fromX : null;
  return fromForwarded ?? fromX;
}

/** The site a resolved client sees, given `PUBLIC_URL` (or null). */
export function siteOf(client: Client, publicUrl: string | null): Site {
  if (publicUrl !== null) {
    return {
      origin: publicUrl,
      https: publicUrl.startsWith("https:"),
      configured: true,
      loopback: isLoopbackOrigin(publicUrl),
      schemeKnown: true,
    };
  }
  const origin = `${client.scheme}://${client.host}`;
  let loopback = false;
  try {
    loopback = LOCAL_HOSTNAMES.has(new URL(origin).hostname);
  } catch {
    // An unparseable host is not loopback.
  }
  return {
    origin,
    https: client.scheme === "https",
    configured: false,
    loopback,
    schemeKnown: client.schemeForwarded,
  };
}

// --- Per request ---------------------------------------------------------------------------

type PeerInfo = { remoteAddr?: { hostname?: string } } | undefined;

/**
 * The client of one request, resolved on first use. `env` is what Deno.serve passes as the
 * handler's second argument (Hono's `c.env`).
 */
export class RequestClient {
  #client: Client | undefined;
  #site: Site | undefined;

  constructor(
    private readonly req: Request,
    private readonly env: unknown,
    private readonly policy: ClientPolicy,
  ) {}

  #peer: string | undefined;

  /** The socket peer's address, or "unknown" (read once: Deno's `remoteAddr` is a getter). */
  get peer(): string {
    return this.#peer ??= (this.env as PeerInfo)?.remoteAddr?.hostname ?? "unknown";
  }

  /** The client's address: the peer's unless a trusted proxy forwarded another. */
  get address(): string {
    if (this.policy.trustProxy.kind === "none") return this.peer;
    return this.resolved.address;
  }

  get resolved(): Client {
    return (this.#client ??= resolveClient(
      this.peer,
      this.req.headers,
      this.req.url,
      this.policy.trustProxy,
    ));
  }

  get site(): Site {
    return (this.#site ??= siteOf(this.resolved, this.policy.publicUrl));
  }
}

/**
 * The client rides on the Request under a module-private symbol. Not a WeakMap: a WeakMap entry
 * per request cost about 2 us of garbage collection (ephemerons) each, measured; the property
 * costs next to nothing and dies with the Request.
 */
const CLIENT = Symbol("inbound.client");
type WithClient = Request & { [CLIENT]?: RequestClient };

/**
 * Records `client` as the client of `req` (routes/request_context.ts, once per request; again by
 * any middleware that replaces `c.req.raw`, as hono's body limit does).
 */
export function bindClient(req: Request, client: RequestClient): void {
  (req as WithClient)[CLIENT] = client;
}

/** The client bound to `req`, if any. */
export function boundClient(req: Request): RequestClient | undefined {
  return (req as WithClient)[CLIENT];
}

/**
 * The client of `req`: the bound one, or for a request that did not pass through the app's
 * middleware (unit tests), one with nothing trusted and no PUBLIC_URL.
 */
export function clientOf(req: Request): RequestClient {
  return (req as WithClient)[CLIENT] ??= new RequestClient(req, undefined, DEFAULT_POLICY);
}
