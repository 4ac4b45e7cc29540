/**
 * The delivery path: resolve once with a fake resolver, check every address, connect to the
 * checked address, write the request, read the answer. Every connection goes to 127.0.0.1 (a
 * loopback receiver) or to a stub that records the call and connects nowhere.
 */
import assert from "node:assert/strict";
import {
  type AddressResolver,
  type Connector,
  deliverWebhook,
  type DeliveryOutcome,
  systemAddressResolver,
  type WebhookDelivery,
} from "../../lib/webhooks/deliver.ts";
import { newWebhookSecret } from "../../lib/webhooks/signature.ts";
import { startWebhookReceiver } from "../_webhook_receiver.ts";
import { TEST_CA_CERT, TEST_LEAF_CERT, TEST_LEAF_KEY } from "./_tls_fixture.ts";

const NAME = "hooks.example.test";

/** A resolver from a fixed table that counts its lookups. */
function fakeResolver(table: Record<string, string[]>) {
  const lookups: string[] = [];
  const resolve: AddressResolver = (hostname) => {
    lookups.push(hostname);
    const answer = table[hostname];
    return answer ? Promise.resolve(answer) : Promise.reject(new Error("NXDOMAIN"));
  };
  return { resolve, lookups };
}

/** Records each connect; only loopback addresses are really connected, anything else refused. */
function recordingConnect() {
  const calls: { hostname: string; port: number }[] = [];
  const connect: Connector = ({ hostname, port, signal }) => {
    calls.push({ hostname, port });
    if (hostname !== "127.0.0.1") return Promise.reject(new Deno.errors.ConnectionRefused("stub"));
    return Deno.connect({ hostname, port, signal });
  };
  return { connect, calls };
}

function delivery(url: string, secret: string, extra: Partial<WebhookDelivery> = {}) {
  return {
    url,
    secret,
    headers: {},
    messageId: "msg_test_1",
    timestamp: new Date(),
    body: JSON.stringify({ type: "endpoint.test", data: { message: "Grüße" } }),
    timeoutMs: 5000,
    ...extra,
  };
}

const tlsReceiver = (opts: { secret?: string } = {}) =>
  startWebhookReceiver({ ...opts, tls: { cert: TEST_LEAF_CERT, key: TEST_LEAF_KEY } });

function assertNoSecret(outcome: DeliveryOutcome, secret: string) {
  const text = JSON.stringify(outcome);
  assert.ok(!text.includes(secret) && !text.includes(secret.slice(6)), text);
}

Deno.test("webhook delivery: resolve once, connect to the checked address", async (t) => {
  await t.step(
    "https to a made-up name: socket to the checked IP, SNI and Host the name",
    async () => {
      const secret = newWebhookSecret();
      const rx = await tlsReceiver({ secret });
      try {
        const dns = fakeResolver({ [NAME]: ["127.0.0.1"] });
        const net = recordingConnect();
        const out = await deliverWebhook(
          delivery(`https://${NAME}:${rx.port}/hooks?x=1`, secret, {
            headers: { "X-Custom": "yes", "Host": "evil.example", "Content-Length": "1" },
          }),
          {
            resolve: dns.resolve,
            allowPrivate: true,
            connect: net.connect,
            caCerts: [TEST_CA_CERT],
          },
        );
        assert.equal(out.kind, "delivered", JSON.stringify(out));
        assert.equal(out.kind === "delivered" && out.statusCode, 200);
        assert.equal(out.kind === "delivered" && out.responseBody, '{"ok":true}');
        assert.deepEqual(dns.lookups, [NAME]);
        assert.deepEqual(net.calls, [{ hostname: "127.0.0.1", port: rx.port }]);
        assert.equal(rx.received.length, 1);
        const got = rx.received[0];
        assert.equal(got.verified, true);
        assert.equal(got.headers.get("host"), `${NAME}:${rx.port}`);
        assert.equal(got.headers.get("content-type"), "application/json");
        assert.equal(got.headers.get("x-custom"), "yes");
        assert.equal(got.headers.get("webhook-id"), "msg_test_1");
        assert.match(got.headers.get("webhook-signature") ?? "", /^v1,[A-Za-z0-9+/]{43}=$/);
        assert.match(got.headers.get("user-agent") ?? "", /inbound-auth-server/);
        assert.equal(got.body, delivery("", "").body);
      } finally {
        await rx.close();
      }
    },
  );

  await t.step(
    "the same name resolving to 10.0.0.1, not in private mode: no connection",
    async () => {
      const dns = fakeResolver({ [NAME]: ["10.0.0.1"] });
      const net = recordingConnect();
      const out = await deliverWebhook(
        delivery(`https://${NAME}/hooks`, newWebhookSecret()),
        { resolve: dns.resolve, allowPrivate: false, connect: net.connect },
      );
      assert.equal(out.kind, "refused");
      assert.match(out.kind === "refused" ? out.reason : "", /non-public address/);
      assert.deepEqual(dns.lookups, [NAME]);
      assert.equal(net.calls.length, 0);
    },
  );

  await t.step(
    "names resolving to any refused address, or one public and one private",
    async () => {
      const answers = [
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["100.64.0.7"],
        ["0.0.0.0"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["::ffff:7f00:1"],
        ["64:ff9b::a9fe:a9fe"],
        ["fe80::1"],
        ["fd12:3456::1"],
        ["2002:a00:1::1"],
        ["8.8.8.8", "10.0.0.1"],
        ["192.168.0.10", "8.8.8.8"],
        ["2606:4700::1111", "::1"],
      ];
      for (const addresses of answers) {
        const dns = fakeResolver({ [NAME]: addresses });
        const net = recordingConnect();
        const out = await deliverWebhook(
          delivery(`https://${NAME}/hooks`, newWebhookSecret()),
          { resolve: dns.resolve, allowPrivate: false, connect: net.connect },
        );
        assert.equal(out.kind, "refused", addresses.join(","));
        assert.equal(net.calls.length, 0, addresses.join(","));
      }
    },
  );

  await t.step("a public answer is connected to by address, port from the URL", async () => {
    const dns = fakeResolver({
      [NAME]: ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    });
    const net = recordingConnect(); // refuses anything but loopback: nothing leaves the machine
    const secret = newWebhookSecret();
    const out = await deliverWebhook(
      delivery(`https://${NAME}:8443/hooks`, secret),
      { resolve: dns.resolve, allowPrivate: false, connect: net.connect },
    );
    assert.deepEqual(out.kind === "failed" && out.error, "connection refused");
    assert.deepEqual(net.calls, [
      { hostname: "93.184.215.14", port: 8443 },
      { hostname: "2606:2800:21f:cb07:6820:80da:af6b:8b2c", port: 8443 },
    ]);
    assert.deepEqual(dns.lookups, [NAME]);
    assertNoSecret(out, secret);
  });

  await t.step("literal addresses are not looked up; literal private ones refused", async () => {
    const dns = fakeResolver({});
    const net = recordingConnect();
    for (const url of ["https://2130706433/", "https://[::ffff:7f00:1]/", "https://0x7f.1/"]) {
      const out = await deliverWebhook(delivery(url, newWebhookSecret()), {
        resolve: dns.resolve,
        allowPrivate: false,
        connect: net.connect,
      });
      assert.equal(out.kind, "refused", url);
    }
    assert.equal(dns.lookups.length, 0);
    assert.equal(net.calls.length, 0);
  });

  await t.step("a resolver answering a name instead of an address is refused", async () => {
    const dns = fakeResolver({ [NAME]: ["localhost"] });
    const net = recordingConnect();
    const out = await deliverWebhook(delivery(`https://${NAME}/`, newWebhookSecret()), {
      resolve: dns.resolve,
      allowPrivate: true,
      connect: net.connect,
    });
    assert.equal(out.kind, "refused");
    assert.equal(net.calls.length, 0);
  });

  await t.step("localhost (private mode only) is 127.0.0.1 / ::1 without a lookup", async () => {
    const rx = await startWebhookReceiver();
    try {
      const dns = fakeResolver({});
      const net = recordingConnect();
      const out = await deliverWebhook(
        delivery(`http://localhost:${rx.port}/hooks`, newWebhookSecret()),
        { resolve: dns.resolve, allowPrivate: true, connect: net.connect },
      );
      assert.equal(out.kind === "delivered" && out.statusCode, 200);
      assert.equal(rx.received[0].headers.get("host"), `localhost:${rx.port}`);
      assert.deepEqual(net.calls, [{ hostname: "127.0.0.1", port: rx.port }]);
      assert.equal(dns.lookups.length, 0);
    } finally {
      await rx.close();
    }
  });

  await t.step("the system resolver rejects when its name server does not answer", async () => {
    // A loopback UDP port nobody listens on: the query gets no answer (or an ICMP error).
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const resolve = systemAddressResolver({
      timeoutMs: 300,
      nameServer: { ipAddr: "127.0.0.1", port },
    });
    await assert.rejects(() => resolve(NAME));
    const out = await deliverWebhook(delivery(`https://${NAME}/`, newWebhookSecret()), {
      resolve,
      allowPrivate: false,
      connect: recordingConnect().connect,
    });
    assert.equal(out.kind === "failed" && out.error, "DNS lookup failed");
  });

  await t.step("lookup failures are reported, not thrown", async () => {
    const net = recordingConnect();
    const failing = await deliverWebhook(delivery(`https://${NAME}/`, newWebhookSecret()), {
      resolve: fakeResolver({}).resolve,
      allowPrivate: false,
      connect: net.connect,
    });
    assert.equal(failing.kind === "failed" && failing.error, "DNS lookup failed");
    const empty = await deliverWebhook(delivery(`https://${NAME}/`, newWebhookSecret()), {
      resolve: fakeResolver({ [NAME]: [] }).resolve,
      allowPrivate: false,
      connect: net.connect,
    });
    assert.equal(empty.kind === "failed" && empty.error, "host name did not resolve");
    assert.equal(net.calls.length, 0);
  });
});

Deno.test("webhook delivery: redirects, status codes, bodies", async (t) => {
  await t.step("a redirect is the result: its target is never contacted", async () => {
    const second = await startWebhookReceiver();
    const first = await startWebhookReceiver({ redirectTo: second.url });
    const metadata = await startWebhookReceiver({ redirectTo: "http://169.254.169.254/latest/" });
    try {
      const net = recordingConnect();
      const opts = { resolve: fakeResolver({}).resolve, allowPrivate: true, connect: net.connect };
      const out = await deliverWebhook(delivery(first.url, newWebhookSecret()), opts);
      assert.equal(out.kind === "delivered" && out.statusCode, 302);
      assert.equal(first.received.length, 1);
      assert.equal(second.received.length, 0);
      const out2 = await deliverWebhook(delivery(metadata.url, newWebhookSecret()), opts);
      assert.equal(out2.kind === "delivered" && out2.statusCode, 302);
      assert.deepEqual(net.calls.map((c) => c.port), [first.port, metadata.port]);
    } finally {
      await Promise.all([first.close(), second.close(), metadata.close()]);
    }
  });

  await t.step("an error status is delivered with its body", async () => {
    const rx = await startWebhookReceiver({ status: 503, body: "busy" });
    try {
      const out = await deliverWebhook(delivery(rx.url, newWebhookSecret()), {
        resolve: fakeResolver({}).resolve,
        allowPrivate: true,
      });
      assert.equal(out.kind, "delivered");
      assert.equal(out.kind === "delivered" && out.statusCode, 503);
      assert.equal(out.kind === "delivered" && out.responseBody, "busy");
      assert.ok(out.kind === "delivered" && out.responseTimeMs >= 0);
    } finally {
      await rx.close();
    }
  });

  await t.step("a large response body is cut to 4 KiB", async () => {
    const rx = await startWebhookReceiver({ body: "x".repeat(200_000) });
    try {
      const out = await deliverWebhook(delivery(rx.url, newWebhookSecret()), {
        resolve: fakeResolver({}).resolve,
        allowPrivate: true,
      });
      assert.equal(out.kind === "delivered" && out.responseBody, "x".repeat(4096));
    } finally {
      await rx.close();
    }
  });

  await t.step(
    "the secret of the receiver can change (rolled secret fails to verify)",
    async () => {
      const secret = newWebhookSecret();
      const rx = await startWebhookReceiver({ secret });
      try {
        const opts = { resolve: fakeResolver({}).resolve, allowPrivate: true };
        await deliverWebhook(delivery(rx.url, secret), opts);
        rx.setSecret(newWebhookSecret());
        await deliverWebhook(delivery(rx.url, secret), opts);
        assert.deepEqual(rx.received.map((r) => r.verified), [true, false]);
      } finally {
        await rx.close();
      }
    },
  );
});

/** A loopback TCP server that accepts connections and never answers. */
function silentServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const first = Promise.withResolvers<void>();
  const accepting = (async () => {
    try {
      for await (const c of listener) {
        conns.push(c);
        first.resolve();
      }
    } catch {
      // listener closed
    }
  })();
  return {
    port: listener.addr.port,
    /** Resolves once a connection has been accepted (no timing involved). */
    firstAccepted: first.promise,
    accepted: () => conns.length,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed by the peer
        }
      }
      await accepting;
    },
  };
}

Deno.test("webhook delivery: failures are short, safe outcomes", async (t) => {
  const secret = newWebhookSecret();
  const opts = { resolve: fakeResolver({}).resolve, allowPrivate: true };

  await t.step("a receiver that never answers times out", async () => {
    const server = silentServer();
    try {
      const out = await deliverWebhook(
        delivery(`http://127.0.0.1:${server.port}/`, secret, { timeoutMs: 300 }),
        opts,
      );
      assert.equal(out.kind === "failed" && out.error, "timed out after 300 ms");
      await server.firstAccepted; // the request did reach the silent server
      assert.equal(server.accepted(), 1);
      assertNoSecret(out, secret);
    } finally {
      await server.close();
    }
  });

  await t.step("a TLS handshake that never completes times out, leaking nothing", async () => {
    const server = silentServer();
    try {
      const out = await deliverWebhook(
        delivery(`https://${NAME}:${server.port}/`, secret, { timeoutMs: 300 }),
        {
          resolve: fakeResolver({ [NAME]: ["127.0.0.1"] }).resolve,
          allowPrivate: true,
          caCerts: [TEST_CA_CERT],
        },
      );
      assert.equal(out.kind === "failed" && out.error, "timed out after 300 ms");
    } finally {
      await server.close();
    }
  });

  await t.step("a resolver that never answers times out too", async () => {
    const out = await deliverWebhook(delivery(`https://${NAME}/`, secret, { timeoutMs: 200 }), {
      resolve: () => new Promise<string[]>(() => {}),
      allowPrivate: false,
    });
    assert.equal(out.kind === "failed" && out.error, "timed out after 200 ms");
  });

  await t.step("the caller's signal cancels", async () => {
    const server = silentServer();
    try {
      const controller = new AbortController();
      const pending = deliverWebhook(delivery(`http://127.0.0.1:${server.port}/`, secret), {
        ...opts,
        signal: controller.signal,
      });
      controller.abort();
      const out = await pending;
      assert.equal(out.kind === "failed" && out.error, "cancelled");
    } finally {
      await server.close();
    }
  });

  await t.step("a closed port is 'connection refused'", async () => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const out = await deliverWebhook(delivery(`http://127.0.0.1:${port}/`, secret), opts);
    assert.equal(out.kind === "failed" && out.error, "connection refused");
    assertNoSecret(out, secret);
  });

  await t.step(
    "TLS: a certificate for another name, or an untrusted CA, fails the handshake",
    async () => {
      const rx = await tlsReceiver({ secret });
      try {
        const dns = fakeResolver({ "other.example.test": ["127.0.0.1"], [NAME]: ["127.0.0.1"] });
        const wrongName = await deliverWebhook(
          delivery(`https://other.example.test:${rx.port}/`, secret),
          { resolve: dns.resolve, allowPrivate: true, caCerts: [TEST_CA_CERT] },
        );
        assert.equal(wrongName.kind === "failed" && wrongName.error, "TLS handshake failed");
        const untrusted = await deliverWebhook(delivery(`https://${NAME}:${rx.port}/`, secret), {
          resolve: dns.resolve,
          allowPrivate: true,
        });
        assert.equal(untrusted.kind === "failed" && untrusted.error, "TLS handshake failed");
        assert.equal(rx.received.length, 0);
        assertNoSecret(wrongName, secret);
      } finally {
        await rx.close();
      }
    },
  );

  await t.step("a header that would inject a line is refused before any connection", async () => {
    const net = recordingConnect();
    const out = await deliverWebhook(
      delivery("http://127.0.0.1:9/", secret, { headers: { "X-A": "1\r\nX-Injected: 2" } }),
      { ...opts, connect: net.connect },
    );
    assert.equal(out.kind === "failed" && out.error, "invalid custom header");
    assert.equal(net.calls.length, 0);
  });

  await t.step("a malformed secret is an error that does not repeat it", async () => {
    const out = await deliverWebhook(delivery("http://127.0.0.1:9/", "whsec_not base64!"), opts);
    assert.equal(out.kind === "failed" && out.error, "invalid webhook secret");
    assert.ok(!JSON.stringify(out).includes("not base64"));
  });

  await t.step("a refused URL is refused before anything else", async () => {
    const net = recordingConnect();
    const out = await deliverWebhook(delivery("http://example.com/", secret), {
      ...opts,
      allowPrivate: false,
      connect: net.connect,
    });
    assert.equal(out.kind, "refused");
    assert.equal(net.calls.length, 0);
  });
});
