/**
 * The server over KV Connect (issue 15 items 2 and 3): real server processes (`deno task start`)
 * and the admin CLI with `DENO_KV_PATH=http://127.0.0.1:PORT` and `DENO_KV_ACCESS_TOKEN`, against
 * the KV Connect test backend (tests/kv_connect/server.ts) with a network round trip added to
 * every read and commit. Plain http:// is refused for any host that is not loopback.
 */
import assert from "node:assert/strict";
import { Inbound } from "inboundemail";
import { RateLimiter } from "../../auth/rate_limit.ts";
import { systemClock } from "../../lib/clock.ts";
import { testConfig, withStoreRtt } from "../../lib/config.ts";
import { silentLogger } from "../../lib/log.ts";
import { apiKeyStore } from "../../store/api_keys.ts";
import { assertKvUrlAllowed, KvUrlNotAllowedError, measureKvRttMs } from "../../store/open.ts";
import { windowCount } from "../../store/rate_limit.ts";
import {
  bearer,
  createAccountWithKey,
  removeKvFile,
  runAdminCli,
  type ServerProcess,
  startServer,
  startTaskArgs,
  tempKvPath,
} from "../_helpers.ts";
import { type KvConnectServer, startKvConnectServer } from "./server.ts";

const TOKEN = `kvc-test-token-${crypto.randomUUID()}`;
// This process's own client (seeding, checking) reads the token from the environment, and the
// server processes it spawns inherit it.
Deno.env.set("DENO_KV_ACCESS_TOKEN", TOKEN);

type Backend = {
  server: KvConnectServer;
  /** This process's KV Connect client of the backend. */
  kv: Deno.Kv;
  /** The environment that points a server or the admin CLI at the backend. */
  env: Record<string, string>;
  [Symbol.asyncDispose](): Promise<void>;
};

async function backend(rttMs: number): Promise<Backend> {
  const path = await tempKvPath();
  const server = await startKvConnectServer({ path, token: TOKEN, rttMs });
  const kv = await Deno.openKv(server.url);
  return {
    server,
    kv,
    env: { DENO_KV_PATH: server.url, DENO_KV_ACCESS_TOKEN: TOKEN, LOG_LEVEL: "silent" },
    async [Symbol.asyncDispose]() {
      kv.close();
      await server.close();
      await removeKvFile(path);
    },
  };
}

type Account = Awaited<ReturnType<typeof createAccountWithKey>>;

async function accountsOn(kv: Deno.Kv, n: number): Promise<Account[]> {
  const out: Account[] = [];
  for (let i = 0; i < n; i++) out.push(await createAccountWithKey(kv, systemClock));
  return out;
}

async function statusOf(server: ServerProcess, key: string, path = "/api/e2/domains") {
  const res = await fetch(`${server.url}${path}`, bearer(key));
  await res.body?.cancel();
  return { status: res.status, reset: res.headers.get("X-RateLimit-Reset") };
}

function counts(statuses: number[]): Record<number, number> {
  const t: Record<number, number> = {};
  for (const s of statuses) t[s] = (t[s] ?? 0) + 1;
  return t;
}

Deno.test("plain http:// to a KV Connect host that is not loopback is refused in one line", async (t) => {
  await t.step("loopback http:// and https:// anywhere are allowed; other http:// is not", () => {
    for (
      const ok of [
        "http://127.0.0.1:4512",
        "http://127.8.9.10:4512",
        "http://localhost:4512",
        "http://[::1]:4512",
        "https://kv.example.com",
        "https://10.0.0.5:4512",
      ]
    ) assert.doesNotThrow(() => assertKvUrlAllowed(ok), ok);
    for (
      const bad of [
        "http://10.0.0.5:4512",
        "http://kv.example.com",
        "http://127.0.0.1.evil.example",
        "http://[::2]:4512",
        "http://0.0.0.0:4512",
      ]
    ) assert.throws(() => assertKvUrlAllowed(bad), KvUrlNotAllowedError, bad);
  });

  const env = {
    DENO_KV_PATH: "http://kv.example.com:4512/some/path",
    DENO_KV_ACCESS_TOKEN: TOKEN,
    NO_COLOR: "1",
    PORT: "0",
    HOSTNAME: "127.0.0.1",
  };
  const refusal =
    /^configuration error: DENO_KV_PATH=http:\/\/kv\.example\.com:4512 is plain http:\/\/ to a host that is not loopback[^\n]*use https:\/\//;

  await t.step("deno task start exits 1 with the refusal, never naming the token", async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: await startTaskArgs(),
      env,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 1, stderr);
    assert.match(stderr, refusal);
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.ok(!stderr.includes(TOKEN));
  });

  await t.step("the admin CLI exits 1 with the refusal, never naming the token", async () => {
    const r = await runAdminCli(["verify"], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /^error: DENO_KV_PATH=http:\/\/kv\.example\.com:4512 is plain http/);
    assert.ok(!(r.stderr + r.stdout).includes(TOKEN));
  });
});

Deno.test("a server process and the admin CLI over KV Connect serve the SDK's flow", async (t) => {
  await using b = await backend(20);
  const owner = await createAccountWithKey(b.kv, systemClock);
  const server = await startServer({ ...b.env, LOG_LEVEL: "info" });
  try {
    await t.step("the start-up line names the KV by its origin, without the token", () => {
      const out = server.output();
      assert.match(out, new RegExp(`"kv":"kv-connect ${b.server.url.replace(/\/$/, "")}"`));
      assert.ok(!out.includes(TOKEN));
    });

    await t.step("it measured the 20 ms round trip and scaled its thresholds by it", () => {
      const line = JSON.parse(/^\{[^\n]*"msg":"listening"[^\n]*$/m.exec(server.output())![0]);
      assert.ok(line.rateLimit.storeRttMs >= 20, `storeRttMs ${line.rateLimit.storeRttMs}`);
      assert.ok(line.requestTimeoutMs >= 10_000 + 64 * 20, `deadline ${line.requestTimeoutMs}`);
    });

    await t.step("the SDK creates, lists, retrieves and deletes a domain", async () => {
      const client = new Inbound({ apiKey: owner.key, baseURL: server.url, maxRetries: 0 });
      const created = await client.domains.create({ domain: "kvc-sdk.example" });
      assert.equal(created.domain, "kvc-sdk.example");
      const listed = await client.domains.list();
      assert.deepEqual(listed.data.map((d) => d.id), [created.id]);
      assert.equal((await client.domains.retrieve(created.id)).id, created.id);
      assert.equal((await client.domains.delete(created.id)).success, true);
      assert.equal((await client.domains.list()).pagination.total, 0);
    });

    await t.step("admin verify over the same backend is clean and names the KV", async () => {
      const r = await runAdminCli(["verify"], b.env);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.equal(JSON.parse(r.stdout).ok, true);
      assert.match(r.stderr, /kv: KV Connect http:\/\/127\.0\.0\.1:\d+/);
      assert.ok(!(r.stderr + r.stdout).includes(TOKEN));
    });
  } finally {
    await server.stop();
  }
});

Deno.test("two server processes on one KV Connect backend at 20 ms round trip", async (t) => {
  const RTT = 20;
  const LIMIT = 100;
  const WINDOW_MS = 3_600_000;
  await using b = await backend(RTT);
  const accounts = await accountsOn(b.kv, 3);
  const env = {
    ...b.env,
    RATE_LIMIT_MAX: String(LIMIT),
    RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
  };
  const servers = await Promise.all([startServer(env), startServer(env)]);
  try {
    await t.step(
      "300 concurrent requests split over both admit no more than the limit",
      async () => {
        const { key, userId } = accounts[0];
        const sent = await Promise.all(
          Array.from({ length: 300 }, (_, i) => statusOf(servers[i % 2], key)),
        );
        assert.deepEqual(Object.keys(counts(sent.map((s) => s.status))).sort(), ["200", "429"]);
        const perWindow = new Map<string, number>();
        for (const s of sent) {
          if (s.status === 200) perWindow.set(s.reset!, (perWindow.get(s.reset!) ?? 0) + 1);
        }
        for (const [reset, admitted] of perWindow) {
          assert.ok(admitted <= LIMIT, `admitted ${admitted}`);
          const counted = await windowCount(b.kv, userId, Number(reset) - WINDOW_MS);
          assert.ok(counted >= admitted && counted <= LIMIT, `counter ${counted}, ${admitted}`);
        }
      },
    );

    await t.step(
      "a client below limit - 2 x limit/16 spread over both is never refused",
      async () => {
        // 100 - 2 x 100/16 = 87.5: 87 requests, alternating, in bursts of 10.
        const { key } = accounts[1];
        const statuses: number[] = [];
        for (let i = 0; i < 87; i += 10) {
          const n = Math.min(10, 87 - i);
          statuses.push(
            ...(await Promise.all(
              Array.from({ length: n }, (_, j) => statusOf(servers[(i + j) % 2], key)),
            )).map((s) => s.status),
          );
        }
        assert.deepEqual(counts(statuses), { 200: 87 });
      },
    );

    await t.step(
      "a key deleted by a third process is refused by both within 1 s + RTT",
      async () => {
        const { key, keyId, userId } = accounts[2];
        for (let i = 0; i < 3; i++) {
          for (const s of servers) assert.equal((await statusOf(s, key)).status, 200);
        }
        await apiKeyStore(b.kv, userId, systemClock).delete(keyId);
        const deleted = performance.now();
        const refusedAfter: number[] = [];
        for (const s of servers) {
          // Poll until refused (bounded well beyond the promise, so a failure reports a figure).
          while ((await statusOf(s, key)).status !== 401) {
            if (performance.now() - deleted > 5_000) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          refusedAfter.push(performance.now() - deleted);
        }
        const bound = 1000 + RTT;
        assert.ok(
          refusedAfter.every((ms) => ms <= bound),
          `refused after ${
            refusedAfter.map((ms) => ms.toFixed(0)).join(" and ")
          } ms (bound ${bound})`,
        );
      },
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});

Deno.test("admin verify is clean after a server over KV Connect is killed during writes", async () => {
  await using b = await backend(20);
  const accounts = await accountsOn(b.kv, 4);
  for (let cycle = 0; cycle < 2; cycle++) {
    const server = await startServer({ ...b.env, RATE_LIMIT_MAX: "1000000" }, { direct: true });
    const controller = new AbortController();
    let acked = 0;
    let n = 0;
    const worker = async (w: number) => {
      while (!controller.signal.aborted) {
        const a = accounts[(w + n) % accounts.length];
        const i = n++;
        try {
          // Domain creates and deletes: each commit spans the domain, its name index and the
          // account's count, the writes `verify` cross-checks.
          const res = await fetch(`${server.url}/api/e2/domains`, {
            method: "POST",
            headers: { Authorization: `Bearer ${a.key}`, "Content-Type": "application/json" },
            body: JSON.stringify({ domain: `kill-${cycle}-${i}-${w}.example` }),
            signal: controller.signal,
          });
          const body = await res.json();
          if (res.status !== 201) continue;
          acked++;
          if (i % 3 === 0) {
            const del = await fetch(`${server.url}/api/e2/domains/${body.id}`, {
              method: "DELETE",
              headers: { Authorization: `Bearer ${a.key}` },
              signal: controller.signal,
            });
            await del.body?.cancel();
          }
        } catch {
          return; // cut off by the kill
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));
    const deadline = Date.now() + 20_000;
    while (acked < 20 + cycle * 20 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const status = await server.stop("SIGKILL");
    controller.abort();
    await Promise.all(workers);
    assert.equal(status.signal, "SIGKILL");
    assert.ok(acked >= 20, `only ${acked} creates acknowledged before the kill`);
    const r = await runAdminCli(["verify"], b.env);
    assert.equal(r.code, 0, `cycle ${cycle}: ${r.stdout.slice(0, 2000)}\n${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).ok, true);
  }
});

Deno.test("at 80 ms round trip, moderate concurrency meets no 503 from the limiter and no 500 from the deadline", async () => {
  await using b = await backend(80);
  const accounts = await accountsOn(b.kv, 4);
  // Two servers with the default limit (100 a second per account), so every account's counter is
  // leased by both in every window: leases meet conflicts, each retry costing two round trips.
  const servers = await Promise.all([startServer(b.env), startServer(b.env)]);
  try {
    const statuses: number[] = [];
    const stopAt = Date.now() + 6_000;
    // 24 clients, 6 per account, each account's spread over both servers: lists and creates
    // mixed, for 6 seconds.
    await Promise.all(Array.from({ length: 24 }, async (_, w) => {
      const a = accounts[w % accounts.length];
      const server = servers[Math.floor(w / accounts.length) % 2];
      for (let i = 0; Date.now() < stopAt; i++) {
        const create = i % 4 === 0;
        const res = await fetch(`${server.url}/api/e2/domains`, {
          method: create ? "POST" : "GET",
          headers: { Authorization: `Bearer ${a.key}`, "Content-Type": "application/json" },
          body: create ? JSON.stringify({ domain: `rtt80-${w}-${i}.example` }) : undefined,
        });
        await res.body?.cancel();
        statuses.push(res.status);
      }
    }));
    const c = counts(statuses);
    // Not vacuous: every client was answered, creates and lists both (no throughput floor: the
    // machine may be shared).
    assert.ok(statuses.length >= 48, `only ${statuses.length} requests answered`);
    assert.ok((c[200] ?? 0) > 0 && (c[201] ?? 0) > 0, JSON.stringify(c));
    assert.deepEqual(
      Object.keys(c).filter((s) => !["200", "201"].includes(s)),
      [],
      `statuses ${JSON.stringify(c)}`,
    );
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
});

/**
 * A KV whose every read and commit takes `rttMs` (a remote store), and whose commits fail their
 * checks while `conflicts.left` > 0 (another instance won the race), as a lease meets them.
 */
function remoteKv(kv: Deno.Kv, rttMs: number, conflicts: { left: number }): Deno.Kv {
  const wait = () => new Promise((r) => setTimeout(r, rttMs));
  return new Proxy(kv, {
    get(target, prop) {
      if (prop === "get" || prop === "getMany") {
        return async (...args: unknown[]) => {
          await wait();
          return await (Reflect.get(target, prop) as (...a: unknown[]) => unknown).apply(
            target,
            args,
          );
        };
      }
      if (prop === "atomic") {
        return () => {
          const op = target.atomic();
          return new Proxy(op, {
            get(o, p, receiver) {
              if (p === "commit") {
                return async () => {
                  await wait();
                  if (conflicts.left > 0) {
                    conflicts.left--;
                    return { ok: false };
                  }
                  return await o.commit();
                };
              }
              const v = Reflect.get(o, p, o);
              return typeof v === "function"
                ? (...a: unknown[]) => {
                  const r = v.apply(o, a);
                  return r === o ? receiver : r;
                }
                : v;
            },
          });
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

Deno.test("the limiter's lease timeout scales with the store's measured round trip", async (t) => {
  await using base = await Deno.openKv(":memory:");
  const RTT = 120;
  const conflicts = { left: 0 };
  const kv = remoteKv(base, RTT, conflicts);
  const rtt = await measureKvRttMs(kv);

  await t.step("the measured round trip is the store's", () => {
    assert.ok(rtt >= RTT && rtt < RTT + 100, `measured ${rtt} ms`);
  });

  await t.step(
    "a lease that meets 15 conflicts (16 attempts, 32 round trips) admits, not a 503",
    async () => {
      const config = withStoreRtt(testConfig(), rtt);
      const limiter = new RateLimiter(kv, config.rateLimit, systemClock, silentLogger);
      conflicts.left = 15;
      const decision = await limiter.check("user-remote");
      assert.equal(decision.allowed, true);
      assert.equal(conflicts.left, 0);
    },
  );

  await t.step("the request deadline keeps its margin over the lease timeout", () => {
    const local = withStoreRtt(testConfig(), 0);
    const remote = withStoreRtt(testConfig(), rtt);
    assert.equal(local.requestTimeoutMs, testConfig().requestTimeoutMs);
    assert.ok(remote.requestTimeoutMs > local.requestTimeoutMs);
  });
});
