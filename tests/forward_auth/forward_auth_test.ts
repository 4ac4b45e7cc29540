/**
 * `GET /api/auth/forward` in process (createApp on an in-memory KV): the contract the proxies
 * (tests/forward_auth/proxy_*) rely on — allowed with the identity headers, the seed's 401, 403 for
 * scope, address and no rule, 429 and 503 (and their nginx mapping), revocation, usage, audit,
 * cookies only where a rule allows them.
 */
import assert from "node:assert/strict";
import { parseTrustProxy } from "../../lib/client.ts";
import { NO_RULES } from "../../auth/forward_auth/rules.ts";
import { usageKeyPrefix } from "../../store/keys.ts";
import { FaultyKv } from "../_faulty_kv.ts";
import { createAccountWithKey } from "../_helpers.ts";
import { BASE, createKeyViaSession, SEED_401, signUp, withCookie } from "../sessions_helpers.ts";
import { forward, openFwdApp } from "./_fixtures.ts";

const SEED_401_TEXT = JSON.stringify(SEED_401);

Deno.test("forward auth: allowed requests carry the identity and the rate-limit headers", async (t) => {
  await using ctx = await openFwdApp();
  const { cookie, userId } = await signUp(ctx.app);
  const made = await createKeyViaSession(ctx.app, cookie, {
    name: "orders reader ✓",
    scopes: ["domains:read", "orders:read"],
  });
  assert.equal(made.res.status, 201, JSON.stringify(made.body));

  await t.step("a key holding the rule's scope: 200, empty, X-Auth-* set", async () => {
    const r = await forward(ctx.app, { key: made.key, uri: "/orders/42?expand=lines" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, "");
    assert.equal(r.headers.get("X-Auth-User-Id"), userId);
    assert.equal(r.headers.get("X-Auth-Key-Id"), made.id);
    assert.equal(decodeURIComponent(r.headers.get("X-Auth-Key-Name")!), "orders reader ✓");
    assert.equal(r.headers.get("X-Auth-Scopes"), "domains:read orders:read");
    assert.equal(r.headers.get("X-Auth-Rule"), "orders-read");
    assert.equal(r.headers.get("X-Auth-Status"), "200");
    assert.equal(r.headers.get("X-RateLimit-Limit"), "100");
    assert.ok(r.headers.get("X-RateLimit-Remaining"));
    assert.ok(r.headers.get("RateLimit-Policy"));
  });

  await t.step("HEAD answers the same, without a body", async () => {
    const r = await forward(ctx.app, { key: made.key, uri: "/orders/42", head: true });
    assert.equal(r.status, 200);
    assert.equal(r.text, "");
    assert.equal(r.headers.get("X-Auth-Key-Id"), made.id);
  });

  await t.step("an original HEAD falls under the GET rule (RFC 9110), with its scope", async () => {
    const r = await forward(ctx.app, { key: made.key, uri: "/orders/42", method: "HEAD" });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get("X-Auth-Rule"), "orders-read");
    const pub = await forward(ctx.app, { uri: "/health", method: "HEAD" });
    assert.equal(pub.status, 200, pub.text);
    assert.equal(pub.headers.get("X-Auth-Rule"), "health");
    const other = await forward(ctx.app, { key: made.key, uri: "/orders/42", method: "OPTIONS" });
    assert.equal(other.status, 403);
    assert.equal(JSON.parse(other.text).code, "NO_MATCHING_RULE");
  });

  await t.step("nginx's headers select the rule too", async () => {
    const r = await forward(ctx.app, { key: made.key, uri: "/orders/42", nginx: true });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("X-Auth-Rule"), "orders-read");
  });

  await t.step("?rule=NAME selects the rule by name", async () => {
    const r = await forward(ctx.app, { key: made.key, query: "rule=orders-read" });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("X-Auth-Rule"), "orders-read");
  });

  await t.step("a rule without scope admits any valid key", async () => {
    const r = await forward(ctx.app, { key: made.key, method: "DELETE", uri: "/v1/things/1" });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("X-Auth-Rule"), "v1");
  });

  await t.step("a public rule: 200 with empty identity headers, no key needed", async () => {
    const r = await forward(ctx.app, { uri: "/health" });
    assert.equal(r.status, 200);
    for (const h of ["X-Auth-User-Id", "X-Auth-Key-Id", "X-Auth-Key-Name", "X-Auth-Scopes"]) {
      assert.equal(r.headers.get(h), "", h);
    }
    assert.equal(r.headers.get("X-Auth-Rule"), "health");
  });
});

Deno.test("forward auth: refusals", async (t) => {
  await using ctx = await openFwdApp();
  const { key } = await createAccountWithKey(ctx.kv, ctx.clock);

  await t.step("no key, or a wrong one: the seed's 401 body and WWW-Authenticate", async () => {
    for (const k of [undefined, "inb_wrong", key.slice(0, -1) + (key.endsWith("a") ? "b" : "a")]) {
      const r = await forward(ctx.app, { key: k, uri: "/orders/1" });
      assert.equal(r.status, 401);
      assert.equal(r.text, SEED_401_TEXT);
      assert.equal(r.headers.get("WWW-Authenticate"), 'Bearer realm="API", charset="UTF-8"');
      assert.equal(r.headers.get("X-Auth-Status"), "401");
    }
  });

  await t.step("a key without the rule's scope: 403 INSUFFICIENT_SCOPE (RFC 6750)", async () => {
    // A key created without scopes holds no operator scope (deny by default).
    const r = await forward(ctx.app, { key, uri: "/orders/1" });
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.text).code, "INSUFFICIENT_SCOPE");
    assert.equal(
      r.headers.get("WWW-Authenticate"),
      'Bearer realm="API", error="insufficient_scope", scope="orders:read"',
    );
    assert.equal(r.headers.get("X-Auth-User-Id"), null);
  });

  await t.step("what no rule covers is refused: 403 NO_MATCHING_RULE", async () => {
    const cases = [
      { uri: "/admin" },
      { uri: "/orders/../admin" },
      { uri: "/orders/%2e%2e/admin" },
      { uri: "/orders%2F..%2Fadmin" },
      { uri: "/healthz" },
      { uri: "/orders/1", method: "PATCH" },
      { uri: "not-a-path" },
    ];
    for (const c of cases) {
      const r = await forward(ctx.app, { key, ...c });
      assert.equal(r.status, 403, `${c.method ?? "GET"} ${c.uri}`);
      assert.equal(JSON.parse(r.text).code, "NO_MATCHING_RULE", c.uri);
    }
    const unknown = await forward(ctx.app, { key, query: "rule=nope" });
    assert.equal(unknown.status, 403);
    assert.equal(JSON.parse(unknown.text).code, "NO_MATCHING_RULE");
    const noHeaders = await forward(ctx.app, { key });
    assert.equal(noHeaders.status, 403);
    assert.equal(JSON.parse(noHeaders.text).code, "NO_MATCHING_RULE");
  });

  await t.step("a client's own forwarding header cannot select another rule", async () => {
    // nginx sets X-Original-URI and passes the client's X-Forwarded-Uri on (and Caddy the
    // reverse): two families that disagree are refused, whichever one the proxy set.
    for (
      const headers of <Record<string, string>[]> [
        { "X-Forwarded-Uri": "/health", "X-Original-URI": "/admin" },
        { "X-Forwarded-Uri": "/admin", "X-Original-URI": "/health" },
        { "X-Forwarded-Uri": "/health", "X-Original-URI": "/health", "X-Original-Method": "POST" },
      ]
    ) {
      const r = await forward(ctx.app, { headers: { "X-Forwarded-Method": "GET", ...headers } });
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal(JSON.parse(r.text).code, "NO_MATCHING_RULE");
    }
    const same = await forward(ctx.app, {
      headers: {
        "X-Forwarded-Method": "GET",
        "X-Forwarded-Uri": "/health",
        "X-Original-URI": "/health",
      },
    });
    assert.equal(same.status, 200, "both families saying the same is no conflict");
  });

  await t.step("the query is ignored when matching", async () => {
    const r = await forward(ctx.app, { uri: "/health?admin=1" });
    assert.equal(r.status, 200);
  });
});

Deno.test("forward auth: without a rules file everything is refused", async () => {
  await using ctx = await openFwdApp({ rules: NO_RULES });
  const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
  for (const uri of ["/", "/health", "/orders/1"]) {
    const r = await forward(ctx.app, { key, uri });
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.text).code, "NO_MATCHING_RULE");
  }
});

Deno.test("forward auth: the key's addresses are checked against the forwarded client", async () => {
  await using ctx = await openFwdApp({ config: { trustProxy: parseTrustProxy("127.0.0.1") } });
  const { cookie } = await signUp(ctx.app);
  const made = await createKeyViaSession(ctx.app, cookie, {
    name: "office",
    allowedIps: ["203.0.113.0/24"],
  });
  const from = (ip: string) =>
    forward(ctx.app, { key: made.key, uri: "/v1/x", headers: { "X-Forwarded-For": ip } });
  const outside = await from("198.51.100.7");
  assert.equal(outside.status, 403);
  assert.equal(JSON.parse(outside.text).code, "IP_NOT_ALLOWED");
  assert.equal((await from("203.0.113.9")).status, 200);
});

Deno.test("forward auth: 429 with Retry-After, and compat=nginx answers it as 403", async (t) => {
  await using ctx = await openFwdApp({
    config: { rateLimit: { max: 2, windowMs: 60_000, failOpen: false } },
  });
  const { key, userId, keyId } = await createAccountWithKey(ctx.kv, ctx.clock);
  assert.equal((await forward(ctx.app, { key, uri: "/v1/a" })).status, 200);
  assert.equal((await forward(ctx.app, { key, uri: "/v1/a" })).status, 200);

  await t.step("the third request of the window: 429", async () => {
    const r = await forward(ctx.app, { key, uri: "/v1/a" });
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get("Retry-After")) >= 1);
    assert.equal(r.headers.get("X-RateLimit-Remaining"), "0");
    assert.equal(r.headers.get("X-Auth-Status"), "429");
  });

  await t.step("compat=nginx: 403 with X-Auth-Status 429 and the same headers", async () => {
    const r = await forward(ctx.app, { key, uri: "/v1/a", query: "compat=nginx", nginx: true });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get("X-Auth-Status"), "429");
    assert.ok(Number(r.headers.get("Retry-After")) >= 1);
    assert.equal(r.headers.get("X-RateLimit-Remaining"), "0");
  });

  await t.step("the usage counts them as 429s, whichever status nginx was given", async () => {
    await ctx.app.idle();
    const counts = new Map<unknown, bigint>();
    for await (const e of ctx.kv.list<Deno.KvU64>({ prefix: usageKeyPrefix(userId, keyId) })) {
      counts.set(e.key.at(-1), (counts.get(e.key.at(-1)) ?? 0n) + e.value.value);
    }
    assert.equal(counts.get("429"), 2n);
    assert.equal(counts.get("2xx"), 2n);
    assert.equal(counts.get("4xx"), undefined);
  });

  await t.step("compat=nginx leaves 401 and 403 as they are, with X-Auth-Status", async () => {
    const r = await forward(ctx.app, { uri: "/v1/a", query: "compat=nginx", nginx: true });
    assert.equal(r.status, 401);
    assert.equal(r.headers.get("X-Auth-Status"), "401");
  });
});

Deno.test("forward auth: the store failing answers 503 (403 with compat=nginx)", async () => {
  const faulty = new FaultyKv(await Deno.openKv(":memory:"));
  await using ctx = await openFwdApp({ kv: faulty.kv });
  const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
  faulty.setMode({ kind: "throw", ops: ["get", "getMany", "list", "commit"] });
  try {
    const r = await forward(ctx.app, { key, uri: "/v1/a" });
    assert.equal(r.status, 503);
    assert.equal(JSON.parse(r.text).statusCode, 503);
    assert.ok(r.headers.get("Retry-After"));
    const n = await forward(ctx.app, { key, uri: "/v1/a", query: "compat=nginx" });
    assert.equal(n.status, 403);
    assert.equal(n.headers.get("X-Auth-Status"), "503");
    assert.ok(n.headers.get("Retry-After"));
  } finally {
    faulty.heal();
  }
});

Deno.test("forward auth: revocation, usage and audit like the API", async (t) => {
  await using ctx = await openFwdApp();
  const { cookie, userId } = await signUp(ctx.app);
  const made = await createKeyViaSession(ctx.app, cookie, { name: "k" });

  await t.step("allowed and refused requests count in the key's usage", async () => {
    assert.equal((await forward(ctx.app, { key: made.key, uri: "/v1/a" })).status, 200);
    assert.equal((await forward(ctx.app, { key: made.key, uri: "/orders/1" })).status, 403);
    await ctx.app.idle();
    let total = 0n;
    for await (const e of ctx.kv.list<Deno.KvU64>({ prefix: usageKeyPrefix(userId, made.id) })) {
      total += e.value.value;
    }
    assert.equal(total, 2n);
  });

  await t.step("the scope refusal is in the security log (api_key.denied)", async () => {
    const actions: string[] = [];
    for await (const e of ctx.kv.list<{ action: string }>({ prefix: [userId, "audit"] })) {
      actions.push(e.value.action);
    }
    assert.ok(actions.includes("api_key.denied"), actions.join(","));
  });

  await t.step("a deleted key is refused at once", async () => {
    const del = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${made.id}`,
      withCookie(cookie, { method: "DELETE" }),
    );
    assert.equal(del.status, 200);
    const r = await forward(ctx.app, { key: made.key, uri: "/v1/a" });
    assert.equal(r.status, 401);
  });
});

Deno.test("forward auth: the session cookie only where the rule says cookie", async (t) => {
  await using ctx = await openFwdApp();
  const { cookie, userId } = await signUp(ctx.app);
  const viaCookie = (uri: string, method = "GET", extra: Record<string, string> = {}) =>
    forward(ctx.app, {
      uri,
      method,
      headers: { ...Object.fromEntries(new Headers(withCookie(cookie).headers)), ...extra },
    });

  await t.step("a cookie rule admits the session; X-Auth-Key-Id is empty", async () => {
    const portal = await viaCookie("/portal/home");
    assert.equal(portal.status, 200);
    assert.equal(portal.headers.get("X-Auth-User-Id"), userId);
    assert.equal(portal.headers.get("X-Auth-Key-Id"), "");
  });

  await t.step("any other rule ignores the cookie: 401", async () => {
    assert.equal((await viaCookie("/v1/x")).status, 401);
  });

  await t.step("a cross-site state-changing request with the cookie: 403", async () => {
    const cross = await viaCookie("/portal/form", "POST", { "Sec-Fetch-Site": "cross-site" });
    assert.equal(cross.status, 403);
    assert.equal(JSON.parse(cross.text).code, "CROSS_SITE_REQUEST");
    const same = await viaCookie("/portal/form", "POST", { "Sec-Fetch-Site": "same-origin" });
    assert.equal(same.status, 200);
    const read = await viaCookie("/portal/home", "GET", { "Sec-Fetch-Site": "cross-site" });
    assert.equal(read.status, 200, "a safe method is not refused");
  });
});

Deno.test("forward auth: a refusal's code is in X-Auth-Code too (nginx cannot pass the body on)", async () => {
  await using ctx = await openFwdApp();
  const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
  const scope = await forward(ctx.app, { key, uri: "/orders/1" });
  assert.equal(scope.status, 403);
  assert.equal(scope.headers.get("X-Auth-Code"), "INSUFFICIENT_SCOPE");
  assert.equal(JSON.parse(scope.text).code, "INSUFFICIENT_SCOPE");
  const deny = await forward(ctx.app, { key, uri: "/admin", query: "compat=nginx", nginx: true });
  assert.equal(deny.status, 403);
  assert.equal(deny.headers.get("X-Auth-Code"), "NO_MATCHING_RULE");
  const none = await forward(ctx.app, { uri: "/orders/1" });
  assert.equal(none.status, 401);
  assert.equal(none.headers.get("X-Auth-Code"), null, "the seed's 401 has no code");
  const ok = await forward(ctx.app, { key, uri: "/v1/x" });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get("X-Auth-Code"), null);
});
