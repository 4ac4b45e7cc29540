/**
 * A domain's e-mail addresses in real Chromium at 1280x800 and 390x844 (light and dark): the
 * section empty, a refused address (its field marked, the input kept), an added address routed to
 * an endpoint, its edit panel open, and the catch-all: 0 axe violations and no sideways scrolling.
 */
import assert from "node:assert/strict";
import { skipBrowserTests } from "../_browser.ts";
import { assertPageFits, eachLayout, liveEndpoints } from "../endpoints/_dashboard_browser.ts";

const skip = skipBrowserTests("domain addresses browser test");

Deno.test({
  name: "a domain's addresses work on a phone and a desktop with no axe violations",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await using live = await liveEndpoints();
    const { ctx, url } = live;
    let n = 0;
    await eachLayout(t, live, async (page, size, viewport) => {
      // An endpoint to route to, and a verified domain (its records in the fake DNS).
      n++;
      await page.goto(`${url}/settings/endpoints?type=email`);
      await page.getByLabel("Name", { exact: true }).fill(`Team ${n}`);
      await page.getByLabel("Forward to").fill(`team${n}@example.org`);
      await page.getByRole("button", { name: "Create endpoint" }).click();
      await page.waitForURL(/\/settings\/endpoints\/ep_/);
      await page.goto(`${url}/settings/domains`);
      await page.getByLabel("Domain name").fill(`mail${n}.example.com`);
      await page.getByRole("button", { name: "Add domain" }).click();
      await page.waitForURL(/\/settings\/domains\/dom_/);
      const domainPath = new URL(page.url()).pathname;
      const records = await page.locator("li.record").count();
      assert.ok(records >= 2);
      const id = domainPath.split("/").at(-1)!;
      const api = await page.request.get(`${url}/api/e2/domains/${id}`);
      ctx.dns.publish((await api.json()).dnsRecords);
      ctx.clock.advance(60_000);
      await page.getByRole("button", { name: "Check DNS records now" }).click();
      await page.waitForURL(/flash=/);
      await assertPageFits(page, `a domain, no addresses, ${size}`, viewport);

      // A refused address: marked, kept.
      await page.getByLabel("Address", { exact: true }).fill("not valid");
      await page.getByRole("button", { name: "Add address" }).click();
      await page.locator("#address-local[aria-invalid=true]").waitFor();
      assert.equal(await page.getByLabel("Address", { exact: true }).inputValue(), "not valid");
      await assertPageFits(page, `refused address, ${size}`, viewport);

      // Added, routed to the endpoint.
      await page.getByLabel("Address", { exact: true }).fill("support");
      await page.locator("#address-endpoint").selectOption({ label: `Team ${n} (forward)` });
      await page.getByRole("button", { name: "Add address" }).click();
      await page.getByText(`Added support@mail${n}.example.com.`).waitFor();
      await page.getByRole("link", { name: `Team ${n}` }).waitFor();
      await assertPageFits(page, `an address added, ${size}`, viewport);

      // Its edit panel, open; the catch-all set.
      await page.getByText("Edit…").click();
      await page.getByRole("button", { name: `Save support@mail${n}.example.com` }).waitFor();
      await assertPageFits(page, `edit panel open, ${size}`, viewport);
      await page.keyboard.press("Escape");
      await page.locator("#catch-all-endpoint").selectOption({ label: `Team ${n} (forward)` });
      await page.getByRole("button", { name: "Save catch-all" }).click();
      await page.getByText(/^Catch-all on/).waitFor();
      await assertPageFits(page, `catch-all on, ${size}`, viewport);
    });
  },
});
