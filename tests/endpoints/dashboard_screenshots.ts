/**
 * Regenerates the screenshots of an endpoint's page in Settings › Endpoints (desktop 1280x800 and
 * phone 390x844) just after a test delivery to a loopback receiver, in headless Chromium against
 * an in-process server (fake DNS, fake webhook resolver, ALLOW_PRIVATE_WEBHOOK_TARGETS=true):
 *
 *   deno run -A tests/endpoints/dashboard_screenshots.ts   # writes docs/screenshots/endpoints-*.png
 */
import { DESKTOP, PHONE } from "../_dashboard_browser.ts";
import { startWebhookReceiver } from "../_webhook_receiver.ts";
import { liveEndpoints } from "./_dashboard_browser.ts";

const OUT = new URL("../../docs/screenshots/", import.meta.url);

await Deno.mkdir(OUT, { recursive: true });
await using live = await liveEndpoints();
const receiver = await startWebhookReceiver({ body: '{"received":true}' });
live.ctx.hosts.set("localhost", ["127.0.0.1"]);
const url = `http://localhost:${receiver.port}/webhooks/inbound`;
try {
  for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
    const context = await live.context(viewport);
    const page = await context.newPage();
    await page.goto(`${live.url}/settings/endpoints`);
    await page.getByLabel("Name", { exact: true }).fill(`Support inbox (${size})`);
    await page.getByLabel("Webhook URL").fill(url);
    await page.getByLabel("Header 1 name").fill("X-Receiver-Token");
    await page.getByLabel("Header 1 value").fill("rt_live_4f9a2c");
    await page.getByRole("button", { name: "Create endpoint" }).click();
    await page.locator("#signing-secret").waitFor();
    receiver.setSecret(await page.locator("#signing-secret").inputValue());
    await page.getByRole("button", { name: "Send test" }).click();
    await page.locator("#test-result").waitFor();
    await page.screenshot({ path: new URL(`endpoints-${size}.png`, OUT).pathname, fullPage: true });
    await context.close();
  }
} finally {
  await receiver.close();
}
