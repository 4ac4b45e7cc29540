/**
 * Attack on issue 24's `deno task serve` drain (lib/shutdown.ts `drainWorkersOnSignal`, serve.ts):
 * on SIGTERM each worker waits for its own requests in flight, then drains (app.idle(), then
 * `kv.close()`), and the process exits once every worker has drained. The suspicion: a worker
 * that drained early (nothing in flight) while another still answers a slow request would go on
 * admitting new requests with its KV closed, their usage counts lost. Measured (Deno 2.9.6): after
 * SIGTERM the new connections are refused and the slow request is answered (its 5xx counted), so
 * the process exits 0 with every answered request in the usage counts: defended.
 *
 * The attack: two workers; a slow request (headers sent, body never finished) holds one worker
 * busy; SIGTERM; then new requests on new connections, which the kernel spreads over both
 * workers. Every request answered 200 must be in the usage counts after exit, and none may be a
 * 500. (The short waits below only order the steps; nothing asserts a duration.)
 */
import assert from "node:assert/strict";
import { retryingKv } from "../../store/retrying_kv.ts";
import { systemClock } from "../../lib/clock.ts";
import { bearer, createAccountWithKey, removeKvFile, tempKvPath } from "../_helpers.ts";
import { freePort, type Serve, startServe } from "../_serve.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Requests on a connection of their own each, so the kernel spreads them over the workers. */
async function spread(url: string, key: string, n: number): Promise<number[]> {
  return await Promise.all(Array.from({ length: n }, async () => {
    const client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });
    try {
      const res = await fetch(`${url}/api/e2/domains`, { ...bearer(key), client } as RequestInit);
      await res.body?.cancel();
      return res.status;
    } catch {
      return 0; // connection refused or reset: not admitted, nothing to count
    } finally {
      client.close();
    }
  }));
}

Deno.test("defended: deno task serve, SIGTERM with a slow request in flight loses no usage count", async (t) => {
  const path = await tempKvPath();
  const kv = retryingKv(await Deno.openKv(path));
  const account = await createAccountWithKey(kv, systemClock);
  let serve: Serve | null = null;
  let slow: Deno.TcpConn | null = null;
  try {
    serve = await startServe({
      PORT: String(freePort()),
      DENO_JOBS: "2",
      DENO_KV_PATH: path,
      USAGE_FLUSH_MS: "3600000",
      RATE_LIMIT_MAX: "10000",
      LOG_LEVEL: "silent",
    });
    const s = serve;
    const statuses: number[] = [];
    await t.step("both workers answer and know the key", async () => {
      const before = await spread(s.url, account.key, 16);
      assert.deepEqual(before.filter((x) => x !== 200), []);
      statuses.push(...before);
    });
    await t.step("a slow request holds one worker; SIGTERM; new requests keep coming", async () => {
      slow = await Deno.connect({ hostname: "127.0.0.1", port: s.port });
      await slow.write(
        new TextEncoder().encode(
          "POST /api/e2/domains HTTP/1.1\r\nHost: 127.0.0.1\r\n" +
            `Authorization: Bearer ${account.key}\r\nContent-Type: application/json\r\n` +
            'Content-Length: 100\r\n\r\n{"domain":',
        ),
      );
      await sleep(500); // the slow request reaches its handler
      s.kill();
      await sleep(1500); // the idle worker drains meanwhile
      statuses.push(...await spread(s.url, account.key, 32));
    });
    await t.step("after exit: no 500, and every 200 is in the usage counts (2xx)", async () => {
      const status = await s.exited;
      serve = null;
      assert.equal(status.code, 0, s.output());
      let counted = 0n;
      for await (const e of kv.list<Deno.KvU64>({ prefix: [account.userId, "usage"] })) {
        if (e.key.at(-1) === "2xx" && e.value instanceof Deno.KvU64) counted += e.value.value;
      }
      const ok = statuses.filter((x) => x === 200).length;
      const errors = statuses.filter((x) => x >= 500 && x !== 503);
      assert.deepEqual(errors, [], `statuses after SIGTERM: ${statuses.slice(16).join(",")}`);
      assert.equal(counted, BigInt(ok), `statuses after SIGTERM: ${statuses.slice(16).join(",")}`);
    });
  } finally {
    try {
      (slow as Deno.TcpConn | null)?.close();
    } catch { /* closed */ }
    if (serve) {
      (serve as Serve).kill();
      await (serve as Serve).exited;
    }
    kv.close();
    await removeKvFile(path);
  }
});
