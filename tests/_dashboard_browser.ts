/**
 * A dashboard in real Chromium against an in-process server: the app on an in-memory KV with the
 * fake DNS resolver (so domain checks can pass), served by Deno.serve on a free port. Used by the
 * layout, docs-page and screenshot scripts.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { App } from "../app.ts";
import { type DomainTestApp, domainTestApp } from "./_domains.ts";
import { launchBrowser } from "./_browser.ts";
import { TEST_PASSWORD } from "./_helpers.ts";

export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

/** What the live dashboard serves: a test app (the domains one, or another fixture's). */
export type ServedApp = { app: App; close(): Promise<void> };

export type LiveDashboard<C extends ServedApp = DomainTestApp> = {
  ctx: C;
  url: string;
  browser: Browser;
  /** A browser context; signed in as the test account unless `signedOut`. */
  context(opts: {
    viewport: { width: number; height: number };
    colorScheme?: "light" | "dark";
    timezoneId?: string;
    signedOut?: boolean;
  }): Promise<BrowserContext>;
  [Symbol.asyncDispose](): Promise<void>;
};

export const ACCOUNT_EMAIL = "ada.lovelace@example.com";

/** Starts the app and Chromium, and signs up one account through the page. */
export function liveDashboard(): Promise<LiveDashboard> {
  return liveDashboardOf(domainTestApp, ACCOUNT_EMAIL);
}

/** As `liveDashboard`, serving the app `make` starts, the account signed up as `email`. */
export async function liveDashboardOf<C extends ServedApp>(
  make: () => Promise<C>,
  email: string,
): Promise<LiveDashboard<C>> {
  const ctx = await make();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    (req, info) => ctx.app.fetch(req, info),
  );
  const url = `http://127.0.0.1:${server.addr.port}`;
  let browser: Browser | undefined;
  try {
    browser = await launchBrowser();
    const first = await browser.newContext();
    const page = await first.newPage();
    await page.goto(`${url}/sign-up`);
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password").fill(TEST_PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.waitForURL(`${url}/settings/api-keys`);
    const state = await first.storageState();
    await first.close();
    const b = browser;
    return {
      ctx,
      url,
      browser: b,
      context: (opts) =>
        b.newContext({
          viewport: opts.viewport,
          colorScheme: opts.colorScheme ?? "light",
          timezoneId: opts.timezoneId ?? "UTC",
          ...(opts.signedOut ? {} : { storageState: state }),
        }),
      async [Symbol.asyncDispose]() {
        await b.close();
        await server.shutdown();
        await ctx.close();
      },
    };
  } catch (err) {
    await browser?.close();
    await server.shutdown();
    await ctx.close();
    throw err;
  }
}

/** The page's layout width: more than the viewport means sideways scrolling. */
export async function scrollWidth(page: Page): Promise<number> {
  return await page.evaluate("document.documentElement.scrollWidth") as number;
}

/** Adds a domain through the page's form and returns its page's path (after the redirect). */
export async function addDomainInPage(page: Page, base: string, name: string): Promise<string> {
  await page.goto(`${base}/settings/domains`);
  await page.getByLabel("Domain name").fill(name);
  await page.getByRole("button", { name: "Add domain" }).click();
  await page.waitForURL(/\/settings\/domains\/dom_/);
  return new URL(page.url()).pathname;
}

/** Swagger UI has rendered the operations. */
export async function waitForDocs(page: Page): Promise<void> {
  await page.locator(".opblock").first().waitFor({ timeout: 30_000 });
}
