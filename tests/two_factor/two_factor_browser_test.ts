/**
 * Two-factor authentication in real headless Chromium against the real server: enrol from
 * Settings > Security (the QR code is an SVG on the page; the key shown beside it feeds otpauth
 * here, as an authenticator app would), the recovery codes shown once with a download, sign out,
 * then sign in with the password and a code. Skipped without the browser on a developer's machine.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import type { Browser } from "playwright-core";
import { removeKvFile, startServer, tempKvPath, TEST_PASSWORD } from "../_helpers.ts";
import { launchBrowser, skipBrowserTests } from "../_browser.ts";

const skip = skipBrowserTests("two-factor browser test");

function sequence(t: Deno.TestContext) {
  let ok = true;
  return async (name: string, fn: () => Promise<void>) => {
    if (ok) ok = await t.step(name, fn);
  };
}

/** A code from a step not used yet: waits for the next 30-second step if `used` is current. */
async function freshCode(totp: OTPAuth.TOTP, used: Set<string>): Promise<string> {
  for (;;) {
    const code = totp.generate();
    if (!used.has(code)) {
      used.add(code);
      return code;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

Deno.test({
  name: "in a real browser: enrol an authenticator with the QR page, then sign in with a code",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const step = sequence(t);
    const kvPath = await tempKvPath();
    const server = await startServer({ DENO_KV_PATH: kvPath });
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser();
      const base = server.url;
      const email = "totp-in-browser@example.com";
      const page = await (await browser.newContext({ acceptDownloads: true })).newPage();
      const used = new Set<string>();
      let totp: OTPAuth.TOTP | undefined;

      await step("sign up; Settings › Security recommends a second factor", async () => {
        await page.goto(`${base}/sign-up`);
        await page.getByLabel("Email").fill(email);
        await page.getByLabel("Password").fill(TEST_PASSWORD);
        await page.getByRole("button", { name: "Create account" }).click();
        await page.waitForURL(`${base}/settings/api-keys`);
        await page.goto(`${base}/settings/security`);
        assert.match(
          await page.locator("#two-factor-recommendation").innerText(),
          /password alone/,
        );
      });

      await step(
        "set up shows a server-rendered QR code and the key; no recovery codes yet",
        async () => {
          await page.locator("#enable-two-factor-password").fill(TEST_PASSWORD);
          await page.getByRole("button", { name: "Set up an authenticator app" }).click();
          await page.waitForURL(`${base}/settings/security#two-factor`);
          assert.equal(await page.locator("#totp-qr svg").count(), 1);
          const secret = (await page.locator("#totp-secret").innerText()).trim();
          totp = new OTPAuth.TOTP({
            secret: OTPAuth.Secret.fromBase32(secret),
            algorithm: "SHA1",
            digits: 6,
            period: 30,
          });
          // Issue 22 item 9: codes come once the app is proven, so a reload here loses nothing.
          assert.equal(await page.locator("#recovery-codes").count(), 0);
          await page.reload();
          assert.equal(await page.locator("#totp-qr svg").count(), 1);
        },
      );

      await step("entering the app's code turns two-factor on and shows the codes", async () => {
        await page.locator("#enrol-code").fill(await freshCode(totp!, used));
        await page.getByRole("button", { name: "Turn on" }).click();
        await page.waitForURL(/\/settings\/security\?notice=two-factor-on&codes=.*#two-factor$/);
        assert.match(await page.locator("#two-factor-status").innerText(), /On/);
        assert.equal(await page.locator("#recovery-codes li").count(), 10);
        const download = page.waitForEvent("download");
        await page.locator("#download-recovery-codes").click();
        const file = await download;
        assert.equal(file.suggestedFilename(), "inbound-recovery-codes.txt");
      });

      await step("the codes are shown once: a reload no longer has them", async () => {
        await page.reload();
        assert.equal(await page.locator("#recovery-codes").count(), 0);
      });

      await step(
        "sign out, then the password leads to the code page, not the dashboard",
        async () => {
          await page.getByRole("button", { name: "Sign out" }).first().click();
          await page.waitForURL(/\/sign-in/);
          await page.getByLabel("Email").fill(email);
          await page.getByLabel("Password").fill(TEST_PASSWORD);
          await page.getByRole("button", { name: "Sign in", exact: true }).click();
          await page.waitForURL(`${base}/sign-in/two-factor`);
          const res = await page.request.get(`${base}/api/auth/get-session`);
          assert.equal(await res.text(), "null");
        },
      );

      await step("a wrong code is refused on the page", async () => {
        await page.getByLabel("Authentication code").fill("000000");
        await page.getByRole("button", { name: "Verify" }).click();
        assert.match(await page.locator("#form-error").innerText(), /Invalid code/);
      });

      await step("the right code signs in", async () => {
        await page.getByLabel("Authentication code").fill(await freshCode(totp!, used));
        await page.getByRole("button", { name: "Verify" }).click();
        await page.waitForURL(`${base}/settings/api-keys`);
        const res = await page.request.get(`${base}/api/auth/get-session`);
        assert.equal((await res.json()).user.email, email);
      });
    } finally {
      await browser?.close();
      await server.stop();
      await removeKvFile(kvPath);
    }
  },
});
