/**
 * Benchmark: domain creates under contention (issue 9, item 2). One real server (`deno task
 * start`'s command) on a fresh SQLite KV file under ./data/bench; wrk drives
 * `POST /api/e2/domains` with a new name on every request:
 *   (1) one account, one connection;
 *   (2) four accounts at once, 40 connections each (four wrk processes).
 * Prints creates/s, p50/p99 and the non-2xx count of each, then runs `deno task admin verify`
 * on the KV (every index, counter and quota slot) and prints its verdict.
 *
 *   deno run --allow-net --allow-env --allow-read --allow-write --allow-run bench/domains_contention.ts \
 *     [--duration 8] [--connections 40] [--accounts 4]
 *
 * Needs `wrk` on PATH (Debian: apt-get install -y wrk). wrk shares the machine's cores with the
 * server, so both figures are what one machine does with its load generator on it.
 */
import { parseArgs } from "node:util";
import { issueApiKey } from "../auth/api_keys/issue.ts";
import { hashPassword } from "../auth/passwords/hash.ts";
import { systemClock } from "../lib/clock.ts";
import { tenantStore } from "../store/tenant.ts";
import { createUser } from "../store/accounts/users.ts";
import { removeKvFiles, runWrk, spawn, startTaskArgs, type WrkResult } from "./_server.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "8" },
    connections: { type: "string", default: "40" },
    accounts: { type: "string", default: "4" },
  },
});
const DURATION_S = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const ACCOUNTS = Number(args.accounts);
const ROOT = new URL("..", import.meta.url).pathname;
const LUA = new URL("./create_domains.lua", import.meta.url).pathname;

type Figures = WrkResult;

async function seed(kvPath: string): Promise<string[]> {
  await using kv = await Deno.openKv(kvPath);
  const passwordHash = await hashPassword("bench password, never used to sign in", 10);
  const keys: string[] = [];
  for (let a = 0; a < ACCOUNTS + 1; a++) {
    const user = await createUser(kv, {
      email: `contention-${a}-${crypto.randomUUID()}@example.com`,
      passwordHash,
      nowMs: systemClock(),
    });
    const { key } = await issueApiKey(tenantStore(kv, user.id, systemClock).apiKeys, {
      name: "bench",
      nowMs: systemClock(),
    });
    keys.push(key);
  }
  return keys;
}

function wrk(port: number, key: string, connections: number): Promise<Figures> {
  return runWrk({
    url: `http://127.0.0.1:${port}/api/e2/domains`,
    lua: LUA,
    seconds: DURATION_S,
    connections,
    timeoutS: 10,
    env: { BENCH_KEY: key, BENCH_PREFIX: crypto.randomUUID().slice(0, 8) },
  });
}

const ms = (us: number) => `${(us / 1000).toFixed(1)} ms`;

function line(label: string, runs: Figures[]): number {
  const requests = runs.reduce((n, r) => n + r.requests, 0);
  const seconds = Math.max(...runs.map((r) => r.duration_us)) / 1e6;
  const rate = requests / seconds;
  const non2xx = runs.reduce((n, r) => n + r.non2xx, 0);
  const errors = runs.reduce((n, r) => n + r.socket_errors, 0);
  console.log(
    `${label.padEnd(34)} ${rate.toFixed(0).padStart(6)} creates/s  ${requests} requests  ` +
      `p50 ${runs.map((r) => ms(r.p50_us)).join("/")}  p99 ${
        runs.map((r) => ms(r.p99_us)).join("/")
      }  non-2xx ${non2xx}  socket errors ${errors}`,
  );
  return rate;
}

async function main() {
  await Deno.mkdir(`${ROOT}/data/bench`, { recursive: true });
  const kvPath = `./data/bench/contention-${crypto.randomUUID()}.sqlite3`;
  try {
    const keys = await seed(`${ROOT}/${kvPath}`);
    const env = {
      DENO_KV_PATH: kvPath,
      LOG_LEVEL: "silent",
      RATE_LIMIT_MAX: "1000000",
      MAX_DOMAINS_PER_ACCOUNT: "100000",
    };
    console.log(
      `wrk -t1 -d${DURATION_S}s: 1 account x 1 connection, then ${ACCOUNTS} accounts x ` +
        `${CONNECTIONS} connections at once; ${navigator.hardwareConcurrency} CPUs shared with ` +
        `wrk, Deno ${Deno.version.deno}, SQLite KV file`,
    );
    const server = await spawn(await startTaskArgs(), env);
    let single: number, concurrent: number;
    let non2xx = 0;
    try {
      const one = await wrk(server.port, keys[ACCOUNTS], 1);
      single = line("1 account x 1 connection", [one]);
      const many = await Promise.all(
        keys.slice(0, ACCOUNTS).map((k) => wrk(server.port, k, CONNECTIONS)),
      );
      concurrent = line(`${ACCOUNTS} accounts x ${CONNECTIONS} connections`, many);
      non2xx = [one, ...many].reduce((n, r) => n + r.non2xx + r.socket_errors, 0);
    } finally {
      await server.stop();
    }
    const verify = await new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "admin", "verify"],
      cwd: ROOT,
      env: { DENO_KV_PATH: kvPath, MAX_DOMAINS_PER_ACCOUNT: "100000" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const report = JSON.parse(new TextDecoder().decode(verify.stdout) || "{}");
    console.log(
      `admin verify: exit ${verify.code}, ${report.scanned?.domains ?? "?"} domains, ` +
        `${report.violationCount ?? "?"} violations`,
    );
    console.log(
      `concurrent/single ${(concurrent / single).toFixed(2)} (goal >= 1: ${
        concurrent >= single ? "met" : "NOT met"
      }); non-2xx ${non2xx} (goal 0: ${non2xx === 0 ? "met" : "NOT met"})`,
    );
  } finally {
    await removeKvFiles(`${ROOT}/${kvPath}`);
  }
}

await main();
