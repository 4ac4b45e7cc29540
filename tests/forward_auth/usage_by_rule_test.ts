/**
 * Forward-auth and verify answers counted in the key's usage by the rule's name (issue 25): the
 * `rules` of `GET /api/e2/api-keys/{id}/usage`, the real status under nginx's mapping, nothing
 * counted by rule for the API's own requests, and the dashboard's key page listing the rules.
 */
import assert from "node:assert/strict";
import { usageRulePrefix } from "../../store/keys.ts";
import { pruneUsage } from "../../store/usage.ts";
import { BASE, createKeyViaSession, signUp, withCookie } from "../sessions_helpers.ts";
import { forward, openFwdApp, serviceToken, verify } from "./_fixtures.ts";

type RuleRow = { rule: string; requests: number; "2xx": number; "4xx": number; "429": number };

Deno.test("the key's usage by forward-auth rule", async (t) => {
  await using ctx = await openFwdApp();
  const { cookie, userId } = await signUp(ctx.app);
  const made = await createKeyViaSession(ctx.app, cookie, {
    name: "reader",
    scopes: ["domains:read", "orders:read"],
    // The key's own limit: its 7th request in the minute is a 429.
    rateLimit: { max: 6, windowMs: 60_000 },
  });
  assert.equal(made.res.status, 201, JSON.stringify(made.body));
  const usage = async () => {
    await ctx.app.idle();
    const r = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${made.id}/usage?days=7`,
      withCookie(cookie),
    );
    assert.equal(r.status, 200);
    return await r.json() as { data: { requests: number }[]; rules: RuleRow[] };
  };

  await t.step("no forward-auth traffic: an empty list", async () => {
    await ctx.app.request(`${BASE}/api/e2/domains`, {
      headers: { Authorization: `Bearer ${made.key}` },
    });
    const u = await usage();
    assert.deepEqual(u.rules, []);
    assert.equal(u.data.at(-1)!.requests, 1, "the API request counts for the key");
  });

  await t.step("answers are counted under the rule they fell under, by outcome", async () => {
    assert.equal((await forward(ctx.app, { key: made.key, uri: "/orders/1" })).status, 200);
    assert.equal((await forward(ctx.app, { key: made.key, uri: "/orders/2" })).status, 200);
    assert.equal(
      (await forward(ctx.app, { key: made.key, uri: "/orders/2", method: "POST" })).status,
      403,
    );
    assert.equal((await forward(ctx.app, { key: made.key, uri: "/v1/x" })).status, 200);
    // No rule matched, and no key identified: neither counts under a rule.
    assert.equal((await forward(ctx.app, { key: made.key, uri: "/admin" })).status, 403);
    assert.equal((await forward(ctx.app, { uri: "/orders/1" })).status, 401);
    const u = await usage();
    assert.deepEqual(
      u.rules.map((r) => [r.rule, r.requests, r["2xx"], r["4xx"], r["429"]]),
      [["orders-read", 2, 2, 0, 0], ["orders-write", 1, 0, 1, 0], ["v1", 1, 1, 0, 0]],
    );
  });

  await t.step("a verify call naming a rule counts under it", async () => {
    const token = await serviceToken(ctx.kv);
    const v = await verify(ctx.app, token, { key: made.key, rule: "v1" });
    assert.equal(v.body.valid, true, JSON.stringify(v.body));
    const u = await usage();
    assert.equal(u.rules.find((r) => r.rule === "v1")?.requests, 2);
  });

  await t.step("a 429 answered to nginx as 403 counts as a 429 under its rule", async () => {
    // 6 per minute: the API request, 4 forward-auth answers with a key and the verify call.
    const r = await forward(ctx.app, { key: made.key, uri: "/v1/y", query: "compat=nginx" });
    assert.equal(r.status, 403);
    assert.equal(r.headers.get("X-Auth-Status"), "429");
    const u = await usage();
    const v1 = u.rules.find((x) => x.rule === "v1")!;
    assert.equal(v1["429"], 1);
    assert.equal(v1["4xx"], 0);
  });

  await t.step("the dashboard's key page lists the rules", async () => {
    const page = await ctx.app.request(`${BASE}/settings/api-keys/${made.id}`, withCookie(cookie));
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /Forward auth, by rule/);
    const at = ["orders-read", "v1", "orders-write"].map((r) => html.indexOf(`<code>${r}</code>`));
    assert.ok(at.every((i) => i > 0), String(at));
  });

  await t.step(
    "the counters are one per day, rule and outcome, and pruned with the key",
    async () => {
      const keys: Deno.KvKey[] = [];
      for await (const e of ctx.kv.list({ prefix: usageRulePrefix(userId, made.id) })) {
        keys.push(e.key);
      }
      // orders-read 2xx, orders-write 4xx, v1 2xx and v1 429.
      assert.equal(keys.length, 4, JSON.stringify(keys));
      const later = ctx.clock() + 92 * 86_400_000;
      assert.ok(await pruneUsage(ctx.kv, userId, made.id, later) >= 4);
      const left = await Array.fromAsync(ctx.kv.list({ prefix: usageRulePrefix(userId, made.id) }));
      assert.equal(left.length, 0);
    },
  );
});
