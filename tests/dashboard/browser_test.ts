/**
 * End-to-end tests in real headless Chromium (Debian's /usr/bin/chromium driven by
 * playwright-core) against the real server started with `deno task start`.
 *
 * Without the browser: in CI (CI=true) the tests run and fail; on a developer's machine they are
 * skipped with a printed notice.
 */
import assert from "node:assert/strict";
import type { Browser, Page } from "playwright-core";
import {
  removeKvFile,
  type ServerProcess,
  startServer,
  tempKvPath,
  TEST_PASSWORD,
} from "../_helpers.ts";
import { SEED_401 } from "../sessions_helpers.ts";
import { launchBrowser, skipBrowserTests } from "../_browser.ts";

const SCREENSHOT = "docs/screenshots/api-keys.png";
const skip = skipBrowserTests("browser tests");

/** Runs `fn` with a fresh server (own KV file) and a fresh browser profile. */
async function withBrowserAndServer(
  fn: (ctx: { browser: Browser; server: ServerProcess }) => Promise<void>,
): Promise<void> {
  const kvPath = await tempKvPath();
  const server = await startServer({ DENO_KV_PATH: kvPath, LOG_LEVEL: "silent" });
  let browser: Browser | undefined;
  try {
    browser = await launchBrowser();
    await fn({ browser, server });
  } catch (err) {
    console.error("server output:\n" + server.output());
    throw err;
  } finally {
    await browser?.close();
    await server.stop();
    await removeKvFile(kvPath);
  }
}

async function signUpInPage(page: Page, base: string, email: string): Promise<void> {
  await page.goto(`${base}/sign-up`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(TEST_PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`${base}/settings/api-keys`);
}

async function generateKeyInPage(page: Page, name: string, expires: string): Promise<string> {
  await page.getByLabel("Name").fill(name);
  await page.getByLabel("Expires").selectOption({ label: expires });
  await page.getByRole("button", { name: "Generate API key" }).click();
  await page.locator("#new-key").waitFor();
  return await page.locator("#new-key").inputValue();
}

const testOptions = { ignore: skip, sanitizeOps: false, sanitizeResources: false };

/** Steps that stop at the first failure: later steps depend on earlier ones. */
function sequence(t: Deno.TestContext) {
  let ok = true;
  return async (name: string, fn: () => Promise<void>) => {
    if (ok) ok = await t.step(name, fn);
  };
}

Deno.test({
  name: "in a real browser: sign up, generate a key, use it, delete it, and it stops working",
  ...testOptions,
  fn: async (t) => {
    const step = sequence(t);
    await withBrowserAndServer(async ({ browser, server }) => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], {
        origin: server.url,
      });
      const page = await context.newPage();
      let key = "";

      await step("sign up in the page", async () => {
        await signUpInPage(page, server.url, "browser-user@example.com");
        assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "API Keys");
      });

      await step("generate a key in the page and read it from the page", async () => {
        const staging = await generateKeyInPage(page, "staging", "In 30 days");
        // Used once, so the table shows a used key next to a never-used one.
        const used = await fetch(`${server.url}/api/e2/domains`, {
          headers: { Authorization: `Bearer ${staging}` },
        });
        assert.equal(used.status, 200);
        await used.body?.cancel();
        key = await generateKeyInPage(page, "production", "Never");
        assert.match(key, /^inb_[0-9A-Za-z]{42}$/);
        assert.match(await page.locator("#newkey-warning").innerText(), /won't be shown again/);
        assert.equal(await page.locator("table tbody tr").count(), 2);
      });

      await step("the copy button puts the key on the clipboard", async () => {
        const copy = page.getByRole("button", { name: "Copy" });
        assert.equal(await copy.isVisible(), true);
        await copy.click();
        await page.getByText("API key copied to the clipboard.").waitFor();
        assert.equal(await page.evaluate("navigator.clipboard.readText()"), key);
      });

      await step("save a screenshot of the API Keys page", async () => {
        await Deno.mkdir("docs/screenshots", { recursive: true });
        await page.screenshot({ path: SCREENSHOT, fullPage: true });
        assert.ok((await Deno.stat(SCREENSHOT)).size > 10_000);
      });

      await step("the key authenticates GET /api/e2/domains (200)", async () => {
        const res = await fetch(`${server.url}/api/e2/domains`, {
          headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        });
        assert.equal(res.status, 200);
        assert.deepEqual(await res.json(), {
          data: [],
          pagination: { limit: 50, offset: 0, total: 0, hasMore: false },
        });
      });

      await step("reloading shows the key's start but never the key again", async () => {
        await page.goto(`${server.url}/settings/api-keys`);
        assert.equal(await page.locator("#new-key").count(), 0);
        const text = await page.locator("body").innerText();
        assert.ok(!text.includes(key));
        assert.ok(text.includes(key.slice(0, 10)));
      });

      await step("delete it in the page, confirming", async () => {
        const row = page.locator("tr", { hasText: "production" });
        await row.getByText("Delete…").click();
        await row.getByRole("button", { name: "Delete key" }).click();
        await page.waitForURL(`${server.url}/settings/api-keys?notice=deleted`);
        await page.getByText("API key deleted.").waitFor();
        assert.equal(await page.locator("table tbody tr").count(), 1);
      });

      await step("the deleted key gets the seed's 401 at once", async () => {
        const res = await fetch(`${server.url}/api/e2/domains`, {
          headers: { Authorization: `Bearer ${key}` },
        });
        assert.equal(res.status, 401);
        assert.deepEqual(await res.json(), SEED_401);
      });
      await context.close();
    });
  },
});

Deno.test({
  name: "in a real browser: a form on another origin cannot act with the session cookie",
  ...testOptions,
  fn: async (t) => {
    const step = sequence(t);
    await withBrowserAndServer(async ({ browser, server }) => {
      // Another origin on the same host: "same-site" for SameSite=Lax, so the browser does send
      // the cookie; only the Origin / Sec-Fetch-Site check stands in the way.
      const evilPage = `<!DOCTYPE html><html><body>
        <form id="dashboard" method="post" action="${server.url}/settings/api-keys">
          <input name="name" value="forged-by-dashboard-form"><button>dashboard</button>
        </form>
        <form id="api" method="post" action="${server.url}/api/e2/api-keys" enctype="text/plain">
          <input name='{"name":"forged","x":"' value='"}'><button>api</button>
        </form>
      </body></html>`;
      const evil = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        () => new Response(evilPage, { headers: { "Content-Type": "text/html; charset=utf-8" } }),
      );
      const evilUrl = `http://127.0.0.1:${evil.addr.port}/`;
      try {
        const context = await browser.newContext();
        const page = await context.newPage();
        await signUpInPage(page, server.url, "csrf-victim@example.com");

        for (
          const [button, path] of [["dashboard", "/settings/api-keys"], ["api", "/api/e2/api-keys"]]
        ) {
          await step(`the ${button} form posting to ${path} gets 403`, async () => {
            await page.goto(evilUrl);
            const [response] = await Promise.all([
              page.waitForResponse((r) => r.url() === `${server.url}${path}`),
              page.getByRole("button", { name: button }).click(),
            ]);
            assert.equal(response.status(), 403);
            const body = await response.json();
            assert.equal(body.error, "Forbidden");
            assert.equal(body.code, "CROSS_SITE_REQUEST");
          });
        }

        await step("nothing was created, and the session still works", async () => {
          const res = await context.request.get(`${server.url}/api/e2/api-keys`);
          assert.equal(res.status(), 200);
          assert.deepEqual((await res.json()).data, []);
        });
        await context.close();
      } finally {
        await evil.shutdown();
      }
    });
  },
});

Deno.test({
  name: "in a real browser: Generate redirects, reload shows no key, and the popovers obey keys",
  ...testOptions,
  fn: async (t) => {
    const step = sequence(t);
    await withBrowserAndServer(async ({ browser, server }) => {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const keyCount = async () => {
        const res = await context.request.get(`${server.url}/api/e2/api-keys`);
        assert.equal(res.status(), 200);
        return ((await res.json()).data as unknown[]).length;
      };
      await signUpInPage(page, server.url, "prg-user@example.com");
      let key = "";

      await step("after Generate, focus is on the announced new-key panel", async () => {
        key = await generateKeyInPage(page, "production-server", "Never");
        assert.match(page.url(), /\/settings\/api-keys\?flash=fl_[0-9A-Za-z]{22}$/);
        assert.ok(!page.url().includes(key));
        await page.waitForFunction('document.activeElement?.id === "new-key-panel"');
        assert.equal(await page.getByRole("alert").count(), 1);
        assert.match(await page.getByRole("alert").innerText(), /New API key production-server/);
      });

      await step("reloading creates no second key and shows no key", async () => {
        await page.reload();
        await page.locator("table tbody tr").first().waitFor();
        assert.equal(await page.locator("#new-key").count(), 0);
        assert.ok(!(await page.locator("body").innerText()).includes(key));
        assert.equal(await page.locator("table tbody tr").count(), 1);
        assert.equal(await keyCount(), 1);
      });

      await step("row actions are named with the key", async () => {
        assert.equal(
          await page.getByLabel("Delete key production-server", { exact: true }).count(),
          1,
        );
        assert.equal(
          await page.getByLabel("Roll key production-server", { exact: true }).count(),
          1,
        );
      });

      await step("one popover open at a time, and Escape closes it", async () => {
        const roll = page.getByLabel("Roll key production-server", { exact: true });
        const del = page.getByLabel("Delete key production-server", { exact: true });
        await roll.focus();
        await page.keyboard.press("Enter");
        assert.equal(await page.locator("details.popover[open]").count(), 1);
        await del.focus();
        await page.keyboard.press("Enter");
        await page.waitForFunction(
          'document.querySelectorAll("details.popover[open]").length === 1 && ' +
            'document.querySelector("details.delete").open',
        );
        await page.keyboard.press("Escape");
        assert.equal(await page.locator("details.popover[open]").count(), 0);
        assert.equal(
          await page.evaluate('document.activeElement.getAttribute("aria-label")'),
          "Delete key production-server",
        );
      });
      await context.close();
    });
  },
});
