/**
 * Every dashboard page in real Chromium at 1280x800 and 390x844, light and dark: no sideways
 * scrolling and 0 axe-core violations; on a phone the dark header spans the width and each key's
 * Roll/Delete stay on screen; dates are shown in the viewer's time zone with the UTC time on hover.
 */
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { skipBrowserTests } from "../_browser.ts";
import { assertNoAxeViolations } from "../_axe.ts";
import {
  addDomainInPage,
  DESKTOP,
  liveDashboard,
  PHONE,
  scrollWidth,
  waitForDocs,
} from "../_dashboard_browser.ts";

const skip = skipBrowserTests("dashboard layout browser tests");
const options = { ignore: skip, sanitizeOps: false, sanitizeResources: false };

type Shot = { name: string; open: (page: Page) => Promise<void> };

Deno.test({
  name: "every dashboard page fits a phone and a desktop, light and dark, with no axe violations",
  ...options,
  fn: async (t) => {
    await using live = await liveDashboard();
    const { url } = live;
    // A domain with a check behind it, so its page shows each record's result.
    let domainPath = "";
    {
      const context = await live.context({ viewport: DESKTOP });
      const page = await context.newPage();
      domainPath = await addDomainInPage(page, url, "mail.example.com");
      await page.getByRole("button", { name: "Check DNS records now" }).click();
      await page.waitForURL(/flash=/);
      await context.close();
    }

    const signedOut: Shot[] = [
      { name: "sign-in", open: async (p) => void await p.goto(`${url}/sign-in`) },
      { name: "sign-up", open: async (p) => void await p.goto(`${url}/sign-up`) },
    ];
    let keyCount = 0;
    const signedIn: Shot[] = [
      { name: "API keys", open: async (p) => void await p.goto(`${url}/settings/api-keys`) },
      {
        name: "API keys with a new key",
        open: async (p) => {
          await p.goto(`${url}/settings/api-keys`);
          await p.getByLabel("Name", { exact: true }).fill(`server-${++keyCount}`);
          await p.getByRole("button", { name: "Generate API key" }).click();
          await p.locator("#new-key").waitFor();
        },
      },
      { name: "domains", open: async (p) => void await p.goto(`${url}/settings/domains`) },
      { name: "a domain", open: async (p) => void await p.goto(`${url}${domainPath}`) },
      { name: "security", open: async (p) => void await p.goto(`${url}/settings/security`) },
      { name: "usage", open: async (p) => void await p.goto(`${url}/settings/usage`) },
      {
        name: "security log",
        open: async (p) => void await p.goto(`${url}/settings/security-log`),
      },
      {
        name: "API docs",
        open: async (p) => {
          await p.goto(`${url}/api/e2/docs`);
          await waitForDocs(p);
        },
      },
    ];

    for (const viewport of [DESKTOP, PHONE]) {
      for (const colorScheme of ["light", "dark"] as const) {
        for (const [shots, signedOutCtx] of [[signedOut, true], [signedIn, false]] as const) {
          const context = await live.context({ viewport, colorScheme, signedOut: signedOutCtx });
          const page = await context.newPage();
          for (const shot of shots) {
            const label = `${shot.name}, ${viewport.width}x${viewport.height}, ${colorScheme}`;
            await t.step(`${label}: fits the width and passes axe`, async () => {
              await shot.open(page);
              assert.ok(
                await scrollWidth(page) <= viewport.width,
                `${label} is ${await scrollWidth(page)} px wide`,
              );
              await assertNoAxeViolations(page, label);
            });
          }
          await context.close();
        }
      }
    }
  },
});

Deno.test({
  name:
    "on a phone the header spans the width, Sign out is readable and Roll/Delete stay on screen",
  ...options,
  fn: async (t) => {
    await using live = await liveDashboard();
    const context = await live.context({ viewport: PHONE });
    const page = await context.newPage();
    await page.goto(`${live.url}/settings/api-keys`);
    for (const name of ["production-server", "staging"]) {
      await page.getByLabel("Name", { exact: true }).fill(name);
      await page.getByRole("button", { name: "Generate API key" }).click();
      await page.locator("#new-key").waitFor();
    }

    await t.step("the dark header is as wide as the screen", async () => {
      const box = await page.locator("header.top").boundingBox();
      assert.ok(box);
      assert.equal(Math.round(box.x), 0);
      assert.equal(Math.round(box.width), PHONE.width);
    });

    await t.step("Sign out sits on the dark header", async () => {
      const header = await page.locator("header.top").boundingBox();
      const signOut = await page.getByRole("button", { name: "Sign out" }).boundingBox();
      assert.ok(header && signOut);
      assert.ok(signOut.y >= header.y && signOut.y + signOut.height <= header.y + header.height);
      assert.ok(signOut.x + signOut.width <= PHONE.width);
    });

    await t.step("each key is a card and its Roll and Delete are on screen", async () => {
      for (const name of ["production-server", "staging"]) {
        for (const action of ["Roll", "Delete"]) {
          const summary = page.getByLabel(`${action} key ${name}`, { exact: true });
          await summary.scrollIntoViewIfNeeded();
          const box = await summary.boundingBox();
          assert.ok(box, `${action} ${name}`);
          assert.ok(
            box.x >= 0 && box.x + box.width <= PHONE.width,
            `${action} ${name} at ${box.x}`,
          );
        }
      }
      const row = await page.evaluate(
        `getComputedStyle(document.querySelector("tr[data-key-id]")).display`,
      );
      assert.equal(row, "block");
    });

    await t.step("an open Delete confirmation stays within the screen", async () => {
      await page.getByLabel("Delete key staging", { exact: true }).click();
      const confirm = page.getByRole("button", { name: "Delete key staging now" });
      await confirm.waitFor();
      const box = await confirm.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width);
      assert.ok(await scrollWidth(page) <= PHONE.width);
      await confirm.click();
      await page.waitForURL(/notice=deleted/);
      assert.equal(await page.locator("tr[data-key-id]").count(), 1);
    });
    await context.close();
  },
});

Deno.test({
  name: "dates show in the viewer's time zone with the exact UTC time on hover",
  ...options,
  fn: async (t) => {
    await using live = await liveDashboard();
    const context = await live.context({ viewport: DESKTOP, timezoneId: "Pacific/Kiritimati" });
    const page = await context.newPage();
    await addDomainInPage(page, live.url, "tz.example.com");
    await page.goto(`${live.url}/settings/domains`);
    const time = page.locator("time[datetime]").first();
    await page.locator("time[data-local]").first().waitFor();
    const iso = await time.getAttribute("datetime") ?? "";
    const d = new Date(iso);

    await t.step("the title keeps the exact UTC time", async () => {
      const p = (n: number) => String(n).padStart(2, "0");
      const utc = `${d.getUTCFullYear()}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())} ` +
        `${p(d.getUTCHours())}:${p(d.getUTCMinutes())} UTC`;
      assert.equal(await time.getAttribute("title"), utc);
    });

    await t.step("the text is the same instant in UTC+14", async () => {
      const local = new Date(d.getTime() + 14 * 3_600_000);
      const p = (n: number) => String(n).padStart(2, "0");
      const expected = `${local.getUTCFullYear()}-${p(local.getUTCMonth() + 1)}-` +
        `${p(local.getUTCDate())} ${p(local.getUTCHours())}:${p(local.getUTCMinutes())}`;
      const text = (await time.innerText()).trim();
      assert.ok(text.startsWith(expected), `${text} should start with ${expected}`);
      assert.doesNotMatch(text, /UTC$/);
    });
    await context.close();
  },
});
