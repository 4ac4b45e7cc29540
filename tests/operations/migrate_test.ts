/**
 * A store written before domain counters became Deno.KvU64 and name pointers became the verified
 * owner's claim (issues 9 and 10) is brought up to date by `migrateStore` (`admin migrate`).
 */
import assert from "node:assert/strict";
import { runAdmin } from "../../admin/cli.ts";
import { verifyStore } from "../../admin/verify.ts";
import { domainCountKey, domainNameIndexKey } from "../../store/keys.ts";
import { migrateStore } from "../../store/migrate.ts";
import { domainTestApp } from "../_domains.ts";

Deno.test("migrate turns old number counters into KvU64 and drops pending records' name pointers, once", async () => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const b = await ctx.account();
    const created = await a.create("legacy.example.com");
    assert.equal(created.status, 201);
    // What the previous version left: a number counter and a claim made at creation.
    await ctx.kv.set(domainCountKey(a.userId, "all"), 1);
    await ctx.kv.set(domainCountKey(a.userId, "status:pending"), 1);
    await ctx.kv.set(domainNameIndexKey("legacy.example.com"), {
      userId: a.userId,
      domainId: created.body.id,
    });
    const before = await verifyStore(ctx.kv);
    assert.ok(before.violations.some((v) => v.kind === "wrong_count"), JSON.stringify(before));
    assert.ok(before.violations.some((v) => v.kind === "index_mismatch"));
    // The old state breaks a create (a `sum` on a number) without writing any of it (the plan's
    // sums go first: store/domains/plan.ts applyPlan), and keeps the name from others.
    const dump = async () => {
      const keys: string[] = [];
      for await (const e of ctx.kv.list({ prefix: [a.userId] })) keys.push(JSON.stringify(e.key));
      return keys;
    };
    const keysBefore = await dump();
    assert.equal((await a.create("other.example.com")).status, 500);
    assert.deepEqual(await dump(), keysBefore);
    assert.equal((await b.create("legacy.example.com")).status, 409);

    const report = await migrateStore(ctx.kv);
    assert.equal(report.counters, 2);
    assert.equal(report.pointers, 1);
    assert.deepEqual((await verifyStore(ctx.kv)).violations, []);
    const again = await migrateStore(ctx.kv);
    assert.equal(again.counters + again.pointers, 0, "a second run changes nothing");

    assert.equal((await a.create("other.example.com")).status, 201);
    assert.equal((await b.create("legacy.example.com")).status, 201);
    await ctx.assertConsistent();
  } finally {
    await ctx.close();
  }
});

Deno.test("admin migrate runs the migration and prints what it changed", async () => {
  await using kv = await Deno.openKv(":memory:");
  await kv.set(["usr_x", "count", "domains", "all"], 0);
  const out: string[] = [];
  await runAdmin(["migrate"], { kv, out: (l) => out.push(l), passwordCost: 10, maxApiKeys: 50 });
  assert.equal(JSON.parse(out[0]).counters, 1);
  assert.ok((await kv.get(["usr_x", "count", "domains", "all"])).value instanceof Deno.KvU64);
});
