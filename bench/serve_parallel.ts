/**
 * Benchmark (issue 15 item 5): `deno task serve` (`deno serve --parallel`) with 1 worker and with
 * N workers, beside `deno task start` (main.ts, one process), on one fresh KV file. wrk drives the
 * authenticated domain list (GET /api/e2/domains, 20 accounts' keys rotating, a limit high enough
 * never to refuse) over 127.0.0.1, the three servers measured in alternating rounds; the median
 * round is printed.
 *
 * wrk runs on the same machine and takes CPU from the workers: with 2 cores, "2 workers" shares
 * them with the load generator, so the figure understates what 2 workers give when the load comes
 * from elsewhere.
 *
 *   deno run --allow-net --allow-env --allow-read --allow-write --allow-run bench/serve_parallel.ts \
 *     [--duration 5] [--rounds 3] [--connections 32] [--workers <CPUs>]
 */
import { parseArgs } from "node:util";
import {
  removeKvFiles,
  runWrk,
  type Server,
  spawn,
  startTaskArgs,
  type WrkResult,
} from "./_server.ts";
import { seedKeys, writeKeysFile } from "./_seed.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    connections: { type: "string", default: "32" },
    workers: { type: "string", default: String(navigator.hardwareConcurrency) },
  },
});
const DURATION_S = Number(args.duration);
const ROUNDS = Number(args.rounds);
const CONNECTIONS = Number(args.connections);
const WORKERS = Number(args.workers);
const ROOT = new URL("..", import.meta.url).pathname;
const LUA = new URL("./rotate_keys.lua", import.meta.url).pathname;

/** `deno task serve`'s arguments after `deno`, from deno.json. */
async function serveTaskArgs(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const [deno, ...rest] = String(config.tasks.serve).split(/\s+/);
  if (deno !== "deno" || rest[0] !== "serve") throw new Error("unexpected serve task");
  return rest;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

async function seed(kvPath: string, keysFile: string): Promise<void> {
  const kv = await Deno.openKv(kvPath);
  try {
    await writeKeysFile(keysFile, (await seedKeys(kv, 20, 20, { scoped: false })).plain);
  } finally {
    kv.close();
  }
}

const ms = (us: number) => `${(us / 1000).toFixed(2).padStart(6)} ms`;

async function main() {
  await Deno.mkdir(`${ROOT}/data/bench`, { recursive: true });
  const kvPath = `./data/bench/${crypto.randomUUID()}.sqlite3`;
  const keysFile = await Deno.makeTempFile({ prefix: "bench-keys-" });
  const env = { DENO_KV_PATH: kvPath, LOG_LEVEL: "silent", RATE_LIMIT_MAX: "1000000" };
  const servers: [string, Server][] = [];
  try {
    await seed(`${ROOT}/${kvPath}`, keysFile);
    console.log(
      `wrk -t1 -c${CONNECTIONS} -d${DURATION_S}s x ${ROUNDS} rounds; ` +
        `${navigator.hardwareConcurrency} CPUs shared by wrk and the server; Deno ${Deno.version.deno}`,
    );
    const serveArgs = await serveTaskArgs();
    servers.push(["deno task start (main.ts)", await spawn(await startTaskArgs(), env)]);
    for (const jobs of [1, WORKERS]) {
      servers.push([
        `deno task serve, ${jobs} worker${jobs > 1 ? "s" : ""}`,
        await spawn(serveArgs, { ...env, DENO_JOBS: String(jobs), PORT: String(freePort()) }),
      ]);
    }
    const runs = new Map<string, (WrkResult & { rps: number })[]>();
    const wrk = (port: number, seconds: number) =>
      runWrk({
        url: `http://127.0.0.1:${port}/api/e2/domains`,
        lua: LUA,
        seconds,
        connections: CONNECTIONS,
        env: { BENCH_KEYS_FILE: keysFile },
      });
    for (const [, s] of servers) await wrk(s.port, 2); // warm-up, not measured
    for (let round = 0; round < ROUNDS; round++) {
      for (const [label, s] of servers) {
        const r = await wrk(s.port, DURATION_S);
        runs.set(label, [...(runs.get(label) ?? []), r]);
      }
    }
    for (const [label, rs] of runs) {
      const m = [...rs].sort((x, y) => x.rps - y.rps)[Math.floor(rs.length / 2)];
      console.log(
        `${label.padEnd(30)} ${m.rps.toFixed(0).padStart(7)} req/s  p50 ${ms(m.p50_us)}  p99 ${
          ms(m.p99_us)
        }  non-2xx ${m.non2xx}  (rounds: ${rs.map((r) => r.rps.toFixed(0)).join(", ")})`,
      );
    }
  } finally {
    for (const [, s] of servers) await s.stop();
    await Deno.remove(keysFile).catch(() => {});
    await removeKvFiles(kvPath);
  }
}

await main();
