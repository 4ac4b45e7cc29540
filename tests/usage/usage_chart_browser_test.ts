/**
 * Issue 22 item 10: the usage chart's labels keep a readable size whatever the screen (they used
 * to scale with the SVG: ≈23 px at 1280, ≈6 px at 390), the by-day table lists only days with
 * traffic inside a card, and a key without traffic says "no use yet" instead of drawing a flat
 * line that reads as a stray underline. App-level HTML checks first, then one browser test.
 */
import assert from "node:assert/strict";
import { addUsage, DAY_MS, hourOf } from "../../store/usage.ts";
import { createAccountWithKey, makeTestApp } from "../_helpers.ts";
import { seedSession } from "../_hardening.ts";
import { launchBrowser, skipBrowserTests } from "../_browser.ts";
import { assertNoAxeViolations } from "../_axe.ts";
import { BASE, withCookie } from "../sessions_helpers.ts";

Deno.test("Usage page: by-day lists days with traffic in a card; an idle key says no use yet", async (t) => {
  const ctx = await makeTestApp();
  try {
    const a = await createAccountWithKey(ctx.kv, ctx.clock, { keyName: "busy" });
    await createAccountWithKey(ctx.kv, ctx.clock, { keyName: "other" });
    const { cookie } = await seedSession(ctx.kv, a.userId, ctx.clock);
    const now = ctx.clock();
    await addUsage(ctx.kv, [
      { userId: a.userId, keyId: a.keyId, hourMs: hourOf(now), counts: [3, 1, 0, 0] },
      { userId: a.userId, keyId: a.keyId, hourMs: hourOf(now) - 4 * DAY_MS, counts: [2, 0, 0, 0] },
    ], now);
    const html = await (await ctx.app.request(`${BASE}/settings/usage`, withCookie(cookie))).text();
    await t.step("only the two days with traffic are rows, and the table is in a card", () => {
      assert.equal((html.match(/<tr><td data-label="Day">/g) ?? []).length, 2);
      assert.match(html, /<section class="card" aria-labelledby="usage-table-heading">/);
    });
    await t.step("with no traffic at all the section says so instead of a table", async () => {
      const b = await createAccountWithKey(ctx.kv, ctx.clock, { keyName: "idle" });
      const s = await seedSession(ctx.kv, b.userId, ctx.clock);
      const res = await ctx.app.request(`${BASE}/settings/usage`, withCookie(s.cookie));
      const idle = await res.text();
      assert.equal((idle.match(/<tr><td data-label="Day">/g) ?? []).length, 0);
      assert.match(idle, /No requests in the last 30 days/);
      assert.match(idle, /no use yet/);
      assert.doesNotMatch(idle, /<svg class="sparkline"/);
    });
  } finally {
    await ctx.close();
  }
});

/** Each chart label's rendered font size in CSS px (an SVG text's size times the SVG's scale). */
const LABEL_SIZES =
  `[...document.querySelectorAll(".usage-chart text, .usage-figure .axis-label:not(:empty)")]
  .map((el) => {
    const size = parseFloat(getComputedStyle(el).fontSize);
    const scale = el instanceof SVGElement ? el.ownerSVGElement.getScreenCTM().a : 1;
    return Math.round(size * scale * 10) / 10;
  })`;

Deno.test({
  name: "the usage chart's labels are 11-16 px at 1280 and at 390 px, and axe finds nothing",
  ignore: skipBrowserTests("usage chart browser test"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const ctx = await makeTestApp({ clock: () => Date.now() });
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, ctx.app.fetch);
    const browser = await launchBrowser();
    try {
      const a = await createAccountWithKey(ctx.kv, () => Date.now(), { keyName: "production" });
      const { cookie } = await seedSession(ctx.kv, a.userId, () => Date.now());
      const now = Date.now();
      await addUsage(
        ctx.kv,
        Array.from({ length: 10 }, (_, d) => ({
          userId: a.userId,
          keyId: a.keyId,
          hourMs: hourOf(now) - d * 3 * DAY_MS,
          counts: [500 + 90 * d, 10, d === 2 ? 40 : 0, 0] as [number, number, number, number],
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
          await page.goto(`${url}/settings/usage`);
          const sizes = await page.evaluate(LABEL_SIZES) as number[];
          assert.ok(sizes.length >= 5, `labels found: ${JSON.stringify(sizes)}`);
          assert.ok(
            sizes.every((s) => s >= 11 && s <= 16),
            `label sizes at ${width}px: ${JSON.stringify(sizes)}`,
          );
          assert.equal(await page.evaluate("document.documentElement.scrollWidth"), width);
          await assertNoAxeViolations(page, `usage chart ${width}px`);
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
