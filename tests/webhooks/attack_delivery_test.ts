/**
 * Engineer X1's attack on the webhook client (lib/webhooks/): headers that pass the endpoint
 * schema but not the client, DNS rebinding between the checks and the connection, resolver
 * answers in odd forms, header injection, and receivers that never finish (bounded by the one
 * timeout). Only loopback connections, and only with allowPrivate; the rest uses `connect` stubs
 * and fake resolvers: no real lookup, no other address.
 */
import assert from "node:assert/strict";
import { deliverWebhook, type WebhookDelivery } from "../../lib/webhooks/deliver.ts";
import { endpointTestApp } from "../endpoints/_fixture.ts";

const SECRET = "whsec_" + btoa("0123456789abcdef0123456789abcdef");

function delivery(url: string, extra: Partial<WebhookDelivery> = {}): WebhookDelivery {
  return {
    url,
    headers: {},
    secret: SECRET,
    messageId: "msg_1",
    timestamp: new Date(),
    body: "{}",
    timeoutMs: 1000,
    ...extra,
  };
}

Deno.test("attack: a header value the endpoint accepts is one its test can send", async () => {
  // DEFECT: routes/endpoints/schemas.ts HEADER_VALUE admits obs-text (\x80-\xff, e.g. "café"),
  // but lib/webhooks/http1.ts isHeaderValue (FIELD_VALUE = [\t\x20-\x7e]) refuses it, so the
  // endpoint is stored and every delivery fails with "invalid custom header" before any lookup.
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const created = await a.request("POST", "/api/e2/endpoints", {
      name: "Latin-1 header",
      type: "webhook",
      config: { url: "https://hooks.example.com/in", headers: { "X-Team": "café" } },
    });
    if (created.status === 400) return; // fixed by refusing it at create: consistent
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const test = await a.request("POST", `/api/e2/endpoints/${created.body.id}/test`, {});
    assert.equal(test.status, 200, JSON.stringify(test.body));
    assert.notEqual(test.body.error, "invalid custom header", JSON.stringify(test.body));
    assert.deepEqual(ctx.lookups, ["hooks.example.com"], "the delivery got as far as the lookup");
  } finally {
    await ctx.close();
  }
});

Deno.test("attack (defended): SSRF through the resolver and the URL", async (t) => {
  const connects: string[] = [];
  const connect = ({ hostname }: { hostname: string }) => {
    connects.push(hostname);
    return Promise.reject(new Deno.errors.ConnectionRefused("stub"));
  };

  await t.step(
    "rebinding: one lookup, and the connection goes to the checked address",
    async () => {
      let calls = 0;
      const resolve = () => Promise.resolve(++calls === 1 ? ["93.184.216.34"] : ["127.0.0.1"]);
      const out = await deliverWebhook(delivery("https://rebind.example/"), {
        resolve,
        allowPrivate: false,
        connect,
      });
      assert.equal(calls, 1);
      assert.deepEqual(connects.splice(0), ["93.184.216.34"]);
      assert.equal(out.kind, "failed");
    },
  );

  await t.step("any refused address among the answers refuses the whole target", async () => {
    const answers = [
      ["93.184.216.34", "127.0.0.1"],
      ["2606:4700::1111", "::ffff:7f00:1"],
      ["::ffff:169.254.169.254"],
      ["64:ff9b::a9fe:a9fe"],
      ["2002:0a00:0001::1"],
      ["fe80::1%eth0"],
      ["127.000.000.001"],
      ["localhost"],
      [" 10.0.0.1"],
      ["0.0.0.0"],
      ["[::1]"],
    ];
    for (const a of answers) {
      const out = await deliverWebhook(delivery("https://evil.example/"), {
        resolve: () => Promise.resolve(a),
        allowPrivate: false,
        connect,
      });
      assert.equal(out.kind, "refused", JSON.stringify(a));
    }
    assert.deepEqual(connects, [], "never connected");
  });

  await t.step("URL spellings of private hosts are refused before any lookup", async () => {
    const urls = [
      "https://2130706433/",
      "https://0x7f.1/",
      "https://0251.0376.0251.0376/",
      "https://[::ffff:a9fe:a9fe]/",
      "https://[::]/",
      "https://127\u30020\u30020\u30021/",
      "https://%31%32%37.0.0.1/",
      "https://metadata.google.internal./",
      "https://LOCALHOST./",
      "http://93.184.216.34/",
      "https://user:pw@example.com/",
    ];
    let lookups = 0;
    for (const url of urls) {
      const out = await deliverWebhook(delivery(url), {
        resolve: () => (lookups++, Promise.resolve(["93.184.216.34"])),
        allowPrivate: false,
        connect,
      });
      assert.equal(out.kind, "refused", url);
    }
    assert.equal(lookups, 0);
    assert.deepEqual(connects, []);
  });

  await t.step("CR/LF in a custom header is refused before connecting", async () => {
    const out = await deliverWebhook(
      delivery("https://ok.example/", { headers: { "X-A": "1\r\nX-Injected: 1" } }),
      { resolve: () => Promise.resolve(["93.184.216.34"]), allowPrivate: false, connect },
    );
    assert.deepEqual(out.kind, "failed");
    assert.deepEqual(connects, []);
  });
});

/** A loopback receiver that answers every connection with `serve`; counts connections. */
function receiver(serve: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns: Deno.Conn[] = [];
  const done = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      serve(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch {
          // closed by the client
        }
      });
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/in`,
    get connections() {
      return conns.length;
    },
    async close() {
      listener.close();
      await done.catch(() => {});
    },
  };
}

const enc = new TextEncoder();

Deno.test("attack (defended): hostile receivers on loopback stay bounded", async (t) => {
  const opts = { resolve: () => Promise.resolve([]), allowPrivate: true };
  const hostile: [string, (conn: Deno.Conn) => Promise<void>][] = [
    ["endless 100 Continue", async (conn) => {
      const line = enc.encode("HTTP/1.1 100 Continue\r\n\r\n".repeat(64));
      while (true) await conn.write(line);
    }],
    ["endless chunked body", async (conn) => {
      await conn.write(enc.encode("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
      const chunk = enc.encode("4000\r\n" + "x".repeat(0x4000) + "\r\n");
      while (true) await conn.write(chunk);
    }],
    ["endless header", async (conn) => {
      await conn.write(enc.encode("HTTP/1.1 200 OK\r\nX-Big: "));
      const part = enc.encode("y".repeat(16 * 1024));
      while (true) await conn.write(part);
    }],
    ["slowloris: a byte now and then, never done", async (conn) => {
      const buf = new Uint8Array(4096);
      await conn.read(buf);
      for (const ch of "HTTP/1.1 200 OK\r\nX-Slow: ") {
        await conn.write(enc.encode(ch));
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 5_000));
    }],
  ];
  for (const [name, serve] of hostile) {
    await t.step(name, async () => {
      const r = receiver(serve);
      try {
        const out = await deliverWebhook(delivery(r.url, { timeoutMs: 1500 }), opts);
        if (out.kind === "delivered") {
          assert.ok(out.responseBody.length <= 4096, "at most 4 KiB kept");
        } else {
          assert.equal(out.kind, "failed", JSON.stringify(out));
        }
        assert.equal(r.connections, 1, "one connection, no retry loop");
      } finally {
        await r.close();
      }
    });
  }
});
