/**
 * The crash bound of usage counting (issue 13 item 3), on the real server process: counts reach KV
 * within one USAGE_FLUSH_MS (plus a commit) of the request, so a SIGKILL loses at most the
 * requests answered in the last interval before it, and a graceful stop (SIGTERM) loses none.
 */
import assert from "node:assert/strict";
import {
  bearer,
  createAccountWithKey,
  removeKvFile,
  type ServerProcess,
  startServer,
  tempKvPath,
} from "../_helpers.ts";
import { seedSession } from "../_hardening.ts";

const FLUSH_MS = 200;
/** Time for a flush's commit to land after its timer fires (generous: a loaded 2-core machine). */
const COMMIT_SLACK_MS = 800;

const ENV = (path: string) => ({
  DENO_KV_PATH: path,
  USAGE_FLUSH_MS: String(FLUSH_MS),
  RATE_LIMIT_MAX: "1000000",
  LOG_LEVEL: "silent",
});

type Account = { key: string; keyId: string; cookie: string };

async function seed(path: string): Promise<Account> {
  const kv = await Deno.openKv(path);
  try {
    const clock = () => Date.now();
    const a = await createAccountWithKey(kv, clock);
    const { cookie } = await seedSession(kv, a.userId, clock);
    return { key: a.key, keyId: a.keyId, cookie };
  } finally {
    kv.close();
  }
}

/** The key's requests stored today and yesterday (the run may cross midnight UTC). */
async function stored(url: string, a: Account): Promise<number> {
  const res = await fetch(`${url}/api/e2/api-keys/${a.keyId}/usage?days=2`, {
    headers: { Cookie: a.cookie },
  });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`usage answered ${res.status}: ${JSON.stringify(body)}`);
  return body.data.reduce((s: number, d: { requests: number }) => s + d.requests, 0);
}

/** `n` requests one after another, `gapMs` apart; the time each answer arrived. */
async function requests(url: string, a: Account, n: number, gapMs = 0): Promise<number[]> {
  const answered: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/api/e2/domains?limit=1`, bearer(a.key));
    await res.body?.cancel();
    if (res.status !== 200) throw new Error(`request answered ${res.status}`);
    answered.push(performance.now());
    if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
  }
  return answered;
}

async function waitFor(check: () => Promise<boolean>, ms = 15_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

Deno.test("a SIGKILL loses at most the usage of one flush interval, and a SIGTERM loses none", async (t) => {
  const path = await tempKvPath();
  const a = await seed(path);
  let server: ServerProcess | null = await startServer(ENV(path), { direct: true });
  try {
    const N = 30;
    await t.step("counts reach KV by themselves within a flush interval", async () => {
      await requests(server!.url, a, N);
      assert.ok(await waitFor(async () => await stored(server!.url, a) === N), "never stored");
    });

    const M = 100;
    let killedAt = 0;
    let answered: number[] = [];
    await t.step("after a SIGKILL mid-traffic the count is between N and N + M", async () => {
      // ~2.5 s of traffic: many flush intervals before the kill.
      answered = await requests(server!.url, a, M, 20);
      killedAt = performance.now();
      const status = await server!.stop("SIGKILL");
      server = null;
      assert.equal(status.signal, "SIGKILL");
      server = await startServer(ENV(path), { direct: true });
      const count = await stored(server.url, a);
      const lost = N + M - count;
      const inLastInterval = answered.filter((t) => t > killedAt - FLUSH_MS - COMMIT_SLACK_MS)
        .length;
      console.log(
        `usage/crash: ${N} + ${M} requests, ${count} stored after SIGKILL, ${lost} lost; ` +
          `${inLastInterval} answered in the last ${FLUSH_MS} ms + ${COMMIT_SLACK_MS} ms`,
      );
      assert.ok(count >= N && count <= N + M, `stored ${count}`);
      assert.ok(
        lost <= inLastInterval,
        `lost ${lost}, more than the ${inLastInterval} answered in the last interval`,
      );
    });

    await t.step("a graceful stop flushes every count", async () => {
      const before = await stored(server!.url, a);
      const K = 25;
      await requests(server!.url, a, K);
      const status = await server!.stop("SIGTERM");
      server = null;
      assert.equal(status.code, 0);
      server = await startServer(ENV(path), { direct: true });
      assert.equal(await stored(server.url, a), before + K);
    });
  } finally {
    await server?.stop();
    await removeKvFile(path);
  }
});
