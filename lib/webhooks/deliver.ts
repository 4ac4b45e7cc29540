/**
 * One webhook delivery, SSRF-guarded: check the URL (`target.ts`), resolve its host once with the
 * injected resolver, check every address, then open the TCP connection to a checked address
 * itself (`Deno.connect({ hostname: ip })`, never a name, so there is no second lookup) and, for
 * https, upgrade it with `Deno.startTls(conn, { hostname: <URL host> })` so that SNI and
 * certificate verification use the name while the socket goes to the checked address. The request
 * is a minimal HTTP/1.1 POST written by `http1.ts`; redirects are never followed (a 3xx is the
 * result). The whole exchange (lookup, connect, handshake, request, response) has one timeout.
 *
 * `allowPrivate` skips the address checks (development and this project's tests only).
 * Outcomes: `refused` (the target may not be called: 400 WEBHOOK_TARGET_NOT_ALLOWED), `delivered`
 * (any HTTP status, body truncated to 4 KiB) or `failed` (a short, safe error: never the secret).
 */
import { isAllowedAddress, isIpLiteral } from "./address_ranges.ts";
import { isDeliveryHeader } from "./headers.ts";
import {
  DEFAULT_LIMITS,
  encodeRequest,
  HttpProtocolError,
  isHeaderName,
  isHeaderValue,
  readResponse,
  writeAll,
} from "./http1.ts";
import { signWebhook, unixSeconds } from "./signature.ts";
import { targetHost, targetPort, validateWebhookUrl } from "./target.ts";

export type AddressResolver = (hostname: string, signal?: AbortSignal) => Promise<string[]>;
export type Connector = (
  opts: { hostname: string; port: number; signal: AbortSignal },
) => Promise<Deno.TcpConn>;
export type TlsUpgrader = (
  conn: Deno.TcpConn,
  opts: { hostname: string; caCerts?: string[]; signal: AbortSignal },
) => Promise<Deno.Conn>;

export type WebhookDelivery = {
  url: string;
  headers: Record<string, string>;
  secret: string;
  messageId: string;
  timestamp: Date;
  body: string;
  timeoutMs: number;
};

export type DeliveryOutcome =
  | { kind: "refused"; reason: string }
  | { kind: "delivered"; statusCode: number; responseTimeMs: number; responseBody: string }
  | { kind: "failed"; error: string; responseTimeMs: number };

export type DeliverOptions = {
  resolve: AddressResolver;
  allowPrivate: boolean;
  signal?: AbortSignal;
  /** Opens the TCP connection (default `Deno.connect`); always called with an IP address. */
  connect?: Connector;
  /** Upgrades to TLS (default `Deno.startTls` + handshake). */
  startTls?: TlsUpgrader;
  /** Extra trusted roots for https (tests); the system roots are always trusted. */
  caCerts?: string[];
  userAgent?: string;
};

export const DEFAULT_USER_AGENT = "inbound-auth-server-webhooks/1.0";
export const MAX_DELIVERY_TIMEOUT_MS = 30_000;
export const DEFAULT_RESOLVE_TIMEOUT_MS = 5_000;

/** Looks up A and AAAA records with `Deno.resolveDns` (no /etc/hosts), with a timeout. */
export function systemAddressResolver(
  opts: { timeoutMs?: number; nameServer?: { ipAddr: string; port?: number } } = {},
): AddressResolver {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_RESOLVE_TIMEOUT_MS;
  const ns = opts.nameServer ? { nameServer: opts.nameServer } : {};
  return async (hostname, caller) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = caller ? AbortSignal.any([caller, timeout]) : timeout;
    const lookup = async (type: "A" | "AAAA"): Promise<string[]> => {
      try {
        return await Deno.resolveDns(hostname, type, { signal, ...ns });
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return [];
        throw err;
      }
    };
    const [a, aaaa] = await Promise.allSettled([lookup("A"), lookup("AAAA")]);
    if (a.status === "rejected" && aaaa.status === "rejected") throw a.reason;
    return [
      ...(a.status === "fulfilled" ? a.value : []),
      ...(aaaa.status === "fulfilled" ? aaaa.value : []),
    ];
  };
}

const defaultConnect: Connector = ({ hostname, port, signal }) =>
  Deno.connect({ hostname, port, transport: "tcp", signal });

const defaultStartTls: TlsUpgrader = async (conn, { hostname, caCerts, signal }) => {
  const tls = await Deno.startTls(conn, { hostname, ...(caCerts ? { caCerts } : {}) });
  // The caller stops waiting on abort; this closes the connection however the handshake ends.
  const onAbort = () => closeQuietly(tls);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    await tls.handshake();
    signal.throwIfAborted();
  } catch (err) {
    closeQuietly(tls);
    throw err;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  return tls;
};

/** A failure with a message that is safe to show (no secret, no internals). */
class DeliveryError extends Error {}
class TlsError extends Error {}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // already closed
  }
}

/** Rejects with the signal's reason as soon as it aborts, whatever `p` does. */
function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  p.catch(() => {}); // a loser's later rejection is expected, not unhandled
  if (signal.aborted) return Promise.reject(signal.reason);
  let onAbort: () => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
  });
  return Promise.race([p, aborted]).finally(() => signal.removeEventListener("abort", onAbort));
}

/** The headers of the request, in order; throws DeliveryError on an invalid custom header. */
async function requestHeaders(
  d: WebhookDelivery,
  url: URL,
  bodyLength: number,
  userAgent: string,
): Promise<[string, string][]> {
  if (!isHeaderValue(d.messageId) || d.messageId === "") {
    throw new DeliveryError("invalid message id");
  }
  let signature: string;
  try {
    signature = await signWebhook(d.secret, d.messageId, d.timestamp, d.body);
  } catch {
    throw new DeliveryError("invalid webhook secret");
  }
  const out: [string, string][] = [
    ["Host", url.host],
    ["User-Agent", userAgent],
    ["Content-Type", "application/json"],
    ["Content-Length", String(bodyLength)],
    ["Connection", "close"],
  ];
  for (const [name, value] of Object.entries(d.headers ?? {})) {
    if (!isHeaderName(name) || !isHeaderValue(String(value))) {
      throw new DeliveryError("invalid custom header");
    }
    if (!isDeliveryHeader(name)) out.push([name, String(value)]);
  }
  out.push(["webhook-id", d.messageId]);
  out.push(["webhook-timestamp", String(unixSeconds(d.timestamp))]);
  out.push(["webhook-signature", signature]);
  return out;
}

type Addresses = { ok: string[] } | { refused: string } | { failed: string };

/** The addresses to connect to: the literal itself, or every resolved one, all checked. */
async function targetAddresses(
  host: string,
  opts: DeliverOptions,
  signal: AbortSignal,
): Promise<Addresses> {
  let addresses: string[];
  if (isIpLiteral(host)) addresses = [host];
  else if (opts.allowPrivate && host === "localhost") addresses = ["127.0.0.1", "::1"];
  else {
    try {
      addresses = await raceAbort(opts.resolve(host, signal), signal);
    } catch (err) {
      if (signal.aborted) throw err;
      return { failed: "DNS lookup failed" };
    }
    if (addresses.length === 0) return { failed: "host name did not resolve" };
  }
  for (const address of addresses) {
    // Even when private targets are allowed, only addresses reach Deno.connect: never a name.
    if (!isIpLiteral(address) || address.includes("%")) {
      return { refused: "host name resolved to something that is not an IP address" };
    }
    if (!opts.allowPrivate && !isAllowedAddress(address)) {
      return {
        refused: "host name resolves to a private, loopback or otherwise non-public address",
      };
    }
  }
  return { ok: addresses.map((a) => a.replace(/^\[|\]$/g, "")) };
}

function errorMessage(err: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `timed out after ${timeoutMs} ms`;
  if (err instanceof DeliveryError) return err.message;
  if (err instanceof TlsError) return "TLS handshake failed";
  if (err instanceof HttpProtocolError) return "invalid HTTP response";
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (err instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (err instanceof Deno.errors.ConnectionAborted) return "connection aborted";
  if (err instanceof DOMException && err.name === "AbortError") return "cancelled";
  return "connection failed";
}

/** Connects to the first address that accepts, upgrading to TLS for https. */
async function open(
  addresses: string[],
  url: URL,
  opts: DeliverOptions,
  signal: AbortSignal,
  track: (c: Deno.Conn) => void,
): Promise<Deno.Conn> {
  const connect = opts.connect ?? defaultConnect;
  const port = targetPort(url);
  let conn: Deno.TcpConn | undefined;
  let lastError: unknown;
  for (const hostname of addresses) {
    signal.throwIfAborted();
    try {
      conn = await raceAbort(connect({ hostname, port, signal }), signal);
      break;
    } catch (err) {
      if (signal.aborted) throw err;
      lastError = err;
    }
  }
  if (conn === undefined) throw lastError;
  track(conn);
  if (url.protocol !== "https:") return conn;
  const startTls = opts.startTls ?? defaultStartTls;
  try {
    const tls = await raceAbort(
      startTls(conn, { hostname: targetHost(url), caCerts: opts.caCerts, signal }),
      signal,
    );
    track(tls);
    return tls;
  } catch (err) {
    if (signal.aborted) throw err;
    throw new TlsError("TLS handshake failed");
  }
}

/** POSTs a signed webhook to `d.url`. Never throws: every problem is an outcome. */
export async function deliverWebhook(
  d: WebhookDelivery,
  opts: DeliverOptions,
): Promise<DeliveryOutcome> {
  const started = performance.now();
  const elapsed = () => Math.max(0, Math.round(performance.now() - started));
  const invalid = validateWebhookUrl(d.url, { allowPrivate: opts.allowPrivate });
  if (invalid !== null) return { kind: "refused", reason: invalid };
  const url = new URL(d.url);
  const timeoutMs = Math.min(Math.max(Math.floor(d.timeoutMs) || 1, 1), MAX_DELIVERY_TIMEOUT_MS);
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  let conn: Deno.Conn | undefined;
  const onAbort = () => closeQuietly(conn);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    const body = new TextEncoder().encode(d.body);
    const headers = await requestHeaders(d, url, body.length, opts.userAgent ?? DEFAULT_USER_AGENT);
    const request = encodeRequest({
      method: "POST",
      target: url.pathname + url.search,
      headers,
      body,
    });
    const addresses = await targetAddresses(targetHost(url), opts, signal);
    if ("refused" in addresses) return { kind: "refused", reason: addresses.refused };
    if ("failed" in addresses) {
      return { kind: "failed", error: addresses.failed, responseTimeMs: elapsed() };
    }
    const c = await open(addresses.ok, url, opts, signal, (next) => conn = next);
    await raceAbort(writeAll(c, request), signal);
    const response = await raceAbort(readResponse(c, DEFAULT_LIMITS), signal);
    const text = new TextDecoder().decode(response.body);
    return {
      kind: "delivered",
      statusCode: response.statusCode,
      responseTimeMs: elapsed(),
      responseBody: text,
    };
  } catch (err) {
    const error = errorMessage(err, timeout.aborted, timeoutMs);
    return { kind: "failed", error, responseTimeMs: elapsed() };
  } finally {
    signal.removeEventListener("abort", onAbort);
    closeQuietly(conn);
  }
}
