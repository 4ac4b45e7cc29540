/**
 * Issue 23 follow-up: a domain's list item and retrieve answer report its real address counts
 * (`stats.totalEmailAddresses`, `activeEmailAddresses`) and its catch-all endpoint
 * ({ id, isActive, name, type }, as the SDK's DomainRetrieveResponse.CatchAllEndpoint), kept by
 * the address commits (store/email_addresses/store.ts A5) and read without listing addresses.
 */
import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { testConfig } from "../../lib/config.ts";
import { endpointTestApp } from "../endpoints/_fixture.ts";
import { bearer } from "../_helpers.ts";
import { recordingKv } from "../_recording_kv.ts";

Deno.test("domain views: address counts and the catch-all endpoint", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const main = await a.verifiedDomain("example.com");
    const other = await a.verifiedDomain("example.org");
    const hook = (await a.webhook("Hook")).body.id as string;
    const ids: string[] = [];
    for (const local of ["a", "b", "c"]) {
      const res = await a.request("POST", "/api/e2/email-addresses", {
        address: `${local}@example.com`,
        domainId: main,
        ...(local === "c" ? { isActive: false } : {}),
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      ids.push(res.body.id);
    }
    const statsOf = async (id: string) => {
      const list = await a.request("GET", "/api/e2/domains");
      const item = list.body.data.find((d: { id: string }) => d.id === id);
      const one = await a.request("GET", `/api/e2/domains/${id}`);
      assert.equal(one.status, 200);
      assert.equal(item.stats.totalEmailAddresses, one.body.stats.totalEmailAddresses);
      assert.equal(item.stats.activeEmailAddresses, one.body.stats.activeEmailAddresses);
      assert.deepEqual(item.catchAllEndpoint, one.body.catchAllEndpoint);
      return {
        total: item.stats.totalEmailAddresses,
        active: item.stats.activeEmailAddresses,
        catchAll: item.catchAllEndpoint,
      };
    };

    await t.step("list and retrieve count the domain's addresses and the active ones", async () => {
      assert.deepEqual(await statsOf(main), { total: 3, active: 2, catchAll: null });
      assert.deepEqual(await statsOf(other), { total: 0, active: 0, catchAll: null });
    });

    await t.step("(de)activating and deleting move the counts", async () => {
      let res = await a.request("PUT", `/api/e2/email-addresses/${ids[2]}`, { isActive: true });
      assert.equal(res.status, 200);
      res = await a.request("PUT", `/api/e2/email-addresses/${ids[0]}`, { isActive: false });
      assert.equal(res.status, 200);
      // Routing alone changes no count.
      res = await a.request("PUT", `/api/e2/email-addresses/${ids[1]}`, { webhookId: hook });
      assert.equal(res.status, 200);
      assert.deepEqual(await statsOf(main), { total: 3, active: 2, catchAll: null });
      res = await a.request("DELETE", `/api/e2/email-addresses/${ids[1]}`);
      assert.equal(res.status, 200);
      assert.deepEqual(await statsOf(main), { total: 2, active: 1, catchAll: null });
      await ctx.assertConsistent();
    });

    await t.step("list and retrieve describe the catch-all endpoint", async () => {
      const res = await a.request("PATCH", `/api/e2/domains/${other}`, {
        isCatchAllEnabled: true,
        catchAllEndpointId: hook,
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const expected = { id: hook, isActive: true, name: "Hook", type: "webhook" };
      assert.deepEqual(res.body.catchAllEndpoint, expected);
      assert.deepEqual(await statsOf(other), { total: 0, active: 0, catchAll: expected });
      const stats = (await a.request("GET", "/api/e2/domains")).body.data
        .find((d: { id: string }) => d.id === other).stats;
      assert.equal(stats.hasCatchAll, true);
    });

    await t.step("the last address gone, the count entry goes too", async () => {
      for (const id of [ids[0], ids[2]]) {
        assert.equal((await a.request("DELETE", `/api/e2/email-addresses/${id}`)).status, 200);
      }
      assert.deepEqual(await statsOf(main), { total: 0, active: 0, catchAll: null });
      const left = await Array.fromAsync(
        ctx.kv.list({ prefix: [a.userId, "domain_address_count"] }),
      );
      assert.equal(left.length, 0);
      await ctx.assertConsistent();
    });

    await t.step("a list page reads no address listing, only point reads", async () => {
      for (const local of ["x", "y"]) {
        await a.request("POST", "/api/e2/email-addresses", {
          address: `${local}@example.org`,
          domainId: other,
        });
      }
      const rec = recordingKv(ctx.kv);
      const app = createApp({
        kv: rec.kv,
        clock: ctx.clock,
        config: testConfig({ rateLimit: { max: 1_000_000, windowMs: 1000, failOpen: false } }),
        resolver: ctx.dns,
        addressResolver: () => Promise.resolve([]),
      });
      try {
        rec.accesses.length = 0;
        const res = await app.request("/api/e2/domains", bearer(a.key));
        const body = await res.json();
        assert.equal(res.status, 200);
        assert.equal(
          body.data.find((d: { id: string }) => d.id === other).stats.totalEmailAddresses,
          2,
        );
        const families = (op: string) =>
          new Set(rec.accesses.filter((x) => x.op === op).map((x) => String(x.key[1])));
        const listed = families("list");
        assert.ok(!listed.has("domain_addresses"), [...listed].join(", "));
        assert.ok(!listed.has("email_address"), [...listed].join(", "));
        // One count entry per domain of the page, and the catch-all endpoint: point reads.
        const counts = rec.accesses.filter((x) =>
          x.op === "getMany" && x.key[1] === "domain_address_count"
        );
        assert.equal(counts.length, 2);
        assert.ok(families("getMany").has("endpoint"));
      } finally {
        await app.idle();
      }
    });
  } finally {
    await ctx.close();
  }
});
