/**
 * Issue 22, item 18: the API Keys table is searched (name, first characters), filtered by state
 * (active / expiring within 7 days / expired / disabled / never used) and sorted (newest, name,
 * last used) on the server from the query string, so the GET form works without JavaScript.
 */
import assert from "node:assert/strict";
import type { App } from "../../app.ts";
import { filterKeys, keyFilterOf } from "../../routes/api_keys/key_filter.tsx";
import type { ApiKeyView } from "../../store/api_keys.ts";
import { makeTestApp } from "../_helpers.ts";
import { BASE, createKeyViaSession, json, signUp, withCookie } from "../sessions_helpers.ts";

const DAY = 86_400_000;
const NOW = Date.parse("2026-06-01T12:00:00Z");

function view(name: string, over: Partial<ApiKeyView> = {}): ApiKeyView {
  return {
    id: `key_${name}`,
    name,
    start: `inb_${name}`,
    createdAt: new Date(NOW - 10 * DAY).toISOString(),
    expiresAt: null,
    lastUsedAt: new Date(NOW - DAY).toISOString(),
    lastUsedIp: null,
    scopes: ["domains:read"],
    domainIds: null,
    allowedIps: null,
    rateLimit: null,
    disabled: false,
    ...over,
  } as ApiKeyView;
}

const KEYS = [
  view("prod", { createdAt: new Date(NOW - 30 * DAY).toISOString() }),
  view("Staging", { expiresAt: new Date(NOW + 3 * DAY).toISOString() }),
  view("old", { expiresAt: new Date(NOW - DAY).toISOString() }),
  view("off", { disabled: true, createdAt: new Date(NOW - 2 * DAY).toISOString() }),
  view("fresh", { lastUsedAt: null, createdAt: new Date(NOW - DAY).toISOString() }),
];

const names = (q: Record<string, string>) =>
  filterKeys(KEYS, keyFilterOf(q), NOW).map((k) => k.name);

Deno.test("the key filter: states, search and sorts", async (t) => {
  await t.step("states", () => {
    assert.deepEqual(names({ state: "active" }), ["fresh", "Staging", "prod"]);
    assert.deepEqual(names({ state: "expiring" }), ["Staging"]);
    assert.deepEqual(names({ state: "expired" }), ["old"]);
    assert.deepEqual(names({ state: "disabled" }), ["off"]);
    assert.deepEqual(names({ state: "unused" }), ["fresh"]);
  });
  await t.step("search by name (any case) or first characters", () => {
    assert.deepEqual(names({ q: "stag" }), ["Staging"]);
    assert.deepEqual(names({ q: "inb_pro…" }), ["prod"]);
    assert.deepEqual(names({ q: "nothing" }), []);
  });
  await t.step("sorts; unknown values are the defaults", () => {
    assert.deepEqual(names({ sort: "name" }), ["fresh", "off", "old", "prod", "Staging"]);
    assert.equal(names({ sort: "last-used" }).at(-1), "fresh");
    assert.deepEqual(names({ sort: "bogus", state: "bogus" }), names({}));
    assert.deepEqual(
      names({}),
      ["fresh", "off", "Staging", "old", "prod"].sort((a, b) =>
        Date.parse(KEYS.find((k) => k.name === b)!.createdAt) -
        Date.parse(KEYS.find((k) => k.name === a)!.createdAt)
      ),
    );
  });
});

async function page(app: App, cookie: string, query: string): Promise<string> {
  const res = await app.request(`${BASE}/settings/api-keys${query}`, withCookie(cookie));
  assert.equal(res.status, 200);
  return await res.text();
}

const rows = (html: string) =>
  [...html.matchAll(/aria-label="Edit key ([^"]+)"/g)].map((m) => m[1]);

Deno.test("the API Keys page filters server-side from a GET form", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    await createKeyViaSession(ctx.app, cookie, { name: "production" });
    ctx.clock.advance(1000);
    const staging = await createKeyViaSession(ctx.app, cookie, {
      name: "staging",
      expiresInDays: 7,
    });
    ctx.clock.advance(1000);
    const off = await createKeyViaSession(ctx.app, cookie, { name: "archive" });
    const patched = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${off.id}`,
      withCookie(cookie, json({ disabled: true }, { method: "PATCH" })),
    );
    assert.equal(patched.status, 200);
    await patched.body?.cancel();

    await t.step("a GET form with search, state and sort", async () => {
      const html = await page(ctx.app, cookie, "");
      assert.match(html, /<form method="get" action="\/settings\/api-keys"[^>]*role="search"/);
      assert.match(html, /<input type="search" id="key-search" name="q"/);
      assert.match(html, /<select id="key-state" name="state"/);
      assert.match(html, /<select id="key-sort" name="sort"/);
      assert.deepEqual(rows(html), ["archive", "staging", "production"]);
    });

    await t.step("query parameters filter, keep the choices and show the counts", async () => {
      const html = await page(ctx.app, cookie, "?q=STAG&state=&sort=newest");
      assert.deepEqual(rows(html), ["staging"]);
      assert.match(html, /value="STAG"/);
      assert.match(html, /Showing 1 of 3 of/);
      assert.match(html, /href="\/settings\/api-keys" class="button secondary">Clear/);
      assert.deepEqual(rows(await page(ctx.app, cookie, "?state=disabled")), ["archive"]);
      assert.deepEqual(rows(await page(ctx.app, cookie, "?state=expiring")), ["staging"]);
      assert.deepEqual(rows(await page(ctx.app, cookie, "?state=unused&sort=name")), [
        "archive",
        "production",
        "staging",
      ]);
      const start = staging.body.start as string;
      assert.deepEqual(rows(await page(ctx.app, cookie, `?q=${start}`)), ["staging"]);
      const chosen = await page(ctx.app, cookie, "?state=disabled&sort=name");
      assert.match(chosen, /<option value="disabled" selected/);
      assert.match(chosen, /<option value="name" selected/);
    });

    await t.step("no match says so and links back to every key", async () => {
      const html = await page(ctx.app, cookie, "?q=nothing-like-this");
      assert.match(html, /id="no-match"/);
      assert.ok(!html.includes("<table"));
    });
  } finally {
    await ctx.close();
  }
});
