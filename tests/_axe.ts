/**
 * axe-core (npm, pinned in deno.json) in real Chromium through playwright-core: injects
 * axe.min.js into the page and returns its violations. The source is read as a text import, so
 * the tests need no file-system access to the npm cache. Injection goes through the DevTools
 * protocol (`page.evaluate`), which the pages' strict CSP (no inline script) does not block.
 *
 *   await assertNoAxeViolations(page, "API keys, 390x844, dark");
 */
import axeSource from "axe-core/axe.min.js" with { type: "text" };
import type { Page } from "playwright-core";

export type AxeViolation = {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string; html: string; summary: string }[];
};

/** axe's default rule set (WCAG 2.x A/AA and best practices) over the whole document. */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  if (!await page.evaluate("typeof window.axe === 'object'")) await page.evaluate(axeSource);
  return await page.evaluate(`(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? null,
      help: v.help,
      nodes: v.nodes.map((n) => ({
        target: n.target.join(" "),
        html: n.html.slice(0, 200),
        summary: (n.failureSummary ?? "").slice(0, 300),
      })),
    }));
  })()`) as AxeViolation[];
}

/** One line per violation and node, for an assertion message. */
export function formatViolations(violations: AxeViolation[]): string {
  return violations.map((v) =>
    `${v.id} (${v.impact}): ${v.help}\n` +
    v.nodes.slice(0, 5).map((n) => `    ${n.target}: ${n.html}\n      ${n.summary}`).join("\n")
  ).join("\n");
}

/** Fails with every violation listed when axe finds any on the page as it is now. */
export async function assertNoAxeViolations(page: Page, label: string): Promise<void> {
  const violations = await axeViolations(page);
  if (violations.length > 0) {
    throw new Error(
      `axe: ${violations.length} violation(s) on ${label} (${page.url()}):\n` +
        formatViolations(violations),
    );
  }
}
