/**
 * Regenerates the README screenshots (desktop 1280x800 and phone 390x844) of Settings › API Keys,
 * Settings › Domains and Settings › Security (enrolling an authenticator app) in headless
 * Chromium, against an in-process server with a fake DNS:
 *
 *   deno run -A tests/dashboard/screenshots.ts      # writes docs/screenshots/{api-keys,domains,security}-*.png
 */
import type { Page } from "playwright-core";
import { addDomainInPage, DESKTOP, liveDashboard, PHONE } from "../_dashboard_browser.ts";
import { TEST_PASSWORD } from "../_helpers.ts";

const OUT = new URL("../../docs/screenshots/", import.meta.url);

async function generateKey(page: Page, name: string, expires: string): Promise<void> {
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Expires").selectOption({ label: expires });
  await page.getByRole("button", { name: "Generate API key" }).click();
  await page.locator("#new-key").waitFor({ timeout: 5000 }).catch(async (e) => {
    console.log(
      (await page.content()).replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").slice(0, 1500),
    );
    throw e;
  });
}

await Deno.mkdir(OUT, { recursive: true });
await using live = await liveDashboard();
const { url, ctx } = live;

// The data: two keys, three domains (one verified and receiving, one verified through its parent,
// one pending), with a DNS check behind them.
{
  const context = await live.context({ viewport: DESKTOP });
  const page = await context.newPage();
  await page.goto(`${url}/settings/api-keys`);
  await generateKey(page, "staging", "In 30 days");
  const parent = await addDomainInPage(page, url, "example.com");
  const id = parent.split("/").at(-1)!;
  const records = await page.evaluate(`fetch("/api/e2/domains/${id}").then((r) => r.json())`) as {
    dnsRecords: { recordType: string; name: string; value: string }[];
  };
  ctx.resolver.publish(records.dnsRecords);
  await page.getByRole("button", { name: "Check DNS records now" }).click();
  await page.waitForURL(/flash=/);
  await addDomainInPage(page, url, "support.example.com");
  await addDomainInPage(page, url, "mail.example.org");
  await context.close();
}

for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
  const context = await live.context({ viewport });
  const page = await context.newPage();
  await page.goto(`${url}/settings/api-keys`);
  await generateKey(page, `production-${size}`, "Never");
  await page.screenshot({ path: new URL(`api-keys-${size}.png`, OUT).pathname, fullPage: true });
  await page.goto(`${url}/settings/domains`);
  await page.screenshot({ path: new URL(`domains-${size}.png`, OUT).pathname, fullPage: true });
  const first = page.locator("a.domain-name", { hasText: /^example\.com$/ });
  await first.click();
  await page.waitForURL(/\/settings\/domains\/dom_/);
  await page.screenshot({
    path: new URL(`domain-records-${size}.png`, OUT).pathname,
    fullPage: true,
  });
  // Settings › Security while enrolling an authenticator app: the server-rendered QR code.
  await page.goto(`${url}/settings/security`);
  if (size === "desktop") {
    await page.locator("#enable-two-factor-password").fill(TEST_PASSWORD);
    await page.getByRole("button", { name: "Set up an authenticator app" }).click();
    await page.locator("#totp-qr").waitFor();
  }
  await page.screenshot({ path: new URL(`security-${size}.png`, OUT).pathname, fullPage: true });
  await context.close();
}
console.log(`screenshots written to ${OUT.pathname}`);
