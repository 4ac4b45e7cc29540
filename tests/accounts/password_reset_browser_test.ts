/**
 * Password reset in real headless Chromium (Debian's /usr/bin/chromium, playwright-core) against
 * the real server (`deno task start`) configured with SMTP_URL for an in-process SMTP server: the
 * "Forgot password?" link, the request page, the mailed link followed in the browser, the reset
 * page, and every earlier session signed out. As tests/dashboard/browser_test.ts: skipped without the
 * browser on a developer's machine, a failure in CI.
 */
import assert from "node:assert/strict";
import type { Browser } from "playwright-core";
import { removeKvFile, startServer, tempKvPath, TEST_PASSWORD } from "../_helpers.ts";
import { linkIn, startSmtpSink } from "../_smtp_sink.ts";
import { launchBrowser, skipBrowserTests } from "../_browser.ts";

const skip = skipBrowserTests("password-reset browser test");

/** Steps that stop at the first failure: later steps depend on earlier ones. */
function sequence(t: Deno.TestContext) {
  let ok = true;
  return async (name: string, fn: () => Promise<void>) => {
    if (ok) ok = await t.step(name, fn);
  };
}

Deno.test({
  name: "in a real browser: forgot password, the mailed link, a new password, every session ended",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const step = sequence(t);
    await using smtp = await startSmtpSink();
    const kvPath = await tempKvPath();
    const smtpUrl = `smtp://${smtp.user}:${smtp.pass}@127.0.0.1:${smtp.config.port}`;
    const server = await startServer({
      DENO_KV_PATH: kvPath,
      SMTP_URL: smtpUrl,
      MAIL_FROM: "Inbound <no-reply@example.test>",
    });
    let browser: Browser | undefined;
    try {
      browser = await launchBrowser();
      const base = server.url;
      const email = "reset-in-browser@example.com";
      const newPassword = "a new password from the link";
      const first = await (await browser.newContext()).newPage();
      const second = await (await browser.newContext()).newPage();
      let token = "";

      await step("sign up in one browser", async () => {
        await first.goto(`${base}/sign-up`);
        await first.getByLabel("Email").fill(email);
        await first.getByLabel("Password").fill(TEST_PASSWORD);
        await first.getByRole("button", { name: "Create account" }).click();
        await first.waitForURL(`${base}/settings/api-keys`);
      });

      await step(
        "in another, 'Forgot password?' asks for the email and says mail is sent",
        async () => {
          await second.goto(`${base}/sign-in`);
          await second.getByRole("link", { name: "Forgot password?" }).click();
          await second.waitForURL(`${base}/forgot-password`);
          await second.getByLabel("Email").fill(email);
          await second.getByRole("button", { name: "Send the reset link" }).click();
          await second.waitForURL(`${base}/forgot-password?notice=reset-sent`);
          assert.match(await second.locator(".alert.ok").innerText(), /reset link is on its way/);
        },
      );

      await step("the mail arrives over SMTP with a link to this server", async () => {
        const mail = await smtp.waitForMatching(/reset the password/);
        assert.deepEqual(mail.to, [email]);
        const link = linkIn(mail);
        assert.equal(link.origin, base);
        token = link.searchParams.get("token") ?? "";
        await second.goto(link.href);
      });

      await step("the reset page sets the new password and sends to sign-in", async () => {
        await second.getByLabel("New password").fill(newPassword);
        await second.getByRole("button", { name: "Set the new password" }).click();
        await second.waitForURL(`${base}/sign-in?notice=password-reset`);
        assert.match(await second.locator(".alert.ok").innerText(), /Password changed/);
      });

      await step("the first browser's session is over", async () => {
        await first.goto(`${base}/settings/api-keys`);
        await first.waitForURL(/\/sign-in\?notice=session-expired&next=%2Fsettings%2Fapi-keys$/);
      });

      await step("the link does not work twice", async () => {
        const res = await second.goto(
          linkIn(await smtp.waitForMatching(/reset the password/)).href,
        );
        assert.equal(res?.status(), 400);
        assert.match(
          await second.locator("#reset-invalid").innerText(),
          /invalid, used or expired/,
        );
      });

      await step("the new password signs in", async () => {
        await second.goto(`${base}/sign-in`);
        await second.getByLabel("Email").fill(email);
        await second.getByLabel("Password").fill(newPassword);
        await second.getByRole("button", { name: "Sign in", exact: true }).click();
        await second.waitForURL(`${base}/settings/api-keys`);
      });

      await step("the server printed neither the SMTP credentials nor the token", () => {
        const out = server.output();
        assert.ok(out.includes('"mail":"smtp"'), "the start-up line says mail goes over SMTP");
        for (const secret of [smtp.pass, smtpUrl, token, token.split(".")[1]]) {
          assert.ok(secret && !out.includes(secret));
        }
        return Promise.resolve();
      });
    } catch (err) {
      console.error("server output:\n" + server.output());
      throw err;
    } finally {
      await browser?.close();
      await server.stop();
      await removeKvFile(kvPath);
    }
  },
});
