/**
 * Settings › Endpoints and a domain's addresses in real Chromium: the endpoint test app (fake DNS,
 * fake webhook resolver, ALLOW_PRIVATE_WEBHOOK_TARGETS=true so a loopback receiver can be
 * tested) served by Deno.serve on 127.0.0.1, one account signed up through the page, and page
 * checks shared by both browser tests (axe 0 violations, no sideways scrolling).
 */
import assert from "node:assert/strict";
import type { BrowserContext, Page } from "playwright-core";
import { assertNoAxeViolations } from "../_axe.ts";
import { DESKTOP, liveDashboardOf, PHONE, scrollWidth } from "../_dashboard_browser.ts";
import { type EndpointTestApp, endpointTestApp } from "./_fixture.ts";

export type LiveEndpoints = {
  ctx: EndpointTestApp;
  url: string;
  context(
    viewport: { width: number; height: number },
    colorScheme?: "light" | "dark",
  ): Promise<BrowserContext>;
  [Symbol.asyncDispose](): Promise<void>;
};

export async function liveEndpoints(): Promise<LiveEndpoints> {
  const live = await liveDashboardOf(
    () => endpointTestApp({ allowPrivateWebhookTargets: true }),
    "grace.hopper@example.com",
  );
  return {
    ctx: live.ctx,
    url: live.url,
    context: (viewport, colorScheme) => live.context({ viewport, colorScheme }),
    [Symbol.asyncDispose]: () => live[Symbol.asyncDispose](),
  };
}

/** No axe violation and no sideways scrolling on the page as it is now. */
export async function assertPageFits(
  page: Page,
  label: string,
  viewport: { width: number },
): Promise<void> {
  await assertNoAxeViolations(page, label);
  assert.ok(await scrollWidth(page) <= viewport.width, `${label}: scrolls sideways`);
}

type Viewport = { width: number; height: number };

/**
 * `check` as one step per layout (1280x800 light, 390x844 light and dark), on a new page of a
 * signed-in context that is closed afterwards; `size` names the layout for messages.
 */
export async function eachLayout(
  t: Deno.TestContext,
  live: LiveEndpoints,
  check: (page: Page, size: string, viewport: Viewport) => Promise<void>,
): Promise<void> {
  for (
    const [viewport, scheme] of [[DESKTOP, "light"], [PHONE, "light"], [PHONE, "dark"]] as const
  ) {
    const size = `${viewport.width}x${viewport.height}, ${scheme}`;
    await t.step(size, async () => {
      const context = await live.context(viewport, scheme);
      try {
        await check(await context.newPage(), size, viewport);
      } finally {
        await context.close();
      }
    });
  }
}
