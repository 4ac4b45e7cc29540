/**
 * The KV Connect test backend (tests/kv_connect/server.ts) decides on a request from its head
 * before reading its body (issue 20, defect 12): a request without the token is 401 and one whose
 * body is over denokv's body limit 413, neither with the body read. One 150 MB request without a
 * token once took the backend from 57 MB to 564 MB RSS.
 *
 * Raw TCP, so the test sees how much of the body the client could send before the answer came:
 * the client keeps sending until the answer arrives, and a backend that reads the whole body
 * first only answers once all of it is sent. Loopback buffers hold a few MiB, so a body many
 * times that size cannot all be sent to a backend that does not read it.
 */
import assert from "node:assert/strict";
import { backend, DATA_HEADERS, rawPost, TEST_TOKEN } from "./client.ts";
import { LIMITS } from "./limits.ts";
import { encodeMessage, SnapshotRead } from "./proto.ts";

const encoder = new TextEncoder();
const MiB = 1024 * 1024;
/** Far more than loopback's socket buffers can hold without the backend reading. */
const LARGE = 48 * MiB;

type Answer = { status: number; statusLine: string; sent: number; total: number };

/**
 * POSTs `total` zero bytes to `path` (with Content-Length, or chunked when `chunked`), sending
 * until the backend answers or the body is all sent; the answer's status and the bytes sent.
 */
async function postLarge(
  port: number,
  path: string,
  headers: Record<string, string>,
  total: number,
  chunked = false,
): Promise<Answer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = [
    `POST ${path} HTTP/1.1`,
    "Host: 127.0.0.1",
    chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${total}`,
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");
  await conn.write(encoder.encode(head));
  let answered = false;
  const reading = (async () => {
    const buf = new Uint8Array(16 * 1024);
    let text = "";
    try {
      while (!text.includes("\r\n")) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
    } finally {
      answered = true;
    }
    return text.split("\r\n")[0];
  })();
  const chunk = new Uint8Array(64 * 1024);
  let sent = 0;
  try {
    while (!answered && sent < total) {
      const part = chunk.subarray(0, Math.min(chunk.length, total - sent));
      if (chunked) {
        await writeAll(conn, encoder.encode(`${part.length.toString(16)}\r\n`));
        await writeAll(conn, part);
        await writeAll(conn, encoder.encode("\r\n"));
      } else {
        await writeAll(conn, part);
      }
      sent += part.length;
    }
    if (chunked && sent >= total && !answered) await writeAll(conn, encoder.encode("0\r\n\r\n"));
  } catch {
    // The backend closed the connection after answering: the body was not wanted.
  }
  try {
    const statusLine = await reading;
    return { status: Number(statusLine.split(" ")[1]), statusLine, sent, total };
  } finally {
    conn.close();
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}

/** Asserts the answer came with `status` while most of the body was still unsent. */
function assertRefusedUnread(a: Answer, status: number): void {
  assert.equal(a.status, status, a.statusLine);
  assert.ok(a.sent < a.total / 2, `the answer came after ${a.sent} of ${a.total} bytes were sent`);
}

Deno.test("the KV Connect backend refuses a request from its head, without reading its body", async (t) => {
  await using b = await backend();
  const noToken = { "content-type": "application/json" };

  await t.step("a metadata exchange without a token: 401 before the body is read", async () => {
    assertRefusedUnread(await postLarge(b.port, "/", noToken, LARGE), 401);
  });

  await t.step("a metadata exchange with a wrong token: 401 before the body is read", async () => {
    const wrong = { ...noToken, authorization: "Bearer not-the-token-000" };
    assertRefusedUnread(await postLarge(b.port, "/", wrong, LARGE), 401);
  });

  await t.step(
    "a chunked metadata exchange without a token: 401 before the body is read",
    async () => {
      assertRefusedUnread(await postLarge(b.port, "/", noToken, LARGE, true), 401);
    },
  );

  await t.step("a data-path request without a token: 401 before the body is read", async () => {
    const { authorization: _, ...headers } = DATA_HEADERS;
    assertRefusedUnread(await postLarge(b.port, "/v2/atomic_write", headers, LARGE), 401);
  });

  await t.step("an authorised request declaring more than the limit: 413 unread", async () => {
    const over = LIMITS.MAX_BODY_BYTES + 1;
    for (const path of ["/v2/snapshot_read", "/v2/atomic_write"]) {
      assertRefusedUnread(await postLarge(b.port, path, DATA_HEADERS, LARGE), 413);
      const a = await postLarge(b.port, path, DATA_HEADERS, over);
      assert.equal(a.status, 413, a.statusLine);
    }
    const auth = { ...noToken, authorization: `Bearer ${TEST_TOKEN}` };
    assertRefusedUnread(await postLarge(b.port, "/", auth, LARGE), 413);
  });

  await t.step(
    "an authorised chunked body over the limit: 413 once the limit is passed",
    async () => {
      for (const path of ["/", "/v2/atomic_write"]) {
        const headers = path === "/"
          ? { ...noToken, authorization: `Bearer ${TEST_TOKEN}` }
          : DATA_HEADERS;
        assertRefusedUnread(await postLarge(b.port, path, headers, LARGE, true), 413);
      }
    },
  );

  await t.step("requests within the limit still work, the largest included", async () => {
    const exchange = await fetch(b.url, {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ supportedVersions: [2] }),
    });
    assert.equal(exchange.status, 200);
    await exchange.body?.cancel();
    const read = encodeMessage(SnapshotRead, {
      ranges: [{ start: new Uint8Array([2, 0x61, 0]), end: new Uint8Array([2, 0x62]), limit: 1 }],
    });
    assert.equal((await rawPost(b.url, "snapshot_read", read)).status, 200);
    // A body of exactly the limit is read (and refused for what it says, not for its size).
    const atLimit = await rawPost(b.url, "atomic_write", new Uint8Array(LIMITS.MAX_BODY_BYTES));
    assert.notEqual(atLimit.status, 413, atLimit.text);
  });
});
