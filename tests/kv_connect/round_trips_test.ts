/**
 * What a request waits for over KV Connect (issue 24), counted by the KV Connect test backend
 * (tests/kv_connect/server.ts `roundTrips`: how many times its in-flight count went from 0 to 1
 * while the request was being answered), one request at a time, the app in this process on a
 * fake clock so that no timer-driven work (revocation poll, usage flush) falls inside a request
 * unless the test moves the clock. Counts only, never times: the injected round trip (RTT_MS)
 * only makes requests sent together overlap at the backend, so they count as one round trip.
 *
 * Targets: a warm list (no domains: its page is one read) waits for 1 round trip, also across a
 * rate-limit window boundary; a warm domain create for 2 (one getMany, one commit); the first
 * request of a key for at most 2 before its handler.
 */
import assert from "node:assert/strict";
import { fakeClock } from "../../lib/clock.ts";
import { bearer, createAccountWithKey, makeTestApp, type TestApp } from "../_helpers.ts";
import { type KvConnectStats, type KvConnectTestServer, startKvConnectServer } from "./server.ts";

const TOKEN = `kvc-rt-${crypto.randomUUID()}`;
Deno.env.set("DENO_KV_ACCESS_TOKEN", TOKEN);
/** Long enough that requests sent in the same turn of the event loop overlap at the backend. */
const RTT_MS = 40;
const WINDOW_MS = 1000;

type Counted = { status: number; during: KvConnectStats };

/** Waits until the backend has nothing in flight (background writes of the previous request). */
async function settle(server: KvConnectTestServer, t: TestApp): Promise<void> {
  for (let quiet = 0; quiet < 5;) {
    await new Promise((r) => setTimeout(r, 20));
    quiet = server.stats().inFlight === 0 ? quiet + 1 : 0;
  }
  await t.app.idle().catch(() => {});
}

async function counted(
  server: KvConnectTestServer,
  t: TestApp,
  path: string,
  key: string,
  body?: unknown,
): Promise<Counted> {
  await settle(server, t);
  server.resetStats();
  const res = await t.app.request(
    path,
    bearer(key, {
      method: body ? "POST" : "GET",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    }),
  );
  await res.body?.cancel();
  return { status: res.status, during: server.stats() };
}

Deno.test("round trips a request waits for over KV Connect (issue 24)", async (t) => {
  const server = await startKvConnectServer({ path: ":memory:", token: TOKEN, rttMs: RTT_MS });
  const kv = await Deno.openKv(server.url);
  // 100 ms into a window, so a step of the test knows where the window ends.
  const clock = fakeClock(Math.floor(Date.now() / WINDOW_MS) * WINDOW_MS + 100);
  const app = await makeTestApp({
    kv,
    clock,
    config: {
      rateLimit: { max: 1_000_000, windowMs: WINDOW_MS, failOpen: false },
      maxDomainsPerAccount: 1000,
      usageFlushMs: 3_600_000,
    },
  });
  try {
    const warm = await createAccountWithKey(kv, clock);
    const lister = await createAccountWithKey(kv, clock);
    const creator = await createAccountWithKey(kv, clock);
    // The process's first requests (another account): the first revocation poll, JIT.
    for (let i = 0; i < 3; i++) {
      assert.equal((await counted(server, app, "/api/e2/domains", warm.key)).status, 200);
    }
    let firstList = 0;

    await t.step("first request of a key: at most 2 round trips before the handler", async () => {
      const first = await counted(server, app, "/api/e2/domains", lister.key);
      assert.equal(first.status, 200);
      const again = await counted(server, app, "/api/e2/domains", lister.key);
      assert.equal(again.status, 200);
      firstList = first.during.roundTrips;
      // The handler's own work is what the warm request waits for (its page: one read).
      assert.ok(
        first.during.roundTrips - again.during.roundTrips <= 2,
        `first ${JSON.stringify(first.during)}, warm ${JSON.stringify(again.during)}`,
      );
    });

    await t.step("warm list: 1 round trip (a read), limiter top-ups off the path", async () => {
      for (let i = 0; i < 30; i++) {
        const r = await counted(server, app, "/api/e2/domains", lister.key);
        assert.equal(r.status, 200);
        assert.equal(r.during.roundTrips, 1, `request ${i}: ${JSON.stringify(r.during)}`);
        assert.equal(r.during.reads, 1, `request ${i}: ${JSON.stringify(r.during)}`);
      }
    });

    await t.step("warm list across window boundaries: still 1 round trip", async () => {
      // 200 ms steps through three windows, as steady traffic would: the next window's lease and
      // the revocation poll are taken in the background, beside the handler's read.
      for (let i = 0; i < 15; i++) {
        clock.advance(200);
        const r = await counted(server, app, "/api/e2/domains", lister.key);
        assert.equal(r.status, 200);
        assert.equal(r.during.roundTrips, 1, `step ${i}: ${JSON.stringify(r.during)}`);
      }
    });

    await t.step("warm create: 2 round trips (one getMany, one commit)", async () => {
      const tag = crypto.randomUUID().slice(0, 8);
      const first = await counted(server, app, "/api/e2/domains", creator.key, {
        domain: `rt-first-${tag}.example.com`,
      });
      assert.equal(first.status, 201);
      for (let i = 0; i < 10; i++) {
        const r = await counted(server, app, "/api/e2/domains", creator.key, {
          domain: `rt-${i}-${tag}.example.com`,
        });
        assert.equal(r.status, 201);
        assert.equal(r.during.roundTrips, 2, `create ${i}: ${JSON.stringify(r.during)}`);
        assert.equal(r.during.reads, 1, `create ${i}: ${JSON.stringify(r.during)}`);
      }
      console.log(
        `round trips waited: first list ${firstList}, first create ${first.during.roundTrips}`,
      );
    });
  } finally {
    await app.close();
    await server.close();
  }
});
