/**
 * Attacks on domain ownership by verification (issue 10, item 5), as another account would try.
 */
import assert from "node:assert/strict";
import { runAdmin } from "../../admin/cli.ts";
import { checkDomain, domainTestApp, publishAndCheck } from "../_domains.ts";

Deno.test("releasing a name also releases the subdomains that were verified only by inheriting it", async (t) => {
  const ctx = await domainTestApp();
  try {
    const former = await ctx.account();
    const owner = await ctx.account();
    const parent = await former.create("handover.example.com");
    assert.equal(parent.status, 201);
    const verified = await publishAndCheck(ctx, former, parent.body.id, parent.body.dnsRecords);
    assert.equal(verified.status, "verified");
    // Verified at creation, by inheritance from the verified parent: no TXT record of its own.
    const child = await former.create("mail.handover.example.com");
    assert.equal(child.status, 201);
    assert.equal(child.body.status, "verified");
    ctx.resolver.txtAnswers.clear();

    const out: string[] = [];
    const io = { kv: ctx.kv, out: (l: string) => out.push(l), passwordCost: 10, maxApiKeys: 50 };
    await runAdmin(["domain:release", "--name", "handover.example.com"], io);

    await t.step("the former owner's inherited subdomain no longer holds its name", async () => {
      const again = await checkDomain(former, child.body.id);
      assert.notEqual(again.status, "verified", "still verified by inheriting a released parent");
    });

    await t.step(
      "the new owner of the name can add the subdomain after verifying the name",
      async () => {
        const mine = await owner.create("handover.example.com");
        assert.equal(mine.status, 201);
        const ok = await publishAndCheck(ctx, owner, mine.body.id, mine.body.dnsRecords);
        assert.equal(ok.status, "verified");
        const sub = await owner.create("mail.handover.example.com");
        assert.equal(sub.status, 201, JSON.stringify(sub.body));
      },
    );
  } finally {
    await ctx.close();
  }
});
