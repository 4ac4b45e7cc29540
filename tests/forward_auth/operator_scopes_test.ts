/**
 * Operator scopes (FORWARD_AUTH_RULES `scopes`) granted like the built-in ones: by the API's
 * create and PATCH, and by the dashboard's key form (checkboxes after the built-in ones); never by
 * default.
 */
import assert from "node:assert/strict";
import { API_SCOPES } from "../../lib/scopes.ts";
import { BASE, createKeyViaSession, json, signUp, withCookie } from "../sessions_helpers.ts";
import { parseForwardAuthRules } from "../../auth/forward_auth/rules.ts";
import { forward, openFwdApp, serviceToken, verify } from "./_fixtures.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

Deno.test("operator scopes through the API", async (t) => {
  await using ctx = await openFwdApp();
  const { cookie } = await signUp(ctx.app);

  await t.step("an undeclared scope is a 400 naming it, listing what may be granted", async () => {
    const r = await createKeyViaSession(ctx.app, cookie, { name: "k", scopes: ["orders:delete"] });
    assert.equal(r.res.status, 400);
    assert.equal(r.body.field, "scopes.0");
    const message = (r.body.details as { message: string }[])[0].message;
    for (const s of [...API_SCOPES, "orders:read", "orders:write"]) assert.ok(message.includes(s));
  });

  await t.step("a key created without scopes holds none of the operator's", async () => {
    const r = await createKeyViaSession(ctx.app, cookie, { name: "plain" });
    assert.deepEqual(
      (r.body.scopes as string[]).filter((s) => s.startsWith("orders:")),
      [],
    );
    const fwd = await forward(ctx.app, { key: r.key, uri: "/orders/1" });
    assert.equal(fwd.status, 403);
  });

  await t.step("PATCH grants one; forward auth then admits the key", async () => {
    const r = await createKeyViaSession(ctx.app, cookie, { name: "writer" });
    assert.equal(
      (await forward(ctx.app, { key: r.key, method: "PUT", uri: "/orders/1" })).status,
      403,
    );
    const patch = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${r.id}`,
      withCookie(cookie, json({ scopes: ["domains:read", "orders:write"] }, { method: "PATCH" })),
    );
    assert.equal(patch.status, 200, await patch.clone().text());
    assert.deepEqual((await patch.json()).scopes, ["domains:read", "orders:write"]);
    const ok = await forward(ctx.app, { key: r.key, method: "PUT", uri: "/orders/1" });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("X-Auth-Scopes"), "domains:read orders:write");
  });
});

Deno.test("operator scopes in the dashboard's key form", async (t) => {
  await using ctx = await openFwdApp();
  const { cookie } = await signUp(ctx.app);

  await t.step("listed after the built-in ones, unticked", async () => {
    const html = await (await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie)))
      .text();
    const order = ["scope_domains_read", "scope_op_orders:read", "scope_op_orders:write"]
      .map((name) => html.indexOf(`name="${name}"`));
    assert.ok(order.every((i) => i > 0), String(order));
    assert.ok(order[0] < order[1] && order[1] < order[2]);
    const box = /<input[^>]*name="scope_op_orders:read"[^>]*>/.exec(html)![0];
    assert.doesNotMatch(box, /\schecked/);
  });

  await t.step("ticking one grants it", async () => {
    const res = await ctx.app.request(
      `${BASE}/settings/api-keys`,
      withCookie(cookie, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", ...SAME_ORIGIN },
        body: new URLSearchParams({
          name: "from the form",
          expiresInDays: "",
          scopes_present: "1",
          "scope_op_orders:read": "on",
        }).toString(),
      }),
    );
    assert.equal(res.status, 303, await res.clone().text());
    await res.body?.cancel();
    const list = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
    const keys = (await list.json()).data as { name: string; scopes: string[] }[];
    const made = keys.find((k) => k.name === "from the form");
    assert.deepEqual(made?.scopes, ["orders:read"]);
  });
});

Deno.test("two apps in one process with different rules files see only their own scopes", async (t) => {
  const billing = parseForwardAuthRules(
    {
      scopes: ["billing:read"],
      rules: [{ name: "billing", method: "GET", path: "/billing/*", scope: "billing:read" }],
    },
    "billing-rules.json",
  );
  // Orders first, billing second: a process-wide vocabulary would now be billing's alone.
  await using orders = await openFwdApp();
  await using bills = await openFwdApp({ rules: billing });
  const a = await signUp(orders.app);
  const b = await signUp(bills.app);

  await t.step("each app grants its own operator scopes and refuses the other's", async () => {
    const ok = await createKeyViaSession(orders.app, a.cookie, {
      name: "o",
      scopes: ["orders:read"],
    });
    assert.equal(ok.res.status, 201, JSON.stringify(ok.body));
    const no = await createKeyViaSession(orders.app, a.cookie, {
      name: "x",
      scopes: ["billing:read"],
    });
    assert.equal(no.res.status, 400);
    assert.equal(no.body.field, "scopes.0");
    const ok2 = await createKeyViaSession(bills.app, b.cookie, {
      name: "b",
      scopes: ["billing:read"],
    });
    assert.equal(ok2.res.status, 201, JSON.stringify(ok2.body));
    const no2 = await createKeyViaSession(bills.app, b.cookie, {
      name: "y",
      scopes: ["orders:read"],
    });
    assert.equal(no2.res.status, 400);
    assert.equal(no2.body.field, "scopes.0");
  });

  await t.step("each dashboard form offers its own operator scopes only", async () => {
    const page = async (app: typeof orders.app, cookie: string) =>
      await (await app.request(`${BASE}/settings/api-keys`, withCookie(cookie))).text();
    const ho = await page(orders.app, a.cookie);
    const hb = await page(bills.app, b.cookie);
    assert.match(ho, /name="scope_op_orders:read"/);
    assert.doesNotMatch(ho, /scope_op_billing/);
    assert.match(hb, /name="scope_op_billing:read"/);
    assert.doesNotMatch(hb, /scope_op_orders/);
  });

  await t.step(
    "X-Auth-Scopes and the verify call's scope check use the app's vocabulary",
    async () => {
      const k = await createKeyViaSession(bills.app, b.cookie, {
        name: "reader",
        scopes: ["domains:read", "billing:read"],
      });
      const r = await forward(bills.app, { key: k.key, uri: "/billing/1" });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get("X-Auth-Scopes"), "domains:read billing:read");
      const token = await serviceToken(orders.kv);
      const v = await verify(orders.app, token, { key: "inb_x", scope: "billing:read" });
      assert.equal(v.status, 400, JSON.stringify(v.body));
      assert.equal(v.body.field, "scope");
    },
  );
});
