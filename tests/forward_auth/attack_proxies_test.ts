/**
 * Attacks through the documented proxy configurations (docs/forward-auth.md, run by
 * tests/forward_auth/_proxies.ts: Debian's nginx and Caddy on 127.0.0.1, the real server, an echo
 * upstream), by a client of the protected API. Requests are written on a raw socket so that the
 * request target reaches the proxy as typed (fetch would resolve `..` and `//` itself).
 *
 * Defects (the tests named "attack: …" fail now):
 * - Caddy passes the client's query string to the auth request, so `?rule=health` picks the
 *   public rule for any path: no key needed for `/orders/1`;
 * - Caddy passes `X_Auth_User_Id` (underscores) to the upstream, which CGI/WSGI/PHP/Rack upstreams
 *   read as X-Auth-User-Id (HTTP_X_AUTH_USER_ID): a forged identity;
 * - both proxies: the path tricks of attack_paths_test.ts reach the upstream under /orders/ on
 *   the public rule.
 * The "attack (defended)" tests are attacks that fail against the documented configurations.
 */
import assert from "node:assert/strict";
import {
  CADDY_BIN,
  type Echoed,
  NGINX_BIN,
  type ProxyKind,
  seedKey,
  skipProxyTest,
  type Stack,
  startStack,
} from "./_proxies.ts";

const ignoreNginx = skipProxyTest(NGINX_BIN, "forward-auth attacks through nginx");
const ignoreCaddy = skipProxyTest(CADDY_BIN, "forward-auth attacks through Caddy");

type Raw = { status: number; head: string; body: string };

/** One HTTP/1.1 request written as is on a socket to 127.0.0.1:`port`; the answer read whole. */
async function raw(
  port: number,
  target: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Raw> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let req = `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
  for (const [k, v] of Object.entries(headers)) req += `${k}: ${v}\r\n`;
  await conn.write(new TextEncoder().encode(req + "\r\n"));
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(65536);
  for (;;) {
    const n = await conn.read(buf).catch(() => null);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
  }
  conn.close();
  const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) all.set(c, (at += c.length) - c.length);
  const text = new TextDecoder().decode(all);
  const split = text.indexOf("\r\n\r\n");
  const head = split < 0 ? text : text.slice(0, split);
  return { status: Number(head.split(" ")[1]), head, body: split < 0 ? "" : text.slice(split + 4) };
}

/** The echo upstream's view, or null when the answer is not the upstream's. */
function upstream(r: Raw): Echoed | null {
  if (!/\r\nx-upstream: echo/i.test(r.head)) return null;
  return JSON.parse(r.body) as Echoed;
}

const portOf = (s: Stack) => Number(new URL(s.proxyUrl).port);

/** Runs `fn` on a fresh stack of `kind`, printing the logs when it throws. */
async function withStack(kind: ProxyKind, fn: (s: Stack) => Promise<void>): Promise<void> {
  const s = await startStack(kind);
  try {
    await fn(s);
  } catch (e) {
    console.log(await s.logs());
    throw e;
  } finally {
    await s.close();
  }
}

/** The identity headers the proxies set from the auth server's answer. */
const IDENTITY = new Set([
  "x-auth-user-id",
  "x-auth-key-id",
  "x-auth-key-name",
  "x-auth-scopes",
  "x-auth-rule",
]);

const TEST = { sanitizeResources: false, sanitizeOps: false };

Deno.test({
  ...TEST,
  name: "attack: Caddy passes the client's ?rule= to the auth server — /orders/1?rule=health " +
    "reaches the upstream with no key",
  ignore: ignoreCaddy,
  fn: () =>
    withStack("caddy", async (s) => {
      const r = await raw(portOf(s), "/orders/1?rule=health");
      const seen = upstream(r);
      assert.equal(
        seen,
        null,
        `the upstream served ${seen?.uri} under rule ${seen?.headers["x-auth-rule"]} ` +
          `(status ${r.status}) without a credential`,
      );
      assert.equal(r.status, 401);
    }),
});

Deno.test({
  ...TEST,
  name: "attack: Caddy passes X_Auth_User_Id (underscores) to the upstream — a forged identity " +
    "for CGI/WSGI/PHP upstreams",
  ignore: ignoreCaddy,
  fn: () =>
    withStack("caddy", async (s) => {
      const forged = {
        "X_Auth_User_Id": "usr_forged",
        "X-Auth_Key-Id": "key_forged",
        "X-Auth-Key_Name": "forged",
        "X_Auth_Scopes": "orders:write",
        "X_Auth_Rule": "forged",
      };
      for (const target of ["/health", "/orders/1"]) {
        const k = await seedKey(s.kv, { scopes: ["orders:read"] });
        const r = await raw(portOf(s), target, { Authorization: `Bearer ${k.key}`, ...forged });
        const seen = upstream(r);
        assert.ok(seen, `${target}: ${r.status} ${r.body}`);
        // What a CGI-style upstream reads: names upper-cased with "-" and "_" the same.
        const smuggled = Object.keys(seen.headers).filter((h) =>
          h.includes("_") && IDENTITY.has(h.replaceAll("_", "-").toLowerCase())
        );
        assert.deepEqual(smuggled, [], `${target}: ${JSON.stringify(seen.headers)}`);
      }
    }),
});

/** The path tricks of attack_paths_test.ts, through a proxy, without a key. */
async function pathBypass(s: Stack, target: string): Promise<void> {
  const r = await raw(portOf(s), target);
  const seen = upstream(r);
  if (seen === null) return; // refused (or rejected by the proxy): defended
  // WHATWG's view of the raw target, as a Deno/Hono or Go upstream routes it.
  const path = new URL(target, "http://upstream.invalid").pathname;
  assert.ok(
    !path.startsWith("/orders/"),
    `${target}: the upstream served ${path} under rule "${seen.headers["x-auth-rule"]}" ` +
      "without a credential",
  );
}

for (const kind of ["nginx", "caddy"] as const) {
  Deno.test({
    ...TEST,
    name: `attack: through ${kind}, /orders/x//../../health and /orders/x%2F..%2F..%2Fhealth ` +
      "reach /orders/ on the public rule",
    ignore: kind === "nginx" ? ignoreNginx : ignoreCaddy,
    fn: (t) =>
      withStack(kind, async (s) => {
        for (const target of ["/orders/x//../../health", "/orders/x%2F..%2F..%2Fhealth"]) {
          await t.step(target, () => pathBypass(s, target));
        }
      }),
  });
}

/** Attacks that fail against both documented configurations. */
async function defended(s: Stack, t: Deno.TestContext): Promise<void> {
  const port = portOf(s);
  await t.step(
    "a forged X-Forwarded-For, X-Real-IP or Forwarded passes no IP restriction",
    async () => {
      const k = await seedKey(s.kv, { allowedIps: ["203.0.113.0/24"] });
      for (
        const h of <Record<string, string>[]> [
          { "X-Forwarded-For": "203.0.113.9" },
          { "X-Forwarded-For": "203.0.113.9, 203.0.113.9" },
          { "X-Real-IP": "203.0.113.9" },
          { Forwarded: "for=203.0.113.9" },
        ]
      ) {
        const r = await raw(port, "/v1/x", { Authorization: `Bearer ${k.key}`, ...h });
        assert.equal(r.status, 403, `${JSON.stringify(h)}: ${r.body}`);
        assert.equal(upstream(r), null);
      }
    },
  );
  await t.step("the client's own forwarding headers pick no laxer rule", async () => {
    for (
      const h of <Record<string, string>[]> [
        { "X-Forwarded-Uri": "/health", "X-Forwarded-Method": "GET" },
        { "X-Original-URI": "/health", "X-Original-Method": "GET" },
        { "X-Original-URI": "/health" },
        { "X-Forwarded-Uri": "/health" },
      ]
    ) {
      const r = await raw(port, "/orders/1", h);
      assert.ok(r.status === 401 || r.status === 403, `${JSON.stringify(h)}: ${r.status}`);
      assert.equal(upstream(r), null);
    }
  });
  await t.step("case variants of forged identity headers are replaced or removed", async () => {
    const r = await raw(port, "/health", {
      "x-auth-user-id": "usr_forged",
      "X-AUTH-KEY-ID": "key_forged",
      "X-Auth-Scopes": "orders:write",
    });
    const seen = upstream(r);
    assert.ok(seen, r.body);
    for (const h of ["x-auth-user-id", "x-auth-key-id", "x-auth-scopes"]) {
      assert.equal(seen.headers[h], undefined, h);
    }
  });
  await t.step("Basic auth, a Bearer in the query, a service-token shape: the 401", async () => {
    const k = await seedKey(s.kv, { scopes: ["orders:read"] });
    for (
      const [target, h] of [
        ["/orders/1", { Authorization: `Basic ${btoa(`x:${k.key}`)}` }],
        [`/orders/1?access_token=${k.key}`, {}],
        ["/orders/1", { Authorization: `Bearer inbsvc_${"a".repeat(43)}` }],
      ] as [string, Record<string, string>][]
    ) {
      const r = await raw(port, target, h);
      assert.equal(r.status, 401, `${target} ${JSON.stringify(h)}`);
    }
  });
  await t.step("a method override header does not make a POST pass as a GET", async () => {
    const o = await raw(port, "/health", { "X-HTTP-Method-Override": "GET" }, "POST");
    assert.equal(o.status, 403);
    assert.equal(upstream(o), null);
  });
}

for (const kind of ["nginx", "caddy"] as const) {
  Deno.test({
    ...TEST,
    name: `attack (defended): through ${kind}, forged forwarding and identity headers`,
    ignore: kind === "nginx" ? ignoreNginx : ignoreCaddy,
    fn: (t) => withStack(kind, (s) => defended(s, t)),
  });
}

Deno.test({
  ...TEST,
  name: "attack (defended): through nginx, ?rule= and underscore headers never reach the server",
  ignore: ignoreNginx,
  fn: () =>
    withStack("nginx", async (s) => {
      const r = await raw(portOf(s), "/orders/1?rule=health");
      assert.equal(r.status, 401);
      assert.equal(upstream(r), null);
      const u = await raw(portOf(s), "/health", { "X_Auth_User_Id": "usr_forged" });
      const seen = upstream(u);
      assert.ok(seen, u.body);
      assert.deepEqual(Object.keys(seen.headers).filter((h) => h.includes("_")), []);
    }),
});
