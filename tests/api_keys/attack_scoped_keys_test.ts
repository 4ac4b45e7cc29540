/**
 * Issue 13 from an outsider's side: a restricted key trying to do more than its grant allows
 * (scopes, domainIds, allowedIps, rateLimit) and attacks on PATCH /api/e2/api-keys/{id}.
 * Every test asserts the secure answer.
 */
import assert from "node:assert/strict";
import { type App, createApp } from "../../app.ts";
import { resetDenialGate } from "../../auth/api_keys/policy.ts";
import { parseTrustProxy } from "../../lib/client.ts";
import { systemClock } from "../../lib/clock.ts";
import { apiKeyStore } from "../../store/api_keys.ts";
import { retryingKv } from "../../store/retrying_kv.ts";
import {
  bearer,
  createAccountWithKey,
  makeTestApp,
  removeKvFile,
  type ServerProcess,
  startServer,
  tempKvPath,
  type TestApp,
} from "../_helpers.ts";
import {
  BASE,
  createKeyViaSession,
  fromIp,
  json,
  signUp,
  withCookie,
} from "../sessions_helpers.ts";

async function openApp(
  opts: Parameters<typeof makeTestApp>[0] = {},
): Promise<TestApp & AsyncDisposable> {
  resetDenialGate();
  const ctx = await makeTestApp(opts);
  return Object.assign(ctx, { [Symbol.asyncDispose]: () => ctx.close() });
}

type Answer = { status: number; body: Record<string, unknown>; headers: Headers };

async function call(
  app: App,
  path: string,
  key: string,
  init: RequestInit = {},
  ip = "127.0.0.1",
): Promise<Answer> {
  const res = await app.request(`${BASE}${path}`, bearer(key, init), fromIp(ip));
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { raw: text };
  }
  return { status: res.status, body, headers: res.headers };
}

async function asSession(app: App, cookie: string, path: string, init: RequestInit = {}) {
  const res = await app.request(`${BASE}${path}`, withCookie(cookie, init), fromIp("127.0.0.1"));
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {} };
}

async function addDomain(app: App, cookie: string, domain: string): Promise<string> {
  const r = await asSession(app, cookie, "/api/e2/domains", json({ domain }));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.id;
}

async function domainIds(app: App, cookie: string): Promise<string[]> {
  const r = await asSession(app, cookie, "/api/e2/domains");
  return (r.body.data as { id: string }[]).map((d) => d.id).sort();
}

const MISSING_DOMAIN = "dom_0000000000000000000000";
const MISSING_KEY = "key_0000000000000000000000";

Deno.test("a domains:read key cannot change anything, by any method or path", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const id = await addDomain(ctx.app, cookie, "read-only.example.com");
  const k = await createKeyViaSession(ctx.app, cookie, { name: "ro", scopes: ["domains:read"] });
  assert.equal(k.res.status, 201);
  const before = await domainIds(ctx.app, cookie);

  await t.step("POST, PATCH and DELETE under /api/e2 and /api/v2 answer 403", async () => {
    for (const prefix of ["/api/e2", "/api/v2", "/api/v2/", "/API/E2"]) {
      const attempts: [string, RequestInit][] = [
        [`${prefix}/domains`.replace("//", "/"), json({ domain: "new.example.com" })],
        [
          `${prefix}/domains/${id}`.replace("//", "/"),
          json({ isCatchAllEnabled: false }, {
            method: "PATCH",
          }),
        ],
        [`${prefix}/domains/${id}`.replace("//", "/"), { method: "DELETE" }],
      ];
      for (const [path, init] of attempts) {
        const r = await call(ctx.app, path, k.key, init);
        assert.ok(
          r.status === 403 || r.status === 404,
          `${init.method} ${path}: ${r.status} ${JSON.stringify(r.body)}`,
        );
        if (prefix !== "/API/E2") assert.equal(r.body.code, "INSUFFICIENT_SCOPE", path);
      }
    }
    assert.deepEqual(await domainIds(ctx.app, cookie), before);
  });

  await t.step("method-override headers and a _method parameter change nothing", async () => {
    for (const header of ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"]) {
      for (const method of ["GET", "POST"]) {
        const init: RequestInit = method === "POST"
          ? json({ isCatchAllEnabled: false }, { headers: { [header]: "DELETE" } })
          : { headers: { [header]: "DELETE" } };
        const r = await call(ctx.app, `/api/e2/domains/${id}?_method=DELETE`, k.key, init);
        assert.ok(r.status < 500, `${method} with ${header}: ${r.status}`);
        // A GET stays a read of the domain; a POST to a domain's path is no route.
        if (method === "GET") assert.equal(r.body.id, id);
        else assert.ok(r.status >= 400, `${method} with ${header}: ${r.status}`);
      }
    }
    assert.deepEqual(await domainIds(ctx.app, cookie), before);
  });

  await t.step("HEAD, OPTIONS and unknown methods neither change nor leak", async () => {
    for (const method of ["HEAD", "OPTIONS", "PUT", "PURGE"]) {
      for (const path of ["/api/e2/domains", `/api/e2/domains/${id}`, `/api/v2/domains/${id}`]) {
        const r = await call(ctx.app, path, k.key, { method });
        assert.ok(r.status < 500, `${method} ${path}: ${r.status}`);
        if (method !== "HEAD" && method !== "OPTIONS") {
          assert.ok(r.status >= 400, `${method} ${path}: ${r.status}`);
        }
        if (method === "OPTIONS") assert.equal(r.body.id, undefined);
      }
    }
    assert.deepEqual(await domainIds(ctx.app, cookie), before);
  });

  await t.step(
    "the scope is checked before the body is read: a bad body still answers 403",
    async () => {
      const r = await call(
        ctx.app,
        "/api/e2/domains",
        k.key,
        { method: "POST", headers: { "Content-Type": "application/json" }, body: "{not json" },
      );
      assert.equal(r.status, 403);
      assert.equal(r.body.code, "INSUFFICIENT_SCOPE");
    },
  );

  await t.step("it cannot widen itself: key management answers SESSION_REQUIRED", async () => {
    const r = await call(
      ctx.app,
      `/api/e2/api-keys/${k.id}`,
      k.key,
      json({ scopes: ["domains:read", "domains:write", "audit:read"] }, { method: "PATCH" }),
    );
    assert.equal(r.status, 403);
    assert.equal(r.body.code, "SESSION_REQUIRED");
    const mint = await call(ctx.app, "/api/e2/api-keys", k.key, json({ name: "more" }));
    assert.equal(mint.status, 403);
    assert.equal(mint.body.code, "SESSION_REQUIRED");
  });
});

Deno.test("a key restricted to some domains cannot tell others apart from nonexistent ids", async (t) => {
  await using ctx = await openApp();
  const alice = await signUp(ctx.app);
  const mallory = await signUp(ctx.app);
  const mine = await addDomain(ctx.app, alice.cookie, "mine.example.com");
  const sibling = await addDomain(ctx.app, alice.cookie, "sibling.example.com");
  for (let i = 0; i < 3; i++) await addDomain(ctx.app, alice.cookie, `more${i}.example.com`);
  const foreign = await addDomain(ctx.app, mallory.cookie, "foreign.example.com");
  const k = await createKeyViaSession(ctx.app, alice.cookie, { name: "one", domainIds: [mine] });
  assert.equal(k.res.status, 201);

  await t.step(
    "GET, PATCH and DELETE answer the same for siblings, foreign and missing ids",
    async () => {
      const requests: [string, RequestInit][] = [
        ["", {}],
        ["?check=true", {}],
        ["", json({ isCatchAllEnabled: false }, { method: "PATCH" })],
        ["", json({ isCatchAllEnabled: true, catchAllEndpointId: "e" }, { method: "PATCH" })],
        ["", { method: "DELETE" }],
      ];
      for (const [suffix, init] of requests) {
        const missing = await call(
          ctx.app,
          `/api/e2/domains/${MISSING_DOMAIN}${suffix}`,
          k.key,
          init,
        );
        assert.equal(missing.status, 404, `${init.method ?? "GET"}${suffix}`);
        for (const id of [sibling, foreign]) {
          for (const prefix of ["/api/e2", "/api/v2"]) {
            const r = await call(ctx.app, `${prefix}/domains/${id}${suffix}`, k.key, init);
            assert.equal(r.status, missing.status, `${init.method ?? "GET"} ${prefix} ${suffix}`);
            assert.deepEqual(r.body, missing.body);
          }
        }
      }
      assert.equal((await domainIds(ctx.app, alice.cookie)).length, 5);
      assert.equal((await domainIds(ctx.app, mallory.cookie)).length, 1);
    },
  );

  await t.step("the list, its total and its pages count only the key's domains", async () => {
    for (const q of ["", "?limit=1", "?offset=1", "?offset=4", "?status=pending", "?limit=100"]) {
      const r = await call(ctx.app, `/api/e2/domains${q}`, k.key);
      assert.equal(r.status, 200, q);
      const p = r.body.pagination as { total: number; hasMore: boolean };
      assert.equal(p.total, 1, q);
      assert.equal(p.hasMore, false, q);
      for (const d of r.body.data as { id: string }[]) assert.equal(d.id, mine);
    }
  });

  await t.step("it cannot add a domain, whatever the name", async () => {
    for (const domain of ["mine.example.com", "sub.mine.example.com", "new.example.com"]) {
      const r = await call(ctx.app, "/api/e2/domains", k.key, json({ domain }));
      assert.equal(r.status, 403);
      assert.equal(r.body.code, "DOMAIN_RESTRICTED_KEY");
    }
  });

  await t.step(
    "a grant naming another account's domain is refused like a missing one",
    async () => {
      const foreignGrant = await createKeyViaSession(ctx.app, alice.cookie, {
        name: "steal",
        domainIds: [foreign],
      });
      const missingGrant = await createKeyViaSession(ctx.app, alice.cookie, {
        name: "steal",
        domainIds: [MISSING_DOMAIN],
      });
      assert.equal(foreignGrant.res.status, 400);
      // The message names the id the caller sent (issue 22, item 3): the same answer but for it.
      const asSent = (body: unknown, id: string) => JSON.stringify(body).replaceAll(id, "<id>");
      assert.equal(asSent(foreignGrant.body, foreign), asSent(missingGrant.body, MISSING_DOMAIN));
      assert.match(String(foreignGrant.body.message), new RegExp(foreign));
      const patch = await asSession(
        ctx.app,
        alice.cookie,
        `/api/e2/api-keys/${k.id}`,
        json({ domainIds: [foreign] }, { method: "PATCH" }),
      );
      assert.equal(patch.status, 400);
    },
  );
});

Deno.test("allowedIps cannot be bypassed with forwarding headers", async (t) => {
  const spoofs: Record<string, string>[] = [
    { "X-Forwarded-For": "203.0.113.9" },
    { "Forwarded": "for=203.0.113.9" },
    { "Forwarded": 'for="[::ffff:203.0.113.9]"' },
    { "X-Real-IP": "203.0.113.9" },
    { "X-Forwarded-For": "203.0.113.9, 198.51.100.7" },
  ];

  await t.step("with TRUST_PROXY off, every forwarding header is ignored", async () => {
    await using ctx = await openApp();
    const { cookie } = await signUp(ctx.app);
    const k = await createKeyViaSession(ctx.app, cookie, {
      name: "office",
      allowedIps: ["203.0.113.0/24"],
    });
    for (const headers of spoofs) {
      const r = await call(ctx.app, "/api/e2/domains", k.key, { headers }, "198.51.100.7");
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal(r.body.code, "IP_NOT_ALLOWED");
    }
  });

  await t.step("when only one proxy is trusted, another peer's headers are ignored", async () => {
    await using ctx = await openApp({
      config: { trustProxy: parseTrustProxy("10.0.0.1") },
    });
    const { cookie } = await signUp(ctx.app);
    const k = await createKeyViaSession(ctx.app, cookie, {
      name: "office",
      allowedIps: ["203.0.113.0/24"],
    });
    for (const headers of spoofs) {
      const r = await call(ctx.app, "/api/e2/domains", k.key, { headers }, "10.0.0.2");
      assert.equal(r.status, 403, JSON.stringify(headers));
      assert.equal(r.body.code, "IP_NOT_ALLOWED");
    }
    // Through the trusted proxy, a client that prepends an allowed address is still itself.
    const chained = await call(
      ctx.app,
      "/api/e2/domains",
      k.key,
      { headers: { "X-Forwarded-For": "203.0.113.9, 198.51.100.7" } },
      "10.0.0.1",
    );
    assert.equal(chained.status, 403);
    const honest = await call(
      ctx.app,
      "/api/e2/domains",
      k.key,
      { headers: { "X-Forwarded-For": "203.0.113.9" } },
      "10.0.0.1",
    );
    assert.equal(honest.status, 200);
  });
});

Deno.test("an IPv4-mapped IPv6 client is the IPv4 client for an allowlist", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const v4 = await createKeyViaSession(ctx.app, cookie, {
    name: "v4",
    allowedIps: ["127.0.0.0/8"],
  });
  const v6 = await createKeyViaSession(ctx.app, cookie, { name: "v6", allowedIps: ["::1"] });

  await t.step(
    "::ffff:127.0.0.1 is inside 127.0.0.0/8 (dual-stack sockets report it so)",
    async () => {
      for (const ip of ["::ffff:127.0.0.1", "::FFFF:7f00:1"]) {
        assert.equal((await call(ctx.app, "/api/e2/domains", v4.key, {}, ip)).status, 200, ip);
      }
    },
  );

  await t.step("a mapped address outside the range is refused like the IPv4 one", async () => {
    for (const ip of ["::ffff:198.51.100.1", "198.51.100.1", "::1", "::127.0.0.1"]) {
      const r = await call(ctx.app, "/api/e2/domains", v4.key, {}, ip);
      assert.equal(r.status, 403, ip);
      assert.equal(r.body.code, "IP_NOT_ALLOWED");
    }
  });

  await t.step("an IPv6 allowlist does not admit the IPv4 loopback", async () => {
    for (const ip of ["127.0.0.1", "::ffff:127.0.0.1"]) {
      assert.equal((await call(ctx.app, "/api/e2/domains", v6.key, {}, ip)).status, 403, ip);
    }
    assert.equal((await call(ctx.app, "/api/e2/domains", v6.key, {}, "::1")).status, 200);
  });
});

Deno.test("a key's rate limit can never be looser than the account's", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const account = ctx.config.rateLimit;
  const base = await createKeyViaSession(ctx.app, cookie, { name: "base" });
  const looser = [
    { max: account.max + 1, windowMs: account.windowMs },
    // The same rate with a bigger burst is looser too.
    { max: account.max * 2, windowMs: account.windowMs * 2 },
    { max: Number.MAX_SAFE_INTEGER, windowMs: 3_600_000 },
  ];

  await t.step(
    "create and PATCH both refuse a looser limit with 400 naming rateLimit.max",
    async () => {
      for (const rateLimit of looser) {
        const c = await createKeyViaSession(ctx.app, cookie, { name: "fast", rateLimit });
        assert.equal(c.res.status, 400, JSON.stringify(rateLimit));
        assert.equal(c.body.field, "rateLimit.max");
        const p = await asSession(
          ctx.app,
          cookie,
          `/api/e2/api-keys/${base.id}`,
          json({ rateLimit }, { method: "PATCH" }),
        );
        assert.equal(p.status, 400, JSON.stringify(rateLimit));
        assert.equal(p.body.field, "rateLimit.max");
      }
    },
  );

  await t.step("non-integer and out-of-range values are refused", async () => {
    for (
      const rateLimit of [{ max: 1.5, windowMs: 1000 }, { max: 1, windowMs: 999 }, {
        max: 0,
        windowMs: 1000,
      }, { max: 1, windowMs: 1000, burst: 1000 }]
    ) {
      const c = await createKeyViaSession(ctx.app, cookie, { name: "x", rateLimit });
      assert.equal(c.res.status, 400, JSON.stringify(rateLimit));
    }
  });
});

Deno.test("PATCH /api/e2/api-keys/{id} cannot be turned against another account or a deleted key", async (t) => {
  await using ctx = await openApp();
  const alice = await signUp(ctx.app);
  const mallory = await signUp(ctx.app);
  const victim = await createKeyViaSession(ctx.app, alice.cookie, { name: "victim" });
  const own = await createKeyViaSession(ctx.app, mallory.cookie, { name: "mallory" });
  const patches = [{ disabled: true }, { scopes: ["domains:read"] }, { name: "pwned" }];

  await t.step("another account's key answers exactly like a nonexistent one", async () => {
    for (const body of patches) {
      const foreign = await asSession(
        ctx.app,
        mallory.cookie,
        `/api/e2/api-keys/${victim.id}`,
        json(body, { method: "PATCH" }),
      );
      const missing = await asSession(
        ctx.app,
        mallory.cookie,
        `/api/e2/api-keys/${MISSING_KEY}`,
        json(body, { method: "PATCH" }),
      );
      assert.equal(foreign.status, 404);
      assert.deepEqual(foreign, missing);
    }
    const list = await asSession(ctx.app, alice.cookie, "/api/e2/api-keys");
    const v = (list.body.data as { id: string; name: string; disabled: boolean }[])
      .find((k) => k.id === victim.id)!;
    assert.equal(v.name, "victim");
    assert.equal(v.disabled, false);
    assert.equal((await call(ctx.app, "/api/e2/domains", victim.key)).status, 200);
  });

  await t.step(
    "a Bearer key cannot PATCH, not even itself or with a cookie-less alias",
    async () => {
      for (const path of [`/api/e2/api-keys/${own.id}`, `/api/v2/api-keys/${own.id}`]) {
        const r = await call(
          ctx.app,
          path,
          own.key,
          json({ disabled: false }, { method: "PATCH" }),
        );
        assert.equal(r.status, 403);
        assert.equal(r.body.code, "SESSION_REQUIRED");
      }
    },
  );

  await t.step("a deleted key cannot be brought back by PATCH", async () => {
    const del = await asSession(ctx.app, mallory.cookie, `/api/e2/api-keys/${own.id}`, {
      method: "DELETE",
    });
    assert.equal(del.status, 200);
    for (const body of [{ disabled: false }, { name: "back" }]) {
      const r = await asSession(
        ctx.app,
        mallory.cookie,
        `/api/e2/api-keys/${own.id}`,
        json(body, { method: "PATCH" }),
      );
      assert.equal(r.status, 404);
    }
    assert.equal((await call(ctx.app, "/api/e2/domains", own.key)).status, 401);
    const list = await asSession(ctx.app, mallory.cookie, "/api/e2/api-keys");
    assert.deepEqual(list.body.data, []);
  });
});

Deno.test("a disabled key stops working in another instance sharing the KV", async (t) => {
  await using ctx = await openApp();
  const other = createApp({ kv: ctx.kv, clock: ctx.clock, config: ctx.config });
  try {
    const { cookie } = await signUp(ctx.app);
    const k = await createKeyViaSession(ctx.app, cookie, { name: "shared" });

    await t.step("the other instance caches the key by using it", async () => {
      assert.equal((await call(other, "/api/e2/domains", k.key)).status, 200);
      assert.equal((await call(other, "/api/e2/domains", k.key)).status, 200);
    });

    await t.step("after PATCH disabled, it answers 401 there within a generous bound", async () => {
      const p = await asSession(
        ctx.app,
        cookie,
        `/api/e2/api-keys/${k.id}`,
        json({ disabled: true }, { method: "PATCH" }),
      );
      assert.equal(p.status, 200);
      assert.equal(p.body.disabled, true);
      assert.equal((await call(ctx.app, "/api/e2/domains", k.key)).status, 401);
      const deadline = Date.now() + 10_000;
      let status = 200;
      while (Date.now() < deadline) {
        status = (await call(other, "/api/e2/domains", k.key)).status;
        if (status === 401) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 401);
    });

    await t.step("a narrowed scope reaches the other instance too", async () => {
      const k2 = await createKeyViaSession(ctx.app, cookie, { name: "narrow" });
      assert.equal(
        (await call(other, "/api/e2/domains", k2.key, json({ domain: "x1.example.com" })))
          .status,
        201,
      );
      const p = await asSession(
        ctx.app,
        cookie,
        `/api/e2/api-keys/${k2.id}`,
        json({ scopes: ["domains:read"] }, { method: "PATCH" }),
      );
      assert.equal(p.status, 200);
      const deadline = Date.now() + 10_000;
      let status = 201;
      let n = 2;
      while (Date.now() < deadline) {
        status =
          (await call(other, "/api/e2/domains", k2.key, json({ domain: `x${n++}.example.com` })))
            .status;
        if (status === 403) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(status, 403);
    });
  } finally {
    await other.idle();
  }
});

Deno.test("a rolled restricted key's replacement keeps every restriction", async () => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const a = await addDomain(ctx.app, cookie, "kept.example.com");
  await addDomain(ctx.app, cookie, "hidden.example.com");
  const k = await createKeyViaSession(ctx.app, cookie, {
    name: "narrow",
    scopes: ["domains:read"],
    domainIds: [a],
    allowedIps: ["127.0.0.0/8"],
    rateLimit: { max: 5, windowMs: 1000 },
  });
  const rolled = await asSession(
    ctx.app,
    cookie,
    `/api/e2/api-keys/${k.id}/roll`,
    json({ expiresInHours: 0 }),
  );
  assert.equal(rolled.status, 201);
  for (const f of ["scopes", "domainIds", "allowedIps", "rateLimit"]) {
    assert.deepEqual(rolled.body[f], k.body[f], f);
  }
  const key = String(rolled.body.key);
  const list = await call(ctx.app, "/api/e2/domains", key);
  assert.equal((list.body.pagination as { total: number }).total, 1);
  assert.equal((await call(ctx.app, "/api/e2/domains", key, {}, "198.51.100.1")).status, 403);
  const write = await call(ctx.app, "/api/e2/domains", key, json({ domain: "x.example.com" }));
  assert.equal(write.status, 403);
});

Deno.test("a key disabled or narrowed by another process stops working in a running server", async (t) => {
  const path = await tempKvPath();
  // Another process, as the admin CLI opens it (SQLite's lock retried).
  const kv = retryingKv(await Deno.openKv(path));
  let server: ServerProcess | undefined;
  const status = async (key: string, init: RequestInit = {}) => {
    const res = await fetch(`${server!.url}/api/e2/domains`, bearer(key, init));
    await res.body?.cancel();
    return res.status;
  };
  const pollFor = async (want: number, read: () => Promise<number>) => {
    const deadline = Date.now() + 10_000;
    let got = await read();
    while (got !== want && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      got = await read();
    }
    return got;
  };
  try {
    const account = await createAccountWithKey(kv, systemClock);
    const narrowed = await createAccountWithKey(kv, systemClock);
    server = await startServer({ DENO_KV_PATH: path, LOG_LEVEL: "silent" }, { direct: true });
    const keys = apiKeyStore(kv, account.userId, systemClock);

    await t.step("the server caches the key by using it", async () => {
      for (let i = 0; i < 3; i++) assert.equal(await status(account.key), 200);
    });

    await t.step("disabled elsewhere, it answers 401 there within a generous bound", async () => {
      await keys.update(account.keyId, { disabled: true });
      assert.equal(await pollFor(401, () => status(account.key)), 401);
    });

    await t.step("re-enabled, it works again", async () => {
      await keys.update(account.keyId, { disabled: false });
      assert.equal(await pollFor(200, () => status(account.key)), 200);
    });

    await t.step("narrowed to domains:read elsewhere, its writes are refused there", async () => {
      assert.equal(await status(narrowed.key), 200);
      await apiKeyStore(kv, narrowed.userId, systemClock).update(narrowed.keyId, {
        scopes: ["domains:read"],
      });
      let n = 0;
      const write = () =>
        status(narrowed.key, json({ domain: `w${n++}.example.com` }, { method: "POST" }));
      assert.equal(await pollFor(403, write), 403);
    });
  } finally {
    await server?.stop();
    kv.close();
    await removeKvFile(path);
  }
});

Deno.test("a stale session cannot PATCH a key until it proves the password again", async () => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, { name: "sudo", scopes: ["domains:read"] });
  ctx.clock.advance(60 * 60 * 1000);
  const r = await asSession(
    ctx.app,
    cookie,
    `/api/e2/api-keys/${k.id}`,
    json({ scopes: ["domains:read", "domains:write", "audit:read"] }, { method: "PATCH" }),
  );
  assert.equal(r.status, 403);
  assert.equal(r.body.code, "REAUTHENTICATION_REQUIRED");
  const list = await asSession(ctx.app, cookie, "/api/e2/api-keys");
  const key = (list.body.data as { id: string; scopes: string[] }[]).find((x) => x.id === k.id)!;
  assert.deepEqual(key.scopes, ["domains:read"]);
});
