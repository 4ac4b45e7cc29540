/**
 * Issue 23: MAX_ENDPOINTS_PER_ACCOUNT and MAX_EMAIL_ADDRESSES_PER_ACCOUNT are exact however many
 * creates race (compared by counts, never by time), every change is audited in its commit, and
 * deleting the account removes every key of both resources.
 */
import assert from "node:assert/strict";
import { deleteAccount } from "../../store/accounts/deletion.ts";
import type { AuditEvent } from "../../store/audit_log/events.ts";
import { accountPrefix, auditPrefix, endpointRefKey } from "../../store/keys.ts";
import { verifyStore } from "../../admin/verify.ts";
import { endpointTestApp } from "./_fixture.ts";

Deno.test("quotas are exact under 20 concurrent creates", async (t) => {
  const ctx = await endpointTestApp({ maxEndpointsPerAccount: 5, maxEmailAddressesPerAccount: 5 });
  try {
    const a = await ctx.account();
    const domainId = await a.verifiedDomain("example.com");
    const email = (i: number) => ({
      name: `E${i}`,
      type: "email",
      config: { forwardTo: `t${i}@example.net` },
    });
    for (let i = 0; i < 3; i++) await a.request("POST", "/api/e2/endpoints", email(i));

    await t.step("endpoints: 3 held, max 5, 20 at once: exactly 2 created", async () => {
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => a.request("POST", "/api/e2/endpoints", email(10 + i))),
      );
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 201).length, 2, String(statuses));
      assert.equal(statuses.filter((s) => s === 403).length, 18, String(statuses));
      const refused = results.find((r) => r.status === 403)!;
      assert.equal(refused.body.code, "ENDPOINT_LIMIT_REACHED");
      assert.equal(refused.body.max, 5);
      const list = await a.request("GET", "/api/e2/endpoints");
      assert.equal(list.body.pagination.total, 5);
    });

    for (let i = 0; i < 3; i++) {
      await a.request("POST", "/api/e2/email-addresses", {
        address: `a${i}@example.com`,
        domainId,
      });
    }

    await t.step("addresses: 3 held, max 5, 20 at once: exactly 2 created", async () => {
      const results = await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) =>
            a.request("POST", "/api/e2/email-addresses", {
              address: `b${i}@example.com`,
              domainId,
            }),
        ),
      );
      const statuses = results.map((r) => r.status);
      assert.equal(statuses.filter((s) => s === 201).length, 2, String(statuses));
      assert.equal(statuses.filter((s) => s === 403).length, 18, String(statuses));
      assert.equal(results.find((r) => r.status === 403)!.body.code, "EMAIL_ADDRESS_LIMIT_REACHED");
    });

    await t.step("a delete frees a place", async () => {
      const list = await a.request("GET", "/api/e2/endpoints");
      await a.request("DELETE", `/api/e2/endpoints/${list.body.data[0].id}`);
      assert.equal((await a.request("POST", "/api/e2/endpoints", email(99))).status, 201);
      assert.equal((await a.request("POST", "/api/e2/endpoints", email(98))).status, 403);
      await ctx.assertConsistent();
    });

    await t.step("every change was audited in its commit", async () => {
      const events = await Array.fromAsync(
        ctx.kv.list<AuditEvent>({ prefix: auditPrefix(a.userId) }),
      );
      const count = (action: string) => events.filter((e) => e.value.action === action).length;
      assert.equal(count("endpoint.created"), 3 + 2 + 1);
      assert.equal(count("endpoint.deleted"), 1);
      assert.equal(count("email_address.created"), 3 + 2);
    });

    await t.step("admin verify finds the store consistent", async () => {
      const report = await verifyStore(ctx.kv);
      assert.deepEqual(report.violations, []);
      assert.equal(report.unrecognised.count, 0, JSON.stringify(report.unrecognised));
    });

    await t.step("account deletion removes every key of both resources", async () => {
      const hook = await a.request("PATCH", `/api/e2/domains/${domainId}`, {
        isCatchAllEnabled: true,
        catchAllEndpointId: (await a.request("GET", "/api/e2/endpoints")).body.data[0].id,
      });
      assert.equal(hook.status, 200);
      await deleteAccount(ctx.kv, a.userId, { nowMs: ctx.clock() });
      const left = await Array.fromAsync(ctx.kv.list({ prefix: accountPrefix(a.userId) }));
      assert.deepEqual(left.map((e) => e.key), []);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("admin verify reports a broken reference between an address and its endpoint", async () => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const domainId = await a.verifiedDomain("example.com");
    const hook = (await a.webhook()).body.id as string;
    const addr = await a.request("POST", "/api/e2/email-addresses", {
      address: "x@example.com",
      domainId,
      endpointId: hook,
    });
    assert.equal((await verifyStore(ctx.kv)).ok, true);
    await ctx.kv.delete(endpointRefKey(a.userId, hook, "address", addr.body.id));
    const report = await verifyStore(ctx.kv);
    assert.equal(report.ok, false);
    assert.deepEqual(report.violations.map((v) => v.kind), ["endpoint_invariant"]);
    assert.match(report.violations[0].detail, /no ref entry/);
  } finally {
    await ctx.close();
  }
});

Deno.test("deleting an endpoint while addresses are routed to it leaves no dangling route", async () => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const domainId = await a.verifiedDomain("example.com");
    for (let round = 0; round < 3; round++) {
      const hook = (await a.webhook(`Hook ${round}`)).body.id as string;
      const creates = Array.from(
        { length: 10 },
        (_, i) =>
          a.request("POST", "/api/e2/email-addresses", {
            address: `r${round}-${i}@example.com`,
            domainId,
            endpointId: hook,
          }),
      );
      const [deleted, ...created] = await Promise.all([
        a.request("DELETE", `/api/e2/endpoints/${hook}`),
        ...creates,
      ]);
      assert.equal(deleted.status, 200);
      // Each create either routed to the endpoint before the delete (then detached by it) or
      // found it gone (400 naming endpointId): never an address routed to nothing.
      const made = created.filter((r) => r.status === 201).length;
      const refused = created.filter((r) => r.status === 400 && r.body.field === "endpointId");
      assert.equal(made + refused.length, 10);
      assert.equal(deleted.body.cleanup.emailAddressesUpdated, made);
      await ctx.assertConsistent();
    }
  } finally {
    await ctx.close();
  }
});
