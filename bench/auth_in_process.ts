/**
 * Benchmark: what authentication and rate limiting cost per request in the JS, without the
 * network, wrk or the other core (the figures bench/auth_throughput.ts gives move by tens of
 * percent with the machine; these move by a few microseconds).
 *
 * One process, one KV file under ./data/bench seeded like auth_throughput.ts (20 accounts, 1,000
 * plain keys, 1,000 keys scoped to domains:read and restricted to 127.0.0.1/32), and the apps
 * called with `app.fetch` (32 requests in flight, client address 127.0.0.1):
 *   (a) the production app (createApp, default configuration but a limit that never refuses);
 *   (b) the unauthenticated baseline of bench/unauthenticated_server.ts;
 *   (c) app (a) with the scoped keys.
 * Rounds of `--requests` requests per side, in an order rotated from round to round; prints the
 * median microseconds per request of each side over the rounds after the first three, and the
 * differences a - b and c - b: the time authentication, the limiter and the key checks add.
 *
 *   deno run --allow-net --allow-env --allow-read --allow-write bench/auth_in_process.ts \
 *     [--rounds 40] [--requests 2000] [--accounts 20] [--keys 1000]
 */
import { createApp } from "../app.ts";
import {
  benchConfig,
  type Fetch,
  fireRequests,
  IN_FLIGHT,
  inProcessArgs,
  median,
  SKIPPED,
  withBenchKv,
} from "./_in_process.ts";
import { type SeededKey, seedKeys } from "./_seed.ts";
import { unauthenticatedApp } from "./unauthenticated_server.ts";

const args = inProcessArgs(40);
const { rounds: ROUNDS, requests: REQUESTS } = args;

/** Microseconds per request for REQUESTS requests, IN_FLIGHT at a time. */
async function round(fetch: Fetch, keys: SeededKey[]): Promise<number> {
  const started = performance.now();
  await fireRequests(fetch, keys, REQUESTS);
  return (performance.now() - started) * 1000 / REQUESTS;
}

await withBenchKv(async (kv, kvPath) => {
  const seeded = await seedKeys(kv, args.accounts, args.keys);
  const config = benchConfig(kvPath);
  const full = createApp({ kv, config });
  const baseline = unauthenticatedApp(kv, config);
  const sides = {
    a: { label: "(a) Bearer auth + rate limit", fetch: full.fetch as Fetch, keys: seeded.plain },
    b: {
      label: "(b) same handler, no auth/limiter",
      fetch: baseline.fetch as Fetch,
      keys: seeded.plain,
    },
    c: {
      label: "(c) as (a), scoped + IP-restricted key",
      fetch: full.fetch as Fetch,
      keys: seeded.scoped,
    },
  };
  const order = ["a", "b", "c"] as const;
  const times: Record<"a" | "b" | "c", number[]> = { a: [], b: [], c: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const shift = r % order.length;
    for (const side of [...order.slice(shift), ...order.slice(0, shift)]) {
      times[side].push(await round(sides[side].fetch, sides[side].keys));
    }
  }
  await full.idle();
  const us = (side: "a" | "b" | "c") => median(times[side].slice(SKIPPED));
  console.log(
    `${ROUNDS - SKIPPED} rounds of ${REQUESTS} requests per side (after ${SKIPPED}), ` +
      `${IN_FLIGHT} in flight, Deno ${Deno.version.deno}; median microseconds per request:`,
  );
  for (const side of order) {
    console.log(`${sides[side].label.padEnd(40)} ${us(side).toFixed(1).padStart(7)} us`);
  }
  console.log(
    `added by authentication and the limiter: a - b ${(us("a") - us("b")).toFixed(1)} us; ` +
      `with the scope and address checks: c - b ${(us("c") - us("b")).toFixed(1)} us`,
  );
});
