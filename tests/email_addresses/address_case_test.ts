/**
 * Issue 23 (engineer G2, from X1's findings): an account holds an address once in any letter
 * case. `Boss@d` and `boss@d` are one address to mail systems, so the second create is 409
 * EMAIL_ADDRESS_EXISTS; the record keeps the address as given; the uniqueness entry is keyed on
 * it lower-cased (store/keys.ts emailAddressByNameKey), and `admin verify` checks that key.
 */
import assert from "node:assert/strict";
import { verifyStore } from "../../admin/verify.ts";
import { emailAddressByNameKey, emailAddressByNamePrefix } from "../../store/keys.ts";
import { endpointTestApp } from "../endpoints/_fixture.ts";

Deno.test("e-mail address uniqueness ignores letter case", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const domainId = await a.verifiedDomain("case.example");
    const create = (address: string) =>
      a.request("POST", "/api/e2/email-addresses", { address, domainId });
    let bossId = "";

    await t.step("the first spelling is kept as given", async () => {
      const res = await create("Boss@case.example");
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.address, "Boss@case.example");
      bossId = res.body.id;
    });

    await t.step("every other case of it is the same address: 409", async () => {
      for (const address of ["boss@case.example", "BOSS@case.example", "bOsS@CASE.example"]) {
        const res = await create(address);
        assert.equal(res.status, 409, `${address}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.code, "EMAIL_ADDRESS_EXISTS", address);
      }
      const list = await a.request("GET", `/api/e2/email-addresses?domainId=${domainId}`);
      assert.deepEqual(list.body.data.map((x: { address: string }) => x.address), [
        "Boss@case.example",
      ]);
    });

    await t.step("one entry, keyed on the lower-cased address; admin verify clean", async () => {
      const keys = await Array.fromAsync(
        ctx.kv.list({ prefix: emailAddressByNamePrefix(a.userId) }),
        (e) => e.key,
      );
      assert.deepEqual(keys, [emailAddressByNameKey(a.userId, "boss@case.example")]);
      assert.equal(keys[0][2], "boss@case.example");
      await ctx.assertConsistent();
      const report = await verifyStore(ctx.kv);
      assert.deepEqual(report.violations, []);
    });

    await t.step("after a delete, another case of it may be created", async () => {
      assert.equal((await a.request("DELETE", `/api/e2/email-addresses/${bossId}`)).status, 200);
      assert.deepEqual(
        await Array.fromAsync(ctx.kv.list({ prefix: emailAddressByNamePrefix(a.userId) })),
        [],
        "the delete removed the lower-cased entry",
      );
      const res = await create("boss@case.example");
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.address, "boss@case.example");
      assert.deepEqual((await verifyStore(ctx.kv)).violations, []);
    });

    await t.step("admin verify flags a record without its lower-cased entry", async () => {
      // A store written before this rule (an entry keyed on the address as given) is reported.
      const other = await create("Mixed@case.example");
      assert.equal(other.status, 201);
      await ctx.kv.delete(emailAddressByNameKey(a.userId, "Mixed@case.example"));
      await ctx.kv.set([a.userId, "email_address_by_name", "Mixed@case.example"], other.body.id);
      const report = await verifyStore(ctx.kv);
      const details = report.violations.map((v) => v.detail);
      assert.ok(details.some((d) => d.includes(`${other.body.id}: no name entry`)), details.join());
      assert.ok(details.some((d) => d.includes("Mixed@case.example: dangling")), details.join());
    });
  } finally {
    await ctx.close();
  }
});
