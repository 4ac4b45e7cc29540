/**
 * Domain ownership by verification (issue 10, item 5): a name is exclusive only once verified.
 * Before, the global claim was made at creation, so anyone could squat any name (and names
 * under it) forever without verifying it.
 */
import assert from "node:assert/strict";
import { runAdmin } from "../../admin/cli.ts";
import { verifyStore } from "../../admin/verify.ts";
import { TAKEN_MESSAGE } from "../../store/domains/store.ts";
import { checkDomain, domainTestApp, publishAndCheck } from "../_domains.ts";

Deno.test("a squatter's pending name does not keep the real owner out, and loses it when the owner verifies", async (t) => {
  const ctx = await domainTestApp();
  try {
    const squatter = await ctx.account();
    const owner = await ctx.account();
    const squat = await squatter.create("owner-brand.com");
    const squatSub = await squatter.create("mail.owner-brand.com");
    assert.equal(squat.status, 201);
    assert.equal(squatSub.status, 201);

    const mine = await owner.create("owner-brand.com");
    await t.step("the owner can add the name another account only holds pending", () => {
      assert.equal(mine.status, 201, JSON.stringify(mine.body));
      assert.equal(mine.body.status, "pending");
    });

    await t.step("the first account to verify it owns it", async () => {
      const verified = await publishAndCheck(ctx, owner, mine.body.id, mine.body.dnsRecords);
      assert.equal(verified.status, "verified");
      await ctx.assertConsistent();
    });

    await t.step("the squatter's copies fail at their next check, saying why", async () => {
      const failed = await checkDomain(squatter, squat.body.id);
      assert.equal(failed.status, "failed");
      const txt = failed.verificationCheck.dnsRecords.find((r: { type: string; name: string }) =>
        r.name.startsWith("_inbound.")
      );
      assert.equal(txt.isVerified, false);
      assert.equal(txt.error, TAKEN_MESSAGE);
      // Even with the squatter's own TXT record published, it cannot verify a taken name.
      const still = await publishAndCheck(ctx, squatter, squat.body.id, squat.body.dnsRecords);
      assert.equal(still.status, "failed");
      const sub = await checkDomain(squatter, squatSub.body.id);
      assert.equal(sub.status, "failed");
      await ctx.assertConsistent();
    });

    await t.step("new copies of the name, or names under it, are refused elsewhere", async () => {
      for (const name of ["owner-brand.com", "mail.owner-brand.com", "a.b.owner-brand.com"]) {
        const res = await squatter.create(name);
        assert.equal(res.status, 409, name);
        assert.equal(res.body.code, "DOMAIN_ALREADY_REGISTERED", name);
      }
      const third = await ctx.account();
      const res = await third.create("mail.owner-brand.com");
      assert.equal(res.body.code, "DOMAIN_ALREADY_REGISTERED");
    });

    await t.step("the owner's own subdomain is verified at once", async () => {
      const sub = await owner.create("mail.owner-brand.com");
      assert.equal(sub.status, 201);
      assert.equal(sub.body.status, "verified");
    });

    await t.step("the failed copies can be deleted", async () => {
      const delSub = await squatter.request("DELETE", `/api/e2/domains/${squatSub.body.id}`);
      assert.equal(delSub.status, 200);
      const del = await squatter.request("DELETE", `/api/e2/domains/${squat.body.id}`);
      assert.equal(del.status, 200);
      await ctx.assertConsistent();
      assert.deepEqual((await verifyStore(ctx.kv)).violations, []);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("admin domain:release makes a verified name available again", async () => {
  const ctx = await domainTestApp();
  try {
    const first = await ctx.account();
    const second = await ctx.account();
    const created = await first.create("released.example.com");
    await publishAndCheck(ctx, first, created.body.id, created.body.dnsRecords);
    assert.equal((await second.create("released.example.com")).status, 409);

    const out: string[] = [];
    const io = { kv: ctx.kv, out: (l: string) => out.push(l), passwordCost: 10, maxApiKeys: 50 };
    await runAdmin(["domain:release", "--name", "Released.Example.com."], io);
    assert.equal(JSON.parse(out[0]).released, "released.example.com");
    await assert.rejects(runAdmin(["domain:release", "--name", "released.example.com"], io));

    const own = await first.request("GET", `/api/e2/domains/${created.body.id}`);
    assert.equal(own.body.status, "failed");
    const taken = await second.create("released.example.com");
    assert.equal(taken.status, 201);
    const won = await publishAndCheck(ctx, second, taken.body.id, taken.body.dnsRecords);
    assert.equal(won.status, "verified");
    assert.equal((await checkDomain(first, created.body.id)).status, "failed");
    await ctx.assertConsistent();
    assert.deepEqual((await verifyStore(ctx.kv)).violations, []);
  } finally {
    await ctx.close();
  }
});
