/**
 * The scenarios proxy_nginx_test.ts and proxy_caddy_test.ts both run through their proxy, written
 * once: what differs between the proxies (the headers an allowed answer shows the client, how a
 * refusal's body reaches it, which pair of original-request headers is the other family's) is
 * passed in as `ProxyChecks`.
 */
import assert from "node:assert/strict";
import { JSON_CONTENT_TYPE } from "../../lib/errors.ts";
import { seed401Problems, SEED_WWW_AUTHENTICATE } from "../_hardening.ts";
import {
  type Answer,
  askDirectly,
  echoed,
  failsClosed,
  FORGED,
  identitySeen,
  type ProxyKind,
  revokedWithinASecond,
  seedKey,
  send,
  skipProxyTest,
  type Stack,
  startStack,
} from "./_proxies.ts";

type SeededKey = Awaited<ReturnType<typeof seedKey>>;
type Check = (s: Stack, answer: Answer, key: SeededKey) => void | Promise<void>;

export type ProxyChecks = {
  kind: ProxyKind;
  /** The proxy's binary and its name in the test's title. */
  bin: string;
  title: string;
  /** The headers of an allowed answer, as the client sees them. */
  allowedHeaders: (r: Answer) => void;
  /** The 403 bodies: a missing scope (POST /orders/42), a dot segment, a made-up address. */
  scopeBody: Check;
  dotsBody: Check;
  spoofBody: Check;
  /** The 429 body beyond its status, error and message (e.g. compared with the server's own). */
  rateLimitedBody?: (s: Stack, r: Answer, key: SeededKey, retryAfter: number) => Promise<void>;
  /** The other family's original-request pair a client sends itself, and its step's name. */
  otherFamily: { headers: Record<string, string>; step: string };
  /** The 429 step's name. */
  rateLimitedStep: string;
};

async function allowed(s: Stack, c: ProxyChecks) {
  const k = await seedKey(s.kv, { scopes: ["orders:read"] });
  const before = s.echo.count();
  const r = await send(`${s.proxyUrl}/orders/42?expand=items`, {
    headers: { Authorization: `Bearer ${k.key}`, ...FORGED },
  });
  assert.equal(r.status, 200, r.body);
  assert.equal(s.echo.count(), before + 1);
  const e = echoed(r);
  assert.equal(e.uri, "/orders/42?expand=items");
  // The identity is the auth server's; the client's forged values are gone.
  assert.deepEqual(identitySeen(e), {
    "x-auth-user-id": k.userId,
    "x-auth-key-id": k.keyId,
    "x-auth-key-name": "proxy-test",
    "x-auth-scopes": "orders:read",
    "x-auth-rule": "orders-read",
  });
  c.allowedHeaders(r);
  // A POST's body reaches the upstream; the auth server was asked about a POST.
  const w = await seedKey(s.kv, { scopes: ["orders:write"] });
  const p = await send(`${s.proxyUrl}/orders/42`, {
    method: "POST",
    headers: { Authorization: `Bearer ${w.key}`, "Content-Type": "application/json" },
    body: '{"qty":1}',
  });
  assert.equal(p.status, 200, p.body);
  assert.equal(echoed(p).method, "POST");
  assert.equal(echoed(p).headers["content-length"], "9");
  assert.equal(identitySeen(echoed(p))["x-auth-rule"], "orders-write");
  // HEAD, on a rule for any method and on a "GET" rule (RFC 9110: GET without the body), is
  // answered bodiless.
  const before2 = s.echo.count();
  for (const path of ["/v1/items", "/orders/42"]) {
    const h = await send(`${s.proxyUrl}${path}`, {
      method: "HEAD",
      headers: { Authorization: `Bearer ${k.key}` },
    });
    assert.equal(h.status, 200, path);
    assert.equal(h.body, "");
  }
  assert.equal(s.echo.count(), before2 + 2);
}

async function unauthorized(s: Stack) {
  const before = s.echo.count();
  const direct = await askDirectly(s, "GET", "/orders/1");
  assert.deepEqual(seed401Problems(direct), []);
  for (const authorization of [undefined, "Bearer inb_wrong", "Basic Zm9vOmJhcg=="]) {
    const r = await send(`${s.proxyUrl}/orders/1`, {
      headers: authorization ? { Authorization: authorization, ...FORGED } : FORGED,
    });
    assert.deepEqual(seed401Problems(r), [], `${authorization}: ${r.body}`);
    assert.equal(r.body, direct.body);
    assert.equal(r.headers.get("WWW-Authenticate"), SEED_WWW_AUTHENTICATE);
  }
  assert.equal(s.echo.count(), before, "no refused request reaches the upstream");
}

async function forbidden(s: Stack, c: ProxyChecks) {
  const k = await seedKey(s.kv, { scopes: ["orders:read"] });
  const before = s.echo.count();
  // The scope: orders:write is needed to POST.
  const scope = await send(`${s.proxyUrl}/orders/42`, {
    method: "POST",
    headers: { Authorization: `Bearer ${k.key}` },
    body: "{}",
  });
  assert.equal(scope.status, 403, scope.body);
  assert.match(scope.headers.get("WWW-Authenticate") ?? "", /error="insufficient_scope"/);
  assert.equal(scope.headers.get("Content-Type"), JSON_CONTENT_TYPE);
  await c.scopeBody(s, scope, k);
  // Default deny: no rule matches /admin.
  const deny = await send(`${s.proxyUrl}/admin/users`, {
    headers: { Authorization: `Bearer ${k.key}` },
  });
  assert.equal(deny.status, 403, deny.body);
  assert.equal(JSON.parse(deny.body).error, "Forbidden");
  assert.equal(JSON.parse(deny.body).code, "NO_MATCHING_RULE");
  // A dot segment does not escape /orders/*.
  const dots = await send(`${s.proxyUrl}/orders/%2e%2e/admin`, {
    headers: { Authorization: `Bearer ${k.key}` },
  });
  assert.equal(dots.status, 403, dots.body);
  await c.dotsBody(s, dots, k);
  // An IP restriction is judged on the address the proxy saw, not on one the client claims.
  const ip = await seedKey(s.kv, { allowedIps: ["10.0.0.0/8"] });
  const spoof = await send(`${s.proxyUrl}/v1/items`, {
    headers: {
      Authorization: `Bearer ${ip.key}`,
      "X-Forwarded-For": "10.1.2.3",
      Forwarded: "for=10.1.2.3",
    },
  });
  assert.equal(spoof.status, 403, spoof.body);
  await c.spoofBody(s, spoof, ip);
  assert.equal(s.echo.count(), before);
}

/** A client sending the other family's pair itself: the proxy clears it, so it is no conflict. */
async function otherFamily(s: Stack, c: ProxyChecks) {
  const k = await seedKey(s.kv, { scopes: ["orders:read"] });
  const r = await send(`${s.proxyUrl}/orders/7`, {
    headers: { Authorization: `Bearer ${k.key}`, ...c.otherFamily.headers },
  });
  assert.equal(r.status, 200, r.body);
  assert.equal(echoed(r).headers["x-auth-rule"], "orders-read");
}

async function publicRule(s: Stack) {
  const r = await send(`${s.proxyUrl}/health`, { headers: FORGED });
  assert.equal(r.status, 200, r.body);
  const { "x-auth-rule": rule, ...identity } = identitySeen(echoed(r));
  assert.deepEqual(identity, {}, "no identity header reaches the upstream");
  // The rule's name may be passed on (the server sends it); never the client's forged one.
  assert.ok(rule === undefined || rule === "health", `X-Auth-Rule ${rule}`);
}

async function rateLimited(s: Stack, c: ProxyChecks) {
  const k = await seedKey(s.kv, { rateLimit: { max: 2, windowMs: 60_000 } });
  const auth = { headers: { Authorization: `Bearer ${k.key}` } };
  const before = s.echo.count();
  const statuses = [];
  for (let i = 0; i < 3; i++) statuses.push((await send(`${s.proxyUrl}/v1/things`, auth)).status);
  assert.deepEqual(statuses, [200, 200, 429]);
  const r = await send(`${s.proxyUrl}/v1/things`, auth);
  assert.equal(r.status, 429, r.body);
  const retryAfter = Number(r.headers.get("Retry-After"));
  assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${r.headers.get("Retry-After")}`);
  assert.equal(r.headers.get("X-RateLimit-Remaining"), "0");
  assert.equal(r.headers.get("Content-Type"), JSON_CONTENT_TYPE);
  const body = JSON.parse(r.body);
  assert.equal(body.statusCode, 429);
  assert.equal(body.error, "Too Many Requests");
  await c.rateLimitedBody?.(s, r, k, retryAfter);
  assert.equal(
    body.message,
    `Rate limit exceeded. Maximum 2 requests per 60 seconds. Retry after ${retryAfter} seconds.`,
  );
  assert.equal(s.echo.count(), before + 2);
}

function steps(c: ProxyChecks): [string, (s: Stack) => Promise<void>][] {
  return [
    ["allowed: the upstream gets the identity, forged headers replaced", (s) => allowed(s, c)],
    ["401: the seed's body and WWW-Authenticate reach the client", unauthorized],
    ["403: a missing scope, default deny, an address the client made up", (s) => forbidden(s, c)],
    ["a public rule: no identity headers upstream, forged ones stripped", publicRule],
    [c.otherFamily.step, (s) => otherFamily(s, c)],
    [c.rateLimitedStep, (s) => rateLimited(s, c)],
    ["a deleted key is refused through the proxy within a second", revokedWithinASecond],
    // Last: it stops the store.
    ["503 reaches the client when the store is down (fail closed)", failsClosed],
  ];
}

/** The proxy's test: the whole stack started once, every scenario a step, logs on a failure. */
export function proxyTest(c: ProxyChecks): void {
  Deno.test({
    name: `forward auth through ${c.title}, configured as docs/forward-auth.md shows`,
    ignore: skipProxyTest(c.bin, `forward auth through ${c.title}`),
    sanitizeResources: false,
    sanitizeOps: false,
  }, async (t) => {
    const s = await startStack(c.kind);
    try {
      let failed = false;
      for (const [name, fn] of steps(c)) failed = !(await t.step(name, () => fn(s))) || failed;
      if (failed) console.log(await s.logs());
    } finally {
      await s.close();
    }
  });
}
