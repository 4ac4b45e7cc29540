/**
 * Deployments behind a reverse proxy and on a LAN host: which client the server sees, which
 * cookie it sets, which origin the CSRF check accepts, what the pages and logs say.
 */
import assert from "node:assert/strict";
import { parseTrustProxy } from "../../lib/client.ts";
import type { LogEntry } from "../../lib/log.ts";
import { makeTestApp, startServer, startTaskArgs, TEST_PASSWORD } from "../_helpers.ts";
import {
  BASE,
  cookieFrom,
  freshEmail,
  fromIp,
  json,
  signUp,
  statusOf,
  withCookie,
} from "../sessions_helpers.ts";

/** nginx's `proxy_pass http://127.0.0.1:8000` as this server sees it. */
const NGINX_URL = "http://127.0.0.1:8000";
const PROXY_PEER = fromIp("127.0.0.1");

/** The session cookie's Set-Cookie line (other cookies may be set beside it). */
function sessionSetCookie(res: Response): string {
  return res.headers.getSetCookie().find((c) => /^(__Host-)?inbound_session=/.test(c)) ?? "";
}

function viaProxy(init: RequestInit, headers: Record<string, string>): RequestInit {
  const h = new Headers(init.headers);
  for (const [name, value] of Object.entries(headers)) h.set(name, value);
  return { ...init, headers: h };
}

Deno.test("behind a trusted proxy the sign-in throttle counts each real client, not the proxy", async (t) => {
  const ctx = await makeTestApp({ config: { trustProxy: parseTrustProxy("127.0.0.0/8") } });
  try {
    const { email } = await signUp(ctx.app);
    const attacker = { "X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https" };
    await t.step(
      "ten junk sign-ins from one client are answered, the eleventh is 429",
      async () => {
        for (let i = 0; i < 10; i++) {
          const res = await ctx.app.request(
            `${NGINX_URL}/api/auth/sign-in`,
            viaProxy(json({ email: freshEmail(), password: "junk junk junk" }), attacker),
            PROXY_PEER,
          );
          assert.equal(await statusOf(res), 401);
        }
        const limited = await ctx.app.request(
          `${NGINX_URL}/api/auth/sign-in`,
          viaProxy(json({ email: freshEmail(), password: "junk junk junk" }), attacker),
          PROXY_PEER,
        );
        assert.equal(await statusOf(limited), 429);
      },
    );
    await t.step("another client behind the same proxy still signs in", async () => {
      const res = await ctx.app.request(
        `${NGINX_URL}/api/auth/sign-in`,
        viaProxy(json({ email, password: TEST_PASSWORD }), {
          "X-Forwarded-For": "198.51.100.23",
          "X-Forwarded-Proto": "https",
        }),
        PROXY_PEER,
      );
      assert.equal(await statusOf(res), 200);
    });
    await t.step("a client-supplied X-Forwarded-For prefix does not escape the limit", async () => {
      // nginx appends the real address: the attacker controls only the entries left of it.
      const res = await ctx.app.request(
        `${NGINX_URL}/api/auth/sign-in`,
        viaProxy(json({ email: freshEmail(), password: "junk junk junk" }), {
          "X-Forwarded-For": "192.0.2.200, 203.0.113.66",
        }),
        PROXY_PEER,
      );
      assert.equal(await statusOf(res), 429);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("forwarding headers from an untrusted peer change nothing", async (t) => {
  for (
    const [name, trustProxy] of [
      ["TRUST_PROXY unset", undefined],
      ["a peer outside TRUST_PROXY's ranges", "127.0.0.0/8,10.0.0.0/8"],
    ] as const
  ) {
    await t.step(name, async () => {
      const ctx = await makeTestApp({
        config: trustProxy ? { trustProxy: parseTrustProxy(trustProxy) } : {},
      });
      const lines: LogEntry[] = [];
      const logged = await makeTestApp({
        config: trustProxy ? { trustProxy: parseTrustProxy(trustProxy) } : {},
        logger: (e) => lines.push(e),
      });
      try {
        const peer = fromIp("203.0.113.9");
        // A new forged address every attempt: still one client, limited after ten.
        const statuses: number[] = [];
        for (let i = 0; i < 11; i++) {
          const res = await ctx.app.request(
            "http://localhost:8000/api/auth/sign-in",
            viaProxy(json({ email: freshEmail(), password: "junk junk junk" }), {
              "X-Forwarded-For": `192.0.2.${i + 1}`,
              Forwarded: `for=192.0.2.${i + 1};proto=https;host=evil.example`,
            }),
            peer,
          );
          statuses.push(await statusOf(res));
        }
        assert.deepEqual(statuses, [...Array(10).fill(401), 429]);
        // A forged https scheme does not make the localhost cookie Secure (it would be dropped).
        const res = await ctx.app.request(
          "http://localhost:8000/api/auth/sign-up",
          viaProxy(json({ email: freshEmail(), password: TEST_PASSWORD }), {
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
          }),
          peer,
        );
        assert.equal(res.status, 201);
        assert.match(sessionSetCookie(res), /^inbound_session=/);
        assert.doesNotMatch(sessionSetCookie(res), /Secure/);
        await res.body?.cancel();
        // The log line names the peer, not the forged address.
        await statusOf(logged.app.request(
          "http://localhost:8000/healthz",
          { headers: { "X-Forwarded-For": "192.0.2.77", Forwarded: "for=192.0.2.78" } },
          peer,
        ));
        assert.equal(lines.find((l) => l.msg === "request")?.ip, "203.0.113.9");
      } finally {
        await ctx.close();
        await logged.close();
      }
    });
  }
});

Deno.test("behind nginx with X-Forwarded-Proto: https the session cookie is __Host- and Secure", async (t) => {
  const ctx = await makeTestApp({ config: { trustProxy: parseTrustProxy("1") } });
  try {
    const https = { "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7" };
    const res = await ctx.app.request(
      `${NGINX_URL}/api/auth/sign-up`,
      viaProxy(json({ email: freshEmail(), password: TEST_PASSWORD }), https),
      PROXY_PEER,
    );
    assert.equal(res.status, 201);
    const set = sessionSetCookie(res);
    await res.body?.cancel();
    await t.step("the cookie has the __Host- name and Secure", () => {
      assert.match(set, /^__Host-inbound_session=[A-Za-z0-9_-]{43};/);
      assert.match(set, /; Secure/);
    });
    await t.step("the cookie authenticates the next request through the proxy", async () => {
      const next = await ctx.app.request(
        `${NGINX_URL}/api/auth/session`,
        viaProxy(withCookie(cookieFrom(res)), https),
        PROXY_PEER,
      );
      assert.equal(await statusOf(next), 200);
    });
    await t.step("the plain name is not read on the HTTPS site", async () => {
      const token = cookieFrom(res).split("=")[1];
      const next = await ctx.app.request(
        `${NGINX_URL}/api/auth/session`,
        viaProxy(withCookie(`inbound_session=${token}`), https),
        PROXY_PEER,
      );
      assert.equal(await statusOf(next), 401);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("sign-in and sign-up pages on plain HTTP off loopback say the session will not be kept", async (t) => {
  const ctx = await makeTestApp();
  try {
    for (const path of ["/sign-in", "/sign-up"]) {
      await t.step(`${path} on http://devbox.lan:8000 explains and says what to do`, async () => {
        const html = await (await ctx.app.request(`http://devbox.lan:8000${path}`)).text();
        assert.match(html, /plain HTTP/);
        assert.match(html, /HTTPS/);
        assert.match(html, /PUBLIC_URL=http:\/\/devbox\.lan:8000/);
      });
      await t.step(
        `${path} on http://localhost:8000 and over HTTPS says nothing of it`,
        async () => {
          for (const origin of ["http://localhost:8000", "https://inbound.example"]) {
            const html = await (await ctx.app.request(`${origin}${path}`)).text();
            assert.doesNotMatch(html, /PUBLIC_URL/);
          }
        },
      );
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("PUBLIC_URL=http://devbox.lan:8000 makes sign-in work on that LAN host", async (t) => {
  const ctx = await makeTestApp({ config: { publicUrl: "http://devbox.lan:8000" } });
  try {
    const lan = "http://devbox.lan:8000";
    const res = await ctx.app.request(`${lan}/sign-up`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: lan },
      body: new URLSearchParams({ email: freshEmail(), password: TEST_PASSWORD }).toString(),
    });
    await t.step("sign-up sets the plain cookie without Secure", () => {
      assert.equal(res.status, 303);
      const set = sessionSetCookie(res);
      assert.match(set, /^inbound_session=[A-Za-z0-9_-]{43};/);
      assert.doesNotMatch(set, /Secure/);
    });
    await t.step("the cookie opens the dashboard", async () => {
      const page = await ctx.app.request(`${lan}/settings/api-keys`, withCookie(cookieFrom(res)));
      assert.equal(await statusOf(page), 200);
    });
    await t.step("the pages no longer warn", async () => {
      const html = await (await ctx.app.request(`${lan}/sign-in`)).text();
      assert.doesNotMatch(html, /PUBLIC_URL/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("PUBLIC_URL decides the CSRF origin, the snippets and the OpenAPI servers entry", async (t) => {
  const ctx = await makeTestApp({ config: { publicUrl: "https://api.example.com" } });
  try {
    const { cookie } = await signUp(ctx.app, freshEmail(), TEST_PASSWORD);
    const post = (origin: string) =>
      ctx.app.request(
        `${NGINX_URL}/api/e2/api-keys`,
        withCookie(cookie, json({ name: "k" }, { headers: { Origin: origin } })),
        PROXY_PEER,
      );
    await t.step("a cookie request from the public origin is accepted", async () => {
      assert.equal(await statusOf(post("https://api.example.com")), 201);
    });
    await t.step("from another origin it is refused", async () => {
      assert.equal(await statusOf(post("https://evil.example")), 403);
      assert.equal(await statusOf(post("http://api.example.com")), 403);
    });
    await t.step("the dashboard's snippet names the public URL", async () => {
      const res = await ctx.app.request(
        `${NGINX_URL}/settings/api-keys`,
        withCookie(cookie, {
          method: "POST",
          headers: {
            "Content-Type": "application/x-www-form-urlencoded",
            Origin: "https://api.example.com",
          },
          body: "name=snippet",
        }),
        PROXY_PEER,
      );
      // Post/Redirect/Get: the new key's page is the redirect target.
      assert.equal(res.status, 303);
      const page = await ctx.app.request(
        `${NGINX_URL}${res.headers.get("Location")}`,
        withCookie(cookie),
        PROXY_PEER,
      );
      assert.match(await page.text(), /curl https:\/\/api\.example\.com\/api\/e2\/domains/);
    });
    await t.step("the OpenAPI document names the public URL", async () => {
      const doc = await (await ctx.app.request(`${NGINX_URL}/api/e2/openapi.json`)).json();
      assert.deepEqual(doc.servers, [{ url: "https://api.example.com" }]);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("each request's log line carries the resolved client address", async (t) => {
  const lines: LogEntry[] = [];
  const ctx = await makeTestApp({
    config: { trustProxy: parseTrustProxy("127.0.0.1/32,::1") },
    logger: (e) => lines.push(e),
  });
  try {
    const cases: [string, RequestInit, string][] = [
      ["a direct client", {}, "192.0.2.10"],
      ["behind the proxy", { headers: { "X-Forwarded-For": "198.51.100.4" } }, "127.0.0.1"],
      ["behind the proxy (Forwarded)", {
        headers: { Forwarded: 'for="[2001:DB8::0:1]:4711";proto=https' },
      }, "127.0.0.1"],
    ];
    const expected = ["192.0.2.10", "198.51.100.4", "2001:db8::1"];
    for (const [i, [name, init, peer]] of cases.entries()) {
      await t.step(name, async () => {
        lines.length = 0;
        await statusOf(ctx.app.request(`${BASE}/healthz`, init, fromIp(peer)));
        const line = lines.find((l) => l.msg === "request");
        assert.equal(line?.ip, expected[i]);
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("hostile forwarding headers from a trusted proxy never cause a 500", async () => {
  const lines: LogEntry[] = [];
  const ctx = await makeTestApp({
    config: { trustProxy: parseTrustProxy("127.0.0.0/8") },
    logger: (e) => lines.push(e),
  });
  try {
    const hostile: Record<string, string>[] = [
      { "X-Forwarded-For": "garbage" },
      { "X-Forwarded-For": "1.2.3.4, ::::::" },
      { "X-Forwarded-For": ",,,," },
      { "X-Forwarded-For": "999.1.1.1" },
      { "X-Forwarded-For": "1.2.3.4".repeat(5000) },
      { Forwarded: 'for="unterminated' },
      { Forwarded: "for=[::1" },
      { Forwarded: "for=1.2.3.4;for=5.6.7.8" },
      { Forwarded: "=;=,;;" },
      { Forwarded: "for=unknown" },
      { Forwarded: "for=_hidden, for=10.0.0.1", "X-Forwarded-For": "10.0.0.2" },
      { "X-Forwarded-Proto": "javascript", "X-Forwarded-Host": "evil.example/path" },
      { "X-Forwarded-Host": "a b", "X-Forwarded-Proto": "https, " },
      { "X-Forwarded-Host": "[zz]:99999999" },
      { Forwarded: 'host="a\\"b";proto="ht tps"' },
    ];
    for (const headers of hostile) {
      ctx.clock.advance(61_000); // each case's sign-up falls back to the proxy's address
      lines.length = 0;
      for (const path of ["/healthz", "/sign-in"]) {
        const res = await ctx.app.request(`${NGINX_URL}${path}`, { headers }, PROXY_PEER);
        assert.equal(await statusOf(res), 200, JSON.stringify(headers));
      }
      const res = await ctx.app.request(
        `${NGINX_URL}/api/auth/sign-up`,
        viaProxy(json({ email: freshEmail(), password: TEST_PASSWORD }), headers),
        PROXY_PEER,
      );
      assert.equal(await statusOf(res), 201, JSON.stringify(headers));
      assert.equal(
        lines.find((l) => l.msg === "request")?.ip,
        "127.0.0.1",
        JSON.stringify(headers),
      );
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("the real server reads TRUST_PROXY and PUBLIC_URL, and warns about a plain-HTTP PUBLIC_URL", async (t) => {
  const server = await startServer({
    DENO_KV_PATH: ":memory:",
    TRUST_PROXY: "127.0.0.1/32",
    PUBLIC_URL: "http://devbox.lan:8000",
  }, { direct: true });
  try {
    await t.step(
      "the start-up output warns that the session cookie travels unencrypted",
      async () => {
        const entries = () =>
          server.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
        const listening = entries().find((l) => l.msg === "listening");
        assert.equal(listening.trustProxy, "127.0.0.1/32");
        assert.equal(listening.publicUrl, "http://devbox.lan:8000");
        // Written right after the listening line: poll for it.
        let warn: { msg?: string } | undefined;
        for (let i = 0; i < 250 && !warn; i++) {
          warn = entries().find((l) => l.level === "warn");
          if (!warn) await new Promise((r) => setTimeout(r, 20));
        }
        assert.match(warn?.msg ?? "", /PUBLIC_URL is plain HTTP .*unencrypted/);
      },
    );
    await t.step(
      "a request forwarded by the trusted proxy is logged with the client's address",
      async () => {
        const res = await fetch(`${server.url}/healthz`, {
          headers: { "X-Forwarded-For": "198.51.100.61" },
        });
        await res.body?.cancel();
        const requestId = res.headers.get("X-Request-Id");
        let line: Record<string, unknown> | undefined;
        for (let i = 0; i < 100 && !line; i++) {
          line = server.output().split("\n").filter((l) => l.includes(`"${requestId}"`))
            .map((l) => JSON.parse(l)).find((l) => l.msg === "request");
          if (!line) await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(line?.ip, "198.51.100.61");
      },
    );
  } finally {
    await server.stop();
  }
});

Deno.test("a bad TRUST_PROXY or PUBLIC_URL stops the server at start-up with one line", async (t) => {
  for (
    const [name, value, message] of [
      ["PUBLIC_URL", "api.example.com", /^configuration error: PUBLIC_URL must be an absolute URL/],
      ["TRUST_PROXY", "true", /^configuration error: TRUST_PROXY must be a hop count/],
    ] as const
  ) {
    await t.step(`${name}=${value}`, async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: await startTaskArgs(),
        env: { PORT: "0", HOSTNAME: "127.0.0.1", DENO_KV_PATH: ":memory:", [name]: value },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(20_000),
      }).output();
      const stderr = new TextDecoder().decode(out.stderr).trim();
      assert.equal(out.code, 1, stderr);
      assert.equal(stderr.split("\n").length, 1, stderr);
      assert.match(stderr, message);
    });
  }
});
