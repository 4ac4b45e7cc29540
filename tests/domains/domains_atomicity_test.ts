/**
 * Every domain write is one checked atomic commit: a process killed before the commit leaves
 * the state before it, killed after it leaves the state after it, and racing writers never
 * leave an orphan index entry or a wrong count (invariants I1–I5 of store/domains/store.ts).
 */
import assert from "node:assert/strict";
import { fakeClock } from "../../lib/clock.ts";
import type { RecordCheck } from "../../lib/dns.ts";
import {
  checkDomainInvariants,
  DomainHasSubdomainsError,
  domainStore,
} from "../../store/domains/store.ts";
import { domainInput } from "../_domains.ts";
import { seedEndpoint } from "../endpoints/_seed.ts";

const USER_A = "usr_AAAAAAAAAAAAAAAAAAAAAA";
const USER_B = "usr_BBBBBBBBBBBBBBBBBBBBBB";

const ALL_VERIFIED: RecordCheck[] = [
  { kind: "verification", isVerified: true },
  { kind: "mx", isVerified: true },
  { kind: "spf", isVerified: true },
  { kind: "dmarc", isVerified: true },
];

class Killed extends Error {}

/**
 * A KV whose next commit can be made to die before it reaches the store or right after it did
 * (the caller never learns the outcome). Counts commits and any write made outside one.
 */
function killableKv(kv: Deno.Kv) {
  const state = { kill: null as null | "before" | "after", commits: 0, directWrites: 0 };
  const wrapOp = (op: Deno.AtomicOperation): Deno.AtomicOperation =>
    new Proxy(op, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        if (prop === "commit") {
          return async () => {
            const kill = state.kill;
            state.kill = null;
            if (kill === "before") throw new Killed("killed before commit");
            const res = await value.apply(target, []);
            if (res.ok) state.commits++;
            if (kill === "after") throw new Killed("killed after commit");
            return res;
          };
        }
        return (...args: unknown[]) => {
          const result = value.apply(target, args);
          return result === target ? receiver : result;
        };
      },
    });
  const proxy = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "atomic") return () => wrapOp(target.atomic());
      if (prop === "set" || prop === "delete" || prop === "enqueue") {
        return (...args: unknown[]) => {
          state.directWrites++;
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return { kv: proxy, state };
}

/** Every key under the account and every domain pointer, for before/after comparisons. */
async function snapshot(kv: Deno.Kv): Promise<string> {
  const out: string[] = [];
  // Counters are Deno.KvU64 (bigint inside), which JSON cannot carry as such.
  const big = (_k: string, v: unknown) =>
    v instanceof Deno.KvU64 ? `${v.value}n` : typeof v === "bigint" ? `${v}n` : v;
  for await (const e of kv.list({ prefix: [] })) out.push(JSON.stringify([e.key, e.value], big));
  return out.join("\n");
}

Deno.test("each domain write is a single commit that a crash cannot split", async (t) => {
  const base = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const { kv, state } = killableKv(base);
  const store = domainStore(kv, USER_A, clock);
  try {
    const parent = await store.create(domainInput("crash.example"));
    // Issue 23: the catch-all names a real endpoint of the account (written to the base KV).
    const endpointId = await seedEndpoint(base, USER_A, clock);
    const idOf = async (name: string) =>
      (await store.list({}, { limit: 100, offset: 0 })).data.find((d) => d.domain === name)!.id;
    const ops: [string, () => Promise<unknown>][] = [
      ["create a domain", () => store.create(domainInput("other.example"))],
      ["verify the parent through a check", () => store.applyCheck(parent.id, ALL_VERIFIED)],
      [
        "create a subdomain (record, indexes, counters, parent link)",
        () => store.create(domainInput("sub.crash.example")),
      ],
      [
        "update catch-all",
        () =>
          store.updateCatchAll(parent.id, {
            isCatchAllEnabled: true,
            catchAllEndpointId: endpointId,
          }),
      ],
      ["delete the subdomain", async () => store.delete(await idOf("sub.crash.example"))],
      ["delete the parent", () => store.delete(parent.id)],
    ];
    for (const [name, op] of ops) {
      await t.step(`${name}: killed before the commit, nothing changed`, async () => {
        const before = await snapshot(base);
        state.kill = "before";
        await assert.rejects(op, Killed);
        assert.equal(await snapshot(base), before);
        assert.deepEqual(await checkDomainInvariants(base, USER_A), []);
      });
      await t.step(`${name}: killed after the commit, all of it happened at once`, async () => {
        const commits = state.commits;
        const before = await snapshot(base);
        state.kill = "after";
        await assert.rejects(op, Killed);
        assert.equal(state.commits - commits, 1, "exactly one commit");
        assert.notEqual(await snapshot(base), before);
        assert.deepEqual(await checkDomainInvariants(base, USER_A), []);
      });
    }
    await t.step("no write ever happened outside an atomic commit", () => {
      assert.equal(state.directWrites, 0);
    });
  } finally {
    base.close();
  }
});

Deno.test("racing writers leave exact counts and no orphans", async (t) => {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const a = domainStore(kv, USER_A, clock);
  const b = domainStore(kv, USER_B, clock);
  try {
    await t.step("30 concurrent creates in one account all land and are all counted", async () => {
      const made = await Promise.all(
        Array.from({ length: 30 }, (_, i) => a.create(domainInput(`n${i}.example`))),
      );
      assert.equal(new Set(made.map((r) => r.id)).size, 30);
      assert.equal(await a.count(), 30);
      assert.equal(await a.count({ status: "pending" }), 30);
      assert.equal((await a.list({}, { limit: 100, offset: 0 })).data.length, 30);
      assert.deepEqual(await checkDomainInvariants(kv, USER_A), []);
    });
    // Issue 10 changed this rule: a name is exclusive once verified, so both accounts may hold
    // it pending, and of two racing verifications exactly one claims it.
    await t.step(
      "two accounts racing to verify one name: exactly one owns it, every time",
      async () => {
        for (let i = 0; i < 10; i++) {
          const [ra, rb] = await Promise.all([
            a.create(domainInput(`race${i}.example`)),
            b.create(domainInput(`race${i}.example`)),
          ]);
          const [ca, cb] = await Promise.all([
            a.applyCheck(ra.id, ALL_VERIFIED),
            b.applyCheck(rb.id, ALL_VERIFIED),
          ]);
          const statuses = [ca.record.status, cb.record.status].sort();
          assert.deepEqual(statuses, ["failed", "verified"]);
          const loser = ca.record.status === "failed" ? ca : cb;
          assert.match(
            String(loser.results.find((r) => r.kind === "verification")?.error),
            /Another account has verified/,
          );
          // The loser can no longer verify it; creating it again elsewhere is refused.
          const again = await (loser === ca ? a : b).applyCheck(loser.record.id, ALL_VERIFIED);
          assert.equal(again.record.status, "failed");
        }
        assert.equal((await a.count()) + (await b.count()), 50);
        assert.equal(
          (await a.count({ status: "verified" })) + (await b.count({ status: "verified" })),
          10,
        );
        assert.deepEqual(await checkDomainInvariants(kv, USER_A), []);
        assert.deepEqual(await checkDomainInvariants(kv, USER_B), []);
      },
    );
    await t.step("a subdomain racing its parent's delete never leaves an orphan link", async () => {
      for (let i = 0; i < 10; i++) {
        const parent = await a.create(domainInput(`p${i}.example`));
        const [child, del] = await Promise.allSettled([
          a.create(domainInput(`c.p${i}.example`)),
          a.delete(parent.id),
        ]);
        assert.equal(child.status, "fulfilled");
        if (del.status === "rejected") {
          // The child landed first: the parent stays, with the child linked.
          assert.ok(del.reason instanceof DomainHasSubdomainsError);
          assert.equal(child.value.parentDomainId, parent.id);
        } else {
          // The delete landed first: the child was created without a parent.
          assert.equal(
            (child as PromiseFulfilledResult<{ parentDomainId: string | null }>).value
              .parentDomainId,
            null,
          );
        }
        assert.deepEqual(await checkDomainInvariants(kv, USER_A), []);
      }
    });
    await t.step("checks racing a delete and each other keep the counters exact", async () => {
      const ids = (await a.list({ status: "pending" }, { limit: 10, offset: 0 })).data.map((r) =>
        r.id
      );
      await Promise.allSettled([
        ...ids.map((id) => a.applyCheck(id, ALL_VERIFIED)),
        ...ids.slice(0, 3).map((id) => a.delete(id)),
        ...ids.slice(5).map((id) => a.applyCheck(id, ALL_VERIFIED)),
      ]);
      assert.deepEqual(await checkDomainInvariants(kv, USER_A), []);
    });
  } finally {
    kv.close();
  }
});

Deno.test("the invariant checker notices an orphan, a missing index and a wrong count", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const a = domainStore(kv, USER_A, clock);
  try {
    const r = await a.create(domainInput("broken.example"));
    assert.deepEqual(await checkDomainInvariants(kv, USER_A), []);
    // Simulate the damage a non-atomic write would do.
    await kv.set([USER_A, "count", "domains", "all"], new Deno.KvU64(2n));
    await kv.delete([USER_A, "domain_by_filter", "status:pending", Date.parse(r.createdAt), r.id]);
    await kv.set([USER_A, "domain_by_time", 1, "dom_ghost"], "dom_ghost");
    const problems = await checkDomainInvariants(kv, USER_A);
    assert.ok(problems.some((p) => p.startsWith("I3") && p.includes("all")), problems.join("\n"));
    assert.ok(problems.some((p) => p.startsWith("I1") && p.includes("status:pending")));
    assert.ok(problems.some((p) => p.startsWith("I2") && p.includes("dom_ghost")));
  } finally {
    kv.close();
  }
});
