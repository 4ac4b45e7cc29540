/**
 * Attacks on forward auth's rule matching (auth/forward_auth/rules.ts `normalisePath`,
 * `matchRule`), as a client of the protected API would try them: the rule the auth server picks
 * for a forwarded URI must never be laxer than the route the upstream serves for that URI.
 *
 * The upstream's view is WHATWG URL parsing (what a Deno/Hono, browser-grade or Go upstream does:
 * dot segments removed with empty segments kept, `%2F` left as data inside a segment).
 *
 * Two defects (the first two tests fail now): the matcher merges repeated slashes BEFORE removing
 * dot segments, and it decodes `%2F` into a segment separator BEFORE removing dot segments; both
 * let a client without a key reach `/orders/…` (scope orders:read) under the public `health` rule.
 * The other tests are attacks that are properly defended.
 */
import assert from "node:assert/strict";
import { matchRule, normalisePath } from "../../auth/forward_auth/rules.ts";
import { createAccountWithKey } from "../_helpers.ts";
import { forward, openFwdApp, RULES } from "./_fixtures.ts";

const name = (method: string | null, uri: string) => matchRule(RULES, method, uri)?.name ?? null;
/** The path an upstream parsing the request target as a WHATWG URL routes on. */
const upstreamPath = (uri: string) => new URL(uri, "http://upstream.invalid").pathname;

Deno.test("attack: '//' before '..' — /orders/x//../../health is matched as the public health rule, the upstream serves /orders/health", async (t) => {
  const uri = "/orders/x//../../health";
  await t.step("the upstream's view: under /orders/", () => {
    // RFC 3986 5.2.4 keeps the empty segment: "/orders/x/" + "" + ".." + ".." → "/orders/health".
    assert.equal(upstreamPath(uri), "/orders/health");
  });
  await t.step("the matcher must not pick a laxer rule than orders-read", () => {
    const got = name("GET", uri);
    assert.ok(
      got === null || got === "orders-read",
      `matched "${got}" (normalised to ${normalisePath(uri)}): the upstream serves ` +
        `${upstreamPath(uri)}`,
    );
  });
  await t.step("end to end: no key, and the auth server must not answer 200", async () => {
    await using ctx = await openFwdApp();
    const r = await forward(ctx.app, { uri });
    assert.notEqual(r.status, 200, `X-Auth-Rule: ${r.headers.get("X-Auth-Rule")}`);
  });
});

Deno.test("attack: %2F then '..' — /orders/x%2F..%2F..%2Fhealth is matched as the public health rule, an upstream keeping %2F routes it under /orders/", async (t) => {
  const uri = "/orders/x%2F..%2F..%2Fhealth";
  await t.step("the upstream's view: one segment under /orders/", () => {
    assert.equal(upstreamPath(uri), uri);
    // Hono, Express, Go's ServeMux with RawPath, ...: /orders/:id with id "x/../../health".
  });
  await t.step("the matcher must not pick a laxer rule than orders-read", () => {
    const got = name("GET", uri);
    assert.ok(
      got === null || got === "orders-read",
      `matched "${got}" (normalised to ${normalisePath(uri)})`,
    );
  });
  await t.step("end to end: no key, and the auth server must not answer 200", async () => {
    await using ctx = await openFwdApp();
    const r = await forward(ctx.app, { uri });
    assert.notEqual(r.status, 200, `X-Auth-Rule: ${r.headers.get("X-Auth-Rule")}`);
  });
});

Deno.test("attack (defended): path tricks that agree with the upstream or match nothing", async (t) => {
  await t.step("%2e%2e, .%2e and ';' segments: the same path as the upstream's", () => {
    for (
      const uri of [
        "/orders/x/%2e%2e/%2e%2e/health",
        "/orders/x/.%2E/%2E./health",
        "/orders/x;/../../health",
        "/health/../orders/1",
        "/health/%2e%2e/orders/1",
      ]
    ) {
      assert.equal(name("GET", uri), name("GET", upstreamPath(uri)), uri);
    }
  });
  await t.step("bad, overlong or truncated escapes, NUL, CR/LF, backslashes: nothing", () => {
    for (
      const uri of [
        "/health%",
        "/health%2",
        "/%C0%AEhealth",
        "/orders/%C0%AF..%C0%AF..%C0%AFhealth",
        "/health%00",
        "/health%0d%0aX-Auth-User-Id:%20usr_x",
        "/orders/x\\..\\..\\health",
        "/orders/x%5C..%5C..%5Chealth",
      ]
    ) {
      assert.equal(name("GET", uri), null, uri);
    }
  });
  await t.step("query, fragment and absolute-form give the path, never a laxer rule", () => {
    assert.equal(name("GET", "/orders/1?/health"), "orders-read");
    assert.equal(name("GET", "/orders/1#/../../health"), "orders-read");
    assert.equal(name("GET", "http://evil.example/orders/1"), "orders-read");
    assert.equal(name("GET", "HTTPS://evil.example/orders/1?x=/health"), "orders-read");
    assert.equal(name("GET", "http://evil.example"), null, "'/' is no rule's");
    assert.equal(name("GET", "ftp://evil.example/health"), null);
  });
  await t.step("case and unicode look-alikes select no laxer rule", () => {
    assert.equal(name("GET", "/HEALTH"), null);
    assert.equal(name("GET", "/%E2%80%8Bhealth"), null);
    assert.equal(name("GET", "/health%E3%80%82"), null);
  });
  await t.step("methods: lower case is upper-cased, HEAD is GET's (RFC 9110), nothing else", () => {
    assert.equal(name("get", "/orders/1"), "orders-read");
    // Issue 25 follow-up: a GET rule covers HEAD (GET without the body), the same rule as GET's.
    assert.equal(name("HEAD", "/health"), "health");
    assert.equal(name("HEAD", "/orders/1"), "orders-read");
    assert.equal(name("OPTIONS", "/health"), null);
    assert.equal(name("G\u0130T", "/orders/1"), null);
  });
});

Deno.test("attack (defended): huge and malformed forwarded URIs and methods are a 403, never a 500", async () => {
  await using ctx = await openFwdApp();
  const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
  const uris = [
    "/" + "a/".repeat(100_000),
    "/" + "%2e%2e/".repeat(50_000) + "admin",
    "/" + "%".repeat(10_000),
    "/%FF%FE",
    "//",
  ];
  for (const uri of uris) {
    const r = await forward(ctx.app, { key, uri });
    assert.equal(r.status, 403, uri.slice(0, 40));
    assert.equal(JSON.parse(r.text).code, "NO_MATCHING_RULE");
  }
  const m = await forward(ctx.app, { key, uri: "/orders/1", method: "X".repeat(10_000) });
  assert.equal(m.status, 403);
  const q = await forward(ctx.app, { key, query: `rule=${"%ZZ".repeat(1000)}` });
  assert.equal(q.status, 403);
});
