/**
 * Real reverse proxies for the forward-auth tests and the benchmark (issue 25): Debian's nginx and
 * Caddy, started as the current user on 127.0.0.1 with a generated configuration in a temporary
 * folder, in front of an echo upstream (answers with the method, URI and headers it received, as
 * JSON). The proxy configurations are the fenced blocks of docs/forward-auth.md, read from the page
 * with only the ports replaced, so the page shows exactly what is tested.
 *
 * Placeholders in the page: `127.0.0.1:8000` the auth server, `127.0.0.1:9000` the upstream, and the
 * listener (`listen 8080;` for nginx, `:8080 {` for Caddy).
 */

import assert from "node:assert/strict";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { systemClock } from "../../lib/clock.ts";
import type { KeyGrant } from "../../store/api_keys.ts";
import { createUser } from "../../store/accounts/users.ts";
import { tenantStore } from "../../store/tenant.ts";
import { type ServerProcess, startServer } from "../_helpers.ts";
import { seed503Problems } from "../_hardening.ts";
import { startKvConnectServer } from "../kv_connect/server.ts";

const ROOT = new URL("../../", import.meta.url);
export const DOC_PATH = new URL("docs/forward-auth.md", ROOT);
export const NGINX_BIN = "/usr/sbin/nginx";
export const CADDY_BIN = "/usr/bin/caddy";

/** Whether an executable exists at `path`. */
export async function hasBinary(path: string): Promise<boolean> {
  try {
    const info = await Deno.stat(path);
    return info.isFile;
  } catch {
    return false;
  }
}

/** A port free on 127.0.0.1 right now (the kernel's pick; the caller binds it next). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `port` on 127.0.0.1 until it accepts a connection; throws with `why()` when `failed()`
 * says the process is gone, or after `attempts` polls 50 ms apart.
 */
export async function waitForPort(
  port: number,
  failed: () => boolean,
  why: () => string,
  attempts = 400,
): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (failed()) throw new Error(`process exited before listening on ${port}:\n${why()}`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await sleep(50);
    }
  }
  throw new Error(`nothing listening on 127.0.0.1:${port} after ${attempts} polls:\n${why()}`);
}

// --- The echo upstream ----------------------------------------------------------------------

/** What the echo upstream answers: the request as it arrived. */
export type Echoed = { method: string; uri: string; headers: Record<string, string> };

export type Echo = { port: number; count(): number; close(): Promise<void> };

/** An upstream on 127.0.0.1 answering every request with `Echoed` as JSON (`HEAD`: no body). */
export function startEcho(): Promise<Echo> {
  let count = 0;
  const { promise, resolve } = Promise.withResolvers<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: (a) => resolve(a.port) },
    async (req) => {
      count++;
      await req.body?.cancel();
      const url = new URL(req.url);
      const echoed: Echoed = {
        method: req.method,
        uri: url.pathname + url.search,
        headers: Object.fromEntries(req.headers),
      };
      return Response.json(echoed, { headers: { "X-Upstream": "echo" } });
    },
  );
  return promise.then((port) => ({
    port,
    count: () => count,
    close: () => server.shutdown(),
  }));
}

// --- The configuration blocks of docs/forward-auth.md ----------------------------------------

/** The first ```<lang> block under the `## <heading>` section of docs/forward-auth.md. */
export async function docBlock(heading: string, lang: string): Promise<string> {
  const text = await Deno.readTextFile(DOC_PATH);
  const start = text.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`docs/forward-auth.md has no "## ${heading}" section`);
  const next = text.indexOf("\n## ", start + 1);
  const section = text.slice(start, next < 0 ? undefined : next);
  const m = new RegExp("\\n```" + lang + "\\n([\\s\\S]*?)\\n```\\n").exec(section);
  if (!m) throw new Error(`"## ${heading}" in docs/forward-auth.md has no \`\`\`${lang} block`);
  return m[1] + "\n";
}

export type Ports = { auth: number; upstream: number; listen: number };

/** Replaces the auth server's and the upstream's placeholder addresses (each must occur). */
export function withPorts(block: string, ports: Ports): string {
  for (const placeholder of ["127.0.0.1:8000", "127.0.0.1:9000"]) {
    if (!block.includes(placeholder)) throw new Error(`the block has no ${placeholder}`);
  }
  return block
    .replaceAll("127.0.0.1:8000", `127.0.0.1:${ports.auth}`)
    .replaceAll("127.0.0.1:9000", `127.0.0.1:${ports.upstream}`);
}

/** Replaces the one occurrence of `from` (the listener placeholder) with `to`. */
function replaceOnce(block: string, from: string, to: string): string {
  const i = block.indexOf(from);
  if (i < 0 || block.indexOf(from, i + 1) >= 0) {
    throw new Error(`the block must contain "${from}" exactly once`);
  }
  return block.slice(0, i) + to + block.slice(i + from.length);
}

/** The nginx `server { }` block of the page, ports in place. */
export async function nginxServerBlock(ports: Ports): Promise<string> {
  const block = withPorts(await docBlock("nginx", "nginx"), ports);
  return replaceOnce(block, "listen 8080;", `listen 127.0.0.1:${ports.listen};`);
}

/** The Caddy site block of the page, ports in place. */
export async function caddySiteBlock(ports: Ports): Promise<string> {
  const block = withPorts(await docBlock("Caddy", "caddyfile"), ports);
  return replaceOnce(block, ":8080 {", `http://127.0.0.1:${ports.listen} {\n\tbind 127.0.0.1`);
}

// --- Processes ----------------------------------------------------------------------------

export type ProxyProcess = {
  port: number;
  dir: string;
  /** What the process wrote to stdout and stderr (and nginx's error log). */
  output(): Promise<string>;
  stop(): Promise<void>;
};

type Spawned = { child: Deno.ChildProcess; text: () => string; exited: () => boolean };

function spawnLogged(bin: string, args: string[], env: Record<string, string>): Spawned {
  const child = new Deno.Command(bin, { args, env, stdout: "piped", stderr: "piped" }).spawn();
  let text = "";
  let exited = false;
  const decoder = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > 200_000) text = text.slice(-50_000);
    }
  };
  pump(child.stdout);
  pump(child.stderr);
  child.status.then(() => exited = true);
  return { child, text: () => text, exited: () => exited };
}

/** Stops the process once with `signal` and removes its `dir` (later calls do nothing). */
function stopper(p: Spawned, signal: Deno.Signal, dir: string): () => Promise<void> {
  let stopped = false;
  return async () => {
    if (stopped) return;
    stopped = true;
    try {
      p.child.kill(signal);
    } catch { /* already gone */ }
    await p.child.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
}

/**
 * `proxy` once its port listens; otherwise it is stopped and the error thrown, with its output
 * appended when `withLog`.
 */
async function listening(proxy: ProxyProcess, p: Spawned, withLog: boolean) {
  try {
    await waitForPort(proxy.port, p.exited, p.text);
  } catch (e) {
    const log = withLog ? await proxy.output() : "";
    await proxy.stop();
    throw withLog ? new Error(`${(e as Error).message}\n${log}`) : e;
  }
  return proxy;
}

async function isRoot(): Promise<boolean> {
  const out = await new Deno.Command("id", { args: ["-u"], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).trim() === "0";
}

/** The whole nginx.conf around a `server { }` block: everything inside `dir`. */
export async function nginxConf(dir: string, serverBlock: string): Promise<string> {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`).join("\n");
  return [
    (await isRoot()) ? "user root;" : "",
    "worker_processes 1;",
    `error_log ${dir}/error.log warn;`,
    `pid ${dir}/nginx.pid;`,
    "events { worker_connections 1024; }",
    "http {",
    "  access_log off;",
    temp,
    serverBlock,
    "}",
    "",
  ].join("\n");
}

/** Starts nginx with `serverBlock` (its `listen` on 127.0.0.1:`port`); waits until it listens. */
export async function startNginx(serverBlock: string, port: number): Promise<ProxyProcess> {
  const dir = await Deno.makeTempDir({ prefix: "fa-nginx-" });
  await Deno.writeTextFile(`${dir}/nginx.conf`, await nginxConf(dir, serverBlock));
  const p = spawnLogged(NGINX_BIN, [
    "-p",
    dir,
    "-e",
    `${dir}/error.log`,
    "-c",
    `${dir}/nginx.conf`,
    "-g",
    "daemon off;",
  ], {});
  const output = async () =>
    p.text() + (await Deno.readTextFile(`${dir}/error.log`).catch(() => ""));
  // SIGTERM: the master stops its workers.
  return await listening({ port, dir, output, stop: stopper(p, "SIGTERM", dir) }, p, true);
}

/** The whole Caddyfile: global options (no admin endpoint, no HTTPS, storage in `dir`), the site. */
export function caddyfile(dir: string, siteBlock: string): string {
  return [
    "{",
    "\tadmin off",
    "\tauto_https off",
    `\tstorage file_system ${dir}/storage`,
    "}",
    "",
    siteBlock,
  ].join("\n");
}

/** Starts Caddy with `siteBlock` (listening on 127.0.0.1:`port`); waits until it listens. */
export async function startCaddy(siteBlock: string, port: number): Promise<ProxyProcess> {
  const dir = await Deno.makeTempDir({ prefix: "fa-caddy-" });
  await Deno.writeTextFile(`${dir}/Caddyfile`, caddyfile(dir, siteBlock));
  const p = spawnLogged(
    CADDY_BIN,
    ["run", "--config", `${dir}/Caddyfile`, "--adapter", "caddyfile"],
    { HOME: dir, XDG_DATA_HOME: `${dir}/data`, XDG_CONFIG_HOME: `${dir}/config` },
  );
  const output = () => Promise.resolve(p.text());
  // SIGKILL: one process; a graceful stop waits for idle connections.
  return await listening({ port, dir, output, stop: stopper(p, "SIGKILL", dir) }, p, false);
}

// --- The whole chain: KV Connect store, auth server, echo upstream, proxy --------------------

/** The rules file of the proxy tests (the issue's example, plus a write rule). */
export const TEST_RULES = {
  scopes: ["orders:read", "orders:write"],
  rules: [
    { name: "orders-read", method: "GET", path: "/orders/*", scope: "orders:read" },
    { name: "orders-write", method: "POST", path: "/orders/*", scope: "orders:write" },
    { name: "health", method: "GET", path: "/health", public: true },
    { name: "v1", method: "*", path: "/v1/*" },
  ],
};

export type ProxyKind = "nginx" | "caddy";

export type Stack = {
  kind: ProxyKind;
  /** The proxy's origin, `http://127.0.0.1:<port>`. */
  proxyUrl: string;
  /** The auth server's own origin (to compare the proxy's answers with its own). */
  serverUrl: string;
  /** The store behind the server (the KV Connect backend's local KV): seed and delete keys. */
  kv: Deno.Kv;
  echo: Echo;
  proxy: ProxyProcess;
  server: ServerProcess;
  /** Stops the store's backend: the server's next store call fails (its 503). */
  breakStore(): Promise<void>;
  /** What the proxy and the server wrote, for a failing assertion's message. */
  logs(): Promise<string>;
  close(): Promise<void>;
};

const KV_TOKEN = "forward-auth-proxy-test-token";

async function startProxy(kind: ProxyKind, ports: Ports): Promise<ProxyProcess> {
  return kind === "nginx"
    ? await startNginx(await nginxServerBlock(ports), ports.listen)
    : await startCaddy(await caddySiteBlock(ports), ports.listen);
}

/**
 * Starts the store (a KV Connect test backend on 127.0.0.1), the real server (`main.ts` with the
 * start task's permissions, FORWARD_AUTH_RULES, TRUST_PROXY=127.0.0.1), the echo upstream and the
 * proxy with the page's configuration. Everything started is stopped again if a later part fails.
 */
export async function startStack(
  kind: ProxyKind,
  env: Record<string, string> = {},
  rules: unknown = TEST_RULES,
): Promise<Stack> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  };
  try {
    const kvServer = await startKvConnectServer({ path: ":memory:", token: KV_TOKEN });
    cleanups.push(() => kvServer.close());
    await Deno.mkdir("./data/test", { recursive: true });
    const rulesPath = `./data/test/forward-auth-${crypto.randomUUID()}.json`;
    await Deno.writeTextFile(rulesPath, JSON.stringify(rules));
    cleanups.push(() => Deno.remove(rulesPath));
    const server = await startServer({
      DENO_KV_PATH: kvServer.url,
      DENO_KV_ACCESS_TOKEN: KV_TOKEN,
      FORWARD_AUTH_RULES: rulesPath,
      TRUST_PROXY: "127.0.0.1",
      RATE_LIMIT_MAX: "50",
      ...env,
    }, { direct: true });
    cleanups.push(() => server.stop("SIGKILL"));
    const echo = await startEcho();
    cleanups.push(() => echo.close());
    const listen = freePort();
    const proxy = await startProxy(kind, { auth: server.port, upstream: echo.port, listen });
    cleanups.push(() => proxy.stop());
    return {
      kind,
      proxyUrl: `http://127.0.0.1:${listen}`,
      serverUrl: server.url,
      kv: kvServer.localKv,
      echo,
      proxy,
      server,
      breakStore: () => kvServer.close(),
      logs: async () => `--- ${kind}:\n${await proxy.output()}\n--- server:\n${server.output()}`,
      close: cleanup,
    };
  } catch (e) {
    await cleanup();
    throw e;
  }
}

/** An account (e-mail verified) and one key with `grant`, written straight to the store. */
export async function seedKey(
  kv: Deno.Kv,
  grant: Partial<KeyGrant> = {},
): Promise<{ userId: string; keyId: string; key: string }> {
  const now = Date.now();
  const user = await createUser(kv, {
    email: `fa-${crypto.randomUUID()}@example.com`,
    passwordHash: "not-used-by-these-tests",
    nowMs: now,
    emailVerified: true,
  });
  const { key, record } = await issueApiKey(tenantStore(kv, user.id, systemClock).apiKeys, {
    name: "proxy-test",
    nowMs: now,
    grant,
  });
  return { userId: user.id, keyId: record.id, key };
}

/** Deletes the key as its owner would (the revocation other processes poll for). */
export async function deleteKey(kv: Deno.Kv, userId: string, keyId: string): Promise<void> {
  await tenantStore(kv, userId, systemClock).apiKeys.delete(keyId);
}

/** A response read whole: status, headers and the body as text. */
export type Answer = { status: number; headers: Headers; body: string };

/** Sends one request (no redirects followed) and reads the whole answer. */
export async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, { redirect: "manual", ...init });
  return { status: res.status, headers: res.headers, body: await res.text() };
}

/** The echo upstream's view of a request that reached it. */
export function echoed(a: Answer): Echoed {
  return JSON.parse(a.body) as Echoed;
}

/**
 * True on a developer's machine without the proxy's binary: its test is then `ignore`d with a
 * notice. In CI (CI=true) a missing binary fails the test instead (.ci/run installs both).
 */
export function skipProxyTest(bin: string, what: string): boolean {
  let installed = false;
  try {
    installed = Deno.statSync(bin).isFile;
  } catch { /* not installed */ }
  const skip = !installed && Deno.env.get("CI") !== "true";
  if (skip) {
    console.log(
      `NOTICE: ${what} skipped: ${bin} is not installed (apt-get install -y nginx caddy). ` +
        "In CI (CI=true) a missing proxy fails instead.",
    );
  }
  return skip;
}

// --- The scenarios both proxy tests run --------------------------------------------------------

const IDENTITY_HEADERS = [
  "x-auth-user-id",
  "x-auth-key-id",
  "x-auth-key-name",
  "x-auth-scopes",
  "x-auth-rule",
];

/** The identity headers the upstream received (absent ones left out). */
export function identitySeen(e: Echoed): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of IDENTITY_HEADERS) if (e.headers[h] !== undefined) out[h] = e.headers[h];
  return out;
}

/** Forged identity headers a client might send. */
export const FORGED: Record<string, string> = {
  "X-Auth-User-Id": "usr_forged",
  "X-Auth-Key-Id": "key_forged",
  "X-Auth-Key-Name": "forged",
  "X-Auth-Scopes": "orders:read orders:write",
  "X-Auth-Rule": "forged",
};

/** The server's own answer to the forward-auth question, asked directly (no proxy). */
export function askDirectly(s: Stack, method: string, uri: string, authorization?: string) {
  const headers: Record<string, string> = { "X-Forwarded-Method": method, "X-Forwarded-Uri": uri };
  if (authorization) headers.Authorization = authorization;
  return send(`${s.serverUrl}/api/auth/forward`, { headers });
}

/**
 * Revocation through the proxy: the key works, is deleted in the store (as another instance
 * would), and the proxy is polled every 100 ms until it refuses; returns the polls it took and
 * the statuses seen (the last one 401 when it was refused within `maxPolls`).
 */
export async function pollUntilRevoked(
  s: Stack,
  key: { userId: string; keyId: string; key: string },
  path: string,
  maxPolls: number,
): Promise<{ polls: number; statuses: number[] }> {
  const auth = { Authorization: `Bearer ${key.key}` };
  const first = await send(`${s.proxyUrl}${path}`, { headers: auth });
  if (first.status !== 200) throw new Error(`the key did not work before: ${first.status}`);
  await deleteKey(s.kv, key.userId, key.keyId);
  const statuses: number[] = [];
  for (let polls = 1; polls <= maxPolls; polls++) {
    const r = await send(`${s.proxyUrl}${path}`, { headers: auth });
    statuses.push(r.status);
    if (r.status !== 200) return { polls, statuses };
    await sleep(100);
  }
  return { polls: maxPolls + 1, statuses };
}

/**
 * With the store stopped, asks through the proxy until an answer is not a 200 (a warm key may
 * still hold quota tokens for a request or two); returns that answer and the attempts taken.
 */
export async function askUntilRefused(
  s: Stack,
  key: string,
  path: string,
  maxAttempts: number,
): Promise<{ answer: Answer; attempts: number }> {
  let answer: Answer | undefined;
  for (let attempts = 1; attempts <= maxAttempts; attempts++) {
    answer = await send(`${s.proxyUrl}${path}`, { headers: { Authorization: `Bearer ${key}` } });
    if (answer.status !== 200) return { answer, attempts };
  }
  return { answer: answer!, attempts: maxAttempts + 1 };
}

/** A deleted key is refused through the proxy within a second (counted in polls, not time). */
export async function revokedWithinASecond(s: Stack): Promise<void> {
  const k = await seedKey(s.kv);
  const { polls, statuses } = await pollUntilRevoked(s, k, "/v1/items", 20);
  assert.equal(statuses.at(-1), 401, `statuses: ${statuses}`);
  // Polled every 100 ms: 10 polls are a second; 15 leave room for the requests' own time.
  assert.ok(polls <= 15, `refused only after ${polls} polls`);
}

/** With the store stopped, the seed's 503 (and Retry-After) reaches the client. Stops the store. */
export async function failsClosed(s: Stack): Promise<void> {
  const k = await seedKey(s.kv, { scopes: ["orders:read"] });
  const auth = { headers: { Authorization: `Bearer ${k.key}` } };
  assert.equal((await send(`${s.proxyUrl}/orders/1`, auth)).status, 200);
  const before = s.echo.count();
  await s.breakStore();
  const { answer, attempts } = await askUntilRefused(s, k.key, "/orders/1", 5);
  assert.ok(attempts <= 5, `still admitted after ${attempts - 1} requests`);
  assert.deepEqual(seed503Problems(answer), []);
  // A request admitted on a quota token this process already held is fine; nothing after it.
  assert.equal(s.echo.count(), before + attempts - 1);
}
