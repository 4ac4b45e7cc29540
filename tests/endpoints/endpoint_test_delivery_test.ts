/**
 * Issue 23: `POST /api/e2/endpoints/{id}/test` really delivers a signed sample to a loopback
 * receiver (ALLOW_PRIVATE_WEBHOOK_TARGETS on, as in development), records it, and is throttled;
 * without the setting, private targets are refused 400 WEBHOOK_TARGET_NOT_ALLOWED, also when a
 * public-looking name resolves to a private address (a fake resolver: no real lookup), and
 * nothing is sent. E-mail endpoints are simulated.
 */
import assert from "node:assert/strict";
import type { AuditEvent } from "../../store/audit_log/events.ts";
import { auditPrefix } from "../../store/keys.ts";
import { startWebhookReceiver } from "../_webhook_receiver.ts";
import { endpointTestApp } from "./_fixture.ts";

Deno.test("a webhook test is delivered, signed, recorded and throttled", async (t) => {
  const ctx = await endpointTestApp({ allowPrivateWebhookTargets: true });
  const receiver = await startWebhookReceiver({ body: '{"received":true}' });
  try {
    const a = await ctx.account();
    const created = await a.request("POST", "/api/e2/endpoints", {
      name: "Local",
      type: "webhook",
      config: { url: receiver.url, headers: { "X-Receiver-Token": "rcv_1" } },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    receiver.setSecret(created.body.secret);

    await t.step("delivered with a valid Standard Webhooks signature", async () => {
      const res = await a.request("POST", `/api/e2/endpoints/${id}/test`, {});
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.success, true);
      assert.equal(res.body.statusCode, 200);
      assert.equal(res.body.responseBody, '{"received":true}');
      assert.equal(res.body.urlTested, receiver.url);
      assert.equal(res.body.webhookFormat, "inbound");
      assert.equal(receiver.received.length, 1);
      const got = receiver.received[0];
      assert.equal(got.verified, true);
      assert.equal(got.headers.get("x-receiver-token"), "rcv_1");
      assert.match(got.headers.get("webhook-signature") ?? "", /^v1,/);
      assert.equal(JSON.parse(got.body).event, "email.received");
    });

    await t.step("discord and slack shapes", async () => {
      const d = await a.request("POST", `/api/e2/endpoints/${id}/test`, {
        webhookFormat: "discord",
      });
      assert.equal(d.body.webhookFormat, "discord");
      assert.ok(Array.isArray(JSON.parse(receiver.received[1].body).embeds));
      const s = await a.request("POST", `/api/e2/endpoints/${id}/test`, { webhookFormat: "slack" });
      assert.ok(Array.isArray(JSON.parse(receiver.received[2].body).blocks));
      assert.equal(s.body.success, true);
    });

    await t.step(
      "a rolled secret signs the next test; the old one no longer verifies",
      async () => {
        const rolled = await a.request("POST", `/api/e2/endpoints/${id}/secret/roll`);
        await a.request("POST", `/api/e2/endpoints/${id}/test`, {});
        assert.equal(receiver.received[3].verified, false, "verified under the old secret");
        receiver.setSecret(rolled.body.secret);
        await a.request("POST", `/api/e2/endpoints/${id}/test`, {});
        assert.equal(receiver.received[4].verified, true);
      },
    );

    await t.step("recorded: deliveryStats, recentDeliveries and the audit log", async () => {
      const got = await a.request("GET", `/api/e2/endpoints/${id}`);
      assert.equal(got.body.deliveryStats.total, 5);
      assert.equal(got.body.deliveryStats.successful, 5);
      assert.equal(got.body.recentDeliveries.length, 5);
      assert.equal(got.body.recentDeliveries[0].status, "success");
      const events = await Array.fromAsync(
        ctx.kv.list<AuditEvent>({ prefix: auditPrefix(a.userId) }),
      );
      const tested = events.filter((e) => e.value.action === "endpoint.tested");
      assert.equal(tested.length, 5);
      assert.deepEqual(tested[0].value.target, { type: "endpoint", id, name: "Local" });
      assert.ok(!JSON.stringify(events).includes(created.body.secret), "no secret in the log");
    });

    await t.step("the 11th test within a minute: 429 with Retry-After; nothing sent", async () => {
      for (let i = 5; i < 10; i++) {
        assert.equal((await a.request("POST", `/api/e2/endpoints/${id}/test`, {})).status, 200);
      }
      const sent = receiver.received.length;
      const res = await a.request("POST", `/api/e2/endpoints/${id}/test`, {});
      assert.equal(res.status, 429);
      assert.equal(res.body.code, "ENDPOINT_TEST_THROTTLED");
      assert.ok(Number(res.headers.get("Retry-After")) >= 1);
      assert.equal(receiver.received.length, sent);
      ctx.clock.advance(60_000);
      assert.equal((await a.request("POST", `/api/e2/endpoints/${id}/test`, {})).status, 200);
    });

    await t.step("a receiver's error status is reported, not thrown", async () => {
      const failing = await startWebhookReceiver({ status: 500, body: "x".repeat(5000) });
      try {
        const res = await a.request("POST", `/api/e2/endpoints/${id}/test`, {
          overrideUrl: failing.url,
        });
        assert.equal(res.status, 200);
        assert.equal(res.body.success, false);
        assert.equal(res.body.statusCode, 500);
        assert.ok(res.body.responseBody.length <= 1000);
      } finally {
        await failing.close();
      }
    });
  } finally {
    await receiver.close();
    await ctx.close();
  }
});

Deno.test("private targets are refused without ALLOW_PRIVATE_WEBHOOK_TARGETS", async (t) => {
  const ctx = await endpointTestApp();
  const receiver = await startWebhookReceiver();
  try {
    const a = await ctx.account();
    ctx.hosts.set("internal.example.com", ["10.1.2.3"]);
    ctx.hosts.set("mapped.example.com", ["::ffff:127.0.0.1"]);
    const hook = await a.request("POST", "/api/e2/endpoints", {
      name: "Sneaky",
      type: "webhook",
      config: { url: "https://internal.example.com/hook" },
    });
    assert.equal(hook.status, 201, "a name is only checked when it is called");

    await t.step("a name resolving to a private address: 400, nothing sent", async () => {
      const res = await a.request("POST", `/api/e2/endpoints/${hook.body.id}/test`, {});
      assert.equal(res.status, 400);
      assert.equal(res.body.code, "WEBHOOK_TARGET_NOT_ALLOWED");
      assert.deepEqual(ctx.lookups, ["internal.example.com"]);
    });

    await t.step("an IPv4-mapped loopback answer, and literal loopback overrides", async () => {
      for (
        const overrideUrl of [
          "https://mapped.example.com/",
          receiver.url,
          "https://127.0.0.1/",
          "https://2130706433/",
          "https://0x7f.1/",
          "https://[::1]/",
          "https://169.254.169.254/latest/meta-data",
        ]
      ) {
        const res = await a.request("POST", `/api/e2/endpoints/${hook.body.id}/test`, {
          overrideUrl,
        });
        assert.equal(res.status, 400, overrideUrl);
        assert.equal(res.body.code, "WEBHOOK_TARGET_NOT_ALLOWED", overrideUrl);
      }
      assert.equal(receiver.received.length, 0);
    });

    await t.step("nothing was recorded as a delivery", async () => {
      const got = await a.request("GET", `/api/e2/endpoints/${hook.body.id}`);
      assert.equal(got.body.deliveryStats.total, 0);
    });

    await t.step("an email endpoint's test is an honest simulation", async () => {
      const mail = await a.request("POST", "/api/e2/endpoints", {
        name: "Fwd",
        type: "email",
        config: { forwardTo: "team@example.com" },
      });
      const res = await a.request("POST", `/api/e2/endpoints/${mail.body.id}/test`, {});
      assert.equal(res.status, 200);
      assert.equal(res.body.success, true);
      assert.match(res.body.message, /sends and receives no e-mail.*team@example\.com/);
    });
  } finally {
    await receiver.close();
    await ctx.close();
  }
});
