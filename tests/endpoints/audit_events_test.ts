/**
 * Issue 23's audit events (engineer G2, from X1's findings): a catch-all change is a
 * `domain.updated` event in its commit; an `endpoint.deleted` event lists the domains its counts
 * cover (`details.domainIds`), and a key restricted to some domains sees those counts only when
 * it sees every one of them (routes/audit_log/operations.ts eventForDomains), in every format.
 */
import assert from "node:assert/strict";
import { bearer } from "../_helpers.ts";
import { type Client, type EndpointTestApp, endpointTestApp } from "./_fixture.ts";

type Event = {
  action: string;
  target: { type: string; id: string };
  details?: Record<string, unknown>;
};

async function auditor(ctx: EndpointTestApp, a: Client, domainIds?: string[]) {
  const grant = { scopes: ["audit:read"], ...(domainIds ? { domainIds } : {}) };
  const key = await ctx.keyWith(a.userId, grant, "auditor " + crypto.randomUUID());
  return {
    async events(query = ""): Promise<Event[]> {
      const res = await ctx.app.request(`/api/e2/audit-log?limit=100${query}`, bearer(key));
      assert.equal(res.status, 200);
      return (await res.json()).data;
    },
    async text(format: "jsonl" | "csv"): Promise<string> {
      const res = await ctx.app.request(`/api/e2/audit-log?format=${format}`, bearer(key));
      assert.equal(res.status, 200);
      return await res.text();
    },
  };
}

Deno.test("a catch-all change is a domain.updated event with its settings", async () => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const seen = await a.verifiedDomain("seen.example");
    const hidden = await a.verifiedDomain("hidden.example");
    const hook = (await a.webhook("Hook")).body.id as string;
    for (const d of [seen, hidden]) {
      for (
        const body of [
          { isCatchAllEnabled: true, catchAllEndpointId: hook },
          { isCatchAllEnabled: false, catchAllEndpointId: null },
        ]
      ) {
        assert.equal((await a.request("PATCH", `/api/e2/domains/${d}`, body)).status, 200);
      }
    }
    const all = (await (await auditor(ctx, a)).events("&action=domain.updated"))
      .filter((e) => e.target.id === seen);
    // Events of one millisecond are in no particular order: compared as a set.
    assert.deepEqual(all.map((e) => JSON.stringify([e.target.type, e.details])).sort(), [
      JSON.stringify(["domain", { isCatchAllEnabled: false, catchAllEndpointId: null }]),
      JSON.stringify(["domain", { isCatchAllEnabled: true, catchAllEndpointId: hook }]),
    ]);
    const restricted = await (await auditor(ctx, a, [seen])).events("&action=domain.updated");
    assert.equal(restricted.length, 2);
    assert.ok(restricted.every((e) => e.target.id === seen), "the hidden domain's are not shown");
    await ctx.assertConsistent();
  } finally {
    await ctx.close();
  }
});

Deno.test("endpoint.deleted: counts shown only to whom sees every domain they cover", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const seen = await a.verifiedDomain("seen.example");
    const hidden = await a.verifiedDomain("hidden.example");
    const route = async (address: string, domainId: string, endpointId: string) => {
      const r = await a.request("POST", "/api/e2/email-addresses", {
        address,
        domainId,
        endpointId,
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    };
    // `mixed` is used by both domains; `own` only by seen.example.
    const mixed = (await a.webhook("Mixed")).body.id as string;
    const own = (await a.webhook("Own")).body.id as string;
    await route("a@seen.example", seen, mixed);
    await route("b@hidden.example", hidden, mixed);
    await route("c@hidden.example", hidden, mixed);
    await route("d@seen.example", seen, own);
    const patch = await a.request("PATCH", `/api/e2/domains/${seen}`, {
      isCatchAllEnabled: true,
      catchAllEndpointId: own,
    });
    assert.equal(patch.status, 200);
    for (const id of [mixed, own]) {
      assert.equal((await a.request("DELETE", `/api/e2/endpoints/${id}`)).status, 200);
    }
    const deleted = (events: Event[], id: string) =>
      events.find((e) => e.action === "endpoint.deleted" && e.target.id === id)?.details;

    await t.step("a key that sees everything: every count, every domain", async () => {
      const events = await (await auditor(ctx, a)).events();
      assert.deepEqual(deleted(events, mixed), {
        emailAddressesUpdated: 3,
        domainsUpdated: 0,
        domainIds: [hidden, seen].sort(),
      });
      assert.deepEqual(deleted(events, own), {
        emailAddressesUpdated: 1,
        domainsUpdated: 1,
        domainIds: [seen],
      });
    });

    await t.step("restricted: its own endpoint's counts; the mixed one's left out", async () => {
      const log = await auditor(ctx, a, [seen]);
      const events = await log.events();
      assert.deepEqual(deleted(events, own), {
        emailAddressesUpdated: 1,
        domainsUpdated: 1,
        domainIds: [seen],
      });
      assert.deepEqual(deleted(events, mixed), { domainIds: [seen] });
      for (const format of ["jsonl", "csv"] as const) {
        const text = await log.text(format);
        assert.ok(text.includes(mixed), `${format}: the event is there`);
        assert.ok(!text.includes(hidden), `${format}: no hidden domain id`);
        assert.ok(!text.includes("hidden.example"), `${format}: no hidden name`);
        assert.ok(!/emailAddressesUpdated[^,]*3/.test(text), `${format}: no hidden count`);
      }
    });

    await t.step("restricted to the hidden one only: no count, none of its domains", async () => {
      const events = await (await auditor(ctx, a, [hidden])).events();
      assert.deepEqual(deleted(events, own), {});
      assert.deepEqual(deleted(events, mixed), { domainIds: [hidden] });
    });
  } finally {
    await ctx.close();
  }
});
