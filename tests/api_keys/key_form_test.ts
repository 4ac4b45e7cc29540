/**
 * Issue 22 (items 1, 2, 3, 11), at the app level: the API Keys page's forms keep every value across
 * a refusal and mark, describe and focus the field at fault; "Only these domains" is a picker of
 * the account's domains by name, and an unknown id is named (form and API); the form's order
 * puts permissions and restrictions before its button; repeated names are allowed and warned
 * about; a key already rolled offers no "Roll…"; the new-key panel points the SDK at this server.
 */
import assert from "node:assert/strict";
import type { App } from "../../app.ts";
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

/** Posts a form that must be refused; returns its status and page. */
async function refused(app: App, cookie: string, path: string, fields: Record<string, string>) {
  const res = await post(app, cookie, path, fields);
  return { status: res.status, html: await res.text() };
}

/** Posts a form that must succeed (303) and returns the page it redirects to. */
async function accepted(app: App, cookie: string, path: string, fields: Record<string, string>) {
  const res = await post(app, cookie, path, fields);
  assert.equal(res.status, 303, await res.clone().text());
  await res.body?.cancel();
  return await (await app.request(`${BASE}${res.headers.get("Location")}`, withCookie(cookie)))
    .text();
}

async function keysPage(app: App, cookie: string): Promise<string> {
  return await (await app.request(`${BASE}/settings/api-keys`, withCookie(cookie))).text();
}

/** The opening tag of the element with `id` (or, for checkboxes, with `name`). */
function tag(html: string, attr: "id" | "name", value: string): string {
  const m = new RegExp(`<(input|select|details|fieldset)\\b[^>]*\\b${attr}="${value}"[^>]*>`)
    .exec(html);
  assert.ok(m, `no element with ${attr}="${value}"`);
  return m[0];
}

const isChecked = (t: string) => /\schecked(="")?[\s/>]/.test(t);
const isMarked = (t: string) =>
  t.includes('aria-invalid="true"') && /\sautofocus(="")?[\s>/]/.test(t);

async function addDomain(app: App, cookie: string, domain: string): Promise<string> {
  const res = await app.request(`${BASE}/api/e2/domains`, withCookie(cookie, json({ domain })));
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()).id;
}

Deno.test("a refused key form keeps every value and marks, describes and focuses the bad field", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const filled = {
    name: "monitoring",
    expiresInDays: "30",
    scopes_present: "1",
    scope_domains_read: "on",
    scope_audit_read: "on",
    allowedIps: "203.0.113.0/24, not-an-address",
    rateLimitMax: "5",
    rateLimitWindowSeconds: "2",
  };

  await t.step(
    "a bad address: everything posted survives, the address field is marked",
    async () => {
      const { status, html } = await refused(ctx.app, cookie, "/settings/api-keys", filled);
      assert.equal(status, 400);
      assert.match(tag(html, "id", "key-name"), /value="monitoring"/);
      assert.match(html, /<option value="30" selected(="")?>In 30 days<\/option>/);
      assert.ok(isChecked(tag(html, "name", "scope_domains_read")));
      assert.ok(!isChecked(tag(html, "name", "scope_domains_write")), "unchecked stays unchecked");
      assert.ok(isChecked(tag(html, "name", "scope_audit_read")));
      assert.match(tag(html, "id", "key-rate-max"), /value="5"/);
      assert.match(tag(html, "id", "key-rate-window"), /value="2"/);
      assert.match(tag(html, "id", "key-ips"), /value="203\.0\.113\.0\/24, not-an-address"/);
      assert.match(tag(html, "id", "key-ips"), /aria-describedby="key-ips-error key-ips-hint"/);
      assert.ok(isMarked(tag(html, "id", "key-ips")));
      assert.match(html, /<p class="field-error" id="key-ips-error">Allowed addresses must be/);
      assert.match(html, /<details class="restrictions" open/);
      assert.equal((html.match(/aria-invalid="true"/g) ?? []).length, 1, "one field marked");
      assert.doesNotMatch(tag(html, "id", "key-name"), /aria-invalid/);
    },
  );

  await t.step("an empty name: the name field is marked and focused", async () => {
    const { status, html } = await refused(ctx.app, cookie, "/settings/api-keys", {
      ...filled,
      name: " ",
      allowedIps: "",
      rateLimitMax: "",
      rateLimitWindowSeconds: "",
    });
    assert.equal(status, 400);
    assert.ok(isMarked(tag(html, "id", "key-name")));
    assert.match(html, /id="key-name-error">Name is required\.<\/p>/);
    assert.ok(!isChecked(tag(html, "name", "scope_domains_write")));
    assert.doesNotMatch(html, /<details class="restrictions" open/, "nothing to show: closed");
  });

  await t.step("the restrictions panel stays open if it was, even empty", async () => {
    const { html } = await refused(ctx.app, cookie, "/settings/api-keys", {
      name: "",
      restrictions_open: "1",
    });
    assert.match(html, /<details class="restrictions" open/);
  });

  await t.step("no scope ticked: the first scope box is marked", async () => {
    const { status, html } = await refused(ctx.app, cookie, "/settings/api-keys", {
      name: "none",
      scopes_present: "1",
    });
    assert.equal(status, 400);
    assert.ok(isMarked(tag(html, "name", "scope_domains_read")));
    assert.match(tag(html, "name", "scope_domains_write"), /aria-invalid="true"/);
    assert.match(html, /id="key-scopes-error">Scopes must name at least one scope\.<\/p>/);
  });

  await t.step(
    "a limit looser than the account's (an API check): the limit is marked",
    async () => {
      const { status, html } = await refused(ctx.app, cookie, "/settings/api-keys", {
        ...filled,
        allowedIps: "",
        rateLimitMax: "100000000",
      });
      assert.equal(status, 400);
      assert.ok(isMarked(tag(html, "id", "key-rate-max")));
      assert.match(tag(html, "id", "key-rate-max"), /value="100000000"/);
      assert.match(html, /<details class="restrictions" open/);
    },
  );

  await t.step("a refused roll reopens that key's panel with the choice marked", async () => {
    const made = await createKeyViaSession(ctx.app, cookie, { name: "ci" });
    const { status, html } = await refused(ctx.app, cookie, `/settings/api-keys/${made.id}/roll`, {
      expiresInHours: "500",
    });
    assert.equal(status, 400);
    const select = tag(html, "id", `grace-${made.id}`);
    assert.ok(isMarked(select));
    assert.match(select, new RegExp(`aria-describedby="grace-${made.id}-error"`));
    assert.match(html, new RegExp(`id="grace-${made.id}-error">Grace period must be at most 168`));
    assert.match(html, /<details class="roll popover" open/);
  });
});

Deno.test("'Only these domains' is a picker of the account's domains; an unknown id is named", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);

  await t.step("no domains yet: the picker says where to add one", async () => {
    assert.match(await keysPage(ctx.app, cookie), /No domains yet: <a href="\/settings\/domains">/);
  });

  const a = await addDomain(ctx.app, cookie, "alpha.example.com");
  const b = await addDomain(ctx.app, cookie, "beta.example.com");

  await t.step("the domains are offered by name, posted by id", async () => {
    const html = await keysPage(ctx.app, cookie);
    assert.match(html, new RegExp(`name="domain_${a}"[^>]*/?>\\s*alpha\\.example\\.com`));
    assert.match(html, new RegExp(`name="domain_${b}"[^>]*/?>\\s*beta\\.example\\.com`));
    assert.doesNotMatch(html, /placeholder="e\.g\. dom_/);
  });

  await t.step("ticking one makes a key limited to it", async () => {
    await accepted(ctx.app, cookie, "/settings/api-keys", {
      name: "only-b",
      [`domain_${b}`]: "on",
    });
    const list = await (await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie)))
      .json();
    const made = list.data.find((k: { name: string }) => k.name === "only-b");
    assert.deepEqual(made.domainIds, [b]);
  });

  const ghost = "dom_0000000000000000000000";
  await t.step("an unknown id from the form is named, kept ticked, marked", async () => {
    const { status, html } = await refused(ctx.app, cookie, "/settings/api-keys", {
      name: "ghostly",
      [`domain_${a}`]: "on",
      [`domain_${ghost}`]: "on",
    });
    assert.equal(status, 400);
    assert.match(html, new RegExp(`Domain ${ghost} is not a domain of this account\\.`));
    assert.doesNotMatch(html, /Validation failed/);
    const box = tag(html, "name", `domain_${ghost}`);
    assert.ok(isChecked(box) && isMarked(box));
    assert.ok(isChecked(tag(html, "name", `domain_${a}`)));
    assert.ok(!isChecked(tag(html, "name", `domain_${b}`)));
  });

  await t.step("the API names it too, in its 400 shape", async () => {
    const bad = await createKeyViaSession(ctx.app, cookie, { name: "x", domainIds: [a, ghost] });
    assert.equal(bad.res.status, 400);
    assert.deepEqual(bad.body, {
      error: "Bad Request",
      message: `Domain ${ghost} is not a domain of this account.`,
      statusCode: 400,
      field: "domainIds.1",
      details: [{ path: "domainIds.1", message: `${ghost} is not a domain of this account` }],
    });
  });
});

Deno.test("the key form's order, styles, repeated names and rolled keys", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);

  await t.step("Permissions and Restrictions come before the Generate button", async () => {
    const html = await keysPage(ctx.app, cookie);
    const perms = html.indexOf("<legend>Permissions</legend>");
    const restr = html.indexOf("<summary>Restrictions (optional)</summary>");
    const button = html.indexOf(">Generate API key</button>");
    assert.ok(perms > 0 && restr > perms && button > restr, `${perms} ${restr} ${button}`);
  });

  await t.step("the permission box and number inputs are styled like fields", async () => {
    const css = await (await ctx.app.request(`${BASE}/assets/dashboard.css`)).text();
    assert.match(css, /input\[type=number\] \{[^}]*border: 1px solid var\(--field-line\)/);
    assert.match(css, /fieldset\.box \{[^}]*border: 1px solid var\(--field-line\)/);
    assert.match(css, /\.field-error \{/);
  });

  await t.step("a repeated name is created (Stripe's rule) and the panel warns", async () => {
    const first = await accepted(ctx.app, cookie, "/settings/api-keys", { name: "ci" });
    assert.doesNotMatch(first, /id="newkey-same-name"/);
    const second = await accepted(ctx.app, cookie, "/settings/api-keys", { name: "ci" });
    assert.match(second, /id="newkey-same-name">Another key is also named “ci”/);
    const api = await createKeyViaSession(ctx.app, cookie, { name: "ci" });
    assert.equal(api.res.status, 201, "the API allows it too");
    assert.match(second, /data-taken-names="\[&quot;ci&quot;\]"/);
  });

  await t.step("a key already rolled offers no Roll…, and says why", async () => {
    const made = await createKeyViaSession(ctx.app, cookie, { name: "rolled" });
    await accepted(ctx.app, cookie, `/settings/api-keys/${made.id}/roll`, {
      expiresInHours: "24",
    });
    const html = await keysPage(ctx.app, cookie);
    const row = new RegExp(`<tr data-key-id="${made.id}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? "";
    assert.ok(row);
    assert.doesNotMatch(row, /\/roll"/);
    assert.match(row, /Already rolled: roll its replacement \(inb_[0-9A-Za-z]+…\) instead\./);
    assert.match(row, /Delete key rolled/);
    assert.equal((html.match(/aria-label="Roll key rolled"/g) ?? []).length, 1, "the new one");
  });
});

Deno.test("the new-key panel points the SDK at this server", async () => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const html = await accepted(ctx.app, cookie, "/settings/api-keys", { name: "sdk" });
  assert.match(html, /export INBOUND_BASE_URL=http:\/\/localhost /);
  assert.match(html, /export INBOUND_API_KEY=/);
  assert.match(html, /curl http:\/\/localhost\/api\/e2\/domains/);
  assert.match(html, /new Inbound\(\{\s+apiKey: process\.env\.INBOUND_API_KEY,/);
  assert.match(html, /baseURL: process\.env\.INBOUND_BASE_URL, \/\/ http:\/\/localhost/);
  assert.match(
    html,
    /id="newkey-base-url">[\s\S]*the SDK sends your key to the hosted Inbound service/,
  );
});
