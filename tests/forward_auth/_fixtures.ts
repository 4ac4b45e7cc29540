/** Fixtures of the forward-auth and verify tests: an app with a rules file, and requests to it. */
import { type App, createApp } from "../../app.ts";
import { resetDenialGate } from "../../auth/api_keys/policy.ts";
import { type ForwardAuthRules, parseForwardAuthRules } from "../../auth/forward_auth/rules.ts";
import { issueServiceToken } from "../../auth/service_tokens.ts";
import { fakeClock } from "../../lib/clock.ts";
import { type Config, testConfig } from "../../lib/config.ts";
import { BASE, fromIp } from "../sessions_helpers.ts";

/** The issue's example, plus a cookie rule and a multi-method rule. */
export const RULES_JSON = {
  scopes: ["orders:read", "orders:write"],
  rules: [
    { name: "orders-read", method: "GET", path: "/orders/*", scope: "orders:read" },
    { name: "orders-write", methods: ["POST", "PUT"], path: "/orders/*", scope: "orders:write" },
    { name: "health", method: "GET", path: "/health", public: true },
    { name: "portal", methods: ["GET", "POST"], path: "/portal/*", cookie: true },
    { name: "v1", method: "*", path: "/v1/*" },
  ],
};

export const RULES: ForwardAuthRules = parseForwardAuthRules(RULES_JSON, "test-rules.json");

export type FwdApp = {
  app: App;
  kv: Deno.Kv;
  clock: ReturnType<typeof fakeClock>;
  close(): Promise<void>;
} & AsyncDisposable;

export async function openFwdApp(
  opts: { config?: Partial<Config>; kv?: Deno.Kv; rules?: ForwardAuthRules } = {},
): Promise<FwdApp> {
  resetDenialGate();
  const kv = opts.kv ?? await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const app = createApp({
    kv,
    clock,
    config: testConfig(opts.config),
    forwardAuth: opts.rules ?? RULES,
  });
  const close = async () => {
    await app.idle();
    kv.close();
  };
  return { app, kv, clock, close, [Symbol.asyncDispose]: close };
}

/** `GET /api/auth/forward` as a proxy asks it (Traefik/Caddy headers unless `nginx`). */
export async function forward(
  app: App,
  opts: {
    key?: string;
    method?: string;
    uri?: string;
    query?: string;
    headers?: Record<string, string>;
    nginx?: boolean;
    peer?: string;
    head?: boolean;
  } = {},
): Promise<{ status: number; headers: Headers; text: string }> {
  const headers = new Headers(opts.headers);
  if (opts.key) headers.set("Authorization", `Bearer ${opts.key}`);
  if (opts.uri !== undefined) {
    headers.set(opts.nginx ? "X-Original-URI" : "X-Forwarded-Uri", opts.uri);
    headers.set(opts.nginx ? "X-Original-Method" : "X-Forwarded-Method", opts.method ?? "GET");
  }
  const query = opts.query ? `?${opts.query}` : "";
  const res = await app.request(
    `${BASE}/api/auth/forward${query}`,
    { method: opts.head ? "HEAD" : "GET", headers },
    fromIp(opts.peer ?? "127.0.0.1"),
  );
  return { status: res.status, headers: res.headers, text: await res.text() };
}

/** A service token written straight to the store. */
export async function serviceToken(kv: Deno.Kv, mayAssertIp = false): Promise<string> {
  return (await issueServiceToken(kv, Date.now, { name: "orders service", mayAssertIp })).token;
}

/** `POST /api/e2/keys/verify` with a service token. */
export async function verify(
  app: App,
  token: string | null,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const headers = new Headers({ "Content-Type": "application/json" });
  if (token !== null) headers.set("Authorization", `Bearer ${token}`);
  const res = await app.request(
    `${BASE}/api/e2/keys/verify`,
    { method: "POST", headers, body: JSON.stringify(body) },
    fromIp("127.0.0.1"),
  );
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
}
