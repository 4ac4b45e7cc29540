/**
 * Usage per key and hour (issue 13 item 3): outcomes counted in memory on the request path,
 * flushed with `sum` off it, kept 90 days; the two usage routes; the dashboard's sparkline and
 * Usage page.
 */
import assert from "node:assert/strict";
import { outcomeIndex, UsageRecorder } from "../../routes/usage/recorder.ts";
import { fakeClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import { usageCounterKey, userKey } from "../../store/keys.ts";
import {
  addUsage,
  DAY_MS,
  HOUR_MS,
  hourOf,
  MAX_MUTATIONS_PER_COMMIT,
  readDailyUsage,
} from "../../store/usage.ts";
import { tenantStore } from "../../store/tenant.ts";
import { bearer, createAccountWithKey, makeTestApp, type TestApp } from "../_helpers.ts";
import { seedSession } from "../_hardening.ts";
import { FaultyKv } from "../_faulty_kv.ts";
import { launchBrowser, skipBrowserTests } from "../_browser.ts";
import { assertNoAxeViolations } from "../_axe.ts";
import { recordingKv } from "../_recording_kv.ts";
import { BASE, withCookie } from "../sessions_helpers.ts";

async function counter(kv: Deno.Kv, userId: string, keyId: string, hourMs: number, o: string) {
  const e = await kv.get<Deno.KvU64>(usageCounterKey(userId, keyId, hourMs, o));
  return e.value === null ? 0 : Number(e.value.value);
}

/**
 * A user record for a made-up account: usage is written only under an account that exists
 * (store/usage.ts `addUsage`, issue 20).
 */
async function seedUser(kv: Deno.Kv, userId = "usr_a") {
  await kv.set(userKey(userId), { id: userId });
}

async function usageEntries(kv: Deno.Kv, userId: string): Promise<number> {
  let n = 0;
  for await (const _ of kv.list({ prefix: [userId, "usage"] })) n++;
  return n;
}

async function get(ctx: TestApp, path: string, init: RequestInit = {}) {
  const res = await ctx.app.request(`${BASE}${path}`, init);
  return { res, body: await res.json() };
}

Deno.test("each Bearer-key request is counted by outcome per key and hour, and only flushed off the request path", async (t) => {
  const ctx = await makeTestApp({
    config: { rateLimit: { max: 4, windowMs: 60_000, failOpen: false } },
  });
  try {
    const a = await createAccountWithKey(ctx.kv, ctx.clock);
    const other = await createAccountWithKey(ctx.kv, ctx.clock);
    const hour = hourOf(ctx.clock());
    const call = async (path: string, key = a.key) => {
      const res = await ctx.app.request(`${BASE}${path}`, bearer(key));
      await res.body?.cancel();
      return res.status;
    };
    // 2 x 200, 1 x 404, then the fourth request and beyond are over the limit of 4: 429.
    const statuses = [
      await call("/api/e2/domains"),
      await call("/api/e2/domains?limit=1"),
      await call("/api/e2/domains/dom_doesnotexist"),
      await call("/api/e2/domains"),
      await call("/api/e2/domains"),
      await call("/api/e2/domains"),
    ];
    const wrong = await call("/api/e2/domains", "inb_wrong");
    await call("/api/e2/domains", other.key);

    await t.step("the requests answered as the test expects", () => {
      assert.deepEqual(statuses, [200, 200, 404, 200, 429, 429]);
      assert.equal(wrong, 401);
    });
    await t.step("nothing is written to KV while requests are answered", async () => {
      assert.equal(await usageEntries(ctx.kv, a.userId), 0);
    });
    await t.step("a flush writes each outcome of each key under its hour", async () => {
      await ctx.app.idle();
      assert.equal(await counter(ctx.kv, a.userId, a.keyId, hour, "2xx"), 3);
      assert.equal(await counter(ctx.kv, a.userId, a.keyId, hour, "4xx"), 1);
      assert.equal(await counter(ctx.kv, a.userId, a.keyId, hour, "429"), 2);
      assert.equal(await counter(ctx.kv, a.userId, a.keyId, hour, "5xx"), 0);
      assert.equal(await counter(ctx.kv, other.userId, other.keyId, hour, "2xx"), 1);
    });
    await t.step("a 401 names no key and is counted nowhere", async () => {
      let total = 0;
      for await (const e of ctx.kv.list<Deno.KvU64>({ prefix: [a.userId, "usage"] })) {
        total += Number(e.value.value);
      }
      assert.equal(total, 6);
    });
    await t.step("the next hour's requests go to the next hour", async () => {
      ctx.clock.advance(HOUR_MS);
      assert.equal(await call("/api/e2/domains"), 200);
      await ctx.app.idle();
      assert.equal(await counter(ctx.kv, a.userId, a.keyId, hour + HOUR_MS, "2xx"), 1);
      assert.equal(await counter(ctx.kv, a.userId, a.keyId, hour, "2xx"), 3);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a handler's error and a session's requests are classified and kept apart", async (t) => {
  const faulty = new FaultyKv(await Deno.openKv(":memory:"));
  const ctx = await makeTestApp({ kv: faulty.kv });
  try {
    const a = await createAccountWithKey(ctx.kv, ctx.clock);
    const { cookie } = await seedSession(ctx.kv, a.userId, ctx.clock);
    const hour = hourOf(ctx.clock());
    await t.step("a store failure inside the handler is a 5xx of the key", async () => {
      faulty.setMode({
        kind: "throw",
        ops: ["get", "getMany", "list"],
        keys: (k) => k[0] === a.userId && (String(k[1]).startsWith("domain") || k[1] === "count"),
      });
      const res = await ctx.app.request(`${BASE}/api/e2/domains`, bearer(a.key));
      await res.body?.cancel();
      faulty.heal();
      assert.ok(res.status >= 500, `status ${res.status}`);
      await ctx.app.idle();
      assert.equal(await counter(faulty.inner, a.userId, a.keyId, hour, "5xx"), 1);
    });
    await t.step("requests made with a session cookie are not counted for any key", async () => {
      const res = await ctx.app.request(`${BASE}/api/e2/domains`, withCookie(cookie));
      await res.body?.cancel();
      assert.equal(res.status, 200);
      await ctx.app.idle();
      let total = 0;
      for await (const e of faulty.inner.list<Deno.KvU64>({ prefix: [a.userId, "usage"] })) {
        total += Number(e.value.value);
      }
      assert.equal(total, 1);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the outcome columns are 2xx below 400, 429 alone, other 4xx, and 5xx", () => {
  assert.deepEqual([200, 201, 304, 400, 403, 404, 429, 500, 503].map(outcomeIndex), [
    0,
    0,
    0,
    1,
    1,
    1,
    2,
    3,
    3,
  ]);
});

Deno.test("the recorder flushes by itself once the interval has passed, and a failed flush keeps its counts", async (t) => {
  const faulty = new FaultyKv(await Deno.openKv(":memory:"));
  await seedUser(faulty.inner);
  const clock = fakeClock(Date.UTC(2026, 2, 14, 9, 30));
  const recorder = new UsageRecorder(faulty.kv, clock, silentLogger, 50);
  const hour = hourOf(clock());
  const total = () => counter(faulty.inner, "usr_a", "key_a", hour, "2xx");
  try {
    await t.step("counts reach KV by themselves once the interval has passed", async () => {
      for (let i = 0; i < 10; i++) recorder.record("usr_a", "key_a", 200);
      for (let i = 0; i < 200 && await total() < 10; i++) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(await total(), 10);
      assert.equal(recorder.pending(), 0);
    });
    await t.step("while the store refuses commits, the counts are kept", async () => {
      faulty.setMode({ kind: "throw", ops: ["commit"] });
      for (let i = 0; i < 5; i++) recorder.record("usr_a", "key_a", 200);
      await recorder.flush();
      assert.equal(recorder.pending(), 5);
      recorder.record("usr_a", "key_a", 200);
      await recorder.flush();
      assert.equal(recorder.pending(), 6);
      assert.equal(await total(), 10);
    });
    await t.step("the next flush after the store heals writes every kept count once", async () => {
      faulty.heal();
      await recorder.idle();
      assert.equal(recorder.pending(), 0);
      assert.equal(await total(), 16);
      await recorder.idle();
      assert.equal(await total(), 16);
    });
  } finally {
    await recorder.idle();
    faulty.close();
  }
});

Deno.test("under steady traffic a key is written at most once per flush interval", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedUser(kv);
  const { kv: recorded, accesses } = recordingKv(kv);
  const flushMs = 150;
  const recorder = new UsageRecorder(recorded, () => Date.now(), silentLogger, flushMs);
  const started = performance.now();
  try {
    let requests = 0;
    while (performance.now() - started < 1000) {
      recorder.record("usr_a", "key_a", 200);
      requests++;
      await new Promise((r) => setTimeout(r, 5));
    }
    const elapsed = performance.now() - started;
    const writes = accesses.filter((a) => a.op === "mutate:sum" && a.key[2] === "key_a").length;
    assert.ok(writes >= 2, `only ${writes} flushes in ${elapsed} ms`);
    assert.ok(
      writes <= Math.floor(elapsed / flushMs) + 1,
      `${writes} flushes in ${Math.round(elapsed)} ms at ${flushMs} ms`,
    );
    await recorder.idle();
    let stored = 0;
    for await (const e of kv.list<Deno.KvU64>({ prefix: ["usr_a", "usage"] })) {
      stored += Number(e.value.value);
    }
    assert.equal(stored, requests);
  } finally {
    await recorder.idle();
  }
});

Deno.test("a flush of many keys commits at most 100 mutations at a time", async () => {
  await using kv = await Deno.openKv(":memory:");
  await seedUser(kv);
  const rec = recordingKv(kv);
  const commits: number[] = [];
  const counting = new Proxy(rec.kv, {
    get(target, prop) {
      if (prop !== "atomic") return Reflect.get(target, prop, target);
      return () => {
        const op = target.atomic();
        let n = 0;
        return new Proxy(op, {
          get(o, p, receiver) {
            const v = Reflect.get(o, p, receiver);
            if (typeof v !== "function") return v;
            return (...args: unknown[]) => {
              if (p === "mutate") n += args.length;
              if (p === "delete" || p === "set" || p === "sum") n++;
              if (p === "commit") commits.push(n);
              const r = v.apply(o, args);
              return r === o ? receiver : r;
            };
          },
        });
      };
    },
  });
  const clock = fakeClock(Date.UTC(2026, 2, 14, 9, 30));
  const recorder = new UsageRecorder(counting, clock, silentLogger, 60_000);
  for (let k = 0; k < 120; k++) {
    for (const status of [200, 404, 429, 500]) recorder.record("usr_a", `key_${k}`, status);
  }
  await recorder.idle();
  assert.ok(commits.length >= 6, `${commits.length} commits`);
  assert.ok(commits.every((n) => n <= MAX_MUTATIONS_PER_COMMIT), commits.join(","));
  const hour = hourOf(clock());
  assert.equal(await counter(kv, "usr_a", "key_119", hour, "5xx"), 1);
  assert.equal(await counter(kv, "usr_a", "key_0", hour, "429"), 1);
});

Deno.test("usage older than 90 days is never read, and a flush deletes it", async (t) => {
  await using kv = await Deno.openKv(":memory:");
  await seedUser(kv);
  const now = Date.UTC(2026, 5, 1, 12, 30);
  const old = hourOf(now) - 91 * DAY_MS;
  const recent = hourOf(now) - 2 * DAY_MS;
  await addUsage(kv, [
    { userId: "usr_a", keyId: "key_a", hourMs: recent, counts: [7, 0, 0, 0] },
  ], now);
  // A counter from before the retention, as a flush 91 days ago left it.
  await kv.atomic().sum(usageCounterKey("usr_a", "key_a", old, "2xx"), 5n).commit();
  await t.step("a 90-day read counts only the recent hour", async () => {
    const days = await readDailyUsage(kv, "usr_a", "key_a", 90, now);
    assert.equal(days.length, 90);
    assert.equal(days.reduce((s, d) => s + d.requests, 0), 7);
  });
  await t.step("the next flush of the key deletes the old hour", async () => {
    const recorder = new UsageRecorder(kv, fakeClock(now), silentLogger, 60_000);
    recorder.record("usr_a", "key_a", 200);
    await recorder.idle();
    assert.equal(await counter(kv, "usr_a", "key_a", old, "2xx"), 0);
    assert.equal(await counter(kv, "usr_a", "key_a", recent, "2xx"), 7);
  });
});

Deno.test("GET /api/e2/api-keys/{id}/usage answers a key's days, session only, 404 for another account's key", async (t) => {
  const ctx = await makeTestApp();
  try {
    const a = await createAccountWithKey(ctx.kv, ctx.clock);
    const b = await createAccountWithKey(ctx.kv, ctx.clock);
    const { cookie } = await seedSession(ctx.kv, a.userId, ctx.clock);
    for (let i = 0; i < 3; i++) {
      const res = await ctx.app.request(`${BASE}/api/e2/domains`, bearer(a.key));
      await res.body?.cancel();
    }
    const res404 = await ctx.app.request(`${BASE}/api/e2/domains/dom_nope`, bearer(a.key));
    await res404.body?.cancel();
    await ctx.app.idle();
    const path = `/api/e2/api-keys/${a.keyId}/usage`;

    await t.step("30 days by default, oldest first, today last with its counts", async () => {
      const { res, body } = await get(ctx, path, withCookie(cookie));
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("Cache-Control"), "no-store");
      assert.equal(body.data.length, 30);
      const today = body.data.at(-1);
      assert.equal(today.start, new Date(ctx.clock() - (ctx.clock() % DAY_MS)).toISOString());
      assert.deepEqual(today, {
        start: today.start,
        requests: 4,
        "2xx": 3,
        "4xx": 1,
        "429": 0,
        "5xx": 0,
      });
      assert.equal(Date.parse(body.data[1].start) - Date.parse(body.data[0].start), DAY_MS);
    });
    await t.step("days=1 and days=90 are accepted", async () => {
      assert.equal((await get(ctx, `${path}?days=1`, withCookie(cookie))).body.data.length, 1);
      assert.equal((await get(ctx, `${path}?days=90`, withCookie(cookie))).body.data.length, 90);
    });
    await t.step("days outside 1..90 or not a number is a 400 naming days", async () => {
      for (const days of ["0", "91", "abc", "1.5", ""]) {
        const { res, body } = await get(ctx, `${path}?days=${days}`, withCookie(cookie));
        assert.equal(res.status, 400, days);
        assert.match(JSON.stringify(body), /days/);
      }
    });
    await t.step(
      "another account's key answers exactly like a key that does not exist",
      async () => {
        const theirs = await get(ctx, `/api/e2/api-keys/${b.keyId}/usage`, withCookie(cookie));
        const none = await get(
          ctx,
          `/api/e2/api-keys/key_0000000000000000000000/usage`,
          withCookie(cookie),
        );
        assert.equal(theirs.res.status, 404);
        assert.deepEqual(theirs.body, none.body);
      },
    );
    await t.step("a Bearer key is refused with 403 SESSION_REQUIRED", async () => {
      const { res, body } = await get(ctx, path, bearer(a.key));
      assert.equal(res.status, 403);
      assert.equal(body.code, "SESSION_REQUIRED");
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("GET /api/e2/usage lists every key's days with its id and name, deleted keys by id", async (t) => {
  const ctx = await makeTestApp();
  try {
    const a = await createAccountWithKey(ctx.kv, ctx.clock, { keyName: "first" });
    const { cookie } = await seedSession(ctx.kv, a.userId, ctx.clock);
    const store = tenantStore(ctx.kv, a.userId, ctx.clock);
    const { issueApiKey } = await import("../../auth/api_keys/issue.ts");
    const second = await issueApiKey(store.apiKeys, { name: "second", nowMs: ctx.clock() });
    for (const key of [a.key, second.key, second.key]) {
      const res = await ctx.app.request(`${BASE}/api/e2/domains`, bearer(key));
      await res.body?.cancel();
    }
    await ctx.app.idle();
    await store.apiKeys.delete(second.record.id);

    await t.step("one item per key and day, with keyId and name", async () => {
      const { res, body } = await get(ctx, `/api/e2/usage?days=7`, withCookie(cookie));
      assert.equal(res.status, 200);
      assert.equal(body.data.length, 14);
      const today = body.data.slice(-2);
      const byKey = Object.fromEntries(today.map((d: { keyId: string }) => [d.keyId, d]));
      assert.equal(byKey[a.keyId].name, "first");
      assert.equal(byKey[a.keyId].requests, 1);
      assert.equal(byKey[second.record.id].name, null);
      assert.equal(byKey[second.record.id].requests, 2);
    });
    await t.step("keyId narrows the list to one key", async () => {
      const { body } = await get(ctx, `/api/e2/usage?days=3&keyId=${a.keyId}`, withCookie(cookie));
      assert.equal(body.data.length, 3);
      assert.ok(body.data.every((d: { keyId: string }) => d.keyId === a.keyId));
    });
    await t.step("another account sees none of it", async () => {
      const b = await createAccountWithKey(ctx.kv, ctx.clock);
      const s = await seedSession(ctx.kv, b.userId, ctx.clock);
      const { body } = await get(ctx, `/api/e2/usage?days=1`, withCookie(s.cookie));
      assert.deepEqual(body.data.map((d: { keyId: string }) => d.keyId), [b.keyId]);
      assert.equal(body.data[0].requests, 0);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the dashboard draws a sparkline per key and a Usage page with an SVG chart and the same numbers as a table", async (t) => {
  const ctx = await makeTestApp();
  try {
    const a = await createAccountWithKey(ctx.kv, ctx.clock, { keyName: "production" });
    const { cookie } = await seedSession(ctx.kv, a.userId, ctx.clock);
    for (let i = 0; i < 5; i++) {
      const res = await ctx.app.request(`${BASE}/api/e2/domains`, bearer(a.key));
      await res.body?.cancel();
    }
    await ctx.app.idle();
    await t.step("the API keys page has the key's sparkline with a text alternative", async () => {
      const res = await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie));
      const html = await res.text();
      assert.equal(res.status, 200);
      assert.match(
        html,
        /<svg class="sparkline"[^>]*role="img"[^>]*aria-label="Requests per day, last 30 days, key production: 5 requests in total/,
      );
      assert.match(html, /<polyline points="/);
    });
    await t.step(
      "the Usage page has a titled SVG chart, a table of the days, no inline script or style",
      async () => {
        const res = await ctx.app.request(`${BASE}/settings/usage?days=7`, withCookie(cookie));
        const html = await res.text();
        assert.equal(res.status, 200);
        assert.match(res.headers.get("Content-Security-Policy") ?? "", /script-src 'self'/);
        assert.match(
          html,
          /<svg class="usage-chart"[^>]*role="img"[^>]*aria-labelledby="usage-chart-title"/,
        );
        assert.match(
          html,
          /<title id="usage-chart-title">Requests per day, last 7 days: 5 in total/,
        );
        const rows = html.match(/<tr><td data-label="Day">/g) ?? [];
        // Issue 22 item 10: only days with traffic are rows (all 5 requests were today).
        assert.equal(rows.length, 1);
        assert.match(html, /<td data-label="Requests">5<\/td><td data-label="2xx">5<\/td>/);
        assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)/);
        assert.doesNotMatch(html, /\sstyle=/);
        assert.doesNotMatch(html, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
      },
    );
    await t.step("the Usage page needs a session", async () => {
      const res = await ctx.app.request(`${BASE}/settings/usage`);
      await res.body?.cancel();
      assert.equal(res.status, 303);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test({
  name:
    "the Usage page fits a 390 px screen without sideways scrolling and passes axe, chart and table included",
  ignore: skipBrowserTests("usage page browser test"),
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const ctx = await makeTestApp({ clock: () => Date.now() });
    const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, ctx.app.fetch);
    const browser = await launchBrowser();
    try {
      const a = await createAccountWithKey(ctx.kv, () => Date.now(), { keyName: "production" });
      const { cookie } = await seedSession(ctx.kv, a.userId, () => Date.now());
      const now = Date.now();
      // 30 days of made-up traffic, so the chart has bars of every colour.
      await addUsage(
        ctx.kv,
        Array.from({ length: 30 }, (_, d) => ({
          userId: a.userId,
          keyId: a.keyId,
          hourMs: hourOf(now) - d * DAY_MS,
          counts: [
            900 + 40 * d + (d % 5) * 150,
            20 + d,
            d % 7 === 0 ? 90 : 0,
            d === 12 ? 9 : 0,
          ] as [
            number,
            number,
            number,
            number,
          ],
        })),
        now,
      );
      const url = `http://127.0.0.1:${server.addr.port}`;
      const [name, value] = cookie.split("=");
      for (const width of [390, 1280]) {
        await t.step(`at ${width} px`, async () => {
          const context = await browser.newContext({ viewport: { width, height: 1100 } });
          await context.addCookies([{ name, value, url }]);
          const page = await context.newPage();
          const errors: string[] = [];
          page.on("console", (m) => {
            if (m.type() === "error") errors.push(m.text());
          });
          await page.goto(`${url}/settings/usage`);
          assert.equal(await page.evaluate("document.documentElement.scrollWidth"), width);
          const chart = page.getByRole("img", { name: /^Requests per day, last 30 days: / });
          assert.ok(await chart.isVisible());
          const box = await chart.boundingBox();
          assert.ok(box && box.width > width / 2, `chart ${JSON.stringify(box)}`);
          assert.equal(
            await page.locator("section[aria-labelledby=usage-table-heading] tbody tr").count(),
            30,
          );
          assert.deepEqual(errors, []);
          await assertNoAxeViolations(page, `usage ${width}px`);
          if (width === 1280) {
            await page.screenshot({
              path: "docs/screenshots/usage.png",
              clip: { x: 0, y: 0, width, height: 1100 },
            });
          }
          await context.close();
        });
      }
    } finally {
      await browser.close();
      await server.shutdown();
      await ctx.close();
    }
  },
});
