import assert from "node:assert/strict";
import type { App } from "../../app.ts";
import { keyFlags } from "../../routes/api_keys/pages.tsx";
import { type ApiKeyView, grantOf } from "../../store/api_keys.ts";
import { bearer, makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import {
  BASE,
  cookieFrom,
  freshEmail,
  reauthenticate,
  statusOf,
  withCookie,
} from "../sessions_helpers.ts";

const DAY = 86_400_000;
const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

function form(fields: Record<string, string>, headers: Record<string, string> = SAME_ORIGIN) {
  return {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

function withCookieForm(cookie: string, fields: Record<string, string>) {
  return withCookie(cookie, form(fields));
}

/** The new key shown on the page, read the way a person would: from the key input. */
function shownKey(html: string): string | null {
  return /id="new-key"[^>]*value="(inb_[0-9A-Za-z]+)"/.exec(html)?.[1] ??
    /value="(inb_[0-9A-Za-z]+)"[^>]*id="new-key"/.exec(html)?.[1] ?? null;
}

const FLASH_LOCATION = /^\/settings\/api-keys\?flash=fl_[0-9A-Za-z]{22}$/;

/**
 * Posts a key form (generate or roll): Post/Redirect/Get, so the answer is a 303 to the page with
 * an opaque flash id and never the key. Returns the redirect target and the page it shows.
 */
async function postThenGet(
  app: App,
  cookie: string,
  path: string,
  fields: Record<string, string>,
): Promise<{ location: string; html: string }> {
  const res = await app.request(`${BASE}${path}`, withCookieForm(cookie, fields));
  assert.equal(res.status, 303);
  assert.equal(await res.text(), "");
  const location = res.headers.get("Location") ?? "";
  assert.match(location, FLASH_LOCATION);
  assert.equal(res.headers.get("Set-Cookie"), null);
  const page = await app.request(`${BASE}${location}`, withCookie(cookie));
  assert.equal(page.status, 200);
  return { location, html: await page.text() };
}

async function signUpByForm(app: App): Promise<string> {
  const res = await app.request(
    `${BASE}/sign-up`,
    form({ email: freshEmail(), password: TEST_PASSWORD }),
  );
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("Location"), "/settings/api-keys");
  return cookieFrom(res);
}

Deno.test("dashboard pages carry the security headers and no inline script", async (t) => {
  const ctx = await makeTestApp();
  try {
    const cookie = await signUpByForm(ctx.app);
    for (const path of ["/sign-in", "/sign-up", "/settings/api-keys"]) {
      await t.step(path, async () => {
        const res = await ctx.app.request(`${BASE}${path}`, withCookie(cookie));
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("Content-Type"), "text/html; charset=utf-8");
        const csp = res.headers.get("Content-Security-Policy") ?? "";
        assert.match(csp, /script-src 'self'/);
        assert.match(csp, /frame-ancestors 'none'/);
        assert.match(csp, /default-src 'none'/);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
        assert.equal(res.headers.get("X-Content-Type-Options"), "nosniff");
        assert.equal(res.headers.get("Referrer-Policy"), "same-origin");
        assert.equal(res.headers.get("Cache-Control"), "no-store");
        const html = await res.text();
        assert.match(html, /^<!DOCTYPE html><html lang="en">/);
        const scripts = [...html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
        assert.ok(scripts.length >= 1);
        for (const [, attrs, body] of scripts) {
          // dashboard.js everywhere; passkeys.js where a page offers passkeys.
          assert.match(attrs, /src="\/assets\/(dashboard|passkeys)\.js"/);
          assert.equal(body.trim(), "");
        }
        assert.doesNotMatch(html, / on[a-z]+="/i, "inline event handler");
        assert.doesNotMatch(html, / style="/i, "inline style");
        assert.doesNotMatch(html, /https?:\/\/(?!localhost)/, "an off-site asset");
      });
    }
    await t.step("the static script and stylesheet are served with their types", async () => {
      const js = await ctx.app.request(`${BASE}/assets/dashboard.js`);
      assert.equal(js.headers.get("Content-Type"), "text/javascript; charset=utf-8");
      assert.equal(js.headers.get("X-Content-Type-Options"), "nosniff");
      assert.match(await js.text(), /data-copy-target/);
      const css = await ctx.app.request(`${BASE}/assets/dashboard.css`);
      assert.equal(css.headers.get("Content-Type"), "text/css; charset=utf-8");
      await css.body?.cancel();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the API keys page sends visitors without a session to sign in", async () => {
  const ctx = await makeTestApp();
  try {
    // Issue 22 item 7: "/" sends a browser that never signed in here to sign up instead.
    for (const [path, to] of [["/settings/api-keys", "/sign-in"], ["/", "/sign-up"]]) {
      const res = await ctx.app.request(`${BASE}${path}`);
      assert.equal(res.status, 303, path);
      assert.equal(res.headers.get("Location"), to);
    }
    const post = await ctx.app.request(`${BASE}/settings/api-keys`, form({ name: "x" }));
    assert.equal(post.status, 303);
    assert.equal(post.headers.get("Location"), "/sign-in");
  } finally {
    await ctx.close();
  }
});

Deno.test("the dashboard flow: generate a key shown once, use it, delete it", async (t) => {
  const ctx = await makeTestApp();
  try {
    const cookie = await signUpByForm(ctx.app);
    let key = "";
    let html = "";
    let location = "";
    await t.step("generating shows the key once with the copy button and the warning", async () => {
      const r = await postThenGet(ctx.app, cookie, "/settings/api-keys", {
        name: "staging",
        expiresInDays: "30",
      });
      html = r.html;
      location = r.location;
      key = shownKey(html) ?? "";
      assert.match(key, /^inb_[0-9A-Za-z]{42}$/);
      assert.ok(!r.location.includes(key) && !r.location.includes(key.slice(4, 14)));
      assert.match(html, /won&#39;t be shown again/);
      assert.match(html, /data-copy-target="new-key"/);
      assert.match(html, /<label for="new-key">/);
    });
    await t.step("the key works with the seed's request", async () => {
      assert.equal(await statusOf(ctx.app.request(`${BASE}/api/e2/domains`, bearer(key))), 200);
    });
    await t.step("reloading the page does not show the key again", async () => {
      // A reload repeats the GET of the redirect target: the flash was read once, so no key.
      const res = await ctx.app.request(`${BASE}${location}`, withCookie(cookie));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("Cache-Control"), "no-store");
      const page = await res.text();
      assert.equal(shownKey(page), null);
      assert.ok(!page.includes(key));
      assert.ok(page.includes(key.slice(0, 10)), "the key's start is listed");
      assert.match(page, /staging/);
      // It was just used, so it is no longer flagged as never used.
      assert.doesNotMatch(page, /Never used/);
    });
    await t.step("deleting it from the page stops it at once", async () => {
      const id = /action="\/settings\/api-keys\/(key_[0-9A-Za-z]{22})\/delete"/.exec(html)?.[1];
      assert.ok(id);
      const res = await ctx.app.request(
        `${BASE}/settings/api-keys/${id}/delete`,
        withCookieForm(cookie, {}),
      );
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("Location"), "/settings/api-keys?notice=deleted");
      assert.equal(await statusOf(ctx.app.request(`${BASE}/api/e2/domains`, bearer(key))), 401);
      const page = await (await ctx.app.request(
        `${BASE}/settings/api-keys?notice=deleted`,
        withCookie(cookie),
      )).text();
      assert.match(page, /API key deleted/);
      assert.match(page, /No API keys yet/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("rolling from the page shows the replacement once and keeps the old key for the grace", async () => {
  const ctx = await makeTestApp();
  try {
    const cookie = await signUpByForm(ctx.app);
    const { html: created } = await postThenGet(ctx.app, cookie, "/settings/api-keys", {
      name: "ci",
      expiresInDays: "",
    });
    const oldKey = shownKey(created) ?? "";
    const id = /\/settings\/api-keys\/(key_[0-9A-Za-z]{22})\/roll/.exec(created)?.[1];
    const { html, location } = await postThenGet(ctx.app, cookie, `/settings/api-keys/${id}/roll`, {
      expiresInHours: "1",
    });
    const again = await (await ctx.app.request(`${BASE}${location}`, withCookie(cookie))).text();
    assert.equal(shownKey(again), null, "a reload after rolling shows no key");
    const newKey = shownKey(html) ?? "";
    assert.match(newKey, /^inb_/);
    assert.notEqual(newKey, oldKey);
    assert.match(html, /the old key keeps working until/);
    assert.equal(await statusOf(ctx.app.request(`${BASE}/api/e2/domains`, bearer(oldKey))), 200);
    ctx.clock.advance(3_600_000);
    assert.equal(await statusOf(ctx.app.request(`${BASE}/api/e2/domains`, bearer(oldKey))), 401);
    assert.equal(await statusOf(ctx.app.request(`${BASE}/api/e2/domains`, bearer(newKey))), 200);
  } finally {
    await ctx.close();
  }
});

Deno.test("forms show readable errors and keep what was typed", async (t) => {
  const ctx = await makeTestApp({ config: { maxApiKeysPerAccount: 1 } });
  try {
    await t.step("a short password on sign-up", async () => {
      const res = await ctx.app.request(
        `${BASE}/sign-up`,
        form({ email: "kept@example.com", password: "short" }),
      );
      assert.equal(res.status, 400);
      const html = await res.text();
      assert.match(html, /role="alert"[^>]*>Password must be at least 12 characters\./);
      assert.match(html, /value="kept@example.com"/);
    });
    await t.step("a wrong password on sign-in", async () => {
      const res = await ctx.app.request(
        `${BASE}/sign-in`,
        form({ email: "nobody@example.com", password: "wrong password here" }),
      );
      assert.equal(res.status, 401);
      assert.match(await res.text(), /Invalid email or password\./);
    });
    const cookie = await signUpByForm(ctx.app);
    await t.step("a missing key name", async () => {
      const res = await ctx.app.request(
        `${BASE}/settings/api-keys`,
        withCookieForm(cookie, { name: "  " }),
      );
      assert.equal(res.status, 400);
      assert.match(await res.text(), /Name is required\./);
    });
    await t.step("the key cap", async () => {
      await statusOf(
        ctx.app.request(`${BASE}/settings/api-keys`, withCookieForm(cookie, { name: "one" })),
      );
      const res = await ctx.app.request(
        `${BASE}/settings/api-keys`,
        withCookieForm(cookie, { name: "two" }),
      );
      assert.equal(res.status, 409);
      const html = await res.text();
      assert.match(html, /at most 1 API keys\. Delete unused keys first\./);
      assert.equal(shownKey(html), null);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("dashboard forms posted from another origin are refused with 403 JSON", async (t) => {
  const ctx = await makeTestApp();
  try {
    const cookie = await signUpByForm(ctx.app);
    const evil = { Origin: "http://127.0.0.1:9999", "Sec-Fetch-Site": "same-site" };
    for (const path of ["/settings/api-keys", "/sign-out", "/sign-in"]) {
      await t.step(path, async () => {
        const res = await ctx.app.request(
          `${BASE}${path}`,
          withCookie(cookie, form({ name: "x" }, evil)),
        );
        assert.equal(res.status, 403);
        assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
        assert.equal((await res.json()).error, "Forbidden");
      });
    }
    await t.step("no key was created and the session is alive", async () => {
      const res = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
      assert.equal(res.status, 200);
      assert.deepEqual((await res.json()).data, []);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the key table marks unused and old keys with the action that fixes them", async (t) => {
  const now = Date.UTC(2026, 5, 1);
  const key = (over: Partial<ApiKeyView>): ApiKeyView => ({
    id: "key_" + "a".repeat(22),
    name: "k",
    start: "inb_abcdef",
    createdAt: new Date(now - DAY).toISOString(),
    lastUsedAt: new Date(now - DAY).toISOString(),
    lastUsedIp: null,
    expiresAt: null,
    ...grantOf(undefined),
    ...over,
  });
  await t.step("a recently used, young key has no flag", () => {
    assert.deepEqual(keyFlags(key({}), now), { flags: [], suggest: null });
  });
  await t.step("a key not used yet is not flagged in its first 7 days", () => {
    const fresh = (ms: number) =>
      key({ lastUsedAt: null, createdAt: new Date(now - ms).toISOString() });
    assert.deepEqual(keyFlags(fresh(60_000), now), { flags: [], suggest: null });
    assert.deepEqual(keyFlags(fresh(7 * DAY - 60_000), now), { flags: [], suggest: null });
    assert.equal(keyFlags(fresh(7 * DAY), now).suggest, "delete");
  });
  await t.step("a never-used key older than 7 days: delete unused keys", () => {
    const r = keyFlags(
      key({ lastUsedAt: null, createdAt: new Date(now - 8 * DAY).toISOString() }),
      now,
    );
    assert.deepEqual(r.flags.map((f) => f.label), ["Never used"]);
    assert.match(r.flags[0].advice, /Delete unused keys/);
    assert.equal(r.suggest, "delete");
  });
  await t.step("unused for 30 days: delete unused keys", () => {
    const r = keyFlags(key({ lastUsedAt: new Date(now - 30 * DAY).toISOString() }), now);
    assert.deepEqual(r.flags.map((f) => f.label), ["Unused for 30 days"]);
    assert.equal(r.suggest, "delete");
    assert.deepEqual(
      keyFlags(key({ lastUsedAt: new Date(now - 29 * DAY).toISOString() }), now).flags,
      [],
    );
  });
  await t.step("older than 90 days: rotate periodically", () => {
    const r = keyFlags(key({ createdAt: new Date(now - 91 * DAY).toISOString() }), now);
    assert.deepEqual(r.flags.map((f) => f.label), ["91 days old"]);
    assert.match(r.flags[0].advice, /Rotate keys periodically/);
    assert.equal(r.suggest, "roll");
  });
  await t.step("the page renders the flags and highlights the fixing action", async () => {
    const ctx = await makeTestApp({ config: { sessionTtlMs: 200 * DAY } });
    try {
      const cookie = await signUpByForm(ctx.app);
      await statusOf(
        ctx.app.request(`${BASE}/settings/api-keys`, withCookieForm(cookie, { name: "old" })),
      );
      ctx.clock.advance(91 * DAY);
      const html = await (await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie)))
        .text();
      assert.match(html, /Never used/);
      assert.match(html, /91 days old/);
      assert.match(html, /Rotate keys periodically/);
      // Never used wins: the suggested action is Delete, named with the key, described by the flag.
      assert.match(
        html,
        /<summary class="suggested" aria-label="Delete key old" aria-describedby="advice-key_[0-9A-Za-z]{22}">Delete…/,
      );
    } finally {
      await ctx.close();
    }
  });
});

Deno.test("the new key survives the redirect only through a short-lived, single-read flash", async (t) => {
  const ctx = await makeTestApp();
  try {
    const cookie = await signUpByForm(ctx.app);
    const other = await signUpByForm(ctx.app);
    const post = () =>
      ctx.app.request(`${BASE}/settings/api-keys`, withCookieForm(cookie, { name: "flash" }));
    await t.step("the flash is not readable by another account", async () => {
      const location = (await post()).headers.get("Location") ?? "";
      assert.match(location, FLASH_LOCATION);
      const html = await (await ctx.app.request(`${BASE}${location}`, withCookie(other))).text();
      assert.equal(shownKey(html), null);
      const own = await (await ctx.app.request(`${BASE}${location}`, withCookie(cookie))).text();
      assert.match(shownKey(own) ?? "", /^inb_/);
    });
    await t.step("a flash not read within 2 minutes shows nothing", async () => {
      const location = (await post()).headers.get("Location") ?? "";
      ctx.clock.advance(2 * 60_000 + 1);
      const html = await (await ctx.app.request(`${BASE}${location}`, withCookie(cookie))).text();
      assert.equal(shownKey(html), null);
    });
    await t.step("a made-up flash id shows nothing", async () => {
      const res = await ctx.app.request(
        `${BASE}/settings/api-keys?flash=fl_${"A".repeat(22)}`,
        withCookie(cookie),
      );
      assert.equal(res.status, 200);
      assert.equal(shownKey(await res.text()), null);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the API keys page is usable by keyboard and screen reader", async () => {
  const ctx = await makeTestApp();
  try {
    const cookie = await signUpByForm(ctx.app);
    const { html } = await postThenGet(ctx.app, cookie, "/settings/api-keys", {
      name: "production-server",
    });
    // Per-row actions carry the key's name.
    assert.match(html, /<summary[^>]* aria-label="Delete key production-server"/);
    assert.match(html, /<summary[^>]* aria-label="Roll key production-server"/);
    // The new-key panel can take focus, is focused on load and is announced.
    assert.match(html, /<section[^>]*id="new-key-panel"[^>]*tabindex="-1"[^>]*autofocus/);
    assert.match(html, /role="alert"[^>]*>\s*New API key production-server created/);
    // Popovers are marked for the served script (Escape, one at a time); no inline script.
    assert.equal([...html.matchAll(/<details class="(roll|delete) popover">/g)].length, 2);
    assert.doesNotMatch(html, /<script>/);
    const js = await (await ctx.app.request(`${BASE}/assets/dashboard.js`)).text();
    assert.match(js, /"Escape"/);
    assert.match(js, /data-autofocus/);
  } finally {
    await ctx.close();
  }
});

Deno.test("key hygiene marks: no focus-like ring, rolled pairs labelled, the cap visible", async (t) => {
  const ctx = await makeTestApp({ config: { maxApiKeysPerAccount: 4 } });
  try {
    const cookie = await signUpByForm(ctx.app);
    await t.step("the suggested action is not highlighted with a ring", async () => {
      const css = await (await ctx.app.request(`${BASE}/assets/dashboard.css`)).text();
      const rule = /summary\.suggested\s*\{([^}]*)\}/.exec(css)?.[1] ?? "";
      assert.notEqual(rule, "");
      assert.doesNotMatch(rule, /box-shadow|outline/);
    });
    const { html: created } = await postThenGet(ctx.app, cookie, "/settings/api-keys", {
      name: "ci",
    });
    const id = /\/settings\/api-keys\/(key_[0-9A-Za-z]{22})\/roll/.exec(created)?.[1];
    const oldStart = /<code>(inb_[0-9A-Za-z]+)…<\/code>/.exec(created)?.[1] ?? "";
    await t.step("a rolled key and its replacement say which replaced which", async () => {
      const { html } = await postThenGet(ctx.app, cookie, `/settings/api-keys/${id}/roll`, {
        expiresInHours: "1",
      });
      const starts = [...html.matchAll(/<code>(inb_[0-9A-Za-z]+)…<\/code>/g)].map((m) => m[1]);
      const newStart = starts.find((s) => s !== oldStart) ?? "";
      assert.ok(newStart);
      assert.match(html, new RegExp(`Replaced by ci \\(${newStart}…\\)`));
      assert.match(html, new RegExp(`Replaces ci \\(${oldStart}…\\)`));
    });
    await t.step("after the grace the marks are gone", async () => {
      ctx.clock.advance(3_600_000);
      const html = await (await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie)))
        .text();
      assert.doesNotMatch(html, /Replaced by|Replaces/);
    });
    await t.step("at the cap: a banner and a disabled, described button", async () => {
      await reauthenticate(ctx.app, cookie); // sudo mode: the clock moved an hour past sign-in
      await postThenGet(ctx.app, cookie, "/settings/api-keys", { name: "two" });
      const below = await (await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie)))
        .text();
      assert.doesNotMatch(below, /Key limit reached/);
      await postThenGet(ctx.app, cookie, "/settings/api-keys", { name: "three" });
      const html = await (await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie)))
        .text();
      assert.match(html, /id="key-cap" role="status"><strong>Key limit reached:<\/strong>/);
      assert.match(html, /<button type="submit" disabled(="")? aria-describedby="key-cap">/);
      const css = await (await ctx.app.request(`${BASE}/assets/dashboard.css`)).text();
      // Issue 14 item 7 (dark mode) moved colours into variables: the light theme's is #e4e7ed.
      assert.match(css, /button:disabled[^{]*\{[^}]*background: var\(--disabled-bg\)/);
      assert.match(css, /:root \{[^}]*--disabled-bg: #e4e7ed/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the dashboard's create form gives the key the scopes and restrictions it was filled in with", async (t) => {
  const ctx = await makeTestApp();
  try {
    const cookie = await signUpByForm(ctx.app);
    await t.step("read-only, one address, a tighter limit", async () => {
      const { html } = await postThenGet(ctx.app, cookie, "/settings/api-keys", {
        name: "monitoring",
        expiresInDays: "",
        scopes_present: "1",
        scope_domains_read: "on",
        allowedIps: "127.0.0.1/32, ::1",
        rateLimitMax: "5",
        rateLimitWindowSeconds: "1",
      });
      const key = html.match(/inb_[0-9A-Za-z]{20,}/)?.[0] ?? "";
      assert.ok(key, "the new key is shown once");
      const list = await (await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie)))
        .json();
      const made = list.data.find((k: { name: string }) => k.name === "monitoring");
      assert.deepEqual(made.scopes, ["domains:read"]);
      assert.deepEqual(made.allowedIps, ["127.0.0.1/32", "::1"]);
      assert.deepEqual(made.rateLimit, { max: 5, windowMs: 1000 });
      const log = await (await ctx.app.request(
        `${BASE}/api/e2/audit-log?action=api_key.created`,
        withCookie(cookie),
      )).json();
      const event = log.data.find((e: { target: { id: string } }) => e.target.id === made.id);
      assert.ok(event, "the dashboard's create is in the audit log");
      assert.equal(event.actor.type, "session");
    });
    await t.step(
      "a limit above the account's is refused with the reason, nothing made",
      async () => {
        const before = (await (await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie)))
          .json()).data.length;
        const res = await ctx.app.request(
          `${BASE}/settings/api-keys`,
          withCookieForm(cookie, { name: "greedy", rateLimitMax: "100000000" }),
        );
        assert.equal(res.status, 400);
        await res.body?.cancel();
        const after = (await (await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie)))
          .json()).data.length;
        assert.equal(after, before);
      },
    );
  } finally {
    await ctx.close();
  }
});
