/**
 * The official SDK (npm `inboundemail` 0.20.0), unchanged, against the real server process
 * (`deno task start`) with `baseURL` pointing at it. The account, its key and one verified
 * domain are written to the server's KV file before it starts.
 */
import assert from "node:assert/strict";
import { AuthenticationError, ConflictError, Inbound, NotFoundError } from "inboundemail";
import { fakeClock } from "../../lib/clock.ts";
import { dnsPlan } from "../../lib/dns.ts";
import { domainStore } from "../../store/domains/store.ts";
import { createAccountWithKey, removeKvFile, startServer, tempKvPath } from "../_helpers.ts";

Deno.test("the official SDK drives the domains API of the running server", async (t) => {
  const kvPath = await tempKvPath();
  const clock = fakeClock(Date.now());
  const kv = await Deno.openKv(kvPath);
  const owner = await createAccountWithKey(kv, clock);
  const other = await createAccountWithKey(kv, clock);
  // A domain verified beforehand (the server's own DNS cannot be faked), so that its subdomains
  // are verified at once and catch-all can be updated through the SDK.
  const store = domainStore(kv, owner.userId, clock);
  const root = await store.create({
    domain: "sdk-root.example",
    ancestors: [],
    plan: (c) => dnsPlan(c.domain, c.token, c.inherited),
  });
  await store.applyCheck(root.id, [
    { kind: "verification", isVerified: true },
    { kind: "mx", isVerified: true },
  ]);
  kv.close();

  const server = await startServer({ DENO_KV_PATH: kvPath, LOG_LEVEL: "silent" });
  const client = new Inbound({ apiKey: owner.key, baseURL: server.url, maxRetries: 0 });
  try {
    let createdId = "";
    await t.step("create answers the SDK's DomainCreateResponse", async () => {
      const created = await client.domains.create({ domain: "Mail.SDK-Root.example" });
      createdId = created.id;
      assert.equal(created.domain, "mail.sdk-root.example");
      assert.equal(created.status, "verified");
      assert.equal(created.parentDomain, "sdk-root.example");
      assert.ok(created.dnsRecords.every((r) => typeof r.isRequired === "boolean"));
      const pending = await client.domains.create({ domain: "pending-sdk.example" });
      assert.equal(pending.status, "pending");
      assert.equal(pending.dnsRecords[0].type, "TXT");
      for (let i = 0; i < 3; i++) await client.domains.create({ domain: `p${i}.sdk.example` });
    });

    // Issue 22 item 6: the SDK reaches the same parser as the API and the dashboard.
    await t.step("a pasted web address is created as its host name", async () => {
      const pasted = await client.domains.create({ domain: "https://Pasted-SDK.example/x?q" });
      assert.equal(pasted.domain, "pasted-sdk.example");
      await client.domains.delete(pasted.id);
    });

    await t.step("list pages and filters", async () => {
      const all = await client.domains.list();
      assert.equal(all.pagination.total, 6);
      assert.equal(all.data.length, 6);
      const page = await client.domains.list({ limit: 2, offset: 1 });
      assert.deepEqual(page.pagination, { limit: 2, offset: 1, total: 6, hasMore: true });
      assert.deepEqual(page.data.map((d) => d.id), all.data.slice(1, 3).map((d) => d.id));
      const verified = await client.domains.list({ status: "verified" });
      assert.deepEqual(verified.data.map((d) => d.domain).sort(), [
        "mail.sdk-root.example",
        "sdk-root.example",
      ]);
      const receiving = await client.domains.list({ canReceive: "true" });
      assert.deepEqual(receiving.data.map((d) => d.domain), ["sdk-root.example"]);
      assert.equal(receiving.data[0].stats.hasCatchAll, false);
    });

    await t.step("retrieve answers the SDK's DomainRetrieveResponse", async () => {
      const got = await client.domains.retrieve(createdId);
      assert.equal(got.id, createdId);
      assert.equal(got.inheritsFromParent, true);
      assert.equal(got.stats.emailsLast24h, 0);
      assert.ok(got.dnsRecords.every((r) => r.domainId === createdId));
    });

    await t.step(
      "retrieve with check=true reports every record, whatever DNS answers",
      async () => {
        const pendingId = (await client.domains.list({ status: "pending", limit: 1 })).data[0].id;
        const checked = await client.domains.retrieve(pendingId, { check: "true" });
        assert.equal(checked.status, "pending", "nobody published its TXT record");
        assert.ok(checked.lastDnsCheck);
        assert.equal(checked.verificationCheck?.dnsRecords.length, 4);
        assert.ok(checked.verificationCheck?.dnsRecords.every((r) => typeof r.error === "string"));
      },
    );

    await t.step("update turns catch-all on for a verified domain", async () => {
      // Issue 23: the catch-all names a real endpoint of the account.
      const endpoint = await client.endpoints.create({
        name: "SDK catch-all",
        type: "email",
        config: { forwardTo: "catch-all@example.com" },
      });
      const updated = await client.domains.update(createdId, {
        isCatchAllEnabled: true,
        catchAllEndpointId: endpoint.id,
      });
      assert.equal(updated.isCatchAllEnabled, true);
      assert.equal(updated.catchAllEndpointId, endpoint.id);
      assert.equal(updated.catchAllEndpoint?.name, "SDK catch-all");
      assert.equal((await client.domains.retrieve(createdId)).isCatchAllEnabled, true);
    });

    await t.step(
      "conflicts surface as the SDK's ConflictError with the server's code",
      async () => {
        const err = await client.domains.create({ domain: "sdk-root.example" }).catch((e) => e);
        assert.ok(err instanceof ConflictError);
        const stranger = new Inbound({ apiKey: other.key, baseURL: server.url, maxRetries: 0 });
        const taken = await stranger.domains.create({ domain: "sdk-root.example" }).catch((e) => e);
        assert.ok(taken instanceof ConflictError);
        assert.equal((taken.error as { code: string }).code, "DOMAIN_ALREADY_REGISTERED");
      },
    );

    await t.step(
      "deleting a parent with subdomains is refused; delete works bottom-up",
      async () => {
        const refused = await client.domains.delete(root.id).catch((e) => e);
        assert.ok(refused instanceof ConflictError);
        const deleted = await client.domains.delete(createdId);
        assert.equal(deleted.success, true);
        assert.equal(deleted.deletedResources.domain, "mail.sdk-root.example");
        assert.equal((await client.domains.delete(root.id)).success, true);
        assert.equal((await client.domains.list()).pagination.total, 4);
      },
    );

    await t.step("a missing or foreign id surfaces as the SDK's NotFoundError", async () => {
      const gone = await client.domains.retrieve(createdId).catch((e) => e);
      assert.ok(gone instanceof NotFoundError, String(gone));
      assert.equal(gone.status, 404);
      const mine = (await client.domains.list({ limit: 1 })).data[0].id;
      const stranger = new Inbound({ apiKey: other.key, baseURL: server.url, maxRetries: 0 });
      const foreign = await stranger.domains.retrieve(mine).catch((e) => e);
      assert.ok(foreign instanceof NotFoundError);
      const foreignDelete = await stranger.domains.delete(mine).catch((e) => e);
      assert.ok(foreignDelete instanceof NotFoundError);
    });

    await t.step("a bad key surfaces as the SDK's AuthenticationError", async () => {
      const bad = new Inbound({ apiKey: "not-a-key", baseURL: server.url, maxRetries: 0 });
      const err = await bad.domains.list().catch((e) => e);
      assert.ok(err instanceof AuthenticationError, String(err));
      assert.equal(err.status, 401);
      assert.equal(
        (err.error as { message: string }).message,
        "Authentication required. Provide a valid session cookie or Bearer token.",
      );
    });

    await t.step("the real server answers the same under the /api/v2 alias", async () => {
      const res = await fetch(`${server.url}/api/v2/domains?limit=1`, {
        headers: { Authorization: `Bearer ${owner.key}` },
      });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).pagination.total, 4);
    });
  } finally {
    await server.stop();
    await removeKvFile(kvPath);
  }
});
