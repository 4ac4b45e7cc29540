/**
 * Attacks on issue 24's limiter changes (auth/rate_limit.ts, store/rate_limit.ts): the remembered
 * counter (one checked write per lease), the next window's lease taken early, the new lease sizing
 * and `prepare`. Two limiters on one KV stand in for two instances; the clock is fake, so the
 * windows are exact and nothing depends on the machine's speed. Counts only.
 */
import assert from "node:assert/strict";
import { RateLimiter } from "../../auth/rate_limit.ts";
import { fakeClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import { windowCount } from "../../store/rate_limit.ts";
import { retryingKv } from "../../store/retrying_kv.ts";

const WINDOW = 1000;
const MAX = 100;

/** A small seeded PRNG (mulberry32): the interleaving is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function allowed(l: RateLimiter, userId: string): Promise<boolean> {
  return (await l.check(userId)).allowed;
}

Deno.test("defended: two instances with early next-window leases never admit more than the limit", async (t) => {
  const kv = await Deno.openKv(":memory:");
  const now = Date.now();
  const clock = fakeClock(now - (now % WINDOW) + 10 * WINDOW);
  const make = () =>
    new RateLimiter(
      retryingKv(kv),
      { max: MAX, windowMs: WINDOW, failOpen: false },
      clock,
      silentLogger,
    );
  const a = make();
  const b = make();
  const userId = "usr_attack";
  const random = prng(24);
  const first = clock() - (clock() % WINDOW);
  /** Per window: admitted by both, and the total admitted when the first refusal came. */
  const admitted = new Map<number, number>();
  const refusedAt = new Map<number, number>();
  try {
    await t.step("8 windows of bursts, idle spells and steady traffic, 10 ms steps", async () => {
      for (let step = 0; step < 8 * (WINDOW / 10); step++) {
        const window = clock() - (clock() % WINDOW);
        const phase = Math.floor((window - first) / WINDOW) % 4;
        // Phase 0: both busy; 1: only A; 2: only B, bursty; 3: both light.
        const load = [[3, 3], [4, 0], [0, random() < 0.2 ? 20 : 0], [1, 1]][phase];
        for (const [l, n] of [[a, load[0]], [b, load[1]]] as const) {
          for (let i = 0; i < n; i++) {
            if (await allowed(l, userId)) {
              admitted.set(window, (admitted.get(window) ?? 0) + 1);
            } else if (!refusedAt.has(window)) refusedAt.set(window, admitted.get(window) ?? 0);
          }
        }
        clock.advance(10);
      }
      await a.idle();
      await b.idle();
    });
    await t.step("no window admitted more than the limit, and no counter passed it", async () => {
      for (const [window, n] of admitted) {
        assert.ok(n <= MAX, `window ${window - first}: ${n} admitted`);
        assert.ok((await windowCount(kv, userId, window)) <= MAX);
      }
      // The windows that refused did so near the limit (two instances: at most MAX/16 stranded).
      for (const [window, at] of refusedAt) {
        assert.ok(at >= MAX - MAX / 16, `window ${window - first}: refused after ${at} admitted`);
      }
      assert.ok(refusedAt.size > 0, "the attack did reach the limit in some window");
    });
  } finally {
    await a.idle();
    await b.idle();
    kv.close();
  }
});

Deno.test("defended: the store down refuses (503) a request with no token, even after a prepare", async () => {
  const kv = await Deno.openKv(":memory:");
  const now = Date.now();
  const clock = fakeClock(now - (now % WINDOW) + 10 * WINDOW);
  let down = false;
  const failing = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (down) throw new Error("store down");
        return value.apply(target, args);
      };
    },
  });
  const l = new RateLimiter(
    failing,
    { max: MAX, windowMs: WINDOW, failOpen: false },
    clock,
    silentLogger,
    { timeoutMs: 1000 },
  );
  try {
    down = true;
    l.prepare({ userId: "usr_down", keyId: "key_x", method: "api_key", access: undefined });
    await l.idle();
    await assert.rejects(
      async () => await l.check("usr_down"),
      (err: Error & { status?: number }) => {
        assert.equal(err.status, 503);
        return true;
      },
    );
  } finally {
    down = false;
    await l.idle();
    kv.close();
  }
});
