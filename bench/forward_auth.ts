/**
 * Benchmark (issue 25): what forward auth adds to a request through a real nginx.
 *
 * One nginx (Debian's, one worker, on 127.0.0.1) with three server blocks:
 *   (u) the upstream: `return 200` with a small JSON body (cheap, the same for both sides);
 *   (a) nginx straight to the upstream (`proxy_pass`, nothing else);
 *   (b) nginx with forward auth: the `## nginx` block of docs/forward-auth.md, ports replaced,
 *       asking the real server (`deno task start`'s command, a KV file under ./data/bench,
 *       FORWARD_AUTH_RULES with one rule any valid key passes, a rate limit that never refuses).
 * The load comes from this process: N loops of fetch (keep-alive), one warm key, for each N of
 * `--concurrency` (default 1: the latency a request pays, no queueing; 16: throughput, where the
 * added latency is mostly waiting for the busier side). Each round measures (a) and (b) back to
 * back, in alternating order, for `--duration` seconds each; the figures are the medians of the
 * rounds: requests/s (for (b), forward-auth decisions per second: every request is one
 * decision), p50 and p99, and the added p50 (b - a) with its range over the rounds. `wrk` is not
 * on this machine; this load loop costs the same per request on both sides, so the difference is
 * the auth's.
 *
 *   deno run --allow-net --allow-env --allow-read --allow-write --allow-run bench/forward_auth.ts \
 *     [--duration 3] [--rounds 5] [--warmup 2] [--concurrency 1,16]
 *
 * Needs nginx at /usr/sbin/nginx (apt-get install -y nginx).
 */
import { parseArgs } from "node:util";
import { issueApiKey } from "../auth/api_keys/issue.ts";
import { systemClock } from "../lib/clock.ts";
import { createUser } from "../store/accounts/users.ts";
import { tenantStore } from "../store/tenant.ts";
import {
  freePort,
  hasBinary,
  NGINX_BIN,
  nginxServerBlock,
  startNginx,
} from "../tests/forward_auth/_proxies.ts";
import { removeKvFiles, spawn, startTaskArgs } from "./_server.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "3" },
    rounds: { type: "string", default: "5" },
    warmup: { type: "string", default: "2" },
    concurrency: { type: "string", default: "1,16" },
  },
});
const DURATION_S = Number(args.duration);
const ROUNDS = Number(args.rounds);
const WARMUP_S = Number(args.warmup);
const CONCURRENCIES = args.concurrency.split(",").map(Number);
const ROOT = new URL("..", import.meta.url).pathname;

type Figures = { requests: number; rps: number; p50Ms: number; p99Ms: number; non200: number };

/** `concurrency` loops of GET `url` for `seconds`; latencies per request, statuses counted. */
async function load(
  url: string,
  key: string,
  seconds: number,
  concurrency: number,
): Promise<Figures> {
  const latencies: number[] = [];
  let non200 = 0;
  const headers = { Authorization: `Bearer ${key}` };
  const start = performance.now();
  const end = start + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      latencies.push(performance.now() - t0);
      if (res.status !== 200) non200++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((x, y) => x - y);
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    requests: latencies.length,
    rps: latencies.length / elapsed,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    non200,
  };
}

/** One account and one key (default grant) in a fresh KV file; returns the key. */
async function seed(kvPath: string): Promise<string> {
  const kv = await Deno.openKv(kvPath);
  try {
    const now = Date.now();
    const user = await createUser(kv, {
      email: `bench-${crypto.randomUUID()}@example.com`,
      passwordHash: "not-used",
      nowMs: now,
      emailVerified: true,
    });
    const store = tenantStore(kv, user.id, systemClock);
    const { key } = await issueApiKey(store.apiKeys, { name: "bench", nowMs: now });
    return key;
  } finally {
    kv.close();
  }
}

/** The nginx server blocks: upstream (u), direct (a), forward auth (b, the docs' block). */
async function nginxBlocks(auth: number, u: number, a: number, b: number): Promise<string> {
  const upstream = `server {\n  listen 127.0.0.1:${u};\n  access_log off;\n  location / {\n` +
    `    default_type application/json;\n    return 200 '{"ok":true}';\n  }\n}\n`;
  const direct = `server {\n  listen 127.0.0.1:${a};\n  location / {\n` +
    `    proxy_pass http://127.0.0.1:${u};\n  }\n}\n`;
  const forward = await nginxServerBlock({ auth, upstream: u, listen: b });
  return upstream + direct + forward;
}

const ms = (x: number) => `${x.toFixed(2).padStart(6)} ms`;

function report(label: string, f: Figures): void {
  console.log(
    `${label.padEnd(38)} ${f.rps.toFixed(0).padStart(7)} req/s   p50 ${ms(f.p50Ms)}   ` +
      `p99 ${ms(f.p99Ms)}   non-200 ${f.non200}`,
  );
}

function median(xs: number[]): number {
  return [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
}

const LABELS = { a: "(a) nginx -> upstream", b: "(b) nginx + forward auth -> upstream" };

/** Warm-up, then ROUNDS rounds of (a) and (b) back to back; returns each side's figures. */
async function measure(urls: { a: string; b: string }, key: string, concurrency: number) {
  const runs: { a: Figures[]; b: Figures[] } = { a: [], b: [] };
  if (WARMUP_S > 0) {
    await load(urls.a, key, WARMUP_S, concurrency);
    await load(urls.b, key, WARMUP_S, concurrency);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? (["a", "b"] as const) : (["b", "a"] as const);
    for (const side of order) {
      const f = await load(urls[side], key, DURATION_S, concurrency);
      runs[side].push(f);
      report(`round ${round} ${LABELS[side]}`, f);
    }
  }
  return runs;
}

function summarise(runs: { a: Figures[]; b: Figures[] }, concurrency: number): void {
  const med = (side: "a" | "b", f: (x: Figures) => number) => median(runs[side].map(f));
  console.log(`concurrency ${concurrency}, median of ${ROUNDS} rounds:`);
  for (const side of ["a", "b"] as const) {
    report(LABELS[side], {
      requests: med(side, (x) => x.requests),
      rps: med(side, (x) => x.rps),
      p50Ms: med(side, (x) => x.p50Ms),
      p99Ms: med(side, (x) => x.p99Ms),
      non200: runs[side].reduce((s, x) => s + x.non200, 0),
    });
  }
  const added = runs.b.map((f, i) => f.p50Ms - runs.a[i].p50Ms);
  const addedP99 = runs.b.map((f, i) => f.p99Ms - runs.a[i].p99Ms);
  console.log(
    `added by forward auth: p50 ${median(added).toFixed(2)} ms (rounds ${
      Math.min(...added).toFixed(2)
    } to ${Math.max(...added).toFixed(2)}), p99 ${median(addedP99).toFixed(2)} ms; ` +
      `decisions/s ${med("b", (x) => x.rps).toFixed(0)}; goal: under 1 ms p50 added`,
  );
}

async function main() {
  if (!(await hasBinary(NGINX_BIN))) {
    console.log(`skipped: ${NGINX_BIN} is not installed (apt-get install -y nginx)`);
    return;
  }
  await Deno.mkdir(`${ROOT}/data/bench`, { recursive: true });
  const id = crypto.randomUUID();
  const kvPath = `./data/bench/${id}.sqlite3`;
  const rulesPath = `./data/bench/forward-auth-${id}.json`;
  const key = await seed(`${ROOT}/${kvPath}`);
  await Deno.writeTextFile(
    `${ROOT}/${rulesPath}`,
    JSON.stringify({ scopes: [], rules: [{ name: "all", method: "*", path: "/*" }] }),
  );
  console.log(
    `concurrency ${
      CONCURRENCIES.join(" and ")
    } (fetch loops), ${DURATION_S} s per side x ${ROUNDS} rounds ` +
      `(after ${WARMUP_S} s warm-up each), one warm key, nginx 1 worker, ` +
      `${navigator.hardwareConcurrency} CPUs, Deno ${Deno.version.deno}`,
  );
  const server = await spawn(await startTaskArgs(), {
    DENO_KV_PATH: kvPath,
    FORWARD_AUTH_RULES: rulesPath,
    TRUST_PROXY: "127.0.0.1",
    LOG_LEVEL: "silent",
    RATE_LIMIT_MAX: "1000000000",
  });
  const ports = new Set<number>();
  while (ports.size < 3) ports.add(freePort());
  const [u, a, b] = [...ports];
  let nginx;
  try {
    nginx = await startNginx(await nginxBlocks(server.port, u, a, b), b);
    const urls = { a: `http://127.0.0.1:${a}/v1/items`, b: `http://127.0.0.1:${b}/v1/items` };
    const all = [];
    for (const c of CONCURRENCIES) all.push([c, await measure(urls, key, c)] as const);
    for (const [c, runs] of all) summarise(runs, c);
  } finally {
    await nginx?.stop();
    await server.stop();
    await removeKvFiles(`${ROOT}/${kvPath}`);
    await Deno.remove(`${ROOT}/${rulesPath}`).catch(() => {});
  }
}

await main();
