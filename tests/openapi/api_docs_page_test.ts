/**
 * The interactive API reference at /api/e2/docs: Swagger UI from npm served by this server only
 * (no CDN, no inline script), and its try-it calls the API with a Bearer key in real Chromium.
 */
import assert from "node:assert/strict";
import { ASSETS_PREFIX } from "../../routes/openapi/docs_page.ts";
import { skipBrowserTests } from "../_browser.ts";
import { assertNoAxeViolations } from "../_axe.ts";
import { createAccountWithKey, makeTestApp } from "../_helpers.ts";
import { DESKTOP, liveDashboard, PHONE, scrollWidth, waitForDocs } from "../_dashboard_browser.ts";

Deno.test("the docs page loads only scripts and styles of this server, under a strict CSP", async (t) => {
  const ctx = await makeTestApp();
  try {
    const res = await ctx.app.request("/api/e2/docs");
    const html = await res.text();

    await t.step("200 HTML whose CSP allows no inline script or style and no other origin", () => {
      assert.equal(res.status, 200);
      assert.match(res.headers.get("Content-Type") ?? "", /^text\/html; charset=utf-8/);
      const csp = res.headers.get("Content-Security-Policy") ?? "";
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /style-src 'self'(;|$)/);
      assert.match(csp, /connect-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:|\*/);
    });

    await t.step("every script has a same-origin src, and there is no inline script", () => {
      const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
      assert.ok(scripts.length >= 2);
      for (const [, attrs, body] of scripts) {
        assert.match(attrs, /src="\/[^/]/);
        assert.equal(body.trim(), "");
      }
      assert.doesNotMatch(html, /<style|style="|(src|href)="(https?:)?\/\//);
    });

    await t.step(
      "the bundle, its CSS and the init script are served without credentials",
      async () => {
        const urls = [...html.matchAll(/(?:src|href)="(\/assets\/api-docs\/[^"]+)"/g)].map((m) =>
          m[1]
        );
        assert.deepEqual(urls.sort(), [
          `${ASSETS_PREFIX}/init.js`,
          `${ASSETS_PREFIX}/overrides.css`,
          `${ASSETS_PREFIX}/swagger-ui-bundle.js`,
          `${ASSETS_PREFIX}/swagger-ui.css`,
        ]);
        for (const url of urls) {
          const asset = await ctx.app.request(url);
          assert.equal(asset.status, 200, url);
          assert.match(
            asset.headers.get("Content-Type") ?? "",
            url.endsWith(".js") ? /^text\/javascript/ : /^text\/css/,
          );
          assert.equal(asset.headers.get("X-Content-Type-Options"), "nosniff");
          assert.ok((await asset.text()).length > 500, url);
        }
        const bundle = await (await ctx.app.request(`${ASSETS_PREFIX}/swagger-ui-bundle.js`))
          .text();
        assert.ok(bundle.length > 1_000_000, "the whole Swagger UI bundle");
        const zipped = await ctx.app.request(`${ASSETS_PREFIX}/swagger-ui-bundle.js`, {
          headers: { "Accept-Encoding": "gzip, br" },
        });
        assert.equal(zipped.headers.get("Content-Encoding"), "gzip");
        const packed = new Uint8Array(await zipped.arrayBuffer());
        assert.ok(packed.length < bundle.length / 2, `${packed.length} bytes gzipped`);
        const unpacked = new Response(
          new Blob([packed]).stream().pipeThrough(new DecompressionStream("gzip")),
        );
        assert.equal(await unpacked.text(), bundle);
        const missing = await ctx.app.request(`${ASSETS_PREFIX}/nope.js`);
        assert.equal(missing.status, 404);
        await missing.body?.cancel();
      },
    );

    await t.step("the page links the plain rendering for readers without JavaScript", async () => {
      assert.match(html, /<noscript>[\s\S]*href="\/api\/e2\/docs\?view=plain"/);
      const plain = await ctx.app.request("/api/e2/docs?view=plain");
      assert.equal(plain.status, 200);
      assert.doesNotMatch(await plain.text(), /<script/);
    });
  } finally {
    await ctx.close();
  }
});

const skip = skipBrowserTests("API docs browser tests");

Deno.test({
  name:
    "in Chromium the reference loads from this origin only and try-it lists domains with a Bearer key",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await using live = await liveDashboard();
    const { key } = await createAccountWithKey(live.ctx.kv, live.ctx.clock);
    const context = await live.context({ viewport: DESKTOP, signedOut: true });
    const page = await context.newPage();
    const requested: string[] = [];
    const cspErrors: string[] = [];
    page.on("request", (r) => void requested.push(r.url()));
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) cspErrors.push(m.text());
    });

    await t.step("every request goes to this server and nothing breaks the CSP", async () => {
      await page.goto(`${live.url}/api/e2/docs`);
      await waitForDocs(page);
      const foreign = requested.filter((u) =>
        !u.startsWith(`${live.url}/`) && !u.startsWith("data:")
      );
      assert.deepEqual(foreign, []);
      assert.ok(requested.some((u) => u.endsWith("/swagger-ui-bundle.js")));
      assert.ok(requested.some((u) => u.endsWith("/api/e2/openapi.json")));
      assert.deepEqual(cspErrors, []);
    });

    await t.step("it passes axe", async () => {
      await assertNoAxeViolations(page, "API docs, 1280x800");
    });

    await t.step("Authorize with the key, then try GET /api/e2/domains: 200", async () => {
      await page.getByRole("button", { name: /Authorize/ }).first().click();
      const dialog = page.locator(".modal-ux");
      await dialog.waitFor();
      await assertNoAxeViolations(page, "API docs, Authorize dialog");
      const bearer = dialog.locator(".auth-container", { hasText: "bearerAuth" });
      await bearer.locator("#auth-bearer-value").fill(key);
      await bearer.getByRole("button", { name: "Authorize bearerAuth" }).click();
      await bearer.getByRole("button", { name: "Close" }).click();
      await dialog.waitFor({ state: "detached" });
      const op = page.locator("#operations-Domains-listDomains");
      await op.locator(".opblock-summary-control").click();
      await op.getByRole("button", { name: "Try it out" }).click();
      const sent = page.waitForRequest((r) =>
        r.url().startsWith(`${live.url}/api/e2/domains`) && r.method() === "GET"
      );
      await op.getByRole("button", { name: "Execute" }).click();
      const request = await sent;
      assert.equal(request.headers()["authorization"], `Bearer ${key}`);
      const status = op.locator(".live-responses-table .response .response-col_status").first();
      await status.waitFor();
      assert.equal((await status.innerText()).trim(), "200");
      assert.match(await op.locator(".live-responses-table").innerText(), /"pagination"/);
    });

    await t.step("after try-it the page still fits a phone and passes axe", async () => {
      await page.setViewportSize(PHONE);
      assert.ok(await scrollWidth(page) <= PHONE.width, `${await scrollWidth(page)} px wide`);
      await assertNoAxeViolations(page, "API docs after try-it, 390x844");
    });
    await context.close();
  },
});
