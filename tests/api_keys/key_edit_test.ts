/**
 * Issue 22, item 16, at the app level: a key is edited from the dashboard (rename, scopes, domain
 * restriction, addresses, per-key limit, disable / enable) through /settings/api-keys/:id/edit,
 * which makes the same change as PATCH /api/e2/api-keys/{id}, keeps every value across a refusal
 * with the bad field marked and focused, and needs sudo mode like creation.
 */
import assert from "node:assert/strict";
import type { App } from "../../app.ts";
import { SUDO_WINDOW_MS } from "../../auth/sudo.ts";
import { formOperation } from "../../routes/two_factor/pages.tsx";
import { makeTestApp, type TestApp } from "../_helpers.ts";
import { BASE, createKeyViaSession, json, signUp, withCookie } from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

async function openApp(): Promise<TestApp & AsyncDisposable> {
  const ctx = await makeTestApp();
  return Object.assign(ctx, { [Symbol.asyncDispose]: () => ctx.close() });
}

function post(app: App, cookie: string, path: string, fields: Record<string, string>) {
  return app.request(
    `${BASE}${path}`,
    withCookie(cookie, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...SAME_ORIGIN },
      body: new URLSearchParams(fields).toString(),
    }),
  );
}

async function getText(app: App, cookie: string, path: string) {
  const res = await app.request(`${BASE}${path}`, withCookie(cookie));
  return { status: res.status, html: await res.text() };
}

async function apiKey(app: App, cookie: string, id: string) {
  const res = await app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
  assert.equal(res.status, 200);
  return (await res.json()).data.find((k: { id: string }) => k.id === id);
}

/** The opening tag of the element with `id` (or, for checkboxes, with `name`). */
function tag(html: string, attr: "id" | "name", value: string): string {
  const m = new RegExp(`<(input|select|details)\\b[^>]*\\b${attr}="${value}"[^>]*>`).exec(html);
  assert.ok(m, `no element with ${attr}="${value}"`);
  return m[0];
}

const isChecked = (t: string) => /\schecked(="")?[\s/>]/.test(t);

Deno.test("a key is edited from the dashboard like PATCH, refusals keep the values", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const made = await createKeyViaSession(ctx.app, cookie, { name: "ci" });
  const res = await ctx.app.request(
    `${BASE}/api/e2/domains`,
    withCookie(cookie, json({ domain: "mail.example.com" })),
  );
  const domainId = (await res.json()).id;
  const path = `/settings/api-keys/${made.id}/edit`;

  await t.step("the keys page links each key's Edit… page", async () => {
    const { html } = await getText(ctx.app, cookie, "/settings/api-keys");
    assert.match(html, new RegExp(`href="${path}"[^>]*aria-label="Edit key ci"`));
  });

  await t.step("the edit page shows the key's current settings", async () => {
    const { status, html } = await getText(ctx.app, cookie, path);
    assert.equal(status, 200);
    assert.match(tag(html, "id", "key-name"), /value="ci"/);
    assert.ok(isChecked(tag(html, "name", "scope_domains_read")));
    assert.ok(!isChecked(tag(html, "name", "scope_audit_read")));
    assert.ok(!isChecked(tag(html, "name", "disabled")));
    assert.match(html, new RegExp(`<form method="post" action="${path}"`));
  });

  const fields = {
    name: "ci-readonly",
    scope_domains_read: "on",
    allowedIps: "203.0.113.0/24",
    [`domain_${domainId}`]: "on",
    rateLimitMax: "5",
    rateLimitWindowSeconds: "2",
    disabled: "on",
  };

  await t.step("a refused edit keeps every value and marks and focuses the field", async () => {
    const bad = await post(ctx.app, cookie, path, { ...fields, allowedIps: "not-an-address" });
    assert.equal(bad.status, 400);
    const html = await bad.text();
    const ips = tag(html, "id", "key-ips");
    assert.match(ips, /aria-invalid="true"/);
    assert.match(ips, /\sautofocus/);
    assert.match(ips, /value="not-an-address"/);
    assert.match(tag(html, "id", "key-name"), /value="ci-readonly"/);
    assert.ok(!isChecked(tag(html, "name", "scope_domains_write")));
    assert.ok(isChecked(tag(html, "name", `domain_${domainId}`)));
    assert.ok(isChecked(tag(html, "name", "disabled")));
    assert.match(tag(html, "id", "key-rate-max"), /value="5"/);
    assert.equal((await apiKey(ctx.app, cookie, made.id)).name, "ci");
  });

  await t.step("a looser limit than the account's is refused on its field", async () => {
    const bad = await post(ctx.app, cookie, path, { ...fields, rateLimitMax: "100000" });
    assert.equal(bad.status, 400);
    assert.match(tag(await bad.text(), "id", "key-rate-max"), /aria-invalid="true"/);
  });

  await t.step("the saved edit is what the API reports (PRG with a notice)", async () => {
    const ok = await post(ctx.app, cookie, path, fields);
    assert.equal(ok.status, 303);
    assert.equal(ok.headers.get("Location"), "/settings/api-keys?notice=updated");
    const key = await apiKey(ctx.app, cookie, made.id);
    assert.equal(key.name, "ci-readonly");
    assert.deepEqual(key.scopes, ["domains:read"]);
    assert.deepEqual(key.domainIds, [domainId]);
    assert.deepEqual(key.allowedIps, ["203.0.113.0/24"]);
    assert.deepEqual(key.rateLimit, { max: 5, windowMs: 2000 });
    assert.equal(key.disabled, true);
    const refused = await ctx.app.request(`${BASE}/api/e2/domains`, {
      headers: { Authorization: `Bearer ${made.key}` },
    });
    assert.equal(refused.status, 401);
    await refused.body?.cancel();
    const { html } = await getText(ctx.app, cookie, "/settings/api-keys?notice=updated");
    assert.match(html, /API key updated/);
  });

  await t.step("emptied restrictions are cleared and the key enabled again", async () => {
    const ok = await post(ctx.app, cookie, path, {
      name: "ci-readonly",
      scope_domains_read: "on",
      scope_domains_write: "on",
    });
    assert.equal(ok.status, 303);
    const key = await apiKey(ctx.app, cookie, made.id);
    assert.equal(key.disabled, false);
    assert.equal(key.domainIds, null);
    assert.equal(key.allowedIps, null);
    assert.equal(key.rateLimit, null);
    const works = await ctx.app.request(`${BASE}/api/e2/domains`, {
      headers: { Authorization: `Bearer ${made.key}` },
    });
    assert.equal(works.status, 200);
    await works.body?.cancel();
  });
});

Deno.test("the edit form needs sudo mode; an unknown key is a 404", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const made = await createKeyViaSession(ctx.app, cookie, { name: "ci-readonly" });
  const path = `/settings/api-keys/${made.id}/edit`;
  const fields = { name: "stale", scope_domains_read: "on" };

  await t.step("an unknown key's edit page is a 404", async () => {
    const { status } = await getText(ctx.app, cookie, "/settings/api-keys/key_nope/edit");
    assert.equal(status, 404);
  });

  await t.step("the form is the updateApiKey operation and needs sudo mode", async () => {
    assert.equal(formOperation(path), "updateApiKey");
    ctx.clock.advance(SUDO_WINDOW_MS + 60_000);
    const stale = await post(ctx.app, cookie, path, { ...fields, name: "stale" });
    assert.equal(stale.status, 403);
    assert.match(await stale.text(), /Confirm it(&#39;|')s you/);
    assert.equal((await apiKey(ctx.app, cookie, made.id)).name, "ci-readonly");
  });
});
