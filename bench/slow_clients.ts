/**
 * Benchmark: slow clients against the real server (issue 9 item 8).
 *
 * Part 1, what Deno.serve closes by itself: opens one connection of each kind (sends nothing;
 * half a request line; headers without the final blank line; one complete request, then idle
 * keep-alive; a POST announcing 100 body bytes that sends 10) and reports, for each, when the
 * server answered and when it closed the connection, waiting at most --hold seconds.
 *
 * Part 2, what it costs to hold them: opens idle half-request connections in steps up to each of
 * --counts while `GET /api/e2/domains` with a Bearer key is driven by wrk (--connections, for
 * --duration seconds per step), and prints the server's RSS, open descriptors, CPU while idle,
 * and wrk's req/s, p50 and p99 at each step.
 *
 *   deno run --allow-net --allow-env --allow-read --allow-write --allow-run bench/slow_clients.ts \
 *     [--hold 120] [--counts 0,1000,5000,10000,18000] [--duration 5] [--connections 8]
 *
 * Loopback only (127.0.0.1). Needs `wrk` on PATH. Both processes are bounded by `ulimit -n`
 * (printed); the count steps above it are skipped.
 */
import { parseArgs } from "node:util";
import { hashPassword } from "../auth/passwords/hash.ts";
import { issueApiKey } from "../auth/api_keys/issue.ts";
import { systemClock } from "../lib/clock.ts";
import { tenantStore } from "../store/tenant.ts";
import { createUser } from "../store/accounts/users.ts";
import { removeKvFiles, runWrk, type Server, startTaskArgs } from "./_server.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    hold: { type: "string", default: "120" },
    counts: { type: "string", default: "0,1000,5000,10000,18000" },
    duration: { type: "string", default: "5" },
    connections: { type: "string", default: "8" },
    "crash-limit": { type: "string", default: "256" },
  },
});
const HOLD_S = Number(args.hold);
const COUNTS = args.counts.split(",").map(Number).sort((a, b) => a - b);
const DURATION_S = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const CRASH_LIMIT = Number(args["crash-limit"]);
const ROOT = new URL("..", import.meta.url).pathname;
const LUA = new URL("./rotate_keys.lua", import.meta.url).pathname;
const encoder = new TextEncoder();

/** The start task's exact command, run directly so that the measured pid is the server's. */
async function startServer(
  env: Record<string, string>,
  fdLimit?: number,
): Promise<Server & { status: Promise<Deno.CommandStatus>; stderr: () => string }> {
  const deno = [Deno.execPath(), ...await startTaskArgs()];
  const command = fdLimit === undefined
    ? deno
    : ["sh", "-c", `ulimit -n ${fdLimit} && exec "$@"`, "sh", ...deno];
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    cwd: ROOT,
    env: { PORT: "0", HOSTNAME: "127.0.0.1", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let errText = "";
  (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) errText += chunk;
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  while (true) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`server exited before listening:\n${text}`);
    text += value;
    const m = /"msg":"listening"[^\n]*"port":(\d+)/.exec(text);
    if (m) {
      clearTimeout(timer);
      // Keep draining stdout so the server never blocks on a full pipe.
      (async () => {
        while (!(await reader.read()).done) { /* discard */ }
      })();
      return {
        port: Number(m[1]),
        pid: child.pid,
        status: child.status,
        stderr: () => errText,
        async stop() {
          try {
            child.kill("SIGKILL");
          } catch { /* already exited */ }
          await child.status;
        },
      };
    }
  }
}

async function seed(kvPath: string, keysFile: string): Promise<void> {
  const kv = await Deno.openKv(kvPath);
  try {
    const user = await createUser(kv, {
      email: `bench-slow-${crypto.randomUUID()}@example.com`,
      passwordHash: await hashPassword("bench password, never used to sign in", 10),
      nowMs: systemClock(),
    });
    const store = tenantStore(kv, user.id, systemClock, { maxApiKeys: 50 });
    const { key } = await issueApiKey(store.apiKeys, { name: "bench", nowMs: systemClock() });
    await Deno.writeTextFile(keysFile, `${key} ${user.id}\n`, { mode: 0o600 });
  } finally {
    kv.close();
  }
}

/** Reads a /proc file through `cat`: Deno asks for --allow-all to read /proc directly. */
async function proc(path: string): Promise<string> {
  const out = await new Deno.Command("cat", { args: [path], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout);
}

/** Resident memory of a process in MiB, from /proc. */
async function rssMiB(pid: number): Promise<number> {
  const status = await proc(`/proc/${pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
  return kb / 1024;
}

async function openFds(pid: number): Promise<number> {
  const out = await new Deno.Command("ls", { args: [`/proc/${pid}/fd`], stdout: "piped" }).output();
  return new TextDecoder().decode(out.stdout).split("\n").filter(Boolean).length;
}

/** utime + stime of a process (all threads), in ms. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await proc(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ = 100
}

async function fdLimit(pid: number | "self"): Promise<number> {
  const limits = await proc(`/proc/${pid}/limits`);
  return Number(/Max open files\s+(\d+)/.exec(limits)?.[1]);
}

function wrk(port: number, seconds: number, keysFile: string) {
  return runWrk({
    url: `http://127.0.0.1:${port}/api/e2/domains`,
    lua: LUA,
    seconds,
    connections: CONNECTIONS,
    env: { BENCH_KEYS_FILE: keysFile },
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Part 1: when does the server answer and close each kind of slow connection? */
async function closeBehaviour(port: number): Promise<void> {
  const host = `127.0.0.1:${port}`;
  const kinds: [string, string][] = [
    ["connects, sends nothing", ""],
    ["half a request line", "GET /heal"],
    ["headers without the final blank line", `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n`],
    [
      "one complete request, then idle keep-alive",
      `GET /healthz HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    ],
    [
      "POST announcing 100 body bytes, sends 10",
      `POST /api/auth/sign-in HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
      `Content-Length: 100\r\n\r\n{"email":"`,
    ],
  ];
  console.log(`part 1: one connection of each kind, watched for at most ${HOLD_S} s`);
  await Promise.all(kinds.map(async ([label, text]) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    const t0 = performance.now();
    if (text) await conn.write(encoder.encode(text));
    const timer = setTimeout(() => conn.close(), HOLD_S * 1000);
    const buf = new Uint8Array(4096);
    let answered = "";
    let closedBy = "";
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) {
          closedBy = `closed by the server after ${((performance.now() - t0) / 1000).toFixed(1)} s`;
          break;
        }
        if (!answered) {
          const status = new TextDecoder().decode(buf.subarray(0, n)).split(" ")[1];
          answered = `answered ${status} after ${((performance.now() - t0) / 1000).toFixed(1)} s; `;
        }
      }
    } catch {
      closedBy = `still open after ${HOLD_S} s`;
    } finally {
      clearTimeout(timer);
      try {
        conn.close();
      } catch { /* closed by the timer */ }
    }
    console.log(`  ${label.padEnd(44)} ${answered}${closedBy}`);
  }));
}

/** Opens `n` connections that each send half a request, 200 connects at a time. */
async function openIdle(port: number, n: number, into: Deno.Conn[]): Promise<void> {
  const half = encoder.encode(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n`);
  for (let done = 0; done < n;) {
    const batch = Math.min(200, n - done);
    await Promise.all(Array.from({ length: batch }, async () => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      into.push(conn);
      await conn.write(half);
    }));
    done += batch;
  }
}

/**
 * Part 3: a server whose open-file limit is `limit`, and idle connections opened until it exits
 * or holds twice the limit. Deno.serve's accept loop rejects with EMFILE ("Too many open files")
 * and the rejection is uncaught: the process ends.
 */
async function atTheLimit(kvPath: string, limit: number): Promise<void> {
  const server = await startServer({ DENO_KV_PATH: kvPath, LOG_LEVEL: "silent" }, limit);
  const conns: Deno.Conn[] = [];
  let exited: Deno.CommandStatus | undefined;
  server.status.then((s) => exited = s);
  const half = encoder.encode(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n`);
  try {
    while (!exited && conns.length < 2 * limit) {
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        conns.push(conn);
        await conn.write(half);
      } catch {
        break; // refused or reset: the server is gone
      }
      if (conns.length % 16 === 0) await sleep(10);
    }
    await Promise.race([server.status, sleep(2000)]);
    const line = server.stderr().split("\n").find((l) => /error/i.test(l)) ?? "";
    console.log(
      `part 3: server started with ulimit -n ${limit}: ` +
        (exited
          ? `exited (code ${exited.code}) after ${conns.length} idle connections: ` +
            line.trim()
          : `still running with ${conns.length} idle connections`),
    );
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    await server.stop();
  }
}

async function main() {
  await Deno.mkdir(`${ROOT}/data/bench`, { recursive: true });
  const kvPath = `./data/bench/slow-${crypto.randomUUID()}.sqlite3`;
  const keysFile = await Deno.makeTempFile({ prefix: "bench-keys-" });
  const conns: Deno.Conn[] = [];
  let server: Server | undefined;
  try {
    await seed(`${ROOT}/${kvPath}`, keysFile);
    server = await startServer({
      DENO_KV_PATH: kvPath,
      LOG_LEVEL: "silent",
      RATE_LIMIT_MAX: "1000000",
      RATE_LIMIT_WINDOW_MS: "1000",
    });
    const limit = Math.min(await fdLimit(server.pid), await fdLimit("self"));
    console.log(
      `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs, open-file limit ${limit} ` +
        `(server and client each)`,
    );
    if (HOLD_S > 0) await closeBehaviour(server.port);

    console.log(
      `part 2: N idle half-request connections held while wrk -t1 -c${CONNECTIONS} ` +
        `-d${DURATION_S}s drives GET /api/e2/domains (Bearer)`,
    );
    console.log(
      "       N   server RSS   fds   idle CPU (2 s)      req/s      p50      p99   non-2xx",
    );
    await wrk(server.port, 2, keysFile); // warm-up
    const baseFds = await openFds(server.pid);
    for (const n of COUNTS) {
      if (n > limit - 200) {
        console.log(`${String(n).padStart(8)}   skipped: above the open-file limit`);
        continue;
      }
      await openIdle(server.port, n - conns.length, conns);
      // Wait until the server has accepted them all (one descriptor per connection).
      const until = Date.now() + 30_000;
      while (await openFds(server.pid) < baseFds + n && Date.now() < until) await sleep(100);
      const fds = await openFds(server.pid);
      const cpu0 = await cpuMs(server.pid);
      await sleep(2000);
      const idleCpu = await cpuMs(server.pid) - cpu0;
      const f = await wrk(server.port, DURATION_S, keysFile);
      const rss = await rssMiB(server.pid);
      console.log(
        `${String(n).padStart(8)} ${rss.toFixed(1).padStart(8)} MiB ${String(fds).padStart(6)} ` +
          `${String(idleCpu).padStart(9)} ms   ${f.rps.toFixed(0).padStart(10)} ` +
          `${(f.p50_us / 1000).toFixed(2).padStart(6)} ms ${
            (f.p99_us / 1000).toFixed(2).padStart(6)
          } ms ` +
          `${String(f.non2xx).padStart(7)}`,
      );
    }
    for (const conn of conns.splice(0)) conn.close();
    await server.stop();
    server = undefined;
    if (CRASH_LIMIT > 0) await atTheLimit(kvPath, CRASH_LIMIT);
  } finally {
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
    await server?.stop();
    await Deno.remove(keysFile).catch(() => {});
    await removeKvFiles(`${ROOT}/${kvPath}`);
  }
}

await main();
