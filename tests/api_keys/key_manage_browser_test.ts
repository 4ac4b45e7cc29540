/**
 * Issue 22, items 16 and 18, in real Chromium at 1280x800 and 390x844: the keys table is
 * searched with its GET form (Enter submits, the choice stays in the URL), and a key is edited
 * from its "Edit…" link: a refusal comes back with focus on the bad field and the values kept,
 * the saved change shows in the table. Both pages fit the width and pass axe.
 */
import assert from "node:assert/strict";
import { skipBrowserTests } from "../_browser.ts";
import { assertNoAxeViolations } from "../_axe.ts";
import { DESKTOP, liveDashboard, PHONE, scrollWidth } from "../_dashboard_browser.ts";

const skip = skipBrowserTests("key management browser tests");

Deno.test({
  name: "keys are searched and edited from the API Keys page",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await using live = await liveDashboard();
    const { url } = live;
    for (const viewport of [DESKTOP, PHONE]) {
      const context = await live.context({ viewport });
      const page = await context.newPage();
      const size = `${viewport.width}x${viewport.height}`;
      if (viewport === DESKTOP) {
        for (const name of ["web-app", "worker"]) {
          await page.goto(`${url}/settings/api-keys`);
          await page.locator("#key-name").fill(name);
          await page.getByRole("button", { name: "Generate API key" }).click();
          await page.locator("#new-key").waitFor();
        }
      }

      await t.step(`${size}: the search form filters on the server`, async () => {
        await page.goto(`${url}/settings/api-keys`);
        await page.getByLabel("Search").fill("work");
        await page.getByLabel("Search").press("Enter");
        await page.waitForURL(/[?&]q=work/);
        const edits = await page.locator("a.edit").allInnerTexts();
        assert.equal(edits.length, 1);
        assert.equal(await page.getByLabel("Search").inputValue(), "work");
        assert.ok(await scrollWidth(page) <= viewport.width, `${size} is too wide`);
        await assertNoAxeViolations(page, `filtered keys, ${size}`);
      });

      await t.step(`${size}: a refused edit keeps the values and focuses the field`, async () => {
        await page.getByRole("link", { name: "Edit key worker" }).click();
        await page.waitForURL(/\/edit$/);
        await page.locator("#key-name").fill("worker-eu");
        await page.getByLabel("Read the security log").check();
        await page.getByText("Restrictions (optional)").click();
        await page.getByLabel("Allowed addresses").fill("not-an-address");
        await page.getByRole("button", { name: "Save changes" }).click();
        await page.locator("#key-ips-error").waitFor();
        assert.equal(await page.evaluate("document.activeElement.id"), "key-ips");
        assert.equal(await page.locator("#key-name").inputValue(), "worker-eu");
        assert.equal(await page.getByLabel("Read the security log").isChecked(), true);
        assert.ok(await scrollWidth(page) <= viewport.width, `${size} is too wide`);
        await assertNoAxeViolations(page, `refused key edit, ${size}`);
      });

      await t.step(`${size}: the fixed edit is saved and shown`, async () => {
        await page.getByLabel("Allowed addresses").fill("");
        await page.getByLabel("Disabled").check();
        await page.getByRole("button", { name: "Save changes" }).click();
        await page.waitForURL(/notice=updated/);
        const row = page.locator("tr", {
          has: page.getByRole("link", { name: /Edit key worker/ }),
        });
        assert.match(await row.innerText(), /worker-eu[\s\S]*Disabled/);
        // The phone pass edits the same key back, so both passes start from "worker".
        await page.getByRole("link", { name: "Edit key worker-eu" }).click();
        await page.locator("#key-name").fill("worker");
        await page.getByLabel("Disabled").uncheck();
        await page.getByRole("button", { name: "Save changes" }).click();
        await page.waitForURL(/notice=updated/);
      });
      await context.close();
    }
  },
});
