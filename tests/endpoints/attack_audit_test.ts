/**
 * Engineer X1's attack on issue 23's audit trail: every change to where mail goes is an audit
 * event in the commit of the change (issue 23: "audit events in the commit of the change").
 */
import assert from "node:assert/strict";
import { bearer } from "../_helpers.ts";
import { endpointTestApp } from "./_fixture.ts";

Deno.test("attack: pointing a domain's catch-all at an endpoint leaves an audit event", async () => {
  // DEFECT: store/domains/store.ts updateCatchAll commits the domain's new catch-all (and the
  // endpoint's ref entry) with no audit event: someone with a key can send all of a domain's
  // unrouted mail to their webhook, and turn it back, without a trace in the security log, while
  // every address re-route is an `email_address.updated` event. Suggested fix: a
  // `domain.updated` event (details: isCatchAllEnabled, catchAllEndpointId) in that commit.
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const dom = await a.verifiedDomain("audited.example");
    const hook = (await a.webhook("Interceptor")).body.id as string;
    const key = await ctx.keyWith(a.userId, { scopes: ["audit:read"] }, "auditor");
    const events = async () => {
      const res = await ctx.app.request("/api/e2/audit-log?limit=100", bearer(key));
      assert.equal(res.status, 200);
      return (await res.json()).data as { action: string; target: { type: string; id: string } }[];
    };
    const before = (await events()).filter((e) => e.target.id === dom).length;
    for (
      const body of [
        { isCatchAllEnabled: true, catchAllEndpointId: hook },
        { isCatchAllEnabled: false, catchAllEndpointId: null },
      ]
    ) {
      const r = await a.request("PATCH", `/api/e2/domains/${dom}`, body);
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const after = (await events()).filter((e) => e.target.id === dom);
    assert.equal(
      after.length - before,
      2,
      `one event per catch-all change: ${JSON.stringify(after.map((e) => e.action))}`,
    );
  } finally {
    await ctx.close();
  }
});
