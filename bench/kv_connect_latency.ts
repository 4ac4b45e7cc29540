/**
 * Benchmark (issue 15 item 3): the server over KV Connect with a network round trip, beside the
 * local KV file. For each store — the local SQLite file, then the KV Connect test backend
 * (`deno task kv-connect-test-server`, tests/kv_connect/) at KV_CONNECT_RTT_MS 0, 20 and 80 — it
 * starts the real server (the start task's command) and drives with wrk over 127.0.0.1:
 *   - the authenticated domain list (GET /api/e2/domains, 20 accounts' keys rotating);
 *   - domain creates (POST /api/e2/domains, one account, a new name each request);
 * printing req/s, p50, p99 and the statuses that were not 2xx.
 *
 * Then what each request waits for: a second server on the same backend, reached through a
 * counting proxy in this process, answers requests one at a time, and the proxy counts the KV
 * Connect requests (snapshot reads, atomic writes) per HTTP request. Background work is included
 * (the revocation poll, at most 4 a second while requests come in; lease prefetches), so the
 * figures are per request at that pace.
 *
 *   deno run --allow-net --allow-env --allow-read --allow-write --allow-run bench/kv_connect_latency.ts \
 *     [--duration 5] [--connections 16] [--rtts 0,20,80] [--sequential 40]
 *
 * Needs `wrk` on PATH. The machine's 2 cores are shared by wrk, the server and the backend.
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
    connections: { type: "string", default: "16" },
    rtts: { type: "string", default: "0,20,80" },
    sequential: { type: "string", default: "40" },
  },
});
const DURATION_S = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const RTTS = args.rtts.split(",").filter(Boolean).map(Number);
const SEQUENTIAL = Number(args.sequential);
const ACCOUNTS = 20;
const ROOT = new URL("..", import.meta.url).pathname;
const LIST_LUA = new URL("./rotate_keys.lua", import.meta.url).pathname;
const CREATE_LUA = new URL("./create_domains.lua", import.meta.url).pathname;
const TOKEN = `bench-${crypto.randomUUID()}`;
// This process's own KV Connect client (seeding) and the servers it spawns read the token here.
Deno.env.set("DENO_KV_ACCESS_TOKEN", TOKEN);

type Store = { label: string; kvPath: string; stop(): Promise<void> };

/** The backend as its own process (`deno task kv-connect-test-server`'s command). */
async function startBackend(rttMs: number, file: string): Promise<Store> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "kv-connect-test-server"],
    cwd: ROOT,
    env: {
      PORT: "0",
      KV_CONNECT_TOKEN: TOKEN,
      KV_CONNECT_RTT_MS: String(rttMs),
      DENO_KV_PATH: file,
    },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/\{"url".*\}\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`backend exited: ${text}`);
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  const { url } = JSON.parse(/(\{"url".*\})\n/.exec(text)![1]);
  return {
    label: `KV Connect, RTT ${rttMs} ms`,
    kvPath: url,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await removeKvFiles(file);
    },
  };
}

async function seed(kvPath: string, keysFile: string): Promise<string> {
  const kv = await Deno.openKv(kvPath);
  let keys;
  try {
    keys = (await seedKeys(kv, ACCOUNTS + 1, ACCOUNTS + 1, { scoped: false })).plain;
  } finally {
    kv.close();
  }
  // One account creates; the others list.
  const creator = keys.pop()!.key;
  await writeKeysFile(keysFile, keys);
  return creator;
}

const ms = (us: number) => `${(us / 1000).toFixed(1).padStart(6)} ms`;

function line(label: string, what: string, f: WrkResult & { rps: number }): void {
  console.log(
    `${label.padEnd(24)} ${what.padEnd(8)} ${f.rps.toFixed(0).padStart(6)} req/s  p50 ${
      ms(f.p50_us)
    }  p99 ${ms(f.p99_us)}  non-2xx ${f.non2xx}  socket errors ${f.socket_errors}`,
  );
}

/**
 * A proxy in front of the backend that counts KV Connect requests by path, and keeps each data
 * request's [start, end] for the round trips waited (`waited`).
 */
function countingProxy(backendUrl: string) {
  const counts = new Map<string, number>();
  const intervals: [number, number][] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const u = new URL(req.url);
    counts.set(u.pathname, (counts.get(u.pathname) ?? 0) + 1);
    const interval: [number, number] = [performance.now(), Infinity];
    if (u.pathname.startsWith("/v2/")) intervals.push(interval);
    try {
      const res = await fetch(`${backendUrl}${u.pathname}${u.search}`, {
        method: req.method,
        headers: req.headers,
        body: req.body ? await req.arrayBuffer() : undefined,
      });
      return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers });
    } finally {
      interval[1] = performance.now();
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    snapshot: () => new Map(counts),
    /**
     * Round trips waited between `from` and `to` (performance.now()): the longest chain of data
     * requests sent there one after another (each after the previous was answered), among those
     * answered by `to`; requests in the background beside them add nothing (as in
     * tests/kv_connect/server.ts).
     */
    waited(from: number, to: number): number {
      let n = 0;
      let free = from;
      const inside = intervals.filter(([start, end]) => start >= from && end <= to);
      for (const [start, end] of inside.sort((a, b) => a[1] - b[1])) {
        if (start >= free) {
          n++;
          free = end;
        }
      }
      return n;
    },
    close: () => server.shutdown(),
  };
}

/** KV Connect requests per HTTP request, one request at a time, by request type. */
async function roundTrips(
  store: Store,
  [warmKey, listKey]: string[],
  createKey: string,
): Promise<void> {
  const proxy = countingProxy(store.kvPath);
  const server = await spawn(await startTaskArgs(), {
    DENO_KV_PATH: proxy.url,
    LOG_LEVEL: "silent",
    MAX_DOMAINS_PER_ACCOUNT: "100000",
  });
  const base = `http://127.0.0.1:${server.port}/api/e2/domains`;
  const send = async (create: boolean, key: string) => {
    const res = await fetch(base, {
      method: create ? "POST" : "GET",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: create ? JSON.stringify({ domain: `rt-${crypto.randomUUID()}.example` }) : undefined,
    });
    await res.body?.cancel();
    return res.status;
  };
  const measure = async (label: string, create: boolean, key: string, n: number) => {
    const before = proxy.snapshot();
    const t0 = performance.now();
    const waited: number[] = [];
    for (let i = 0; i < n; i++) {
      const sent = performance.now();
      await send(create, key);
      waited.push(proxy.waited(sent, performance.now()));
    }
    const elapsed = performance.now() - t0;
    const after = proxy.snapshot();
    const delta = (path: string) => ((after.get(path) ?? 0) - (before.get(path) ?? 0)) / n;
    const mean = waited.reduce((a, b) => a + b, 0) / n;
    console.log(
      `  ${label.padEnd(34)} reads ${delta("/v2/snapshot_read").toFixed(2)}  commits ${
        delta("/v2/atomic_write").toFixed(2)
      }  per request (background included); round trips waited ${mean.toFixed(2)} (min ${
        Math.min(...waited)
      }, max ${Math.max(...waited)}); ${(elapsed / n).toFixed(1)} ms each, one at a time`,
    );
  };
  try {
    // Another account warms the new process up (JIT, first revocation poll), unmeasured.
    for (let i = 0; i < 5; i++) await send(false, warmKey);
    // The first request of a key: key lookup (cache miss), the account's first lease.
    await measure("list, first request of a key", false, listKey, 1);
    await measure("list, warm (key cached)", false, listKey, SEQUENTIAL);
    await measure("create, first request of a key", true, createKey, 1);
    await measure("create, warm", true, createKey, SEQUENTIAL);
  } finally {
    await server.stop();
    await proxy.close();
  }
}

async function main() {
  await Deno.mkdir(`${ROOT}/data/bench`, { recursive: true });
  console.log(
    `wrk -t1 -c${CONNECTIONS} -d${DURATION_S}s per figure; ${navigator.hardwareConcurrency} CPUs ` +
      `shared by wrk, the server and the backend; Deno ${Deno.version.deno}`,
  );
  const setups: (() => Promise<Store>)[] = [
    () => {
      const kvPath = `./data/bench/${crypto.randomUUID()}.sqlite3`;
      return Promise.resolve({
        label: "local SQLite file",
        kvPath,
        stop: () => removeKvFiles(kvPath),
      });
    },
    ...RTTS.map((rtt) => () => startBackend(rtt, `./data/bench/${crypto.randomUUID()}.sqlite3`)),
  ];
  for (const setup of setups) {
    const store = await setup();
    const keysFile = await Deno.makeTempFile({ prefix: "bench-keys-" });
    let server: Server | null = null;
    try {
      const seedPath = store.kvPath.startsWith("http") ? store.kvPath : `${ROOT}/${store.kvPath}`;
      const creator = await seed(seedPath, keysFile);
      server = await spawn(await startTaskArgs(), {
        DENO_KV_PATH: store.kvPath,
        LOG_LEVEL: "silent",
        RATE_LIMIT_MAX: "1000000",
        MAX_DOMAINS_PER_ACCOUNT: "100000",
      });
      const url = `http://127.0.0.1:${server.port}/api/e2/domains`;
      // A short unmeasured warm-up of the list (key caches, JIT).
      await runWrk({
        url,
        lua: LIST_LUA,
        seconds: 1,
        connections: CONNECTIONS,
        env: { BENCH_KEYS_FILE: keysFile },
      });
      const list = await runWrk({
        url,
        lua: LIST_LUA,
        seconds: DURATION_S,
        connections: CONNECTIONS,
        env: { BENCH_KEYS_FILE: keysFile },
      });
      line(store.label, "list", list);
      const create = await runWrk({
        url,
        lua: CREATE_LUA,
        seconds: DURATION_S,
        connections: CONNECTIONS,
        env: { BENCH_KEY: creator, BENCH_PREFIX: crypto.randomUUID().slice(0, 8) },
      });
      line(store.label, "create", create);
      await server.stop();
      server = null;
      if (store.kvPath.startsWith("http")) {
        const keys = (await Deno.readTextFile(keysFile)).split("\n").map((l) => l.split(" ")[0]);
        await roundTrips(store, keys, creator);
      }
    } finally {
      await server?.stop();
      await store.stop();
      await Deno.remove(keysFile).catch(() => {});
    }
  }
}

await main();
