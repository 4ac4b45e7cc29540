/**
 * Passkeys in real headless Chromium with a virtual authenticator (Chrome DevTools Protocol
 * `WebAuthn.addVirtualAuthenticator`: CTAP2, internal transport, resident keys, user
 * verification) against the real server (`deno task start`): register a passkey from Settings ›
 * Security, sign out, sign in with the passkey alone, then password and the passkey as the second
 * step, rename and remove it. WebAuthn needs a secure context and a domain as its relying party
 * id (never an IP address), so the browser opens the server as http://localhost:PORT. As
 * tests/dashboard/browser_test.ts: skipped without the browser on a developer's machine, a failure in CI.
 */
import assert from "node:assert/strict";
import type { Browser, CDPSession, Page } from "playwright-core";
import { removeKvFile, startServer, tempKvPath, TEST_PASSWORD } from "../_helpers.ts";
import { launchBrowser, skipBrowserTests } from "../_browser.ts";

const skip = skipBrowserTests("passkeys browser test");

/** Steps that stop at the first failure: later steps depend on earlier ones. */
function sequence(t: Deno.TestContext) {
  let ok = true;
  return async (name: string, fn: () => Promise<void>) => {
    if (ok) ok = await t.step(name, fn);
  };
}

type Credential = { credentialId: string; isResidentCredential: boolean; signCount: number };

async function credentials(cdp: CDPSession, authenticatorId: string): Promise<Credential[]> {
  const r = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  return r.credentials as Credential[];
}

/** The passkeys the account lists, through the page's own session. */
async function listed(page: Page): Promise<{ name: string; lastUsedAt: string | null }[]> {
  return await page.evaluate(async () => {
    const res = await fetch("/api/auth/passkey/list-user-passkeys");
    return await res.json();
  });
}

async function signOut(page: Page, base: string): Promise<void> {
  await page.getByRole("button", { name: "Sign out", exact: true }).first().click();
  await page.waitForURL(`${base}/sign-in?notice=signed-out`);
}

Deno.test({
  name: "in a real browser: a passkey is registered in Settings › Security and signs in alone " +
    "and as the second step",
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
      // localhost, not 127.0.0.1: an IP address is not a valid WebAuthn relying party id.
      const base = `http://localhost:${server.port}`;
      const email = "passkey-in-browser@example.com";
      const context = await browser.newContext();
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send("WebAuthn.enable");
      const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
        options: {
          protocol: "ctap2",
          transport: "internal",
          hasResidentKey: true,
          hasUserVerification: true,
          isUserVerified: true,
          automaticPresenceSimulation: true,
        },
      });

      await step("sign up and open Settings › Security", async () => {
        await page.goto(`${base}/sign-up`);
        await page.getByLabel("Email").fill(email);
        await page.getByLabel("Password").fill(TEST_PASSWORD);
        await page.getByRole("button", { name: "Create account" }).click();
        await page.waitForURL(`${base}/settings/api-keys`);
        await page.goto(`${base}/settings/security`);
        await page.getByRole("heading", { name: "Passkeys" }).waitFor();
        await page.locator("#passkeys-empty").waitFor({ state: "visible" });
      });

      await step("'Add a passkey' with a name creates a discoverable credential", async () => {
        await page.getByLabel("Passkey name").fill("Work laptop");
        await page.getByRole("button", { name: "Add a passkey" }).click();
        await page.locator("#passkey-status", { hasText: "added" }).waitFor();
        await page.getByRole("textbox", { name: "Name of passkey Work laptop" }).waitFor();
        const creds = await credentials(cdp, authenticatorId);
        assert.equal(creds.length, 1);
        assert.equal(creds[0].isResidentCredential, true);
        const list = await listed(page);
        assert.deepEqual(list.map((p) => p.name), ["Work laptop"]);
        assert.equal(list[0].lastUsedAt, null);
      });

      await step("rename it", async () => {
        const input = page.getByRole("textbox", { name: "Name of passkey Work laptop" });
        await input.fill("Laptop");
        await page.getByRole("button", { name: "Rename Work laptop" }).click();
        await page.getByRole("textbox", { name: "Name of passkey Laptop" }).waitFor();
        assert.deepEqual((await listed(page)).map((p) => p.name), ["Laptop"]);
      });

      await step("sign out, then 'Sign in with a passkey' alone signs in", async () => {
        await signOut(page, base);
        await page.getByRole("button", { name: "Sign in with a passkey" }).click();
        await page.waitForURL(`${base}/settings/api-keys`);
        const list = await listed(page);
        assert.ok(list[0].lastUsedAt, "the sign-in recorded the passkey's use");
        const creds = await credentials(cdp, authenticatorId);
        assert.ok(creds[0].signCount >= 1, "the authenticator counted the signature");
      });

      await step(
        "the password then asks for the second step, and the passkey completes it",
        async () => {
          await signOut(page, base);
          await page.getByLabel("Email").fill(email);
          await page.getByLabel("Password").fill(TEST_PASSWORD);
          await page.getByRole("button", { name: "Sign in", exact: true }).click();
          await page.getByRole("button", { name: "Use a passkey" }).click();
          await page.waitForURL(`${base}/settings/api-keys`);
          assert.equal((await listed(page)).length, 1);
        },
      );

      await step("remove it: the password alone signs in again", async () => {
        await page.goto(`${base}/settings/security`);
        await page.getByRole("button", { name: "Remove Laptop" }).click();
        await page.locator("#passkeys-empty").waitFor({ state: "visible" });
        assert.deepEqual(await listed(page), []);
        await signOut(page, base);
        await page.getByLabel("Email").fill(email);
        await page.getByLabel("Password").fill(TEST_PASSWORD);
        await page.getByRole("button", { name: "Sign in", exact: true }).click();
        await page.waitForURL(`${base}/settings/api-keys`);
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
