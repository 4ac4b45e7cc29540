/**
 * Attacks on forward auth and the verify call that are properly defended (issue 25), by the holder
 * of a low-privilege key or of a service token: the key's limit cannot be dodged by switching
 * between forward auth, the verify call and the API; credentials other than a Bearer API key are
 * refused; unknown and revoked service tokens take the same path; a key's name cannot inject a
 * header; a malformed rules file is one line, never a stack trace.
 */
import assert from "node:assert/strict";
import { headerSafeName } from "../../auth/forward_auth/decision.ts";
import {
  ForwardAuthRulesError,
  loadForwardAuthRules,
  parseForwardAuthRules,
} from "../../auth/forward_auth/rules.ts";
import { authenticateServiceToken, revokeServiceToken } from "../../auth/service_tokens.ts";
import { listServiceTokens } from "../../store/service_tokens.ts";
import { BASE, fromIp } from "../sessions_helpers.ts";
import { forward, openFwdApp, serviceToken, verify } from "./_fixtures.ts";
import { seedKey } from "./_proxies.ts";

Deno.test("attack (defended): the key's own limit is one budget across forward auth, verify and the API", async () => {
  await using ctx = await openFwdApp();
  const k = await seedKey(ctx.kv, {
    scopes: ["domains:read", "orders:read"],
    rateLimit: { max: 3, windowMs: 60_000 },
  });
  const token = await serviceToken(ctx.kv);
  assert.equal((await verify(ctx.app, token, { key: k.key })).body.valid, true);
  assert.equal((await forward(ctx.app, { key: k.key, uri: "/orders/1" })).status, 200);
  const api = await ctx.app.request(
    `${BASE}/api/e2/domains`,
    { headers: { Authorization: `Bearer ${k.key}` } },
    fromIp("127.0.0.1"),
  );
  assert.equal(api.status, 200);
  const fourth = await forward(ctx.app, { key: k.key, uri: "/orders/1", query: "compat=nginx" });
  assert.equal(fourth.status, 403, "compat=nginx: the 429 as nginx's 403");
  assert.equal(fourth.headers.get("X-Auth-Status"), "429");
  assert.ok(Number(fourth.headers.get("Retry-After")) >= 1);
  const v = await verify(ctx.app, token, { key: k.key });
  assert.equal(v.body.code, "RATE_LIMITED");
});

Deno.test("attack (defended): forward auth takes only a Bearer API key", async () => {
  await using ctx = await openFwdApp();
  const k = await seedKey(ctx.kv, { scopes: ["orders:read"] });
  const token = await serviceToken(ctx.kv, true);
  const attempts: [string, Record<string, string>, string?][] = [
    ["a service token as the Bearer", { Authorization: `Bearer ${token}` }],
    ["Basic with the key as the password", { Authorization: `Basic ${btoa(`x:${k.key}`)}` }],
    ["Basic with the key as the user", { Authorization: `Basic ${btoa(`${k.key}:`)}` }],
    ["the key in the query", {}, `access_token=${k.key}`],
    ["the key in X-Api-Key", { "X-Api-Key": k.key }],
    ["two credentials in one header", { Authorization: `Bearer inb_x, Bearer ${k.key}` }],
  ];
  for (const [what, headers, query] of attempts) {
    const r = await forward(ctx.app, { uri: "/orders/1", headers, query });
    assert.equal(r.status, 401, what);
  }
});

Deno.test("attack (defended): unknown and revoked service tokens take the same path (one KV read)", async () => {
  await using ctx = await openFwdApp();
  const revoked = await serviceToken(ctx.kv);
  const [record] = await listServiceTokens(ctx.kv);
  assert.ok(await revokeServiceToken(ctx.kv, record.id));
  const unknown = `inbsvc_${"A".repeat(43)}`;
  const reads = async (token: string) => {
    let gets = 0;
    const counting = new Proxy(ctx.kv, {
      get(target, prop) {
        if (prop === "get") gets++;
        const value = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    assert.equal(await authenticateServiceToken(counting, token), null);
    return gets;
  };
  assert.equal(await reads(unknown), 1);
  assert.equal(await reads(revoked), 1);
  assert.equal(await reads("inbsvc_short"), 0, "a malformed token reads nothing");
  for (const t of [revoked, unknown]) {
    assert.equal((await verify(ctx.app, t, { key: "inb_x" })).status, 401);
  }
});

Deno.test("attack (defended): a key's name cannot add a header line", () => {
  for (const name of ["a\r\nX-Auth-User-Id: usr_x", "a\nb", "a\x7fb", "a\u2028b", "100%"]) {
    const safe = headerSafeName(name);
    assert.match(safe, /^[\x20-\x7e]*$/, JSON.stringify(name));
    assert.equal(decodeURIComponent(safe), name);
    assert.doesNotThrow(() => new Headers({ "X-Auth-Key-Name": safe }));
  }
});

Deno.test("attack (defended): a malformed rules file is one ForwardAuthRulesError line", async () => {
  const rule = { name: "a", method: "GET", path: "/a" };
  const shapes: unknown[] = [
    null,
    "rules",
    { rules: null },
    { rules: [null] },
    { rules: [[]] },
    { rules: {} },
    { scopes: "orders:read", rules: [] },
    { scopes: [null], rules: [] },
    { scopes: [{}], rules: [] },
    { rules: [{ ...rule, name: 5 }] },
    { rules: [{ ...rule, method: ["GET"] }] },
    { rules: [{ ...rule, method: undefined, methods: [null] }] },
    { rules: [{ ...rule, method: undefined, methods: "GET" }] },
    { rules: [{ ...rule, method: undefined, methods: ["GET", 7] }] },
    { rules: [{ ...rule, method: "" }] },
    { rules: [{ ...rule, path: 5 }] },
    { rules: [{ ...rule, path: "/a/*/*" }] },
    { rules: [{ ...rule, path: "/a/./b" }] },
    { rules: [{ ...rule, path: "/a/%zz" }] },
    { rules: [{ ...rule, path: "/a\\b" }] },
    { rules: [{ ...rule, path: "/a\nb" }] },
    { rules: [{ ...rule, scope: {} }] },
    { rules: [{ ...rule, scope: ["x"] }] },
    { rules: [{ ...rule, public: "true" }] },
    { rules: [{ ...rule, cookie: 1 }] },
    { rules: [{ ...rule, __proto__: { scope: "x" }, ["constructor"]: 1 }] },
    JSON.parse('{"rules":[],"__proto__":{"x":1}}'),
  ];
  for (const json of shapes) {
    let err: unknown;
    try {
      parseForwardAuthRules(json, "rules.json");
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof ForwardAuthRulesError, `${JSON.stringify(json)}: ${err}`);
    assert.ok(!err.message.includes("\n"), err.message);
  }
  // Nesting deep enough to overflow a recursive parser, read from a file as the server does.
  await Deno.mkdir("./data/test", { recursive: true });
  const path = `./data/test/attack-rules-${crypto.randomUUID()}.json`;
  try {
    await Deno.writeTextFile(path, "[".repeat(1_000_000) + "]".repeat(1_000_000));
    assert.throws(() => loadForwardAuthRules(path), ForwardAuthRulesError);
    await Deno.writeTextFile(path, "\uFEFF" + JSON.stringify({ rules: [rule] }));
    assert.throws(() => loadForwardAuthRules(path), (e: Error) => {
      return e instanceof ForwardAuthRulesError && !e.message.includes("\n");
    });
  } finally {
    await Deno.remove(path);
  }
});
