/**
 * Real headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by
 * playwright-core, with the flags the reference page names. Without the browser, a developer's
 * machine skips the browser tests with a notice; in CI (CI=true) they run and fail.
 */
import fs from "node:fs";
import type { Browser } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-quic",
];

/**
 * playwright-core probes /proc/sys/fs/binfmt_misc/WSLInterop when it loads (WSL detection). Deno
 * refuses that path unless run with --allow-all, which `deno task test` does not grant, and
 * throws NotCapable instead of answering. For such probes, "not permitted" is read as "absent";
 * every other error still throws. Hence also the dynamic import below, after the patch.
 */
const realExistsSync = fs.existsSync;
fs.existsSync = (path: fs.PathLike): boolean => {
  try {
    return realExistsSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable) return false;
    throw err;
  }
};
const { chromium } = await import("playwright-core");

export function browserInstalled(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

/** True on a developer's machine without Chromium: the browser tests are `ignore`d there. */
export function skipBrowserTests(what: string): boolean {
  const skip = !browserInstalled() && Deno.env.get("CI") !== "true";
  if (skip) {
    console.log(
      `NOTICE: ${what} skipped: ${CHROMIUM} is not installed ` +
        "(apt-get install -y chromium). In CI (CI=true) a missing browser fails instead.",
    );
  }
  return skip;
}

/** A headless Chromium; fails with a clear message when the browser is missing. */
export async function launchBrowser(): Promise<Browser> {
  if (!browserInstalled()) {
    throw new Error(`Chromium is required here (CI=true) but ${CHROMIUM} is missing`);
  }
  return await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}
