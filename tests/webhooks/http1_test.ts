import assert from "node:assert/strict";
import {
  type ByteSource,
  encodeRequest,
  HttpProtocolError,
  readResponse,
} from "../../lib/webhooks/http1.ts";

/** A source that hands out `text` in pieces of `piece` bytes, then end of stream. */
function source(text: string | Uint8Array, piece = 7) {
  const bytes = typeof text === "string" ? new TextEncoder().encode(text) : text;
  let at = 0;
  let reads = 0;
  const src: ByteSource & { consumed(): number; reads(): number } = {
    read(p) {
      reads++;
      if (at >= bytes.length) return Promise.resolve(null);
      const n = Math.min(piece, p.length, bytes.length - at);
      p.set(bytes.subarray(at, at + n));
      at += n;
      return Promise.resolve(n);
    },
    consumed: () => at,
    reads: () => reads,
  };
  return src;
}

const text = (b: Uint8Array) => new TextDecoder().decode(b);

Deno.test("minimal HTTP/1.1 response reading", async (t) => {
  await t.step("Content-Length framing stops at the length", async () => {
    const src = source("HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nhelloEXTRA");
    const r = await readResponse(src);
    assert.equal(r.statusCode, 201);
    assert.equal(text(r.body), "hello");
  });

  await t.step("chunked framing, with extensions, across small reads", async () => {
    const raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "5;ext=1\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n";
    for (const piece of [1, 3, 64]) {
      const r = await readResponse(source(raw, piece));
      assert.equal(text(r.body), "hello 0123456789", `piece ${piece}`);
    }
  });

  await t.step("no framing: read to close; no reason phrase is fine", async () => {
    const r = await readResponse(source("HTTP/1.0 200\r\nX: y\r\n\r\nuntil the end"));
    assert.equal(r.statusCode, 200);
    assert.equal(text(r.body), "until the end");
  });

  await t.step("interim 1xx responses are skipped; 204 has no body", async () => {
    const r = await readResponse(
      source("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nignored"),
    );
    assert.equal(r.statusCode, 204);
    assert.equal(r.body.length, 0);
  });

  await t.step("a 3xx is returned as is (nothing follows Location)", async () => {
    const r = await readResponse(
      source(
        "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1/\r\nContent-Length: 0\r\n\r\n",
      ),
    );
    assert.equal(r.statusCode, 307);
  });

  await t.step("the body kept is cut at 4 KiB and reading stops at 64 KiB", async () => {
    const huge = "HTTP/1.1 200 OK\r\n\r\n" + "y".repeat(1_000_000);
    const src = source(huge, 1024);
    const r = await readResponse(src);
    assert.equal(r.body.length, 4096);
    assert.equal(r.truncated, true);
    assert.ok(src.consumed() < 70 * 1024, `read ${src.consumed()} bytes`);
    const chunk = "400\r\n" + "z".repeat(1024) + "\r\n"; // 1 KiB chunks, 1,000 of them
    const chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk.repeat(1000);
    const src2 = source(chunked, 4096);
    const r2 = await readResponse(src2);
    assert.equal(r2.body.length, 4096);
    assert.ok(src2.consumed() < 80 * 1024, `read ${src2.consumed()} bytes`);
  });

  await t.step("an endless head is refused after 16 KiB", async () => {
    const src = source("HTTP/1.1 200 OK\r\n" + "X-Long: " + "a".repeat(100_000), 512);
    await assert.rejects(() => readResponse(src), HttpProtocolError);
    assert.ok(src.consumed() < 20 * 1024);
  });

  await t.step("garbage is a protocol error, never a crash", async () => {
    for (
      const raw of [
        "",
        "SSH-2.0-OpenSSH_9.6\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      ]
    ) {
      await assert.rejects(() => readResponse(source(raw)), HttpProtocolError, JSON.stringify(raw));
    }
  });

  await t.step("a body cut short keeps what arrived", async () => {
    const r = await readResponse(source("HTTP/1.1 500 X\r\nContent-Length: 100\r\n\r\npartial"));
    assert.equal(r.statusCode, 500);
    assert.equal(text(r.body), "partial");
  });
});

Deno.test("request encoding", async (t) => {
  await t.step("head and body bytes", () => {
    const bytes = encodeRequest({
      method: "POST",
      target: "/hooks?a=1",
      headers: [["Host", "h.example:8443"], ["Content-Length", "2"]],
      body: new TextEncoder().encode("{}"),
    });
    assert.equal(
      text(bytes),
      "POST /hooks?a=1 HTTP/1.1\r\nHost: h.example:8443\r\nContent-Length: 2\r\n\r\n{}",
    );
  });

  await t.step("CR, LF or bad names never reach the wire", () => {
    const bad: [string, string][][] = [
      [["X-A", "1\r\nX-B: 2"]],
      [["X-A", "1\n"]],
      [["X A", "1"]],
      [["X:A", "1"]],
      [["", "1"]],
    ];
    for (const headers of bad) {
      assert.throws(
        () => encodeRequest({ method: "POST", target: "/", headers, body: new Uint8Array() }),
        HttpProtocolError,
      );
    }
    assert.throws(
      () => encodeRequest({ method: "POST", target: "/a b", headers: [], body: new Uint8Array() }),
      HttpProtocolError,
    );
  });
});
