/**
 * Settings › Endpoints in real Chromium at 1280x800 and 390x844 (light and dark): create a
 * webhook (the secret panel), a refused form (its field marked), a test against a loopback
 * receiver with its result, the list and the delete panel: 0 axe violations and no sideways
 * scrolling on each.
 */
import assert from "node:assert/strict";
import { skipBrowserTests } from "../_browser.ts";
import { startWebhookReceiver } from "../_webhook_receiver.ts";
import { assertPageFits, eachLayout, liveEndpoints } from "./_dashboard_browser.ts";

const skip = skipBrowserTests("Settings › Endpoints browser test");

Deno.test({
  name: "Settings › Endpoints works on a phone and a desktop with no axe violations",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await using live = await liveEndpoints();
    const receiver = await startWebhookReceiver({
      body: '{"ok":true,"note":"' + "x".repeat(300) + '"}',
    });
    try {
      let n = 0;
      await eachLayout(t, live, async (page, size, viewport) => {
        await page.goto(`${live.url}/settings/endpoints`);
        await assertPageFits(page, `endpoints list, ${size}`, viewport);

        // A refused form: the field marked, the input kept.
        await page.getByLabel("Name", { exact: true }).fill(`Hook ${++n}`);
        await page.getByLabel("Webhook URL").fill("ftp://example.com/x");
        await page.getByRole("button", { name: "Create endpoint" }).click();
        await page.locator("#create-url[aria-invalid=true]").waitFor();
        assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), `Hook ${n}`);
        await assertPageFits(page, `refused create form, ${size}`, viewport);

        // Create: the secret panel, once.
        await page.getByLabel("Webhook URL").fill(receiver.url);
        await page.getByLabel("Header 1 name").fill("X-Token");
        await page.getByLabel("Header 1 value").fill("secret-token");
        await page.getByRole("button", { name: "Create endpoint" }).click();
        await page.locator("#signing-secret").waitFor();
        const secret = await page.locator("#signing-secret").inputValue();
        assert.match(secret, /^whsec_/);
        await assertPageFits(page, `new endpoint with its secret, ${size}`, viewport);

        // Test: the receiver verifies the signature, the page shows the result.
        receiver.setSecret(secret);
        const before = receiver.received.length;
        await page.getByRole("button", { name: "Send test" }).click();
        await page.locator("#test-result").waitFor();
        assert.equal(receiver.received.length, before + 1);
        assert.equal(receiver.received.at(-1)?.verified, true);
        assert.equal(await page.locator("#test-status").textContent(), "200");
        await assertPageFits(page, `test result, ${size}`, viewport);

        // The delete and roll panels open in place.
        await page.getByText(/^Delete Hook \d+…$/).click();
        await page.getByRole("button", { name: /Delete endpoint Hook \d+ now/ }).waitFor();
        await assertPageFits(page, `delete panel open, ${size}`, viewport);

        await page.goto(`${live.url}/settings/endpoints?type=email_group`);
        await assertPageFits(page, `list with endpoints, group form, ${size}`, viewport);
      });
    } finally {
      await receiver.close();
    }
  },
});
