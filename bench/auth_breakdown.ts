/**
 * Benchmark (issue 24): where the CPU per request goes on the authenticated hot path, part by part.
 *
 * One process, one KV file under ./data/bench seeded like auth_throughput.ts (20 accounts, 1,000
 * keys, one signed-in session per account), the production app (`createApp`, default
 * configuration but a limit that never refuses) called with `app.fetch`, 32 requests in flight,
 * in variants switched between segments (bench/_breakdown.ts `switchOff`: one method of a
 * class replaced in this process; production code has no switch):
 *   full        Bearer auth + limiter + rate-limit headers + usage + lastUsedAt, as deployed
 *   -headers    the rate-limit headers not written
 *   -usage      usage not counted
 *   -lastUsedAt lastUsedAt not written
 *   -limiter    the limiter not consulted (the headers describe a constant decision)
 *   auth only   all four off: the key's verification (a cache hit) and the middleware alone
 *   session     full, signed in by a session cookie instead of a key
 *   baseline    the same handler with no authentication (bench/unauthenticated_server.ts)
 * Rounds of `--requests` requests per variant, the order rotated from round to round; per
 * variant the median over the rounds after the first three of: wall microseconds per request,
 * CPU microseconds per request (user + system of the whole process, every thread: the KV
 * thread's SQLite work included; node:process cpuUsage), and KV calls per 1,000 requests (reads,
 * keys read, commits: counted by a wrapper of the app's KV). A part's cost is full - (full
 * without it), taken within each round. Over HTTP (Deno.serve, wrk), the server's CPU per request
 * moved by up to 60 us from one 2 s segment to the next on the shared machine: the parts, each
 * under 10 us, are only visible here (auth_throughput.ts gives the end-to-end figure).
 *
 *   deno run --allow-net --allow-env --allow-read --allow-write --allow-run bench/auth_breakdown.ts \
 *     [--rounds 15] [--requests 2000] [--accounts 20] [--keys 1000]
 */
import process from "node:process";
import { createApp } from "../app.ts";
import { countingKv, type KvCounts, type Switch, switchOff } from "./_breakdown.ts";
import {
  bearer,
  benchConfig,
  type Fetch,
  fireRequests,
  IN_FLIGHT,
  inProcessArgs,
  median,
  SKIPPED,
  withBenchKv,
} from "./_in_process.ts";
import { type SeededKey, seedKeys, seedSessions } from "./_seed.ts";
import { unauthenticatedApp } from "./unauthenticated_server.ts";

const args = inProcessArgs(15);
const { rounds: ROUNDS, requests: REQUESTS } = args;

type Variant = { name: string; off: Switch[]; app: "full" | "baseline"; cookie?: boolean };
const ALL_OFF: Switch[] = ["headers", "usage", "lastUsedAt", "limiter"];
const VARIANTS: Variant[] = [
  { name: "baseline (no auth)", off: [], app: "baseline" },
  { name: "full", off: [], app: "full" },
  { name: "-headers", off: ["headers"], app: "full" },
  { name: "-usage", off: ["usage"], app: "full" },
  { name: "-lastUsedAt", off: ["lastUsedAt"], app: "full" },
  { name: "-limiter", off: ["limiter"], app: "full" },
  { name: "auth only", off: ALL_OFF, app: "full" },
  { name: "session", off: [], app: "full", cookie: true },
];

type Sample = { wallUs: number; cpuUs: number; kv: KvCounts };

/** REQUESTS requests, IN_FLIGHT at a time: wall and CPU microseconds per request, KV calls. */
async function segment(fetch: Fetch, creds: SeededKey[], cookie: boolean, counts: KvCounts) {
  const kv0 = { ...counts };
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await fireRequests(fetch, creds, REQUESTS, cookie ? ({ key }) => ({ Cookie: key }) : bearer);
  const wallUs = (performance.now() - started) * 1000 / REQUESTS;
  const cpu = process.cpuUsage(cpu0);
  const per1000 = (k: keyof KvCounts) => (counts[k] - kv0[k]) * 1000 / REQUESTS;
  return {
    wallUs,
    cpuUs: (cpu.user + cpu.system) / REQUESTS,
    kv: {
      reads: per1000("reads"),
      keysRead: per1000("keysRead"),
      commits: per1000("commits"),
      mutations: per1000("mutations"),
    },
  } satisfies Sample;
}

const range = (xs: number[]) =>
  `${median(xs).toFixed(1).padStart(6)} (${Math.min(...xs).toFixed(1)} to ${
    Math.max(...xs).toFixed(1)
  })`;

function printSummary(samples: Sample[][]): void {
  const kept = samples.map((s) => s.slice(SKIPPED));
  const full = kept[VARIANTS.findIndex((v) => v.name === "full")];
  console.log(
    `${ROUNDS - SKIPPED} rounds of ${REQUESTS} requests per variant (after ${SKIPPED}), ` +
      `${IN_FLIGHT} in flight; median (range) over the rounds:`,
  );
  console.log(
    `${"variant".padEnd(19)} ${"wall us/req".padEnd(22)} ${"CPU us/req".padEnd(22)} ` +
      `${"full - it, CPU us".padEnd(22)} per 1,000 requests: reads, keys, commits`,
  );
  for (const [i, v] of VARIANTS.entries()) {
    const diff = full.map((f, r) => f.cpuUs - kept[i][r].cpuUs);
    const kv = (k: keyof KvCounts) => median(kept[i].map((s) => s.kv[k])).toFixed(1);
    console.log(
      `${v.name.padEnd(19)} ${range(kept[i].map((s) => s.wallUs)).padEnd(22)} ` +
        `${range(kept[i].map((s) => s.cpuUs)).padEnd(22)} ` +
        `${(v.name === "full" ? "" : range(diff)).padEnd(22)} ` +
        `${kv("reads")}, ${kv("keysRead")}, ${kv("commits")}`,
    );
  }
}

const counts: KvCounts = { reads: 0, keysRead: 0, commits: 0, mutations: 0 };
await withBenchKv(async (kv, kvPath) => {
  const seeded = await seedKeys(kv, args.accounts, args.keys);
  const sessions = await seedSessions(kv, [...new Set(seeded.plain.map((k) => k.userId))]);
  const config = benchConfig(kvPath);
  const apps = {
    full: createApp({ kv: countingKv(kv, counts), config }),
    baseline: unauthenticatedApp(countingKv(kv, counts), config),
  };
  const loadAverage = async () => {
    const out = await new Deno.Command("cat", { args: ["/proc/loadavg"] }).output();
    return new TextDecoder().decode(out.stdout).split(" ").slice(0, 3).join(" ");
  };
  console.log(
    `${new Date().toISOString()}, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} ` +
      `CPUs, load average ${await loadAverage()}`,
  );
  const samples: Sample[][] = VARIANTS.map(() => []);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < VARIANTS.length; k++) {
      const i = (k + r * 3) % VARIANTS.length;
      const v = VARIANTS[i];
      switchOff(new Set(v.off));
      const creds = v.cookie ? sessions : seeded.plain;
      samples[i].push(
        await segment(apps[v.app].fetch as Fetch, creds, v.cookie ?? false, counts),
      );
    }
  }
  switchOff(new Set());
  await apps.full.idle();
  printSummary(samples);
  console.log(`load average at the end: ${await loadAverage()}`);
});
