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
import { parseArgs } from "node:util";
import { createApp } from "../app.ts";
import { loadConfig } from "../lib/config.ts";
import { openKv } from "../store/open.ts";
import { removeKvFiles } from "./_server.ts";
import { type SeededKey, seedKeys } from "./_seed.ts";
import { unauthenticatedApp } from "./unauthenticated_server.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "40" },
    requests: { type: "string", default: "2000" },
    accounts: { type: "string", default: "20" },
    keys: { type: "string", default: "1000" },
  },
});
const ROUNDS = Number(args.rounds);
const REQUESTS = Number(args.requests);
const IN_FLIGHT = 32;
const SKIPPED = 3;
if (!(ROUNDS > SKIPPED)) throw new Error(`--rounds must be more than ${SKIPPED}`);

type Fetch = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

const INFO: Deno.ServeHandlerInfo<Deno.NetAddr> = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
  completed: Promise.resolve(),
};

/** Microseconds per request for REQUESTS requests, IN_FLIGHT at a time. */
async function round(fetch: Fetch, keys: SeededKey[]): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < REQUESTS) {
      const { key, userId } = keys[next++ % keys.length];
      const res = await fetch(
        new Request("http://127.0.0.1/api/e2/domains", {
          headers: { Authorization: `Bearer ${key}`, "X-Bench-Account": userId },
        }),
        INFO,
      );
      if (res.status !== 200) throw new Error(`answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }
  }));
  return (performance.now() - started) * 1000 / REQUESTS;
}

function median(xs: number[]): number {
  return [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
}

const ROOT = new URL("..", import.meta.url).pathname;
await Deno.mkdir(`${ROOT}/data/bench`, { recursive: true });
const kvPath = `${ROOT}/data/bench/${crypto.randomUUID()}.sqlite3`;
const kv = await openKv(kvPath);
try {
  const seeded = await seedKeys(kv, Number(args.accounts), Number(args.keys));
  const config = {
    ...loadConfig({ DENO_KV_PATH: kvPath, LOG_LEVEL: "silent" }),
    rateLimit: { max: 1_000_000, windowMs: 1000, failOpen: false },
  };
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
} finally {
  kv.close();
  await removeKvFiles(kvPath);
}
