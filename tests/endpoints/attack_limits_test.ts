/**
 * Engineer X1's attack on issue 23's commit sizes: an endpoint delete at its documented bound
 * (400 addresses, 8 catch-all domains) must fit in one denokv commit (1,000 mutations, 10
 * checks, 80 KiB of keys), and one past the bound is a 409, never a 500; the long local parts
 * an attacker controls make the keys as large as they can be.
 */
import assert from "node:assert/strict";
import { MAX_DETACHED_ADDRESSES, MAX_DETACHED_DOMAINS } from "../../store/endpoints/store.ts";
import { endpointTestApp } from "./_fixture.ts";

Deno.test("attack (defended): an endpoint delete at and past its detach bound", async (t) => {
  const ctx = await endpointTestApp({ maxEmailAddressesPerAccount: 1000 });
  try {
    const a = await ctx.account();
    const hook = (await a.webhook("Hook")).body.id as string;
    const domains: string[] = [];
    for (let i = 0; i < MAX_DETACHED_DOMAINS; i++) {
      const d = await a.verifiedDomain(`d${i}.${"l".repeat(40)}.example`);
      domains.push(d);
      const r = await a.request("PATCH", `/api/e2/domains/${d}`, {
        isCatchAllEnabled: true,
        catchAllEndpointId: hook,
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const local = (i: number) => `${"x".repeat(60)}${String(i).padStart(4, "0")}`;
    const made = async (from: number, to: number) => {
      for (let i = from; i < to; i += 20) {
        const batch = [];
        for (let j = i; j < Math.min(to, i + 20); j++) {
          batch.push(a.request("POST", "/api/e2/email-addresses", {
            address: `${local(j)}@d${j % 8}.${"l".repeat(40)}.example`,
            domainId: domains[j % 8],
            endpointId: hook,
          }));
        }
        for (const r of await Promise.all(batch)) {
          assert.equal(r.status, 201, JSON.stringify(r.body));
        }
      }
    };
    await made(0, MAX_DETACHED_ADDRESSES + 1);

    await t.step("one past the bound: 409 ENDPOINT_IN_USE, nothing changed", async () => {
      const r = await a.request("DELETE", `/api/e2/endpoints/${hook}`);
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.code, "ENDPOINT_IN_USE");
      assert.equal((await a.request("GET", `/api/e2/endpoints/${hook}`)).status, 200);
    });

    await t.step("at the bound: one commit detaches all, never a 500", async () => {
      const list = await a.request("GET", "/api/e2/email-addresses?limit=1");
      const one = list.body.data[0].id as string;
      assert.equal((await a.request("DELETE", `/api/e2/email-addresses/${one}`)).status, 200);
      const r = await a.request("DELETE", `/api/e2/endpoints/${hook}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.cleanup.emailAddressesUpdated, MAX_DETACHED_ADDRESSES);
      assert.equal(r.body.cleanup.domainsUpdated, MAX_DETACHED_DOMAINS);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("attack (defended): deleting a domain that has addresses and a catch-all", async () => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const dom = await a.verifiedDomain("gone.example");
    const hook = (await a.webhook("Hook")).body.id as string;
    const addr = await a.request("POST", "/api/e2/email-addresses", {
      address: "x@gone.example",
      domainId: dom,
      endpointId: hook,
    });
    assert.equal(addr.status, 201);
    await a.request("PATCH", `/api/e2/domains/${dom}`, {
      isCatchAllEnabled: true,
      catchAllEndpointId: hook,
    });
    const refused = await a.request("DELETE", `/api/e2/domains/${dom}`);
    assert.ok(refused.status >= 400 && refused.status < 500, JSON.stringify(refused.body));
    assert.equal(typeof refused.body.message, "string");
    assert.equal(
      (await a.request("DELETE", `/api/e2/email-addresses/${addr.body.id}`)).status,
      200,
    );
    assert.equal((await a.request("DELETE", `/api/e2/domains/${dom}`)).status, 200);
    await ctx.assertConsistent();
    const ep = await a.request("GET", `/api/e2/endpoints/${hook}`);
    assert.deepEqual(ep.body.catchAllDomains, []);
    assert.deepEqual(ep.body.associatedEmails, []);
  } finally {
    await ctx.close();
  }
});
