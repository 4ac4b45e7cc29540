/**
 * Issue 22, items 5, 12 and 13 in real Chromium, at 1280x800 and 390x844, with axe at 0:
 * a form sent after the session expired comes back to its page after signing in (the browser's
 * own Referer decides which); a mistyped address shows the 404 page with the navigation; the
 * sign-up form marks every wrong field and focuses the first. The rules themselves are tested
 * without a browser (tests/accounts/session_expiry_test.ts, sign_up_form_test.ts,
 * tests/dashboard/not_found_test.ts).
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { skipBrowserTests } from "../_browser.ts";
import { assertNoAxeViolations } from "../_axe.ts";
import {
  ACCOUNT_EMAIL,
  DESKTOP,
  liveDashboard,
  PHONE,
  scrollWidth,
} from "../_dashboard_browser.ts";
import { TEST_PASSWORD } from "../_helpers.ts";

const skip = skipBrowserTests("first-hour browser test");
/** Longer than any session (SESSION_TTL's default is 7 days; the tests' is not longer). */
const PAST_ANY_SESSION_MS = 400 * 24 * 60 * 60 * 1000;

async function focusedId(page: Page): Promise<string> {
  return await page.evaluate("document.activeElement && document.activeElement.id") as string;
}

async function assertFits(page: Page, width: number, label: string): Promise<void> {
  assert.ok(await scrollWidth(page) <= width, `${label}: sideways scrolling`);
  await assertNoAxeViolations(page, label);
}

Deno.test({
  name: "in a real browser: expired-session return, the 404 page, and sign-up's field errors",
  ignore: skip,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    await using live = await liveDashboard();
    const { url } = live;

    for (const viewport of [DESKTOP, PHONE]) {
      const size = `${viewport.width}x${viewport.height}`;
      await t.step(`the 404 page, signed in and out, ${size}`, async () => {
        const signedIn = await live.context({ viewport });
        const page = await signedIn.newPage();
        const res = await page.goto(`${url}/settings/nope`);
        assert.equal(res?.status(), 404);
        await page.getByRole("navigation", { name: "Settings" }).waitFor();
        await assertFits(page, viewport.width, `404 signed in, ${size}`);
        await signedIn.close();
        const signedOut = await live.context({ viewport, signedOut: true });
        const other = await signedOut.newPage();
        assert.equal((await other.goto(`${url}/nope`))?.status(), 404);
        await other.getByRole("link", { name: "Sign in" }).waitFor();
        await assertFits(other, viewport.width, `404 signed out, ${size}`);
        await signedOut.close();
      });

      await t.step(`sign-up marks every wrong field and focuses the first, ${size}`, async () => {
        const context = await live.context({ viewport, signedOut: true });
        const page = await context.newPage();
        await page.goto(`${url}/sign-up`);
        await page.getByLabel("Email").fill("not-an-email");
        await page.getByLabel("Password").fill("short");
        await page.getByRole("button", { name: "Create account" }).click();
        await page.locator("#email-problem").waitFor();
        assert.equal(await focusedId(page), "email");
        assert.equal(await page.locator("#email").getAttribute("aria-invalid"), "true");
        assert.equal(await page.locator("#password").getAttribute("aria-invalid"), "true");
        assert.match(await page.locator("#password-problem").innerText(), /at least 12/);
        assert.equal(await page.locator("#email").inputValue(), "not-an-email");
        await assertFits(page, viewport.width, `sign-up with errors, ${size}`);
        await context.close();
      });
    }

    // Last: it moves the clock past every session, the shared sign-in's too.
    await t.step("a form sent after the session expired returns to its page", async () => {
      const context = await live.context({ viewport: DESKTOP });
      const page = await context.newPage();
      await page.goto(`${url}/settings/api-keys`);
      await page.locator('input[name="name"]').first().fill("ci key");
      live.ctx.clock.advance(PAST_ANY_SESSION_MS);
      await page.locator('form[action="/settings/api-keys"] button[type="submit"]').click();
      await page.waitForURL(/\/sign-in\?notice=session-expired-form&next=%2Fsettings%2Fapi-keys$/);
      assert.match(
        await page.locator("#sign-in-notice").innerText(),
        /Your session expired\. Sign in again to continue\. What you submitted was not done/,
      );
      await assertFits(page, DESKTOP.width, "sign-in after expiry, 1280x800");
      await page.getByLabel("Email").fill(ACCOUNT_EMAIL);
      await page.getByLabel("Password").fill(TEST_PASSWORD);
      await page.getByRole("button", { name: "Sign in", exact: true }).click();
      await page.waitForURL(`${url}/settings/api-keys`);
      await context.close();
    });
  },
});
