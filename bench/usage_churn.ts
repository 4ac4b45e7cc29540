/**
 * Benchmark (issue 20, defect 3): what `GET /api/e2/usage` costs for an account with one live key
 * and N churned keys (created, used once, deleted): items, bytes and time per response. Before
 * the fix every deleted key was a series of its own (N x days items, ~12.5 KiB per key); now
 * they fold into one "deleted keys" series, read 8 at a time.
 *
 *   deno run -A bench/usage_churn.ts [N]        (default 10,000)
 */
import { addUsage, DAY_MS, hourOf } from "../store/usage.ts";
import { seedSession } from "../tests/_hardening.ts";
import { createAccountWithKey, makeTestApp } from "../tests/_helpers.ts";

const N = Number(Deno.args[0] ?? 10_000);
const ctx = await makeTestApp();
const a = await createAccountWithKey(ctx.kv, ctx.clock, { keyName: "live" });
const { cookie } = await seedSession(ctx.kv, a.userId, ctx.clock);
const now = ctx.clock();
const hours = Array.from({ length: N }, (_, i) => ({
  userId: a.userId,
  keyId: `key_churn${String(i).padStart(17, "0")}`,
  hourMs: hourOf(now) - (i % 30) * DAY_MS,
  counts: [1, 0, 0, 0] as [number, number, number, number],
}));
for (let i = 0; i < hours.length; i += 2000) await addUsage(ctx.kv, hours.slice(i, i + 2000), now);
for (const days of [30, 90]) {
  const t0 = performance.now();
  const res = await ctx.app.request(`http://localhost/api/e2/usage?days=${days}`, {
    headers: { Cookie: cookie },
  });
  const text = await res.text();
  const ms = performance.now() - t0;
  const data = JSON.parse(text).data as { requests: number }[];
  const sum = data.reduce((s, d) => s + d.requests, 0);
  console.log(
    `N=${N} days=${days}: status ${res.status}, ${data.length} items, ${text.length} bytes ` +
      `(${(text.length / 1048576).toFixed(2)} MiB), requests ${sum}/${N}, ${ms.toFixed(0)} ms`,
  );
}
await ctx.close();
