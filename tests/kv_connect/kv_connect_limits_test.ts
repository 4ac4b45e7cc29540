/**
 * The KV Connect test backend enforces denokv's limits (proto/limits.rs) and answers as denokv
 * does (400, plain-text reason); and every commit the server makes at the largest sizes it allows
 * stays within them (issue 15, item 4).
 */
import assert from "node:assert/strict";
import { ADMIN_AUDIT_CONTEXT } from "../../store/audit_log/events.ts";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { verifyStore } from "../../admin/verify.ts";
import { deleteAccount } from "../../store/accounts/deletion.ts";
import { tenantStore } from "../../store/tenant.ts";
import { domainStore, releaseDomainName } from "../../store/domains/store.ts";
import { domainInput, FakeResolver } from "../_domains.ts";
import { type App, createApp } from "../../app.ts";
import { fakeClock } from "../../lib/clock.ts";
import { testConfig } from "../../lib/config.ts";
import { createAccountWithKey, makeTestApp } from "../_helpers.ts";
import { backend, openRemoteKv, rawRead, rawWrite } from "./client.ts";
import { encodeKey } from "./key_codec.ts";
import { LIMIT_MESSAGES, LIMITS } from "./limits.ts";
import { type MutationMsg, MutationType, ValueEncoding } from "./proto.ts";
import type { KvConnectStats } from "./server.ts";

const del = (key: Uint8Array): MutationMsg => ({
  key,
  mutationType: MutationType.DELETE,
  expireAtMs: 0,
});
const setBytes = (key: Uint8Array, size: number): MutationMsg => ({
  key,
  value: { data: new Uint8Array(size), encoding: ValueEncoding.BYTES },
  mutationType: MutationType.SET,
  expireAtMs: 0,
});
const k = (...parts: Deno.KvKeyPart[]) => encodeKey(parts);
/** A key of exactly `size` encoded bytes: ["", "xxx…"] is 1 + 1 + 1 + n + 1 bytes. */
const keyOfSize = (size: number) => k("", "x".repeat(size - 4));
const range = (start: Uint8Array, limit = 1) => ({
  start,
  end: Uint8Array.from([...start, 0xff]),
  limit,
  reverse: false,
});

Deno.test("raw requests over denokv's limits get denokv's 400 and text", async (t) => {
  await using b = await backend();
  const refused = (res: { status: number; text: string }, message: string) => {
    assert.equal(res.status, 400);
    assert.equal(res.text, message);
  };

  await t.step("a write key over 100 KiB, and a read or check key over 100 KiB + 1", async () => {
    const big = keyOfSize(LIMITS.MAX_WRITE_KEY_SIZE_BYTES + 1);
    refused(await rawWrite(b.url, { mutations: [del(big)] }), LIMIT_MESSAGES.KeyTooLong);
    const bigRead = keyOfSize(LIMITS.MAX_READ_KEY_SIZE_BYTES + 1);
    refused(await rawRead(b.url, [range(bigRead)]), LIMIT_MESSAGES.KeyTooLong);
    refused(
      await rawWrite(b.url, { checks: [{ key: bigRead, versionstamp: new Uint8Array() }] }),
      LIMIT_MESSAGES.KeyTooLong,
    );
  });

  await t.step("10 checks are accepted, 11 refused", async () => {
    const checks = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ key: k("c", i), versionstamp: new Uint8Array() }));
    assert.equal((await rawWrite(b.url, { checks: checks(10) })).status, 200);
    refused(await rawWrite(b.url, { checks: checks(11) }), LIMIT_MESSAGES.TooManyChecks);
  });

  await t.step("1000 mutations are accepted, 1001 refused", async () => {
    const muts = (n: number) => Array.from({ length: n }, (_, i) => del(k("m", i)));
    assert.equal((await rawWrite(b.url, { mutations: muts(1000) })).status, 200);
    refused(await rawWrite(b.url, { mutations: muts(1001) }), LIMIT_MESSAGES.TooManyMutations);
  });

  await t.step(
    "a commit just under 819200 bytes (keys, values, check keys) is accepted, 819201 refused",
    async () => {
      // Values under 64 KiB each (the local KV's own value limit) and one check key. The local
      // KV's own total (also 800 KiB) counts a little more than denokv does, so acceptance is
      // shown 1 KiB under the limit; from 819201 bytes on the refusal is denokv's.
      const check = { key: k("size", "check"), versionstamp: new Uint8Array() };
      const fill = (target: number) => {
        const muts: MutationMsg[] = [];
        let total = check.key.length;
        for (let i = 0; total < target; i++) {
          const key = k("size", i);
          const value = Math.min(60_000, target - total - key.length);
          muts.push(setBytes(key, value));
          total += key.length + value;
        }
        assert.equal(total, target);
        return muts;
      };
      const under = fill(LIMITS.MAX_TOTAL_MUTATION_SIZE_BYTES - 1024);
      const ok = await rawWrite(b.url, { checks: [check], mutations: under });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.result.status, 1);
      const muts = fill(LIMITS.MAX_TOTAL_MUTATION_SIZE_BYTES + 1);
      refused(
        await rawWrite(b.url, { checks: [check], mutations: muts }),
        LIMIT_MESSAGES.AtomicWriteTooLarge,
      );
      // A single value between 800 KiB and denokv's 1 GiB value limit meets the total first; the
      // 1 GiB ValueTooLong check itself is not exercised (a 1 GiB request body).
      refused(
        await rawWrite(b.url, { mutations: [setBytes(k("one"), 900_000)] }),
        LIMIT_MESSAGES.AtomicWriteTooLarge,
      );
    },
  );

  await t.step("10 read ranges and 1000 entries are accepted, 11 and 1001 refused", async () => {
    const ranges = (n: number, limit: number) =>
      Array.from({ length: n }, (_, i) => range(k("r", i), limit));
    assert.equal((await rawRead(b.url, ranges(10, 100))).status, 200);
    refused(await rawRead(b.url, ranges(11, 1)), LIMIT_MESSAGES.TooManyReadRanges);
    refused(
      await rawRead(b.url, [...ranges(9, 100), range(k("r", 9), 101)]),
      LIMIT_MESSAGES.ReadRangeTooLarge,
    );
    refused(await rawRead(b.url, [range(k("r"), 0)]), LIMIT_MESSAGES.InvalidReadRangeLimit);
  });

  await t.step("every refusal is recorded with the request's figures", () => {
    const rejected = b.stats().rejected;
    const checks = rejected.find((r) => r.message === LIMIT_MESSAGES.TooManyChecks);
    assert.equal(checks?.figures.checks, 11);
    const size = rejected.find((r) => r.message === LIMIT_MESSAGES.AtomicWriteTooLarge);
    assert.equal(size?.figures.totalMutationBytes, LIMITS.MAX_TOTAL_MUTATION_SIZE_BYTES + 1);
  });
});

Deno.test("through Deno's client, over-limit requests fail client-side or with denokv's 400", async (t) => {
  await using b = await backend();
  const kv = await openRemoteKv(b.url);
  try {
    await t.step(
      "11 checks pass Deno's client (it allows 100) and denokv refuses them",
      async () => {
        const op = kv.atomic();
        for (let i = 0; i < 11; i++) op.check({ key: ["c", i], versionstamp: null });
        await assert.rejects(op.set(["x"], 1).commit(), /status=400.*Too many checks/);
        const ten = kv.atomic();
        for (let i = 0; i < 10; i++) ten.check({ key: ["c", i], versionstamp: null });
        assert.ok((await ten.set(["x"], 1).commit()).ok);
      },
    );

    await t.step(
      "Deno's client counts check keys toward 819200 bytes as denokv does, and refuses first",
      async () => {
        // Mutations of 810,000 bytes (under 800 KiB) plus 10 check keys of ~2 KB each: over
        // the total only with the check keys counted, as denokv counts them.
        const op = kv.atomic();
        for (let i = 0; i < 10; i++) {
          op.check({ key: ["ck", i, "y".repeat(2000)], versionstamp: null });
        }
        let total = 0;
        for (let i = 0; total < 810_000; i++) {
          const value = new Uint8Array(Math.min(62_000, 810_000 - total - 8));
          op.set(["big", i], value);
          total += encodeKey(["big", i]).length + value.length;
        }
        assert.ok(total < LIMITS.MAX_TOTAL_MUTATION_SIZE_BYTES);
        const before = b.stats();
        await assert.rejects(op.commit(), TypeError);
        const after = b.stats();
        assert.equal(after.commits, before.commits, "nothing was sent");
        assert.equal(after.rejected.length, before.rejected.length);
      },
    );

    // What Deno's client refuses before a request leaves the process (deno ext/kv/lib.rs):
    // these never reach a backend, so denokv's larger limits on the same figures do not matter.
    await t.step(
      "Deno's client itself refuses keys, values, counts and totals over its limits",
      async () => {
        const before = b.stats();
        await assert.rejects(kv.set(["k", "x".repeat(2100)], 1), TypeError); // key > 2048
        await assert.rejects(kv.get(["k", "x".repeat(2100)]), TypeError); // read key > 2049
        await assert.rejects(kv.set(["v"], new Uint8Array(65_537)), TypeError); // value > 64 KiB
        const many = kv.atomic();
        for (let i = 0; i < 1001; i++) many.delete(["m", i]);
        await assert.rejects(many.commit(), TypeError); // mutations > 1000
        const keys = kv.atomic();
        for (let i = 0; i < 41; i++) keys.set(["kk", i, "z".repeat(2030)], 0);
        await assert.rejects(keys.commit(), TypeError); // total key size > 80 KiB
        await assert.rejects(kv.getMany(Array.from({ length: 11 }, (_, i) => ["g", i])), TypeError);
        await assert.rejects(
          Array.fromAsync(kv.list({ prefix: [] }, { batchSize: 1001 })),
          TypeError,
        );
        const after = b.stats();
        assert.equal(after.commits, before.commits);
        assert.equal(after.reads, before.reads);
        assert.equal(after.rejected.length, before.rejected.length);
      },
    );
  } finally {
    kv.close();
  }
});

function within(stats: KvConnectStats): string[] {
  const over: string[] = [];
  for (const r of stats.rejected) over.push(`${r.message} ${JSON.stringify(r.figures)}`);
  if (stats.maxChecks > LIMITS.MAX_CHECKS) over.push(`checks ${stats.maxChecks}`);
  if (stats.maxMutations > LIMITS.MAX_MUTATIONS) over.push(`mutations ${stats.maxMutations}`);
  if (stats.maxTotalMutationBytes > LIMITS.MAX_TOTAL_MUTATION_SIZE_BYTES) {
    over.push(`total bytes ${stats.maxTotalMutationBytes}`);
  }
  if (stats.maxReadRanges > LIMITS.MAX_READ_RANGES) over.push(`ranges ${stats.maxReadRanges}`);
  if (stats.maxReadEntries > LIMITS.MAX_READ_ENTRIES) over.push(`entries ${stats.maxReadEntries}`);
  return over;
}

const figures = (s: KvConnectStats) =>
  `${s.commits} commits (max ${s.maxChecks} checks, ${s.maxMutations} mutations, ` +
  `${s.maxTotalMutationBytes} bytes, ${s.maxTotalKeyBytes} key bytes), ${s.reads} reads ` +
  `(max ${s.maxReadRanges} ranges, ${s.maxReadEntries} entries)`;

/** POST /api/e2/domains as `key`; the status and body. */
async function createDomain(app: App, key: string, domain: string) {
  const res = await app.request("/api/e2/domains", {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ domain }),
  });
  return { status: res.status, body: await res.json() };
}

/** Registrable names, and under every tenth one a name with one and one with two ancestors. */
function domainNames(count: number, tag: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const base = `${tag}${i}.example`;
    out.push(...(i % 10 === 0 ? [base, `b.${base}`, `a.b.${base}`] : [base]));
  }
  return out.slice(0, count);
}

const noRateLimit = { rateLimit: { max: 1_000_000, windowMs: 1000, failOpen: false } };

Deno.test("every commit the server makes at its largest sizes stays within denokv's limits", async (t) => {
  // The account is filled to MAX_DOMAINS_PER_ACCOUNT - AT_QUOTA domains by the server's own code
  // on the backend's local file first (the same commits, only faster than over HTTP); the last
  // AT_QUOTA creates, the refusal at the quota, the keys, `admin verify` and the deletion then
  // run over KV Connect, where the backend measures each request against denokv's limits.
  const AT_QUOTA = 30;
  const report: string[] = [];
  try {
    await using b = await backend();
    const config = testConfig(noRateLimit);
    const clock = fakeClock(Date.UTC(2026, 0, 1));
    const max = config.maxDomainsPerAccount;
    const names = domainNames(max, "d");
    const account = await createAccountWithKey(b.localKv, clock);
    const started = performance.now();
    // Filled by the server's own store code (with the audit event a request adds) straight on
    // the backend's local KV, four at a time; a name's ancestors come first in `names` and
    // every group of three is taken by one worker in order.
    const local = domainStore(b.localKv, account.userId, clock, {
      maxDomains: max,
      audit: ADMIN_AUDIT_CONTEXT,
    });
    const queue = names.slice(0, max - AT_QUOTA);
    const worker = async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        const group = [name];
        while (queue[0]?.endsWith(`.${name}`) || queue[0]?.endsWith(`.${group.at(-1)}`)) {
          group.push(queue.shift()!);
        }
        for (const n of group) await local.create(domainInput(n));
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    report.push(
      `filled ${max - AT_QUOTA} domains locally in ${(performance.now() - started).toFixed(0)} ms`,
    );

    const kv = await openRemoteKv(b.url);
    const ctx = await makeTestApp({ kv, clock, config: noRateLimit });
    const step = async (name: string, fn: () => Promise<void>) => {
      b.resetStats();
      await t.step(name, async () => {
        try {
          await fn();
        } finally {
          const s = b.stats();
          report.push(`${name}: ${figures(s)}; refused: ${JSON.stringify(s.rejected)}`);
        }
        const s = b.stats();
        assert.deepEqual(within(s), [], `${name}: ${figures(s)}`);
      });
    };
    try {
      await step(
        `the last ${AT_QUOTA} domains up to MAX_DOMAINS_PER_ACCOUNT, then one over`,
        async () => {
          for (const name of names.slice(max - AT_QUOTA)) {
            const res = await createDomain(ctx.app, account.key, name);
            assert.equal(res.status, 201, `${name}: ${JSON.stringify(res.body)}`);
          }
          const over = await createDomain(ctx.app, account.key, "one-too-many.example");
          assert.equal(over.status, 403, JSON.stringify(over.body));
        },
      );

      await step(`${config.maxApiKeysPerAccount} API keys, then one over`, async () => {
        const store = tenantStore(kv, account.userId, clock, {
          maxApiKeys: config.maxApiKeysPerAccount,
        });
        for (let i = 1; i < config.maxApiKeysPerAccount; i++) {
          await issueApiKey(store.apiKeys, {
            name: `k${i}`,
            nowMs: clock(),
            audit: ADMIN_AUDIT_CONTEXT,
          });
        }
        await assert.rejects(issueApiKey(store.apiKeys, { name: "over", nowMs: clock() }));
      });

      await step("admin verify walks the full account in its batches", async () => {
        const verified = await verifyStore(kv, { maxDomains: max });
        assert.equal(verified.violationCount, 0, JSON.stringify(verified.violations.slice(0, 3)));
        assert.equal(verified.scanned.domains, max);
        assert.equal(verified.scanned.apiKeys, config.maxApiKeysPerAccount);
      });

      await step("deleting that account", async () => {
        const summary = await deleteAccount(kv, account.userId, { nowMs: clock() });
        assert.equal(summary?.domains, max);
        assert.equal(summary?.apiKeys, config.maxApiKeysPerAccount);
        const left = await Array.fromAsync(kv.list({ prefix: [account.userId] }, { limit: 1 }));
        assert.deepEqual(left, []);
      });
    } finally {
      await ctx.close();
    }
  } finally {
    console.log(report.join("\n"));
  }
});

Deno.test("a name two labels below its registrable domain is created within 10 checks; a deeper one is a 400", async () => {
  // The create checks its pointer, record, name and slot (4), each ancestor's name entry and
  // pointer (2 per ancestor) and the parent (1): two ancestors make 9, three would make 11, so
  // lib/domain_name.ts refuses names deeper than MAX_LABELS_BELOW_REGISTRABLE (2).
  await using b = await backend();
  const kv = await openRemoteKv(b.url);
  const ctx = await makeTestApp({ kv, config: noRateLimit });
  try {
    const account = await createAccountWithKey(kv, ctx.clock);
    for (const name of ["e.example", "c.e.example", "b.c.e.example"]) {
      const res = await createDomain(ctx.app, account.key, name);
      assert.equal(res.status, 201, `${name}: ${JSON.stringify(res.body)}`);
    }
    const deep = await createDomain(ctx.app, account.key, "a.b.c.e.example");
    assert.equal(deep.status, 400);
    assert.equal(deep.body.field, "domain");
    assert.match(JSON.stringify(deep.body), /at most 2 labels below/);
    assert.deepEqual(within(b.stats()), []);
  } finally {
    await ctx.close();
  }
});

Deno.test({
  name: "releasing a verified name with 11 inheriting subdomains stays within 10 checks",
  fn: async () => {
    // releaseDomainName checks every subdomain record of a batch (RELEASE_BATCH = 10).
    await using b = await backend();
    const kv = await openRemoteKv(b.url);
    const resolver = new FakeResolver();
    const clock = fakeClock(Date.UTC(2026, 0, 1));
    const app = createApp({ kv, clock, config: testConfig(noRateLimit), resolver });
    const ctx = { app, clock };
    try {
      const account = await createAccountWithKey(kv, ctx.clock);
      const parent = await createDomain(ctx.app, account.key, "r.example");
      resolver.publish(parent.body.dnsRecords);
      const checked = await ctx.app.request(`/api/e2/domains/${parent.body.id}?check=true`, {
        headers: { authorization: `Bearer ${account.key}` },
      });
      assert.equal((await checked.json()).status, "verified");
      for (let i = 0; i < 11; i++) {
        const res = await createDomain(ctx.app, account.key, `s${i}.r.example`);
        assert.equal(res.status, 201);
      }
      const released = await releaseDomainName(kv, "r.example", ctx.clock);
      assert.equal(released?.subdomains, 11);
      assert.deepEqual(within(b.stats()), []);
    } finally {
      await app.idle();
      kv.close();
    }
  },
});
