/**
 * Issue 22, item 12 (the 404 part): a mistyped dashboard address answers an HTML page with the
 * navigation (the settings links when signed in, sign-in links otherwise), while `/api/*` and
 * `/healthz` keep the JSON error shape.
 */
import assert from "node:assert/strict";
import { makeTestApp } from "../_helpers.ts";
import { BASE, signUp, withCookie } from "../sessions_helpers.ts";

const JSON_404 = { error: "Not Found", message: "Not found.", statusCode: 404 };

Deno.test("a mistyped dashboard address is an HTML 404 page; the API keeps its JSON", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);

    await t.step("signed out: the page, with sign-in links and the security headers", async () => {
      for (const path of ["/nope", "/settings-typo", "/assets/nope.css", "/sign-in/nope"]) {
        const res = await ctx.app.request(`${BASE}${path}`);
        assert.equal(res.status, 404, path);
        assert.equal(res.headers.get("Content-Type"), "text/html; charset=utf-8");
        assert.match(res.headers.get("Content-Security-Policy") ?? "", /default-src 'none'/);
        const html = await res.text();
        assert.match(html, /<h1>Page not found<\/h1>/);
        assert.ok(html.includes(`<code id="not-found-path">${path}</code>`), path);
        assert.match(html, /href="\/sign-in"/);
        assert.doesNotMatch(html, /aria-label="Settings"/);
      }
    });

    await t.step("signed in: the settings navigation and sign-out", async () => {
      for (const path of ["/settings/nope", "/settings/api-keys/x/y/z", "/nope"]) {
        const res = await ctx.app.request(`${BASE}${path}`, withCookie(cookie));
        assert.equal(res.status, 404, path);
        const html = await res.text();
        assert.match(html, /<nav class="settings" aria-label="Settings">/);
        assert.match(html, /action="\/sign-out"/);
        assert.match(html, /href="\/settings\/api-keys">Go to API Keys</);
      }
    });

    await t.step("/api/* and /healthz stay JSON, with or without a session", async () => {
      for (const path of ["/api/nope", "/api/auth/nope", "/api/e2/nope", "/api/v2/nope"]) {
        const res = await ctx.app.request(`${BASE}${path}`, withCookie(cookie));
        assert.equal(res.status, 404, path);
        assert.deepEqual(await res.json(), JSON_404, path);
      }
      for (const path of ["/api/nope", "/api/auth/nope"]) {
        const res = await ctx.app.request(`${BASE}${path}`);
        assert.deepEqual(await res.json(), JSON_404, path);
      }
      // No credential under /api/e2: the API's 401, JSON as before.
      const anonymous = await ctx.app.request(`${BASE}/api/e2/nope`);
      assert.equal(anonymous.status, 401);
      assert.match(anonymous.headers.get("Content-Type") ?? "", /^application\/json/);
      await anonymous.body?.cancel();
      const health = await ctx.app.request(`${BASE}/healthz`, { method: "DELETE" });
      assert.equal(health.status, 405);
      assert.equal((await health.json()).statusCode, 405);
    });
  } finally {
    await ctx.close();
  }
});
