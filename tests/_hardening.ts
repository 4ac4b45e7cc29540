/**
 * Shared machinery for the hardening tests (issue 6): per-area tallies that print
 * `hardening/<area>: N cases tried, N passed`, the seed's exact 401/503 contracts as checks, a raw
 * TCP HTTP client for requests `fetch` refuses to send, and route discovery so that every protected
 * route is swept, including routes that land after these tests were written. (The real server:
 * `startServer(env, { direct: true })` in _helpers.ts, so that SIGKILL reaches the server.)
 */
import type { App } from "../app.ts";
import { SESSION_COOKIE_BASE, sessionManager } from "../auth/sessions/manager.ts";
import type { Clock } from "../lib/clock.ts";
import { DEFAULT_MAIL_SETTINGS, dnsPlan } from "../lib/dns.ts";
import { JSON_CONTENT_TYPE } from "../lib/errors.ts";
import type { DomainRecord } from "../store/domains/store.ts";
import { tenantStore } from "../store/tenant.ts";
import { SEED_401 } from "./sessions_helpers.ts";

export const SEED_WWW_AUTHENTICATE = 'Bearer realm="API", charset="UTF-8"';
export const SEED_503_BODY = {
  error: "Service Unavailable",
  message: "Rate limiting service is temporarily unavailable. Please try again later.",
  statusCode: 503,
} as const;

/** Counts cases per area and prints the summary line the issue asks for. */
export class Tally {
  tried = 0;
  passed = 0;
  readonly failures: string[] = [];
  constructor(readonly area: string) {}

  /** Records one case: `problems` empty means it passed. */
  record(name: string, problems: string[]): void {
    this.tried++;
    if (problems.length === 0) this.passed++;
    else this.failures.push(`${name}: ${problems.join("; ")}`);
  }

  summary(): string {
    return `hardening/${this.area}: ${this.tried} cases tried, ${this.passed} passed`;
  }

  /** Prints the summary (and the first failures), then returns them for an assertion. */
  report(): string[] {
    console.log(this.summary());
    for (const f of this.failures.slice(0, 30)) console.log(`  FAIL ${f}`);
    return this.failures;
  }
}

/** A response as both transports see it. */
export type Seen = { status: number; headers: Headers; body: string };

export async function seen(res: Response): Promise<Seen> {
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** Problems with a response that should be the seed's 401, byte for byte; [] when it is. */
export function seed401Problems(r: Seen, opts: { head?: boolean } = {}): string[] {
  const p: string[] = [];
  if (r.status !== 401) p.push(`status ${r.status}, want 401`);
  if (r.headers.get("WWW-Authenticate") !== SEED_WWW_AUTHENTICATE) {
    p.push(`WWW-Authenticate ${JSON.stringify(r.headers.get("WWW-Authenticate"))}`);
  }
  if (r.headers.get("Content-Type") !== JSON_CONTENT_TYPE) {
    p.push(`Content-Type ${JSON.stringify(r.headers.get("Content-Type"))}`);
  }
  if (!opts.head && r.body !== JSON.stringify(SEED_401)) {
    p.push(`body ${JSON.stringify(r.body.slice(0, 200))}`);
  }
  return p;
}

/** Problems with a response that should be the seed's 503 of an unavailable limiter. */
export function seed503Problems(r: Seen): string[] {
  const p: string[] = [];
  if (r.status !== 503) p.push(`status ${r.status}, want 503`);
  if (r.headers.get("Retry-After") !== "60") {
    p.push(`Retry-After ${JSON.stringify(r.headers.get("Retry-After"))}`);
  }
  if (r.headers.get("Content-Type") !== JSON_CONTENT_TYPE) {
    p.push(`Content-Type ${JSON.stringify(r.headers.get("Content-Type"))}`);
  }
  let body: unknown;
  try {
    body = JSON.parse(r.body);
  } catch {
    body = r.body;
  }
  const want = SEED_503_BODY;
  const b = body as Record<string, unknown>;
  if (b?.error !== want.error || b?.message !== want.message || b?.statusCode !== 503) {
    p.push(`body ${JSON.stringify(r.body.slice(0, 200))}`);
  }
  return p;
}

/**
 * Problems with an error response that must be JSON in the `{ error, message, statusCode }` shape
 * with the given status (any of `statuses`).
 */
export function errorShapeProblems(r: Seen, statuses: readonly number[]): string[] {
  const p: string[] = [];
  if (!statuses.includes(r.status)) p.push(`status ${r.status}, want ${statuses.join("|")}`);
  if (r.headers.get("Content-Type") !== JSON_CONTENT_TYPE) {
    p.push(`Content-Type ${JSON.stringify(r.headers.get("Content-Type"))}`);
  }
  try {
    const b = JSON.parse(r.body);
    if (typeof b.error !== "string" || !b.error) p.push("no error phrase");
    if (typeof b.message !== "string" || b.message.length < 5) p.push("no clear message");
    if (b.statusCode !== r.status) p.push(`statusCode ${b.statusCode} != ${r.status}`);
  } catch {
    p.push(`body is not JSON: ${JSON.stringify(r.body.slice(0, 120))}`);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over TCP, for what fetch and Headers refuse (two Authorization lines, raw bytes).

export type RawResponse = Seen & { raw: string };

/** Sends `head` (request line and header lines, without the final blank line) and `body`. */
export async function rawRequest(
  port: number,
  head: Uint8Array | string,
  body: Uint8Array = new Uint8Array(),
  timeoutMs = 10_000,
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* already closed */ }
  }, timeoutMs);
  try {
    const headBytes = typeof head === "string" ? new TextEncoder().encode(head) : head;
    const end = new TextEncoder().encode("\r\n\r\n");
    const all = new Uint8Array(headBytes.length + end.length + body.length);
    all.set(headBytes, 0);
    all.set(end, headBytes.length);
    all.set(body, headBytes.length + end.length);
    let written = 0;
    while (written < all.length) written += await conn.write(all.subarray(written));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(64 * 1024);
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buf);
      } catch {
        break;
      }
      if (n === null) break;
      chunks.push(buf.slice(0, n));
      if (complete(chunks)) break; // the server may keep the connection open
    }
    return parseRawResponse(new TextDecoder().decode(concat(chunks)));
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/** True once the bytes hold a whole response with a Content-Length body. */
function complete(chunks: Uint8Array[]): boolean {
  const text = new TextDecoder().decode(concat(chunks));
  const split = text.indexOf("\r\n\r\n");
  if (split < 0) return false;
  const m = /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, split));
  if (!m) return false;
  return new TextEncoder().encode(text.slice(split + 4)).length >= Number(m[1]);
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const bytes = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
  let o = 0;
  for (const c of chunks) {
    bytes.set(c, o);
    o += c.length;
  }
  return bytes;
}

function parseRawResponse(raw: string): RawResponse {
  const split = raw.indexOf("\r\n\r\n");
  const headText = split >= 0 ? raw.slice(0, split) : raw;
  let body = split >= 0 ? raw.slice(split + 4) : "";
  const [statusLine, ...lines] = headText.split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  const headers = new Headers();
  for (const line of lines) {
    const i = line.indexOf(":");
    if (i > 0) headers.append(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  if (headers.get("Transfer-Encoding")?.toLowerCase() === "chunked") body = dechunk(body);
  return { status, headers, body, raw };
}

function dechunk(text: string): string {
  let out = "";
  let rest = text;
  while (rest.length) {
    const eol = rest.indexOf("\r\n");
    const size = parseInt(rest.slice(0, eol), 16);
    if (!size) break;
    out += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Route discovery.

/**
 * Routes that answer without credentials on purpose. A new public route under /api/e2 must be
 * added here deliberately; otherwise the sweep in hardening_auth_test.ts fails, which is the point.
 */
export const PUBLIC_API_ROUTES: readonly RegExp[] = [
  /^\/api\/(e2|v2)\/openapi\.json$/,
  /^\/api\/(e2|v2)\/docs$/,
];

export type RouteProbe = { method: string; path: string; pattern: string };

/**
 * Every (method, concrete path) of the app's API routes (`/api/e2/*`, `/api/v2/*`), parameters
 * filled with an id that exists nowhere. Read from Hono's route table, so routes added later are
 * swept without editing the tests.
 */
export function protectedApiRoutes(app: App): RouteProbe[] {
  const out = new Map<string, RouteProbe>();
  for (const r of app.routes) {
    if (!/^\/api\/(e2|v2)(\/|$)/.test(r.path) || r.path.includes("*")) continue;
    if (PUBLIC_API_ROUTES.some((re) => re.test(r.path))) continue;
    const path = r.path.replace(
      /:([A-Za-z_]+)(\{[^}]*\})?/g,
      (_m, name) => `${name}_doesnotexist0`,
    );
    const methods = r.method === "ALL" ? ["GET", "POST", "PUT", "PATCH", "DELETE"] : [r.method];
    for (const method of methods) out.set(`${method} ${path}`, { method, path, pattern: r.path });
  }
  return [...out.values()].sort((a, b) =>
    `${a.path} ${a.method}`.localeCompare(`${b.path} ${b.method}`)
  );
}

// ---------------------------------------------------------------------------------------------
// Fixtures written straight to the store.

/**
 * A domain in `userId`'s account whose DNS check has passed (status verified, MX found), as if
 * its owner had published the records: PATCH needs a verified domain, and the real server's DNS
 * cannot verify a test name.
 */
export async function seedVerifiedDomain(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  name: string,
): Promise<DomainRecord> {
  const domains = tenantStore(kv, userId, clock).domains;
  const created = await domains.create({
    domain: name,
    ancestors: [],
    plan: ({ domain, token, inherited }) =>
      dnsPlan(domain, token, inherited, DEFAULT_MAIL_SETTINGS),
  });
  const { record } = await domains.applyCheck(
    created.id,
    created.dnsRecords.map((r) => ({ kind: r.kind, isVerified: true })),
  );
  if (record.status !== "verified") throw new Error(`${name} did not verify: ${record.status}`);
  return record;
}

/** A live session for `userId`, written straight to the store; returns its Cookie header value. */
export async function seedSession(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  ttlMs = 86_400_000,
): Promise<{ token: string; cookie: string; sessionId: string }> {
  const s = await sessionManager({ kv, clock, ttlMs }).start(userId);
  return { token: s.token, cookie: `${SESSION_COOKIE_BASE}=${s.token}`, sessionId: s.sessionId };
}
