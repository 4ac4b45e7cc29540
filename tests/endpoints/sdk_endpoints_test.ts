/**
 * Issue 23's "done when": the official SDK (npm `inboundemail` 0.20.0), unchanged, against the
 * real server process (`deno task start`, ALLOW_PRIVATE_WEBHOOK_TARGETS=true so that it may call
 * this test's loopback receiver), runs create, list, retrieve, update and delete on endpoints and
 * e-mail addresses, and `endpoints.test` against a receiver that verifies the Standard Webhooks
 * signature; another account's ids answer as ids that do not exist.
 */
import assert from "node:assert/strict";
import { BadRequestError, Inbound, NotFoundError } from "inboundemail";
import { fakeClock } from "../../lib/clock.ts";
import { dnsPlan } from "../../lib/dns.ts";
import { domainStore } from "../../store/domains/store.ts";
import { createAccountWithKey, removeKvFile, startServer, tempKvPath } from "../_helpers.ts";
import { startWebhookReceiver } from "../_webhook_receiver.ts";

async function verifiedDomain(kv: Deno.Kv, userId: string, name: string): Promise<string> {
  const clock = fakeClock(Date.now());
  const store = domainStore(kv, userId, clock);
  const d = await store.create({
    domain: name,
    ancestors: [],
    plan: (c) => dnsPlan(c.domain, c.token, c.inherited),
  });
  await store.applyCheck(d.id, [
    { kind: "verification", isVerified: true },
    { kind: "mx", isVerified: true },
  ]);
  return d.id;
}

Deno.test("the official SDK drives endpoints and email addresses of the running server", async (t) => {
  const kvPath = await tempKvPath();
  const clock = fakeClock(Date.now());
  const kv = await Deno.openKv(kvPath);
  const owner = await createAccountWithKey(kv, clock);
  const other = await createAccountWithKey(kv, clock);
  const domainId = await verifiedDomain(kv, owner.userId, "sdk-mail.example");
  const otherDomainId = await verifiedDomain(kv, other.userId, "other-mail.example");
  kv.close();

  const receiver = await startWebhookReceiver();
  const server = await startServer({
    DENO_KV_PATH: kvPath,
    LOG_LEVEL: "silent",
    ALLOW_PRIVATE_WEBHOOK_TARGETS: "true",
  });
  const client = new Inbound({ apiKey: owner.key, baseURL: server.url, maxRetries: 0 });
  const intruder = new Inbound({ apiKey: other.key, baseURL: server.url, maxRetries: 0 });
  try {
    let endpointId = "";
    let addressId = "";

    await t.step("the start-up log warns that private targets are allowed", async () => {
      // The warnings follow the "listening" line the start waited for: read until the last
      // start-up line (the hint) is in.
      for (
        let i = 0;
        i < 200 && !/"level":"info","msg":"(?!listening)/.test(server.output());
        i++
      ) {
        await new Promise((r) => setTimeout(r, 25));
      }
      assert.match(server.output(), /"level":"warn"[^\n]*ALLOW_PRIVATE_WEBHOOK_TARGETS/);
    });

    await t.step("endpoints.create, with the secret once", async () => {
      const created = await client.endpoints.create({
        name: "SDK hook",
        type: "webhook",
        config: { url: receiver.url, timeout: 5 },
      });
      endpointId = created.id;
      assert.equal(created.type, "webhook");
      assert.deepEqual(created.deliveryStats, {
        failed: 0,
        lastDelivery: null,
        successful: 0,
        total: 0,
      });
      const secret = (created as typeof created & { secret: string }).secret;
      assert.match(secret, /^whsec_/);
      receiver.setSecret(secret);
    });

    await t.step("endpoints.test delivers a signed payload the receiver verifies", async () => {
      const res = await client.endpoints.test(endpointId, { webhookFormat: "inbound" });
      assert.equal(res.success, true, JSON.stringify(res));
      assert.equal(res.statusCode, 200);
      assert.equal(res.urlTested, receiver.url);
      assert.equal(receiver.received.length, 1);
      assert.equal(receiver.received[0].verified, true);
    });

    await t.step("endpoints.list, retrieve, update", async () => {
      const list = await client.endpoints.list({ type: "webhook", limit: 10 });
      assert.deepEqual(list.data.map((e) => e.id), [endpointId]);
      assert.equal(list.pagination.total, 1);
      const updated = await client.endpoints.update(endpointId, { name: "SDK hook 2" });
      assert.equal(updated.name, "SDK hook 2");
      const got = await client.endpoints.retrieve(endpointId);
      assert.equal(got.name, "SDK hook 2");
      assert.equal(got.deliveryStats.total, 1);
      assert.equal(got.recentDeliveries.length, 1);
    });

    await t.step("emailAddresses.create, list, retrieve, update", async () => {
      const created = await client.emailAddresses.create({
        address: "hello@sdk-mail.example",
        domainId,
        webhookId: endpointId,
      });
      addressId = created.id;
      assert.equal(created.isReceiptRuleConfigured, true);
      assert.equal(created.routing.type, "webhook");
      assert.deepEqual(created.domain, {
        id: domainId,
        name: "sdk-mail.example",
        status: "verified",
      });
      const list = await client.emailAddresses.list({ domainId });
      assert.deepEqual(list.data.map((a) => a.id), [addressId]);
      const updated = await client.emailAddresses.update(addressId, { isActive: false });
      assert.equal(updated.isActive, false);
      assert.equal((await client.emailAddresses.retrieve(addressId)).isActive, false);
      const ep = await client.endpoints.retrieve(endpointId);
      assert.deepEqual(ep.associatedEmails.map((a) => a.id), [addressId]);
    });

    await t.step("domains.update takes the endpoint as catch-all", async () => {
      const d = await client.domains.update(domainId, {
        isCatchAllEnabled: true,
        catchAllEndpointId: endpointId,
      });
      assert.equal(d.catchAllEndpoint?.id, endpointId);
    });

    await t.step("another account: its ids answer exactly as nonexistent ones", async () => {
      const missing = async (p: Promise<unknown>) => {
        const err = await p.then(() => null, (e) => e);
        assert.ok(err instanceof NotFoundError, String(err));
        return JSON.stringify((err as NotFoundError).error);
      };
      assert.equal(
        await missing(intruder.endpoints.retrieve(endpointId)),
        await missing(intruder.endpoints.retrieve("ep_0000000000000000000000")),
      );
      assert.equal(
        await missing(intruder.emailAddresses.retrieve(addressId)),
        await missing(intruder.emailAddresses.retrieve("ea_0000000000000000000000")),
      );
      const refused = async (id: string) => {
        const err = await intruder.emailAddresses.create({
          address: "x@other-mail.example",
          domainId: otherDomainId,
          endpointId: id,
        }).then(() => null, (e) => e);
        assert.ok(err instanceof BadRequestError, String(err));
        return JSON.stringify((err as BadRequestError).error);
      };
      assert.equal(await refused(endpointId), await refused("ep_0000000000000000000000"));
    });

    await t.step("delete both: the SDK's cleanup objects", async () => {
      const ep = await client.endpoints.delete(endpointId);
      assert.deepEqual(ep.cleanup.emailAddresses, ["hello@sdk-mail.example"]);
      assert.deepEqual(ep.cleanup.domains, ["sdk-mail.example"]);
      const addr = await client.emailAddresses.delete(addressId);
      assert.equal(addr.cleanup.emailAddress, "hello@sdk-mail.example");
      assert.equal((await client.emailAddresses.list()).pagination.total, 0);
    });
  } finally {
    await server.stop();
    await receiver.close();
    await removeKvFile(kvPath);
  }
});
