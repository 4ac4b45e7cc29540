/**
 * Attacks on per-address limits (issues 9 and 10): one IPv6 host holds a whole /64, so an address
 * limit keyed by the full 128-bit address is no limit for it.
 */
import assert from "node:assert/strict";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, fromIp, json } from "../sessions_helpers.ts";

Deno.test("sign-ups from one IPv6 /64 share one per-address throttle", async () => {
  const ctx = await makeTestApp();
  try {
    const w = ctx.config.signInThrottle.windowMs;
    ctx.clock.set(Math.ceil(ctx.clock() / w) * w + 5_000);
    const statuses: number[] = [];
    // Every address below is the same host's /64 (SLAAC privacy addresses rotate within it).
    for (let i = 1; i <= 30; i++) {
      const res = await ctx.app.request(
        `${BASE}/api/auth/sign-up`,
        json({ email: freshEmail(), password: TEST_PASSWORD }),
        fromIp(`2001:db8:1:2::${i.toString(16)}`),
      );
      await res.body?.cancel();
      statuses.push(res.status);
    }
    const created = statuses.filter((s) => s === 201).length;
    assert.ok(created <= 10, `${created} accounts created from one /64 in one window`);
  } finally {
    await ctx.close();
  }
});
