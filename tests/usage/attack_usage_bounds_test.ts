/**
 * Issue 20, defects 3 and 9 (usage):
 *   - a usage request's work and answer are bounded by the account's live keys, however many keys
 *     were created, used and deleted: deleted keys are one series, read a few at a time, and no
 *     request drops out of the totals;
 *   - nothing is written under a deleted account: counts still in memory when the account goes
 *     (or whose flush races its deletion) are dropped, and `admin verify` reports usage left under
 *     a gone account as orphan data that `admin user:delete --id` repairs.
 */
import assert from "node:assert/strict";
import { verifyStore } from "../../admin/verify.ts";
import { deleteAccount } from "../../store/accounts/deletion.ts";
import { usageCounterKey, usageIndexKey } from "../../store/keys.ts";
import {
  addUsage,
  DAY_MS,
  hourOf,
  type HourUsage,
  USAGE_READ_CONCURRENCY,
} from "../../store/usage.ts";
import { bearer, createAccountWithKey, makeTestApp } from "../_helpers.ts";
import { seedSession } from "../_hardening.ts";
import { BASE, withCookie } from "../sessions_helpers.ts";

type Item = {
  keyId: string;
  name: string | null;
  deletedKeys?: number;
  start: string;
  requests: number;
};

/**
 * A KV whose range reads of usage counters are counted while open, so a test can see how many
 * run at once (the reads of one request, nothing timed).
 */
function concurrencyKv(kv: Deno.Kv) {
  const stats = { open: 0, peak: 0, reads: 0 };
  const isUsageRead = (s: Deno.KvListSelector) => {
    const start = "start" in s ? s.start : "prefix" in s ? s.prefix : [];
    return start[1] === "usage";
  };
  async function* counted<T>(inner: Deno.KvListIterator<T>): AsyncGenerator<Deno.KvEntry<T>> {
    stats.open++;
    stats.reads++;
    stats.peak = Math.max(stats.peak, stats.open);
    try {
      for await (const e of inner) yield e;
    } finally {
      stats.open--;
    }
  }
  const wrapped = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "list") {
        return (selector: Deno.KvListSelector, options?: Deno.KvListOptions) => {
          const inner = target.list(selector, options);
          return isUsageRead(selector) ? counted(inner) : inner;
        };
      }
      return value.bind(target);
    },
  });
  return { kv: wrapped, stats };
}

const CHURNED = 300;
const DAYS = 7;

/** Usage of `CHURNED` keys that no longer exist, spread over the last week; returns its total. */
async function churn(kv: Deno.Kv, userId: string, nowMs: number): Promise<number> {
  const hours: HourUsage[] = [];
  let total = 0;
  for (let i = 0; i < CHURNED; i++) {
    const counts: HourUsage["counts"] = [1 + (i % 3), i % 2, i % 5 === 0 ? 1 : 0, 0];
    total += counts.reduce((a, b) => a + b, 0);
    hours.push({
      userId,
      keyId: `key_churned${String(i).padStart(15, "0")}`,
      hourMs: hourOf(nowMs) - (i % DAYS) * DAY_MS,
      counts,
    });
  }
  await addUsage(kv, hours, nowMs);
  return total;
}

Deno.test("usage of an account with hundreds of deleted keys is bounded by its live keys, and the totals still add up", async (t) => {
  const inner = await Deno.openKv(":memory:");
  const { kv, stats } = concurrencyKv(inner);
  const ctx = await makeTestApp({ kv });
  try {
    const a = await createAccountWithKey(inner, ctx.clock, { keyName: "live" });
    const { cookie } = await seedSession(inner, a.userId, ctx.clock);
    for (let i = 0; i < 4; i++) {
      const res = await ctx.app.request(`${BASE}/api/e2/domains`, bearer(a.key));
      await res.body?.cancel();
    }
    await ctx.app.idle();
    const churned = await churn(inner, a.userId, ctx.clock());
    const live = 1;

    let data: Item[] = [];
    await t.step("one request reads the deleted keys a few at a time", async () => {
      stats.peak = 0;
      const res = await ctx.app.request(`${BASE}/api/e2/usage?days=${DAYS}`, withCookie(cookie));
      assert.equal(res.status, 200);
      data = (await res.json()).data;
      assert.ok(stats.peak <= USAGE_READ_CONCURRENCY, `${stats.peak} usage reads open at once`);
    });
    await t.step("items are at most (live keys + one deleted series) x days", () => {
      assert.ok(data.length <= (live + 1) * DAYS, `${data.length} items`);
      const deleted = data.filter((d) => d.name === null);
      assert.equal(deleted.length, DAYS);
      assert.ok(
        deleted.every((d) => d.keyId === "deleted" && d.deletedKeys === CHURNED),
        JSON.stringify(deleted[0]),
      );
    });
    await t.step("no request is lost from the totals, day by day", () => {
      const sum = (items: Item[]) => items.reduce((s, d) => s + d.requests, 0);
      assert.equal(sum(data.filter((d) => d.keyId === a.keyId)), 4);
      assert.equal(sum(data.filter((d) => d.name === null)), churned);
      const days = [...new Set(data.map((d) => d.start))];
      assert.equal(days.length, DAYS);
      for (const [i, day] of days.entries()) {
        const expected = Array.from({ length: CHURNED }, (_, k) => k)
          .filter((k) => k % DAYS === DAYS - 1 - i)
          .reduce((s, k) => s + 1 + (k % 3) + (k % 2) + (k % 5 === 0 ? 1 : 0), 0) +
          (i === DAYS - 1 ? 4 : 0);
        assert.equal(sum(data.filter((d) => d.start === day)), expected, day);
      }
    });
    await t.step("keyId still answers one deleted key's own days", async () => {
      const id = `key_churned${String(7).padStart(15, "0")}`;
      const res = await ctx.app.request(
        `${BASE}/api/e2/usage?days=${DAYS}&keyId=${id}`,
        withCookie(cookie),
      );
      const body: { data: Item[] } = await res.json();
      assert.equal(body.data.length, DAYS);
      assert.ok(body.data.every((d) => d.keyId === id && d.name === null));
      assert.equal(body.data.reduce((s, d) => s + d.requests, 0), 3);
    });
    await t.step("keyId of one live key reads that key alone", async () => {
      stats.reads = 0;
      const res = await ctx.app.request(
        `${BASE}/api/e2/usage?days=${DAYS}&keyId=${a.keyId}`,
        withCookie(cookie),
      );
      const body: { data: Item[] } = await res.json();
      assert.equal(body.data.length, DAYS);
      assert.equal(stats.reads, 1);
    });
    await t.step(
      "the Usage page has one row per live key and one for the deleted keys",
      async () => {
        const res = await ctx.app.request(
          `${BASE}/settings/usage?days=${DAYS}`,
          withCookie(cookie),
        );
        const html = await res.text();
        assert.equal(res.status, 200);
        assert.equal((html.match(/<td data-label="Key">/g) ?? []).length, live + 1);
        assert.match(html, new RegExp(`${(churned + 4).toLocaleString("en-US")} requests with`));
      },
    );
    await t.step("the API keys page reads only the live keys' usage", async () => {
      stats.reads = 0;
      const res = await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie));
      await res.body?.cancel();
      assert.equal(res.status, 200);
      assert.ok(stats.reads <= live, `${stats.reads} usage reads`);
    });
  } finally {
    await ctx.close();
  }
});

/** Every key under the account's prefix. */
async function keysUnder(kv: Deno.Kv, userId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of kv.list({ prefix: [userId] })) out.push(JSON.stringify(e.key));
  return out;
}

Deno.test("usage still in memory when its account is deleted is never written under the gone account", async (t) => {
  await t.step("deleted before the flush: the flush drops it", async () => {
    const ctx = await makeTestApp();
    try {
      const a = await createAccountWithKey(ctx.kv, ctx.clock);
      const res = await ctx.app.request(`${BASE}/api/e2/domains`, bearer(a.key));
      await res.body?.cancel();
      assert.equal(res.status, 200);
      await deleteAccount(ctx.kv, a.userId, { nowMs: ctx.clock() });
      await ctx.app.idle();
      assert.deepEqual(await keysUnder(ctx.kv, a.userId), []);
      assert.equal((await verifyStore(ctx.kv)).ok, true);
    } finally {
      await ctx.close();
    }
  });
  await t.step(
    "deleted while the flush is under way: its commit loses, nothing lands",
    async () => {
      const inner = await Deno.openKv(":memory:");
      let armed: string | null = null;
      // The deletion runs just before the flush's usage commit goes out.
      const kv = new Proxy(inner, {
        get(target, prop) {
          const value = Reflect.get(target, prop, target);
          if (prop !== "atomic") return typeof value === "function" ? value.bind(target) : value;
          return () => {
            const op = target.atomic();
            let usage = false;
            return new Proxy(op, {
              get(o, p, receiver) {
                const v = Reflect.get(o, p, o);
                if (typeof v !== "function") return v;
                if (p === "commit") {
                  return async () => {
                    if (usage && armed !== null) {
                      const userId = armed;
                      armed = null;
                      await deleteAccount(inner, userId, { nowMs: Date.now() });
                    }
                    return await o.commit();
                  };
                }
                return (...args: unknown[]) => {
                  if (p === "mutate") {
                    usage ||= (args as Deno.KvMutation[]).some((m) => m.key[1] === "usage");
                  }
                  const r = v.apply(o, args);
                  return r === o ? receiver : r;
                };
              },
            });
          };
        },
      });
      const ctx = await makeTestApp({ kv });
      try {
        const a = await createAccountWithKey(inner, ctx.clock);
        const res = await ctx.app.request(`${BASE}/api/e2/domains`, bearer(a.key));
        await res.body?.cancel();
        assert.equal(res.status, 200);
        armed = a.userId;
        await ctx.app.idle();
        assert.equal(armed, null, "the flush never committed");
        assert.deepEqual(await keysUnder(inner, a.userId), []);
      } finally {
        await ctx.close();
      }
    },
  );
});

Deno.test("admin verify reports usage under a gone account as orphan data, and user:delete --id repairs it", async (t) => {
  await using kv = await Deno.openKv(":memory:");
  const clock = () => Date.UTC(2026, 2, 14, 9, 30);
  const a = await createAccountWithKey(kv, clock);
  const now = clock();
  // The live account's usage is part of the layout, not unrecognised and not a violation.
  await addUsage(kv, [{
    userId: a.userId,
    keyId: a.keyId,
    hourMs: hourOf(now),
    counts: [3, 0, 0, 0],
  }], now);
  // What a flush landing after a purge left behind before this fix.
  const gone = "usr_gone0000000000000000000";
  await kv.atomic()
    .sum(usageCounterKey(gone, "key_gone", hourOf(now), "2xx"), 5n)
    .set(usageIndexKey(gone, "key_gone"), { lastHourMs: hourOf(now) })
    .commit();

  await t.step(
    "verify names each orphaned usage entry, with the command that repairs it",
    async () => {
      const report = await verifyStore(kv);
      assert.equal(report.ok, false);
      assert.equal(report.unrecognised.count, 0, JSON.stringify(report.unrecognised));
      const orphans = report.violations.filter((v) => v.kind === "orphan_account_data");
      assert.equal(orphans.length, 2, JSON.stringify(report.violations));
      assert.equal(report.violationCount, 2, JSON.stringify(report.violations));
      for (const o of orphans) {
        assert.match(o.key, new RegExp(gone));
        assert.match(o.detail, new RegExp(`user:delete --id ${gone}`));
      }
    },
  );
  await t.step("user:delete --id removes it, and verify passes", async () => {
    const summary = await deleteAccount(kv, gone, { nowMs: now });
    assert.equal(summary?.accountKeys, 2);
    assert.deepEqual(await keysUnder(kv, gone), []);
    const report = await verifyStore(kv);
    assert.equal(report.ok, true, JSON.stringify(report.violations));
    assert.deepEqual(
      await keysUnder(kv, a.userId).then((k) => k.some((s) => /usage/.test(s))),
      true,
    );
  });
});
