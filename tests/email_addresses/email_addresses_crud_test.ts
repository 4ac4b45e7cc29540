/**
 * Issue 23: `/api/e2/email-addresses` create, list, retrieve, update, delete in the SDK's shapes,
 * the address rules (normalised, on the named domain, unique per account), routing, the
 * receiving flag and warning, and the deletion rules between domains, endpoints and addresses.
 */
import assert from "node:assert/strict";
import { endpointTestApp } from "../endpoints/_fixture.ts";

Deno.test("email addresses: create, list, retrieve, update, delete", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const verified = await a.verifiedDomain("example.com");
    const pending = await a.pendingDomain("pending.example.org");
    const hook = (await a.webhook("Hook")).body.id as string;
    const mail = (await a.request("POST", "/api/e2/endpoints", {
      name: "Forward",
      type: "email",
      config: { forwardTo: "x@example.net" },
    })).body.id as string;
    let supportId = "";

    await t.step("create on a verified domain, routed to an endpoint", async () => {
      const res = await a.request("POST", "/api/e2/email-addresses", {
        address: "Support@EXAMPLE.com",
        domainId: verified,
        endpointId: mail,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      supportId = res.body.id;
      assert.equal(res.body.address, "Support@example.com");
      assert.deepEqual(res.body.domain, { id: verified, name: "example.com", status: "verified" });
      assert.deepEqual(res.body.routing, {
        id: mail,
        isActive: true,
        name: "Forward",
        type: "endpoint",
      });
      assert.equal(res.body.isReceiptRuleConfigured, true);
      assert.equal(res.body.receiptRuleName, null);
      assert.equal(res.body.webhookId, null);
      assert.equal(res.body.warning, undefined);
    });

    await t.step("create on a pending domain: a warning, not receiving", async () => {
      const res = await a.request("POST", "/api/e2/email-addresses", {
        address: "hi@pending.example.org",
        domainId: pending,
        webhookId: hook,
      });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.isReceiptRuleConfigured, false);
      assert.match(res.body.warning, /not verified/);
      assert.equal(res.body.routing.type, "webhook");
    });

    await t.step("the address rules: 400 naming address, 409 for a duplicate", async () => {
      const bad = [
        "no-at-sign",
        "@example.com",
        "a..b@example.com",
        `${"x".repeat(65)}@example.com`,
        "a b@example.com",
        "someone@other.example.com",
      ];
      for (const address of bad) {
        const res = await a.request("POST", "/api/e2/email-addresses", {
          address,
          domainId: verified,
        });
        assert.equal(res.status, 400, address);
        assert.equal(res.body.field, "address", address);
      }
      const dup = await a.request("POST", "/api/e2/email-addresses", {
        address: "Support@example.COM",
        domainId: verified,
      });
      assert.equal(dup.status, 409);
      assert.equal(dup.body.code, "EMAIL_ADDRESS_EXISTS");
      const both = await a.request("POST", "/api/e2/email-addresses", {
        address: "both@example.com",
        domainId: verified,
        endpointId: mail,
        webhookId: hook,
      });
      assert.equal(both.status, 400);
      assert.equal(both.body.field, "webhookId");
      const notHook = await a.request("POST", "/api/e2/email-addresses", {
        address: "nothook@example.com",
        domainId: verified,
        webhookId: mail,
      });
      assert.equal(notHook.status, 400);
      assert.equal(notHook.body.field, "webhookId");
    });

    await t.step("list: filters and totals", async () => {
      const all = await a.request("GET", "/api/e2/email-addresses");
      assert.equal(all.body.pagination.total, 2);
      const ofDomain = await a.request("GET", `/api/e2/email-addresses?domainId=${pending}`);
      assert.deepEqual(ofDomain.body.data.map((x: { address: string }) => x.address), [
        "hi@pending.example.org",
      ]);
      const receiving = await a.request(
        "GET",
        "/api/e2/email-addresses?isReceiptRuleConfigured=true",
      );
      assert.deepEqual(receiving.body.data.map((x: { id: string }) => x.id), [supportId]);
      const page = await a.request("GET", "/api/e2/email-addresses?limit=1");
      assert.deepEqual(page.body.pagination, { limit: 1, offset: 0, total: 2, hasMore: true });
    });

    await t.step("update: re-route, store-only, inactive", async () => {
      const toHook = await a.request("PUT", `/api/e2/email-addresses/${supportId}`, {
        webhookId: hook,
      });
      assert.equal(toHook.status, 200, JSON.stringify(toHook.body));
      assert.equal(toHook.body.endpointId, null);
      assert.equal(toHook.body.webhookId, hook);
      const none = await a.request("PUT", `/api/e2/email-addresses/${supportId}`, {
        webhookId: null,
        isActive: false,
      });
      assert.equal(none.body.routing.type, "none");
      assert.equal(none.body.isActive, false);
      assert.equal(none.body.isReceiptRuleConfigured, false);
      const back = await a.request("PUT", `/api/e2/email-addresses/${supportId}`, {
        endpointId: mail,
        isActive: true,
      });
      assert.equal(back.body.routing.id, mail);
      const got = await a.request("GET", `/api/e2/email-addresses/${supportId}`);
      assert.equal(got.body.endpointId, mail);
      const endpoint = await a.request("GET", `/api/e2/endpoints/${mail}`);
      assert.deepEqual(endpoint.body.associatedEmails.map((x: { id: string }) => x.id), [
        supportId,
      ]);
    });

    await t.step("delete: the SDK's cleanup; then 404", async () => {
      const res = await a.request("DELETE", `/api/e2/email-addresses/${supportId}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body.cleanup, {
        domain: "example.com",
        emailAddress: "Support@example.com",
        sesRuleUpdated: false,
      });
      assert.equal((await a.request("GET", `/api/e2/email-addresses/${supportId}`)).status, 404);
      const endpoint = await a.request("GET", `/api/e2/endpoints/${mail}`);
      assert.deepEqual(endpoint.body.associatedEmails, []);
    });
    await ctx.assertConsistent();
  } finally {
    await ctx.close();
  }
});

Deno.test("deletion rules between domains, endpoints and addresses", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const domainId = await a.verifiedDomain("example.com");
    const hook = (await a.webhook("Hook")).body.id as string;
    const ids: string[] = [];
    for (const local of ["one", "two", "three"]) {
      const res = await a.request("POST", "/api/e2/email-addresses", {
        address: `${local}@example.com`,
        domainId,
        endpointId: hook,
      });
      ids.push(res.body.id);
    }
    const catchAll = await a.request("PATCH", `/api/e2/domains/${domainId}`, {
      isCatchAllEnabled: true,
      catchAllEndpointId: hook,
    });
    assert.equal(catchAll.status, 200, JSON.stringify(catchAll.body));
    assert.deepEqual(catchAll.body.catchAllEndpoint, {
      id: hook,
      isActive: true,
      name: "Hook",
      type: "webhook",
    });

    await t.step("the endpoint lists what uses it", async () => {
      const res = await a.request("GET", `/api/e2/endpoints/${hook}`);
      assert.equal(res.body.associatedEmails.length, 3);
      assert.deepEqual(res.body.catchAllDomains, [
        { id: domainId, domain: "example.com", status: "verified" },
      ]);
    });

    await t.step("a domain with addresses: 409 naming the count, nothing deleted", async () => {
      const res = await a.request("DELETE", `/api/e2/domains/${domainId}`);
      assert.equal(res.status, 409);
      assert.equal(res.body.code, "DOMAIN_HAS_EMAIL_ADDRESSES");
      assert.match(res.body.message, /3 email address/);
      assert.equal((await a.request("GET", `/api/e2/domains/${domainId}`)).status, 200);
    });

    await t.step("deleting the endpoint detaches addresses and catch-all in one go", async () => {
      const res = await a.request("DELETE", `/api/e2/endpoints/${hook}`);
      assert.equal(res.status, 200);
      assert.equal(res.body.cleanup.emailAddressesUpdated, 3);
      assert.deepEqual(res.body.cleanup.emailAddresses.sort(), [
        "one@example.com",
        "three@example.com",
        "two@example.com",
      ]);
      assert.deepEqual(res.body.cleanup.domains, ["example.com"]);
      assert.equal(res.body.cleanup.domainsUpdated, 1);
      for (const id of ids) {
        const addr = await a.request("GET", `/api/e2/email-addresses/${id}`);
        assert.equal(addr.body.endpointId, null);
        assert.equal(addr.body.routing.type, "none");
      }
      const domain = await a.request("GET", `/api/e2/domains/${domainId}`);
      assert.equal(domain.body.isCatchAllEnabled, false);
      assert.equal(domain.body.catchAllEndpointId, null);
      await ctx.assertConsistent();
    });

    await t.step("once its addresses are gone the domain can be deleted", async () => {
      for (const id of ids) await a.request("DELETE", `/api/e2/email-addresses/${id}`);
      const res = await a.request("DELETE", `/api/e2/domains/${domainId}`);
      assert.equal(res.status, 200);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});
