/**
 * Slow clients (issue 9 item 8): a request body that stops arriving is answered 408 at the request
 * deadline (the handler no longer waits on it), and SIGTERM ends the server within the deadline
 * even while such a client holds its connection open. Raw TCP, so a request can stop half-way.
 */
import assert from "node:assert/strict";
import {
  createAccountWithKey,
  makeTestApp,
  removeKvFile,
  startServer,
  tempKvPath,
} from "../_helpers.ts";

const encoder = new TextEncoder();

type RawResponse = { status: number; headers: Headers; body: string };

/** Reads one HTTP/1.1 response with a Content-Length; null if the connection ends before it. */
async function readResponse(conn: Deno.Conn, limitMs: number): Promise<RawResponse | null> {
  const decoder = new TextDecoder();
  const buf = new Uint8Array(16 * 1024);
  let text = "";
  const timer = setTimeout(() => conn.close(), limitMs);
  try {
    while (true) {
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const [statusLine, ...lines] = text.slice(0, end).split("\r\n");
        const headers = new Headers(lines.map((l) => {
          const i = l.indexOf(":");
          return [l.slice(0, i).trim(), l.slice(i + 1).trim()] as [string, string];
        }));
        const length = Number(headers.get("content-length"));
        const body = text.slice(end + 4);
        if (encoder.encode(body).length >= length) {
          return { status: Number(statusLine.split(" ")[1]), headers, body };
        }
      }
      const n = await conn.read(buf);
      if (n === null) return null;
      text += decoder.decode(buf.subarray(0, n), { stream: true });
    }
  } catch (err) {
    if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
      return null; // closed by the timer
    }
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a connection, sends `head` (and nothing more) and returns the response it gets. */
async function sendPartial(port: number, head: string, limitMs = 10_000): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(head));
    const res = await readResponse(conn, limitMs);
    assert.ok(res, `no response within ${limitMs} ms`);
    return res;
  } finally {
    try {
      conn.close();
    } catch { /* closed by readResponse's timer */ }
  }
}

const TRUNCATED_JSON = '{"email":"'; // 10 of the 100 bytes announced

Deno.test("a request body that stops arriving is answered 408 at the request deadline", async (t) => {
  const deadlineMs = 300;
  const test = await makeTestApp({ config: { requestTimeoutMs: deadlineMs } });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    test.app.fetch,
  );
  const port = server.addr.port;
  const host = `127.0.0.1:${port}`;
  try {
    await t.step("a JSON body with 10 of its 100 bytes gets 408 with the request id", async () => {
      const res = await sendPartial(
        port,
        `POST /api/auth/sign-in HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
          `Content-Length: 100\r\n\r\n${TRUNCATED_JSON}`,
      );
      assert.equal(res.status, 408, res.body);
      const body = JSON.parse(res.body);
      assert.equal(body.statusCode, 408);
      assert.equal(body.error, "Request Timeout");
      assert.equal(body.requestId, res.headers.get("x-request-id"));
    });

    await t.step("a chunked JSON body that stops mid-way gets 408", async () => {
      const { key } = await createAccountWithKey(test.kv, test.clock);
      const res = await sendPartial(
        port,
        `POST /api/e2/domains HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${key}\r\n` +
          `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"dom\r\n`,
      );
      assert.equal(res.status, 408, res.body);
    });

    await t.step("a dashboard form that stops arriving gets 408", async () => {
      const res = await sendPartial(
        port,
        `POST /sign-in HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://${host}\r\n` +
          `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=a`,
      );
      assert.equal(res.status, 408, res.body);
    });

    await t.step("a body sent in pieces that completes in time is answered as usual", async () => {
      const json = JSON.stringify({ email: "nobody@example.com", password: "not the password" });
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(encoder.encode(
          `POST /api/auth/sign-in HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://${host}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n` +
            json.slice(0, 10),
        ));
        await new Promise((resolve) => setTimeout(resolve, deadlineMs / 6));
        await conn.write(encoder.encode(json.slice(10)));
        const res = await readResponse(conn, 10_000);
        assert.ok(res);
        assert.equal(res.status, 401, res.body);
      } finally {
        conn.close();
      }
    });

    await t.step("a whole body whose handler stalls on the store still gets the 500", async () => {
      const realGet = test.kv.get.bind(test.kv);
      test.kv.get = (() => new Promise(() => {})) as typeof test.kv.get;
      try {
        const json = JSON.stringify({ email: "nobody@example.com", password: "not the password" });
        const res = await sendPartial(
          port,
          `POST /api/auth/sign-in HTTP/1.1\r\nHost: ${host}\r\nOrigin: http://${host}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
        );
        assert.equal(res.status, 500, res.body);
      } finally {
        test.kv.get = realGet;
      }
    });
  } finally {
    await server.shutdown().catch(() => {});
    await test.close();
  }
});

Deno.test(
  "SIGTERM ends the server within the request deadline while slow clients hold connections",
  async () => {
    const kvPath = await tempKvPath();
    const server = await startServer({ DENO_KV_PATH: kvPath }, { direct: true });
    const conns: Deno.Conn[] = [];
    try {
      const open = async (text: string) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        conns.push(conn);
        if (text) await conn.write(encoder.encode(text));
      };
      const host = `127.0.0.1:${server.port}`;
      await open(""); // connected, sends nothing
      await open(`GET /healthz HTTP/1.1\r\nHost: ${host}\r\n`); // half the headers
      await open(
        `POST /api/auth/sign-in HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\n` +
          `Content-Length: 100\r\n\r\n${TRUNCATED_JSON}`,
      ); // headers, then 10 of 100 body bytes
      // Everything sent has reached the server once a complete request on another connection is
      // answered after it.
      const health = await fetch(`${server.url}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();

      // The request deadline is 10 s; the bound leaves room for the grace period and a slow CI.
      const boundMs = 25_000;
      const exited = server.stop("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        exited.then((s) => s),
        new Promise<"still running">((resolve) => {
          timer = setTimeout(() => resolve("still running"), boundMs);
        }),
      ]);
      clearTimeout(timer);
      if (outcome === "still running") {
        await server.stop("SIGKILL");
        assert.fail(`the server was still running ${boundMs} ms after SIGTERM`);
      }
      assert.equal(outcome.code, 0, server.output());
    } finally {
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* already closed */ }
      }
      await server.stop("SIGKILL");
      await removeKvFile(kvPath);
    }
  },
);
