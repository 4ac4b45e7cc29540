/**
 * Store faults (issue 6), with the fault-injecting KV of tests/_faulty_kv.ts under the real app:
 *   - a store that throws on reads answers 500 JSON with a request id and nothing internal
 *     (never a 401: a store failure must not look like a bad credential);
 *   - the rate limiter's store failing or stalling answers the seed's 503 with Retry-After: 60;
 *   - a commit that fails leaves nothing half-written (before/after dumps, `verifyStore`);
 *   - a stalled store holds requests, and they complete once it recovers;
 *   - after every fault the server answers normally again.
 */
import assert from "node:assert/strict";
import { verifyStore } from "../../admin/verify.ts";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { createApp } from "../../app.ts";
import { fakeClock } from "../../lib/clock.ts";
import { testConfig } from "../../lib/config.ts";
import type { LogEntry } from "../../lib/log.ts";
import { tenantStore } from "../../store/tenant.ts";
import { bearer, createAccountWithKey } from "../_helpers.ts";
import { dumpDiff, dumpKv, FAULT_MARKER, FaultyKv, READ_OPS } from "../_faulty_kv.ts";
import { errorShapeProblems, seed503Problems, type Seen, seen, Tally } from "../_hardening.ts";

const BASE = "http://localhost";
const LIST = `${BASE}/api/e2/domains`;

/** An app on a fault-injecting in-memory KV, with its log lines captured. */
async function faultyApp() {
  const faulty = new FaultyKv(await Deno.openKv(":memory:"));
  const clock = fakeClock(Date.now());
  const logs: LogEntry[] = [];
  const config = testConfig();
  const app = createApp({ kv: faulty.kv, clock, config, logger: (e) => logs.push(e) });
  return {
    faulty,
    app,
    clock,
    logs,
    config,
    async close() {
      faulty.heal();
      await app.idle();
      faulty.close();
    },
  };
}

/** Keys of domain data: records, their indexes and counters. */
const domainData = (key: Deno.KvKey) =>
  (typeof key[1] === "string" && key[1].startsWith("domain")) ||
  (key[1] === "count" && key[2] === "domains") ||
  (key[0] === "idx" && key[1] === "domain");
const rateKeys = (key: Deno.KvKey) => key[1] === "rate";
const apiKeyPointers = (key: Deno.KvKey) => key[0] === "idx" && key[1] === "api_key";

/** A dump (tests/_faulty_kv.ts dumpKv) without the rate limiter's window counters. */
async function withoutRateKeys(dump: Promise<Map<string, string>>): Promise<Map<string, string>> {
  return new Map([...await dump].filter(([k]) => !rateKeys(JSON.parse(k))));
}

/** Problems with a 500 that must be JSON, carry the request id, and reveal nothing internal. */
function opaque500Problems(r: Seen): string[] {
  const p = errorShapeProblems(r, [500]);
  try {
    const body = JSON.parse(r.body);
    const keys = Object.keys(body).sort().join(",");
    if (keys !== "error,message,requestId,statusCode") p.push(`body fields ${keys}`);
    if (!/^req_[0-9A-Za-z]{22}$/.test(body.requestId)) p.push("no request id in the body");
    if (body.requestId !== r.headers.get("X-Request-Id")) p.push("body and header ids differ");
  } catch { /* reported by errorShapeProblems */ }
  for (const leak of [FAULT_MARKER, "INJECTED", "sqlite", "TypeError", "stack", " at ", ".ts:"]) {
    if (r.body.includes(leak)) p.push(`body leaks ${JSON.stringify(leak)}`);
  }
  return p;
}

const okProblems = (r: Seen, status = 200) =>
  r.status === status ? [] : [`status ${r.status}, want ${status}: ${r.body.slice(0, 160)}`];

Deno.test("a store that fails on reads answers 500 JSON with a request id, never a 401, and recovers", async (t) => {
  const h = await faultyApp();
  const tally = new Tally("faults-reads");
  try {
    const a = await createAccountWithKey(h.faulty.kv, h.clock);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await seen(await postDomain(h.app, a.key, `read-fault-${i}.com`));
      tally.record(`healthy create ${i}`, okProblems(r, 201));
      if (r.status === 201) ids.push(JSON.parse(r.body).id);
    }
    const listed = await seen(await h.app.request(LIST, bearer(a.key)));
    const p = okProblems(listed);
    if (!p.length && JSON.parse(listed.body).data.length !== 3) p.push("list does not show 3");
    tally.record("healthy list", p);

    await t.step("domain reads throw: 500 with the request id, nothing internal", async () => {
      for (const ops of [["list"], ["getMany"], ["get"], READ_OPS] as const) {
        h.faulty.setMode({ kind: "throw", ops, keys: domainData });
        const r = await seen(await h.app.request(LIST, bearer(a.key)));
        tally.record(`domain ${ops.join("+")} throws`, opaque500Problems(r));
        h.faulty.heal();
      }
      // The domain routes that read one record.
      h.faulty.setMode({ kind: "throw", ops: READ_OPS, keys: domainData });
      for (const path of [`/api/e2/domains/${ids[0]}`, "/api/v2/domains"]) {
        const r = await seen(await h.app.request(`${BASE}${path}`, bearer(a.key)));
        tally.record(`GET ${path} with domain reads throwing`, opaque500Problems(r));
      }
      h.faulty.heal();
    });

    await t.step("the key lookup throws: 500, not 401, for a key not yet cached", async () => {
      const fresh = await createAccountWithKey(h.faulty.kv, h.clock);
      // The pointer is read by `getMany`, beside the revocation counter (issue 24).
      h.faulty.setMode({ kind: "throw", ops: ["get", "getMany"], keys: apiKeyPointers });
      const r = await seen(await h.app.request(LIST, bearer(fresh.key)));
      tally.record("key pointer read throws", opaque500Problems(r));
      h.faulty.heal();
      const after = await seen(await h.app.request(LIST, bearer(fresh.key)));
      tally.record("same key after healing", okProblems(after));
    });

    await t.step(
      "every operation throws: no 2xx, no 401, every answer in the error shape",
      async () => {
        const fresh = await createAccountWithKey(h.faulty.kv, h.clock);
        h.faulty.setMode({ kind: "throw" });
        for (const key of [a.key, fresh.key]) {
          const r = await seen(await h.app.request(LIST, bearer(key)));
          const p = r.status === 503 ? seed503Problems(r) : opaque500Problems(r);
          tally.record(`all ops throw (${key === a.key ? "cached" : "fresh"} key)`, p);
        }
        const health = await seen(await h.app.request(`${BASE}/healthz`));
        tally.record("healthz with all ops throwing", errorShapeProblems(health, [503]));
        h.faulty.heal();
      },
    );

    await t.step("the request log records each 500 with its id and nothing secret", () => {
      const errors = h.logs.filter((l) => l.msg === "request" && l.status === 500);
      assert.ok(errors.length >= 7, `${errors.length} logged 500s`);
      for (const l of errors) assert.match(String(l.requestId), /^req_/);
      const text = JSON.stringify(h.logs);
      assert.ok(!text.includes(a.key), "a key reached the log");
    });

    await t.step("after healing, the server answers normally", async () => {
      for (let i = 0; i < 5; i++) {
        const r = await seen(await h.app.request(LIST, bearer(a.key)));
        tally.record(`healed request ${i}`, okProblems(r));
      }
      const health = await seen(await h.app.request(`${BASE}/healthz`));
      tally.record("healthz after healing", okProblems(health));
    });
    assert.ok(h.faulty.stats.injected > 0);
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});

Deno.test("the rate limiter's store failing or stalling answers the seed's 503 with Retry-After: 60", async (t) => {
  const h = await faultyApp();
  const tally = new Tally("faults-limiter");
  try {
    await t.step("rate counter throws: 503, never 401, for several accounts", async () => {
      h.faulty.setMode({ kind: "throw", keys: rateKeys });
      for (let i = 0; i < 5; i++) {
        const acct = await createAccountWithKey(h.faulty.kv, h.clock);
        const r = await seen(await h.app.request(LIST, bearer(acct.key)));
        tally.record(`throwing limiter store, account ${i}`, seed503Problems(r));
      }
      h.faulty.heal();
    });

    await t.step("rate counter commit fails: 503", async () => {
      h.faulty.setMode({ kind: "failCommit", every: 1, keys: rateKeys });
      const acct = await createAccountWithKey(h.faulty.kv, h.clock);
      const r = await seen(await h.app.request(LIST, bearer(acct.key)));
      tally.record("failing limiter commit", seed503Problems(r));
      h.faulty.heal();
    });

    await t.step("rate counter stalls: 503 within a bounded time", async () => {
      // The limiter's deadline runs on real timers, not the app's fake clock.
      h.faulty.setMode({ kind: "stall", keys: rateKeys });
      const acct = await createAccountWithKey(h.faulty.kv, h.clock);
      const started = performance.now();
      const r = await seen(await h.app.request(LIST, bearer(acct.key)));
      const elapsed = performance.now() - started;
      const p = seed503Problems(r);
      if (elapsed > 5000) p.push(`took ${Math.round(elapsed)} ms`);
      tally.record("stalled limiter store", p);
      h.faulty.heal();
    });

    await t.step(
      "after healing, the same accounts are admitted with rate-limit headers",
      async () => {
        const acct = await createAccountWithKey(h.faulty.kv, h.clock);
        const r = await seen(await h.app.request(LIST, bearer(acct.key)));
        const p = okProblems(r);
        if (!r.headers.get("X-RateLimit-Limit")) p.push("no X-RateLimit-Limit");
        tally.record("healed limiter", p);
      },
    );
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});

Deno.test("a stalled store holds requests and they complete normally once it recovers", async (t) => {
  const h = await faultyApp();
  const tally = new Tally("faults-stall");
  try {
    const a = await createAccountWithKey(h.faulty.kv, h.clock);
    tally.record("warm-up", okProblems(await seen(await h.app.request(LIST, bearer(a.key)))));

    await t.step("a slow store (300 ms per read) is slow, not wrong", async () => {
      h.faulty.setMode({ kind: "stall", ms: 300, ops: READ_OPS, keys: domainData });
      const started = performance.now();
      const r = await seen(await h.app.request(LIST, bearer(a.key)));
      const p = okProblems(r);
      if (performance.now() - started < 290) p.push("the stall was not applied");
      tally.record("slow domain reads", p);
      h.faulty.heal();
    });

    await t.step(
      "a store that stops answering: healthz says 503, requests wait, then finish",
      async () => {
        h.faulty.setMode({ kind: "stall", keys: (k) => domainData(k) || k[0] === "health" });
        const pending = Promise.resolve(h.app.request(LIST, bearer(a.key))).then(seen);
        const health = await seen(await h.app.request(`${BASE}/healthz`));
        tally.record("healthz while stalled", errorShapeProblems(health, [503]));
        const early = await Promise.race([
          pending.then(() => "answered"),
          new Promise((r) => setTimeout(() => r("pending"), 300)),
        ]);
        tally.record("request held while stalled", early === "pending" ? [] : ["answered early"]);
        assert.ok(h.faulty.stalled > 0);
        h.faulty.heal();
        tally.record("held request after healing", okProblems(await pending));
        tally.record(
          "healthz after healing",
          okProblems(await seen(await h.app.request(`${BASE}/healthz`))),
        );
      },
    );
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});

Deno.test("a failed commit leaves nothing half-written, and acknowledged writes are all there", async (t) => {
  const h = await faultyApp();
  const tally = new Tally("faults-commits");
  try {
    const a = await createAccountWithKey(h.faulty.kv, h.clock);
    const store = tenantStore(h.faulty.kv, a.userId, h.clock);
    tally.record("warm-up", okProblems(await seen(await h.app.request(LIST, bearer(a.key)))));
    // The warm-up's writes after its answer (lastUsedAt, the usage flush) land before the first
    // snapshot, not between the two.
    await h.app.idle();

    await t.step(
      "API key create and delete: a commit refused before applying changes nothing",
      async () => {
        // The rate limiter's window counters are left out of this step's snapshots: the warm-up's
        // prefetch lease writes one in the background, at any moment (issue 24: this step failed
        // once under load when it landed between them). Key create and delete never write them.
        const before = await withoutRateKeys(dumpKv(h.faulty.inner));
        h.faulty.setMode({ kind: "failCommit", every: 1 });
        const create = await issueApiKey(store.apiKeys, { name: "x", nowMs: h.clock() })
          .then(() => "committed", (e) => e);
        const del = await store.apiKeys.delete(a.keyId).then(() => "committed", (e) => e);
        h.faulty.heal();
        const after = await withoutRateKeys(dumpKv(h.faulty.inner));
        const p: string[] = [];
        if (create === "committed" || del === "committed") {
          p.push("a failing commit reported success");
        }
        const diff = dumpDiff(before, after);
        if (diff.length) p.push(`the store changed: ${diff.join(" ")}`);
        tally.record("refused key commits", p);
      },
    );

    await t.step("API key create: a commit applied then lost is whole, not half", async () => {
      h.faulty.setMode({ kind: "failCommit", every: 1, when: "after" });
      const threw = await issueApiKey(store.apiKeys, { name: "lost ack", nowMs: h.clock() })
        .then(() => false, () => true);
      h.faulty.heal();
      const report = await verifyStore(h.faulty.inner);
      const names = (await store.apiKeys.list()).map((k) => k.name);
      const p: string[] = [];
      if (!threw) p.push("the lost acknowledgement was not reported");
      if (!report.ok) p.push(JSON.stringify(report.violations));
      if (!names.includes("lost ack")) p.push("the applied commit is missing");
      tally.record("applied-then-lost key commit", p);
    });

    await t.step(
      "domain create over HTTP with its commit refused: 500, no trace in the store",
      async () => {
        const before = await dumpKv(h.faulty.inner);
        h.faulty.setMode({ kind: "failCommit", every: 1, keys: domainData });
        const r = await seen(await postDomain(h.app, a.key, "refused-commit.com"));
        h.faulty.heal();
        const after = await dumpKv(h.faulty.inner);
        const p = r.status === 405 ? ["POST /api/e2/domains does not exist"] : opaque500Problems(r);
        const changed = [...after.keys()].filter((k) => !before.has(k) && !k.includes('"rate"'));
        if (changed.length) p.push(`new keys: ${changed.join(" ")}`);
        tally.record("refused domain commit", p);
      },
    );

    await t.step(
      "concurrent creates with one commit in three failing: consistent, nothing acknowledged lost",
      async () => {
        for (const when of ["before", "after"] as const) {
          h.faulty.setMode({ kind: "failCommit", every: 3, when, keys: domainData });
          const names = Array.from(
            { length: 24 },
            (_, i) => `c${i}-${when}-${crypto.randomUUID().slice(0, 8)}.com`,
          );
          const results = await Promise.all(names.map(async (name) => {
            const r = await seen(await postDomain(h.app, a.key, name));
            return { name, r };
          }));
          h.faulty.heal();
          const acked = results.filter((x) => x.r.status === 201);
          const failed = results.filter((x) => x.r.status !== 201);
          const p: string[] = [];
          if (acked.length === 0 || failed.length === 0) {
            p.push(`${acked.length} acknowledged, ${failed.length} failed: faults not exercised`);
          }
          for (const x of failed) p.push(...opaque500Problems(x.r).map((m) => `${x.name}: ${m}`));
          for (const x of acked) {
            const id = JSON.parse(x.r.body).id;
            const got = await h.app.request(`${BASE}/api/e2/domains/${id}`, bearer(a.key));
            await got.body?.cancel();
            if (got.status !== 200) p.push(`acknowledged ${x.name} answers ${got.status}`);
          }
          const report = await verifyStore(h.faulty.inner);
          if (!report.ok) p.push(JSON.stringify(report.violations.slice(0, 5)));
          tally.record(`24 concurrent creates, commits failing ${when} applying`, p);
        }
      },
    );

    await t.step("after healing, writes and reads work", async () => {
      const r = await seen(
        await postDomain(h.app, a.key, `healed-${crypto.randomUUID().slice(0, 8)}.com`),
      );
      tally.record("healed create", okProblems(r, 201));
      tally.record("healed list", okProblems(await seen(await h.app.request(LIST, bearer(a.key)))));
      const report = await verifyStore(h.faulty.inner);
      tally.record("store verifies", report.ok ? [] : [JSON.stringify(report.violations)]);
    });
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});

function postDomain(app: ReturnType<typeof createApp>, key: string, domain: string) {
  return app.request(
    LIST,
    bearer(key, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ domain }),
    }),
  );
}
