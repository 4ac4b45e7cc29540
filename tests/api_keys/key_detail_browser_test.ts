/**
 * Issue 22 item 17 in Chromium: a key's detail page fits 1280x800 and 390x844 without sideways
 * scrolling, reads its last-use address, and axe finds nothing. The HTML is checked in
 * key_detail_test.ts; this is the one real-browser check.
 */
import assert from "node:assert/strict";
import { addUsage, DAY_MS, hourOf } from "../../store/usage.ts";
import { bearer, createAccountWithKey, makeTestApp } from "../_helpers.ts";
import { seedSession } from "../_hardening.ts";
import { launchBrowser, skipBrowserTests } from "../_browser.ts";
import { assertNoAxeViolations } from "../_axe.ts";
import { BASE, fromIp } from "../sessions_helpers.ts";

Deno.test({
  name: "a key's detail page fits both sizes, shows its last address, and axe finds nothing",
  ignore: skipBrowserTests("key detail browser test"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const ctx = await makeTestApp({ clock: () => Date.now() });
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, ctx.app.fetch);
    const browser = await launchBrowser();
    try {
      const a = await createAccountWithKey(ctx.kv, () => Date.now(), { keyName: "production" });
      const { cookie } = await seedSession(ctx.kv, a.userId, () => Date.now());
      const used = await ctx.app.request(
        `${BASE}/api/e2/domains`,
        bearer(a.key),
        fromIp("2001:db8:85a3::8a2e:370:7334"),
      );
      await used.body?.cancel();
      await ctx.app.idle();
      const now = Date.now();
      await addUsage(
        ctx.kv,
        Array.from({ length: 6 }, (_, d) => ({
          userId: a.userId,
          keyId: a.keyId,
          hourMs: hourOf(now) - d * 4 * DAY_MS,
          counts: [120 + 40 * d, 3, 0, 0] as [number, number, number, number],
        })),
        now,
      );
      const url = `http://127.0.0.1:${server.addr.port}`;
      const [name, value] = cookie.split("=");
      for (const [width, height] of [[1280, 800], [390, 844]]) {
        await t.step(`at ${width}x${height}`, async () => {
          const context = await browser.newContext({ viewport: { width, height } });
          await context.addCookies([{ name, value, url }]);
          const page = await context.newPage();
          await page.goto(`${url}/settings/api-keys`);
          await page.getByRole("link", { name: "production" }).first().click();
          await page.waitForURL(`${url}/settings/api-keys/${a.keyId}`);
          const from = await page.locator("[data-last-used-ip]").innerText();
          assert.equal(from.trim(), "2001:db8:85a3::8a2e:370:7334");
          assert.equal(await page.evaluate("document.documentElement.scrollWidth"), width);
          await assertNoAxeViolations(page, `key detail ${width}px`);
          await context.close();
        });
      }
    } finally {
      await browser.close();
      await server.shutdown();
      await ctx.close();
    }
  },
});
