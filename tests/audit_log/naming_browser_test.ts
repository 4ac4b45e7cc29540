/**
 * Issue 22 item 8 in Chromium: at 390x844 each row of the Security log and of the Sessions list
 * is a card whose every value shows its label (the column's name, `data-label`), the page does not
 * scroll sideways, and axe finds nothing; at 1280x800 they stay tables (labels in the header).
 * The log names the key "name (prefix…)" and the browser as the Sessions list does.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { skipBrowserTests } from "../_browser.ts";
import { assertNoAxeViolations } from "../_axe.ts";
import { DESKTOP, liveDashboard, PHONE, scrollWidth } from "../_dashboard_browser.ts";

const skip = skipBrowserTests("security log naming browser test");

/** The label each cell of the first row of `table` shows before its value ("" for none). */
async function shownLabels(page: Page, table: string): Promise<string[]> {
  return await page.evaluate(`[...document.querySelector(${JSON.stringify(table)})
    .tBodies[0].rows[0].cells].map((td) => {
      const content = getComputedStyle(td, "::before").content;
      return content === "none" || content === "normal" ? "" : content.replace(/^"|"$/g, "");
    })`) as string[];
}

Deno.test({
  name: "the Security log and Sessions label every value on a phone and name keys and browsers",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await using live = await liveDashboard();
    const { url } = live;
    for (const viewport of [PHONE, DESKTOP]) {
      const phone = viewport === PHONE;
      const context = await live.context({ viewport });
      const page = await context.newPage();
      const size = `${viewport.width}x${viewport.height}`;
      if (phone) {
        await page.goto(`${url}/settings/api-keys`);
        await page.getByLabel("Name", { exact: true }).fill("ci key");
        await page.getByRole("button", { name: "Generate API key" }).click();
        await page.locator("#new-key").waitFor();
      }

      await t.step(`Security log, ${size}`, async () => {
        await page.goto(`${url}/settings/security-log`);
        const labels = await shownLabels(page, "table.log");
        assert.deepEqual(
          labels,
          phone
            ? ["Time", "Event", "Target", "By", "Address", "Browser", "Outcome"]
            : ["", "", "", "", "", "", ""],
        );
        const first = await page.locator("table.log tbody tr").first().innerText();
        assert.match(first, /ci key \(inb_[A-Za-z0-9]+…\)/);
        assert.match(first, /HeadlessChrome|Headless Chrome/);
        assert.doesNotMatch(first, /Mozilla\/5\.0|ses_|key_/);
        assert.ok(await scrollWidth(page) <= viewport.width);
        await assertNoAxeViolations(page, `security log ${size}`);
      });

      await t.step(`Sessions, ${size}`, async () => {
        await page.goto(`${url}/settings/security`);
        const table = "section[aria-labelledby=sessions-title] table";
        const labels = await shownLabels(page, table);
        assert.deepEqual(
          labels.slice(0, 4),
          phone ? ["Browser", "Address", "Signed in", "Last seen"] : ["", "", "", ""],
        );
        assert.ok(await scrollWidth(page) <= viewport.width);
        await assertNoAxeViolations(page, `security ${size}`);
      });
      await context.close();
    }
  },
});
