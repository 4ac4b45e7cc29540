/**
 * Issue 22 item 17: a key's detail page (its settings, usage chart, last use and from which
 * address, its audit events), and `lastUsedIp` recorded with lastUsedAt, off the request path.
 */
import assert from "node:assert/strict";
import { apiKeyStore } from "../../store/api_keys.ts";
import { apiKeyKey } from "../../store/keys.ts";
import { bearer, makeTestApp, type TestApp } from "../_helpers.ts";
import {
  BASE,
  createKeyViaSession,
  fromIp,
  json,
  signUp,
  withCookie,
} from "../sessions_helpers.ts";

async function openApp(): Promise<TestApp & AsyncDisposable> {
  const ctx = await makeTestApp();
  return Object.assign(ctx, { [Symbol.asyncDispose]: () => ctx.close() });
}

async function listKeys(ctx: TestApp, cookie: string): Promise<Record<string, unknown>[]> {
  const res = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
  assert.equal(res.status, 200);
  return (await res.json()).data;
}

Deno.test("a key's last use records the client address, shown by the API and the page", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, {
    name: "ci deploy",
    scopes: ["domains:read"],
    allowedIps: ["203.0.113.0/24"],
  });
  assert.equal(k.res.status, 201);

  await t.step("a new key: lastUsedIp null in the API's view", async () => {
    assert.equal(k.body.lastUsedIp, null);
    const [view] = await listKeys(ctx, cookie);
    assert.equal(view.lastUsedIp, null);
    assert.equal(view.lastUsedAt, null);
  });

  await t.step("a request records lastUsedAt and the address together", async () => {
    const res = await ctx.app.request(
      `${BASE}/api/e2/domains`,
      bearer(k.key),
      fromIp("203.0.113.24"),
    );
    assert.equal(res.status, 200);
    await res.body?.cancel();
    await ctx.app.idle();
    const [view] = await listKeys(ctx, cookie);
    assert.equal(typeof view.lastUsedAt, "string");
    assert.equal(view.lastUsedIp, "203.0.113.24");
  });

  await t.step("the next request within the minute writes nothing (same throttle)", async () => {
    ctx.clock.advance(1000);
    const res = await ctx.app.request(
      `${BASE}/api/e2/domains`,
      bearer(k.key),
      fromIp("203.0.113.99"),
    );
    await res.body?.cancel();
    await ctx.app.idle();
    const [view] = await listKeys(ctx, cookie);
    assert.equal(view.lastUsedIp, "203.0.113.24");
  });

  await t.step("an update is an audit event of the key", async () => {
    const res = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${k.id}`,
      withCookie(cookie, json({ name: "ci deploy (read)" }, { method: "PATCH" })),
    );
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });

  const other = await createKeyViaSession(ctx.app, cookie, { name: "other key" });

  await t.step("the page: settings, times, address, chart and the key's own events", async () => {
    const res = await ctx.app.request(`${BASE}/settings/api-keys/${k.id}`, withCookie(cookie));
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /<h1>ci deploy \(read\)<\/h1>/);
    assert.match(html, new RegExp(`<code>${String(k.body.start)}…</code>`));
    assert.match(html, /<code>domains:read<\/code>/);
    assert.match(html, /203\.0\.113\.0\/24/);
    assert.match(html, /<dd data-last-used-ip="true">203\.0\.113\.24<\/dd>/);
    assert.match(html, /<h2 id="key-usage-heading">Requests per day<\/h2>/);
    assert.match(html, /<svg/);
    assert.match(html, /1 requests|2 requests/);
    assert.match(html, /<code>api_key\.created<\/code>/);
    assert.match(html, /<code>api_key\.updated<\/code>/);
    // The other key's creation is not one of this key's events.
    assert.equal(html.match(/<code>api_key\.created<\/code>/g)?.length, 1);
    assert.ok(!html.includes(other.id));
  });

  await t.step("the keys table links each key's name to its page", async () => {
    const html = await (await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie)))
      .text();
    assert.ok(html.includes(`href="/settings/api-keys/${k.id}"`));
    assert.ok(html.includes(`href="/settings/api-keys/${other.id}"`));
  });
});

Deno.test("a key detail page: 404 for unknown, malformed and another account's ids; sign-in first", async (t) => {
  await using ctx = await openApp();
  const a = await signUp(ctx.app);
  const b = await signUp(ctx.app);
  const bKey = await createKeyViaSession(ctx.app, b.cookie, { name: "b's key" });

  for (
    const [label, id] of [
      ["another account's key", bKey.id],
      ["an unknown id", "key_AAAAAAAAAAAAAAAAAAAAAA"],
      ["a malformed id", "nope"],
    ]
  ) {
    await t.step(label, async () => {
      const res = await ctx.app.request(`${BASE}/settings/api-keys/${id}`, withCookie(a.cookie));
      assert.equal(res.status, 404);
      const html = await res.text();
      assert.ok(!html.includes("b&#39;s key") && !html.includes("b's key"));
    });
  }

  await t.step("signed out: redirected to sign in", async () => {
    const res = await ctx.app.request(`${BASE}/settings/api-keys/${bKey.id}`);
    assert.equal(res.status, 303);
    await res.body?.cancel();
  });
});

Deno.test("old records without lastUsedIp read as null", async () => {
  await using ctx = await openApp();
  const { cookie, userId } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie);
  const store = apiKeyStore(ctx.kv, userId, ctx.clock);
  const record = await store.get(k.id);
  const { lastUsedIp: _ip, ...old } = record;
  await ctx.kv.set(apiKeyKey(userId, k.id), { ...old, lastUsedAt: record.createdAt });
  const [view] = await listKeys(ctx, cookie);
  assert.equal(view.lastUsedIp, null);
  const html =
    await (await ctx.app.request(`${BASE}/settings/api-keys/${k.id}`, withCookie(cookie)))
      .text();
  assert.match(html, /Not recorded/);
});
