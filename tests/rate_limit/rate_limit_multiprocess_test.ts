/**
 * The limiter in real server processes (`deno task start`) sharing one SQLite KV file: no
 * over-admission with one process and with two, no false 429 for a client at 90 % of the limit
 * spread over both, and no 500 (nor a lost count) from SQLite's `database is locked` when both
 * write the same counter at once.
 *
 * The window is an hour long so a test's requests fall in one window; admissions are still
 * grouped by the window each response names (X-RateLimit-Reset), so a test that straddles a
 * window boundary stays correct.
 */
import { retryingKv } from "../../store/retrying_kv.ts";
import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { windowCount } from "../../store/rate_limit.ts";
import {
  bearer,
  createAccountWithKey,
  removeKvFile,
  type ServerProcess,
  startServer,
  tempKvPath,
} from "../_helpers.ts";

const WINDOW_MS = 3_600_000;
const LIMIT = 100;

type Sent = { status: number; reset: string | null };

async function send(server: ServerProcess, key: string): Promise<Sent> {
  const res = await fetch(`${server.url}/api/e2/domains`, bearer(key));
  await res.body?.cancel();
  return { status: res.status, reset: res.headers.get("X-RateLimit-Reset") };
}

/** Admitted requests per window (by the window end each response names). */
function admittedPerWindow(sent: Sent[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of sent) if (s.status === 200) m.set(s.reset!, (m.get(s.reset!) ?? 0) + 1);
  return m;
}

function statusCounts(sent: Sent[]): Record<string, number> {
  const t: Record<string, number> = {};
  for (const s of sent) t[s.status] = (t[s.status] ?? 0) + 1;
  return t;
}

/** A shared KV file with fresh accounts, and `n` servers on it. */
async function cluster(n: number, accounts: number) {
  const path = await tempKvPath();
  const kv = retryingKv(await Deno.openKv(path)); // servers write the same file: retry SQLite's lock
  const keys = [];
  for (let i = 0; i < accounts; i++) keys.push(await createAccountWithKey(kv, systemClock));
  const env = {
    DENO_KV_PATH: path,
    RATE_LIMIT_MAX: String(LIMIT),
    RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
    LOG_LEVEL: "silent",
  };
  const servers = await Promise.all(Array.from({ length: n }, () => startServer(env)));
  return {
    kv,
    keys,
    servers,
    async close() {
      await Promise.all(servers.map((s) => s.stop()));
      kv.close();
      await removeKvFile(path);
    },
  };
}

Deno.test("one server process: 300 concurrent requests against a limit of 100", async (t) => {
  const c = await cluster(1, 1);
  try {
    const [{ key, userId }] = c.keys;
    const sent = await Promise.all(Array.from({ length: 300 }, () => send(c.servers[0], key)));

    await t.step("only 200 and 429 answers", () => {
      assert.deepEqual(Object.keys(statusCounts(sent)).sort(), ["200", "429"]);
    });
    await t.step("exactly the limit admitted in the window, the rest refused", async () => {
      const perWindow = admittedPerWindow(sent);
      for (const [reset, admitted] of perWindow) {
        assert.equal(admitted, LIMIT);
        assert.equal(await windowCount(c.kv, userId, Number(reset) - WINDOW_MS), LIMIT);
      }
    });
  } finally {
    await c.close();
  }
});

Deno.test("two server processes on one KV file never admit more than the limit", async (t) => {
  const c = await cluster(2, 3);
  try {
    for (const [i, { key, userId }] of c.keys.entries()) {
      await t.step(`account ${i + 1}: 300 concurrent requests split over both`, async () => {
        const sent = await Promise.all(
          Array.from({ length: 300 }, (_, j) => send(c.servers[j % 2], key)),
        );
        assert.deepEqual(Object.keys(statusCounts(sent)).sort(), ["200", "429"]);
        for (const [reset, admitted] of admittedPerWindow(sent)) {
          assert.ok(admitted <= LIMIT, `admitted ${admitted} in one window`);
          const counted = await windowCount(c.kv, userId, Number(reset) - WINDOW_MS);
          assert.ok(counted >= admitted, `counter ${counted} below admitted ${admitted}`);
          assert.ok(counted <= LIMIT);
        }
      });
    }

    await t.step(
      "all three accounts at once: database is locked never becomes an error",
      async () => {
        // Both processes write three counters concurrently; every answer is 200 or 429.
        const fresh = [];
        for (let i = 0; i < 3; i++) fresh.push(await createAccountWithKey(c.kv, systemClock));
        const sent = await Promise.all(
          fresh.flatMap(({ key }) =>
            Array.from({ length: 150 }, (_, j) => send(c.servers[j % 2], key))
          ),
        );
        assert.deepEqual(Object.keys(statusCounts(sent)).sort(), ["200", "429"]);
        for (const [k, { userId }] of fresh.entries()) {
          const mine = sent.slice(k * 150, (k + 1) * 150);
          for (const [reset, admitted] of admittedPerWindow(mine)) {
            assert.ok(admitted <= LIMIT);
            const counted = await windowCount(c.kv, userId, Number(reset) - WINDOW_MS);
            assert.ok(counted >= admitted, `counter ${counted} below admitted ${admitted}`);
          }
        }
      },
    );
  } finally {
    await c.close();
  }
});

Deno.test("a client at 90 % of the limit spread over two processes is never refused", async (t) => {
  const patterns: [string, (i: number) => 0 | 1, number][] = [
    ["alternating, one by one", (i) => (i % 2 ? 1 : 0), 1],
    ["alternating, in bursts of 30", (i) => (i % 2 ? 1 : 0), 30],
    ["one request to the first, the rest to the second", (i) => (i === 0 ? 0 : 1), 1],
    ["a fifth to the first, in bursts of 10", (i) => (i % 5 === 0 ? 0 : 1), 10],
    ["all 90 at once, split evenly", (i) => (i % 2 ? 1 : 0), 90],
  ];
  const c = await cluster(2, patterns.length);
  try {
    for (const [p, [name, pick, burst]] of patterns.entries()) {
      await t.step(name, async () => {
        const { key } = c.keys[p];
        const sent: Sent[] = [];
        for (let i = 0; i < 90; i += burst) {
          const batch = Array.from({ length: burst }, (_, j) => i + j);
          sent.push(...await Promise.all(batch.map((k) => send(c.servers[pick(k)], key))));
        }
        assert.deepEqual(statusCounts(sent), { 200: 90 });
      });
    }
  } finally {
    await c.close();
  }
});
