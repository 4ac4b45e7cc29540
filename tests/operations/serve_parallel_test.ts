/**
 * `deno task serve` (issue 15 item 5): `deno serve --parallel` on the same app, honouring PORT and
 * HOSTNAME, each worker with its own KV handle. The limit is counted in KV, so it stays exact
 * across the workers of one process just as across processes.
 */
import { retryingKv } from "../../store/retrying_kv.ts";
import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { windowCount } from "../../store/rate_limit.ts";
import { bearer, createAccountWithKey, removeKvFile, tempKvPath } from "../_helpers.ts";
import { freePort, type Serve, startServe } from "../_serve.ts";

const WINDOW_MS = 3_600_000;

/** A port nobody listens on right now (`deno serve --parallel` needs a fixed one to share). */

Deno.test("deno task serve runs two workers on PORT and admits exactly the limit across them", async (t) => {
  const path = await tempKvPath();
  const kv = retryingKv(await Deno.openKv(path)); // servers write the same file: retry SQLite's lock
  const { key, userId } = await createAccountWithKey(kv, systemClock);
  const port = freePort();
  const LIMIT = 20;
  let serve: Serve | null = null;
  try {
    serve = await startServe({
      PORT: String(port),
      DENO_JOBS: "2",
      DENO_KV_PATH: path,
      RATE_LIMIT_MAX: String(LIMIT),
      RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
      LOG_LEVEL: "silent",
    });
    const s = serve;

    await t.step("it listens on PORT and HOSTNAME", () => {
      assert.equal(s.url, `http://127.0.0.1:${port}`);
      assert.match(s.output(), /"mode":"deno serve --parallel"/);
    });

    await t.step(
      "200 concurrent requests: exactly the limit answered 200, the rest 429",
      async () => {
        const sent = await Promise.all(Array.from({ length: 200 }, async () => {
          const res = await fetch(`${s.url}/api/e2/domains`, bearer(key));
          await res.body?.cancel();
          return { status: res.status, reset: Number(res.headers.get("X-RateLimit-Reset")) };
        }));
        const counts: Record<number, number> = {};
        for (const r of sent) counts[r.status] = (counts[r.status] ?? 0) + 1;
        assert.deepEqual(counts, { 200: LIMIT, 429: 200 - LIMIT });
        const windows = new Set(sent.map((r) => r.reset));
        assert.equal(windows.size, 1, "all requests fell in one window");
        assert.equal(await windowCount(kv, userId, [...windows][0] - WINDOW_MS), LIMIT);
      },
    );
  } finally {
    await serve?.stop();
    kv.close();
    await removeKvFile(path);
  }
});

Deno.test("deno task serve drains on SIGTERM: every worker writes its usage counts and lastUsedAt", async (t) => {
  const path = await tempKvPath();
  const kv = retryingKv(await Deno.openKv(path)); // servers write the same file: retry SQLite's lock
  const accounts = await Promise.all(
    Array.from({ length: 8 }, () => createAccountWithKey(kv, systemClock)),
  );
  let serve: Serve | null = null;
  try {
    serve = await startServe({
      PORT: String(freePort()),
      DENO_JOBS: "2",
      DENO_KV_PATH: path,
      // Nothing is written by the flush timer during the test: only the drain can write them.
      USAGE_FLUSH_MS: "3600000",
      LOG_LEVEL: "silent",
    });
    const s = serve;
    let answered = 0;
    await t.step("requests on many connections, spread over the workers", async () => {
      const statuses = await Promise.all(Array.from({ length: 64 }, async (_, i) => {
        const res = await fetch(`${s.url}/api/e2/domains`, {
          ...bearer(accounts[i % accounts.length].key),
          // A connection of its own each, so the kernel spreads them over both workers.
          client: Deno.createHttpClient({ poolMaxIdlePerHost: 0 }),
        } as RequestInit);
        await res.body?.cancel();
        return res.status;
      }));
      answered = statuses.filter((x) => x === 200).length;
      assert.equal(answered, 64);
    });

    await t.step("SIGTERM: exit 0, and the counts of every request are in KV", async () => {
      const status = await s.stop();
      serve = null;
      assert.equal(status.code, 0, s.output());
      let counted = 0n;
      for (const a of accounts) {
        for await (const e of kv.list<Deno.KvU64>({ prefix: [a.userId, "usage", a.keyId] })) {
          counted += e.value.value;
        }
        const record = await kv.get<{ lastUsedAt: string | null }>([
          a.userId,
          "api_key",
          a.keyId,
        ]);
        assert.ok(record.value?.lastUsedAt, `lastUsedAt of ${a.keyId}`);
      }
      assert.equal(counted, BigInt(answered));
    });
  } finally {
    await serve?.stop();
    kv.close();
    await removeKvFile(path);
  }
});

Deno.test("deno task serve refuses an invalid PORT with the same message as deno task start", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "serve"],
    env: { PORT: "70000", DENO_JOBS: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  assert.notEqual(out.code, 0);
  assert.match(text, /configuration error: PORT must be an integer from 0 to 65535, got "70000"/);
});
