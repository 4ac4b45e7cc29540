/**
 * "Deleting a domain that still has subdomains: 409", whatever order the domains were created
 * in: a subdomain added before its parent, or linked past it to a verified grand-parent, still
 * blocks the parent's delete (store/domains/store.ts finds it through the reversed-name index), and a
 * subdomain created while the delete is under way cannot slip in behind its check.
 */
import assert from "node:assert/strict";
import { fakeClock } from "../../lib/clock.ts";
import type { RecordCheck } from "../../lib/dns.ts";
import {
  checkDomainInvariants,
  DomainHasSubdomainsError,
  type DomainRecord,
  domainStore,
} from "../../store/domains/store.ts";
import { domainKey } from "../../store/keys.ts";
import { type Account, domainInput, type DomainTestApp, domainTestApp } from "../_domains.ts";

const USER_A = "usr_AAAAAAAAAAAAAAAAAAAAAA";

const ALL_VERIFIED: RecordCheck[] = [
  { kind: "verification", isVerified: true },
  { kind: "mx", isVerified: true },
];

async function created(a: Account, name: string): Promise<{ id: string; parentDomain?: string }> {
  const res = await a.create(name);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

async function verified(ctx: DomainTestApp, a: Account, name: string): Promise<string> {
  const res = await a.create(name);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  ctx.resolver.publish(res.body.dnsRecords);
  const checked = await a.request("GET", `/api/e2/domains/${res.body.id}?check=true`);
  assert.equal(checked.body.status, "verified");
  return res.body.id;
}

function assertRefused(res: { status: number; headers: Headers; body: { [k: string]: unknown } }) {
  assert.equal(res.status, 409, JSON.stringify(res.body));
  assert.equal(res.body.code, "DOMAIN_HAS_SUBDOMAINS");
  assert.equal(res.headers.get("x-should-retry"), "false");
  return String(res.body.message);
}

Deno.test("a subdomain created before its parent still blocks the parent's delete", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const child = await created(a, "mail.example.com");
    const parent = await created(a, "example.com");
    await t.step("the parent is not linked to the earlier subdomain", () => {
      assert.equal(child.parentDomain, undefined);
      assert.equal(parent.parentDomain, undefined);
    });
    await t.step("deleting the parent is a 409 naming the subdomain", async () => {
      const message = assertRefused(await a.request("DELETE", `/api/e2/domains/${parent.id}`));
      assert.match(message, /1 subdomain\(s\) \(mail\.example\.com\)/);
      assert.equal((await a.request("GET", `/api/e2/domains/${parent.id}`)).status, 200);
      await ctx.assertConsistent();
    });
    await t.step("once the subdomain is deleted, the parent's delete succeeds", async () => {
      assert.equal((await a.request("DELETE", `/api/e2/domains/${child.id}`)).status, 200);
      assert.equal((await a.request("DELETE", `/api/e2/domains/${parent.id}`)).status, 200);
      assert.equal((await a.request("GET", `/api/e2/domains/${parent.id}`)).status, 404);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("every domain below a name blocks its delete, however deep and however linked", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const ab = await created(a, "a.b.example.com");
    const root = await created(a, "example.com");
    const b = await created(a, "b.example.com");
    await t.step("only the last one found an existing ancestor to link to", () => {
      assert.equal(ab.parentDomain, undefined);
      assert.equal(root.parentDomain, undefined);
      assert.equal(b.parentDomain, "example.com");
    });
    await t.step("example.com: 409 naming both names below it", async () => {
      const message = assertRefused(await a.request("DELETE", `/api/e2/domains/${root.id}`));
      assert.match(message, /2 subdomain\(s\)/);
      assert.match(message, /a\.b\.example\.com/);
      assert.match(message, /[( ]b\.example\.com/);
    });
    await t.step(
      "b.example.com: 409 naming a.b.example.com, which is not linked to it",
      async () => {
        const message = assertRefused(await a.request("DELETE", `/api/e2/domains/${b.id}`));
        assert.match(message, /1 subdomain\(s\) \(a\.b\.example\.com\)/);
      },
    );
    await t.step("deleting from the bottom up succeeds at every level", async () => {
      for (const d of [ab, b, root]) {
        assert.equal((await a.request("DELETE", `/api/e2/domains/${d.id}`)).status, 200);
        await ctx.assertConsistent();
      }
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a subdomain linked past its pending parent to a verified grand-parent blocks the parent", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    // The parent is added while the grand-parent is still pending, so it stays pending.
    const grand = await a.create("grand.example");
    const parent = await created(a, "mid.grand.example");
    ctx.resolver.publish(grand.body.dnsRecords);
    const checked = await a.request("GET", `/api/e2/domains/${grand.body.id}?check=true`);
    assert.equal(checked.body.status, "verified");
    assert.equal((await a.request("GET", `/api/e2/domains/${parent.id}`)).body.status, "pending");
    const leaf = await a.create("leaf.mid.grand.example");
    await t.step("the leaf inherits from the verified grand-parent at once", () => {
      assert.equal(leaf.status, 201);
      assert.equal(leaf.body.status, "verified");
      assert.equal(leaf.body.parentDomain, "grand.example");
    });
    await t.step("the pending parent in between cannot be deleted", async () => {
      const message = assertRefused(await a.request("DELETE", `/api/e2/domains/${parent.id}`));
      assert.match(message, /leaf\.mid\.grand\.example/);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("only names below the domain in the same account count as its subdomains", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const b = await ctx.account();
    const parent = await created(a, "example.com");
    // Neighbours in reversed-name order ("com.example-mail", "com.examplex", "co.example"),
    // and a real subdomain held by another account.
    for (const name of ["example-mail.com", "examplex.com", "example.co", "myexample.com"]) {
      await created(a, name);
    }
    await created(b, "mail.example.com");
    await t.step("the delete succeeds", async () => {
      assert.equal((await a.request("DELETE", `/api/e2/domains/${parent.id}`)).status, 200);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a subdomain of a domain this account verified is still verified at once", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const early = await created(a, "early.late.example");
    const parentId = await verified(ctx, a, "late.example");
    await t.step("a subdomain created after the parent verified inherits", async () => {
      const res = await a.create("www.late.example");
      assert.equal(res.status, 201);
      assert.equal(res.body.status, "verified");
      assert.equal(res.body.parentDomain, "late.example");
    });
    await t.step("both subdomains, linked or not, block the parent's delete", async () => {
      const message = assertRefused(await a.request("DELETE", `/api/e2/domains/${parentId}`));
      assert.match(message, /2 subdomain\(s\)/);
      assert.match(message, /early\.late\.example/);
      assert.match(message, /www\.late\.example/);
      assert.equal((await a.request("DELETE", `/api/e2/domains/${early.id}`)).status, 200);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});

/**
 * A KV that runs `hooks.afterScan` once right after the next range scan finishes and
 * `hooks.beforeCommit` once before the next commit: the two points of a delete where a
 * concurrent create could land. Also records each successful commit's versionstamp.
 */
function interleavingKv(kv: Deno.Kv) {
  const hooks = {
    afterScan: null as null | (() => Promise<unknown>),
    beforeCommit: null as null | (() => Promise<unknown>),
    commits: [] as string[],
  };
  const wrapOp = (op: Deno.AtomicOperation): Deno.AtomicOperation =>
    new Proxy(op, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        if (prop === "commit") {
          return async () => {
            const hook = hooks.beforeCommit;
            hooks.beforeCommit = null;
            if (hook) await hook();
            const res = await value.apply(target, []);
            if (res.ok) hooks.commits.push(res.versionstamp);
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
      if (prop === "list") {
        return async function* (...args: Parameters<Deno.Kv["list"]>) {
          yield* target.list(...args);
          const hook = hooks.afterScan;
          hooks.afterScan = null;
          if (hook) await hook();
        };
      }
      return value.bind(target);
    },
  });
  return { kv: proxy, hooks };
}

Deno.test("a subdomain created while its parent's delete is under way cannot slip in behind it", async (t) => {
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const cases = [
    { point: "afterScan", links: "the parent", grand: false },
    { point: "beforeCommit", links: "the parent", grand: false },
    { point: "afterScan", links: "a verified grand-parent", grand: true },
    { point: "beforeCommit", links: "a verified grand-parent", grand: true },
  ] as const;
  for (const c of cases) {
    const label = c.point === "afterScan" ? "after the delete's scan" : "just before its commit";
    await t.step(`a subdomain linked to ${c.links}, created ${label}: 409`, async () => {
      const base = await Deno.openKv(":memory:");
      try {
        const { kv, hooks } = interleavingKv(base);
        const other = domainStore(base, USER_A, clock);
        const deleter = domainStore(kv, USER_A, clock);
        // With a grand-parent verified after the parent was added, the parent stays pending and
        // the child links past it to the grand-parent.
        const g = c.grand ? await other.create(domainInput("race.example")) : null;
        const parent = await other.create(domainInput("p.race.example"));
        if (g) await other.applyCheck(g.id, ALL_VERIFIED);
        const raced: { child?: DomainRecord } = {};
        hooks[c.point] = async () => {
          raced.child = await other.create(domainInput("c.p.race.example"));
        };
        await assert.rejects(() => deleter.delete(parent.id), (err) => {
          assert.ok(err instanceof DomainHasSubdomainsError);
          assert.deepEqual(err.subdomains, ["c.p.race.example"]);
          return true;
        });
        assert.ok(raced.child, "the hook ran");
        assert.equal(raced.child.parentDomain, c.grand ? "race.example" : "p.race.example");
        assert.notEqual((await base.get(domainKey(USER_A, parent.id))).versionstamp, null);
        assert.deepEqual(await checkDomainInvariants(base, USER_A), []);
      } finally {
        base.close();
      }
    });
  }
});

Deno.test("racing subdomain creates against the parent's delete never leave both done out of order", async (t) => {
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const base = await Deno.openKv(":memory:");
  const outcomes = { refused: 0, deletedFirst: 0 };
  try {
    const { kv, hooks } = interleavingKv(base);
    const creator = domainStore(base, USER_A, clock);
    const deleter = domainStore(kv, USER_A, clock);
    const ROUNDS = 60;
    for (let i = 0; i < ROUNDS; i++) {
      // Odd rounds: the child links past its pending parent to a grand-parent verified after
      // the parent was added, so only the delete's guard can stop it; even rounds: it links to
      // the parent itself. The delay before the delete varies the interleaving.
      const grandName = `g${i}.example`;
      const parentName = i % 2 ? `p.${grandName}` : `p${i}.example`;
      const childName = `c.${parentName}`;
      const parent = await creator.create(domainInput(parentName));
      const grand = i % 2 ? await creator.create(domainInput(grandName)) : null;
      if (grand) await creator.applyCheck(grand.id, ALL_VERIFIED);
      hooks.commits.length = 0;
      // Hold one side back by 0–5 KV round trips (alternating sides) to vary the interleaving.
      const lag = async (n: number) => {
        for (let j = 0; j < n; j++) await base.get(["lag"]);
      };
      const n = Math.floor(i / 2) % 6;
      const [made, del] = await Promise.allSettled([
        (async () => {
          await lag(i % 4 < 2 ? n : 0);
          return await creator.create(domainInput(childName));
        })(),
        (async () => {
          await lag(i % 4 < 2 ? 0 : n);
          return await deleter.delete(parent.id);
        })(),
      ]);
      assert.ok(made.status === "fulfilled");
      const childEntry = await base.get(domainKey(USER_A, made.value.id));
      assert.notEqual(childEntry.versionstamp, null);
      if (del.status === "rejected") {
        assert.ok(del.reason instanceof DomainHasSubdomainsError, String(del.reason));
        assert.deepEqual(del.reason.subdomains, [childName]);
        assert.equal(made.value.parentDomain, grand ? grandName : parentName);
        outcomes.refused++;
        await creator.delete(made.value.id);
        await creator.delete(parent.id);
      } else {
        // Both succeeded: then the delete must have committed before the child existed.
        assert.equal(hooks.commits.length, 1);
        assert.ok(
          hooks.commits[0] < childEntry.versionstamp!,
          `round ${i}: the child was committed before the delete that ignored it`,
        );
        assert.notEqual(made.value.parentDomain, parentName, "linked to a deleted parent");
        outcomes.deletedFirst++;
        await creator.delete(made.value.id);
      }
      if (grand) await creator.delete(grand.id);
      assert.deepEqual(await checkDomainInvariants(base, USER_A), []);
    }
    await t.step(
      `every round ended in a refused delete or a delete ordered first ` +
        `(${outcomes.refused} refused, ${outcomes.deletedFirst} deleted first)`,
      () => assert.equal(outcomes.refused + outcomes.deletedFirst, ROUNDS),
    );
  } finally {
    base.close();
  }
});
