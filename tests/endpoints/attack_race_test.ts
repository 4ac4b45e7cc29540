/**
 * Engineer X1's attack on issue 23's consistency: an endpoint delete racing re-routes, address
 * deletes, catch-all changes and a domain delete; afterwards `admin verify`'s invariants hold
 * (no dangling route, no stale ref entry, exact counters).
 */
import assert from "node:assert/strict";
import { endpointTestApp } from "./_fixture.ts";

Deno.test("attack (defended): an endpoint delete racing every writer leaves no dangling route", async () => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const dom = await a.verifiedDomain("race.example");
    const spare = await a.verifiedDomain("spare.example");
    for (let round = 0; round < 3; round++) {
      const e1 = (await a.webhook(`E1-${round}`)).body.id as string;
      const e2 = (await a.webhook(`E2-${round}`)).body.id as string;
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const r = await a.request("POST", "/api/e2/email-addresses", {
          address: `r${round}-${i}@race.example`,
          domainId: dom,
          endpointId: e1,
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
        ids.push(r.body.id);
      }
      const results = await Promise.all([
        a.request("DELETE", `/api/e2/endpoints/${e1}`),
        ...ids.slice(0, 6).map((id, i) =>
          a.request(
            "PUT",
            `/api/e2/email-addresses/${id}`,
            i % 2 ? { webhookId: e2 } : { endpointId: e2 },
          )
        ),
        ...ids.slice(6, 9).map((id) => a.request("DELETE", `/api/e2/email-addresses/${id}`)),
        ...ids.slice(9).map((id) =>
          a.request("PUT", `/api/e2/email-addresses/${id}`, { isActive: false })
        ),
        a.request("PATCH", `/api/e2/domains/${dom}`, {
          isCatchAllEnabled: true,
          catchAllEndpointId: e1,
        }),
        a.request("PATCH", `/api/e2/domains/${spare}`, {
          isCatchAllEnabled: true,
          catchAllEndpointId: e1,
        }),
        a.request("DELETE", `/api/e2/domains/${spare}`),
        a.request(
          "POST",
          "/api/e2/email-addresses",
          { address: `late${round}@race.example`, domainId: dom, endpointId: e1 },
        ),
      ]);
      for (const r of results) assert.ok(r.status < 500, JSON.stringify(r.body));
      await ctx.assertConsistent();
      const e1Now = await a.request("GET", `/api/e2/endpoints/${e1}`);
      if (e1Now.status === 404) {
        const list = await a.request("GET", "/api/e2/email-addresses?limit=100");
        for (const x of list.body.data) {
          assert.notEqual(x.endpointId, e1, x.address);
          assert.notEqual(x.webhookId, e1, x.address);
        }
        const d = await a.request("GET", `/api/e2/domains/${dom}`);
        assert.notEqual(d.body.catchAllEndpointId, e1);
      }
    }
  } finally {
    await ctx.close();
  }
});
