/**
 * Issue 13, scopes and restrictions: what a key created with `scopes`, `domainIds`, `allowedIps`
 * and `rateLimit` may do, the exact refusals, and keys made before these fields existed.
 */
import assert from "node:assert/strict";
import type { App } from "../../app.ts";
import { resetDenialGate } from "../../auth/api_keys/policy.ts";
import { grantFromForm } from "../../routes/api_keys/pages.tsx";
import { BUILT_IN_VOCABULARY } from "../../lib/scopes.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import type { AuditEvent } from "../../store/audit_log/events.ts";
import { apiKeyHashIndexKey, apiKeyKey, auditPrefix } from "../../store/keys.ts";
import { bearer, createAccountWithKey, makeTestApp, type TestApp } from "../_helpers.ts";
import { recordingKv } from "../_recording_kv.ts";
import {
  BASE,
  createKeyViaSession,
  fromIp,
  json,
  signUp,
  withCookie,
} from "../sessions_helpers.ts";

/** A test app closed by `await using`. */
async function openApp(
  opts: Parameters<typeof makeTestApp>[0] = {},
): Promise<TestApp & AsyncDisposable> {
  const ctx = await makeTestApp(opts);
  return Object.assign(ctx, { [Symbol.asyncDispose]: () => ctx.close() });
}

async function call(
  app: App,
  path: string,
  key: string,
  init: RequestInit = {},
  ip = "127.0.0.1",
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await app.request(`${BASE}${path}`, bearer(key, init), fromIp(ip));
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : {}, headers: res.headers };
}

async function addDomain(app: App, cookie: string, domain: string): Promise<string> {
  const res = await app.request(
    `${BASE}/api/e2/domains`,
    withCookie(cookie, json({ domain })),
  );
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()).id;
}

async function auditEvents(kv: Deno.Kv, userId: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for await (const e of kv.list<AuditEvent>({ prefix: auditPrefix(userId) })) out.push(e.value);
  return out;
}

async function pollUntil<T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const v = await read();
    if (done(v)) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  return await read();
}

Deno.test("scopes: defaults, explicit grants and unknown names", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);

  await t.step(
    "a key created without scopes gets every built-in scope but audit:read",
    async () => {
      const k = await createKeyViaSession(ctx.app, cookie, { name: "default" });
      assert.equal(k.res.status, 201);
      // Issue 23 added the endpoints and email-addresses scopes to the default.
      assert.deepEqual(k.body.scopes, [
        "domains:read",
        "domains:write",
        "endpoints:read",
        "endpoints:write",
        "email-addresses:read",
        "email-addresses:write",
      ]);
      assert.equal(k.body.domainIds, null);
      assert.equal(k.body.allowedIps, null);
      assert.equal(k.body.rateLimit, null);
      assert.equal(k.body.disabled, false);
      assert.equal((await call(ctx.app, "/api/e2/domains", k.key)).status, 200);
    },
  );

  await t.step("audit:read is granted only when asked for, and is then listed", async () => {
    const k = await createKeyViaSession(ctx.app, cookie, {
      name: "auditor",
      scopes: ["audit:read"],
    });
    assert.equal(k.res.status, 201);
    assert.deepEqual(k.body.scopes, ["audit:read"]);
    const list = await (await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie)))
      .json();
    const listed = list.data.find((x: { id: string }) => x.id === k.id);
    assert.deepEqual(listed.scopes, ["audit:read"]);
  });

  await t.step("an unknown scope is a 400 naming the field", async () => {
    const k = await createKeyViaSession(ctx.app, cookie, {
      name: "bad",
      scopes: ["domains:read", "domains:delete"],
    });
    assert.equal(k.res.status, 400);
    assert.equal(k.body.field, "scopes.1");
  });

  await t.step("an empty scope list is a 400 naming the field", async () => {
    const k = await createKeyViaSession(ctx.app, cookie, { name: "none", scopes: [] });
    assert.equal(k.res.status, 400);
    assert.equal(k.body.field, "scopes");
  });
});

Deno.test("a key lacking a scope answers 403 INSUFFICIENT_SCOPE with RFC 6750's challenge", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const reader = await createKeyViaSession(ctx.app, cookie, {
    name: "reader",
    scopes: ["domains:read"],
  });
  const writer = await createKeyViaSession(ctx.app, cookie, {
    name: "writer",
    scopes: ["domains:write"],
  });

  await t.step("the read-only key lists domains", async () => {
    assert.equal((await call(ctx.app, "/api/e2/domains", reader.key)).status, 200);
  });

  await t.step("the read-only key cannot add one: the exact body and header", async () => {
    const r = await call(ctx.app, "/api/e2/domains", reader.key, json({ domain: "a.example" }));
    assert.equal(r.status, 403);
    assert.deepEqual(r.body, {
      error: "Forbidden",
      message: "This API key lacks the domains:write scope.",
      statusCode: 403,
      code: "INSUFFICIENT_SCOPE",
      requiredScope: "domains:write",
    });
    assert.equal(
      r.headers.get("WWW-Authenticate"),
      'Bearer realm="API", error="insufficient_scope", scope="domains:write"',
    );
  });

  await t.step(
    "the scope is checked before the body: a malformed body still gets 403",
    async () => {
      const r = await call(ctx.app, "/api/e2/domains", reader.key, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{not json",
      });
      assert.equal(r.status, 403);
      assert.equal(r.body.code, "INSUFFICIENT_SCOPE");
    },
  );

  await t.step("the write-only key cannot read", async () => {
    const r = await call(ctx.app, "/api/e2/domains", writer.key);
    assert.equal(r.status, 403);
    assert.equal(r.body.requiredScope, "domains:read");
  });

  await t.step("a session holds every scope", async () => {
    const res = await ctx.app.request(`${BASE}/api/e2/domains`, withCookie(cookie));
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});

Deno.test("a key restricted to some domains sees only those", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const a = await addDomain(ctx.app, cookie, "a.example.com");
  const b = await addDomain(ctx.app, cookie, "b.example.com");
  ctx.clock.advance(1000);
  const c = await addDomain(ctx.app, cookie, "c.example.com");
  const k = await createKeyViaSession(ctx.app, cookie, { name: "ac", domainIds: [a, c] });
  assert.equal(k.res.status, 201);
  assert.deepEqual(k.body.domainIds, [a, c]);

  await t.step("the list and its total are filtered, newest first", async () => {
    const r = await call(ctx.app, "/api/e2/domains", k.key);
    assert.equal(r.status, 200);
    const data = r.body.data as { id: string }[];
    assert.deepEqual(data.map((d) => d.id), [c, a]);
    assert.equal((r.body.pagination as { total: number }).total, 2);
    const page = await call(ctx.app, "/api/e2/domains?limit=1&offset=1", k.key);
    assert.deepEqual((page.body.data as { id: string }[]).map((d) => d.id), [a]);
    assert.equal((page.body.pagination as { hasMore: boolean }).hasMore, false);
  });

  await t.step("its own domains answer as usual", async () => {
    assert.equal((await call(ctx.app, `/api/e2/domains/${a}`, k.key)).status, 200);
  });

  await t.step("another domain of the account answers exactly like a nonexistent id", async () => {
    const other = await call(ctx.app, `/api/e2/domains/${b}`, k.key);
    const missing = await call(ctx.app, `/api/e2/domains/dom_0000000000000000000000`, k.key);
    assert.equal(other.status, 404);
    assert.deepEqual(other.body, missing.body);
    assert.equal(missing.status, 404);
    const del = await call(ctx.app, `/api/e2/domains/${b}`, k.key, { method: "DELETE" });
    assert.equal(del.status, 404);
    assert.deepEqual(del.body, missing.body);
    const patch = await call(
      ctx.app,
      `/api/e2/domains/${b}`,
      k.key,
      json({ isCatchAllEnabled: false }, { method: "PATCH" }),
    );
    assert.equal(patch.status, 404);
    const still = await ctx.app.request(`${BASE}/api/e2/domains/${b}`, withCookie(cookie));
    assert.equal(still.status, 200);
    await still.body?.cancel();
  });

  await t.step("it cannot add domains", async () => {
    const r = await call(ctx.app, "/api/e2/domains", k.key, json({ domain: "d.example.com" }));
    assert.equal(r.status, 403);
    assert.equal(r.body.code, "DOMAIN_RESTRICTED_KEY");
  });

  await t.step("an id that is not the account's domain is a 400 naming the field", async () => {
    const bad = await createKeyViaSession(ctx.app, cookie, {
      name: "bad",
      domainIds: [a, "dom_0000000000000000000000"],
    });
    assert.equal(bad.res.status, 400);
    assert.equal(bad.body.field, "domainIds.1");
  });
});

Deno.test("a key with allowedIps is refused outside its ranges", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, {
    name: "office",
    allowedIps: ["203.0.113.0/24", "2001:db8::/32"],
  });
  assert.equal(k.res.status, 201);
  assert.deepEqual(k.body.allowedIps, ["203.0.113.0/24", "2001:db8::/32"]);

  await t.step("inside the IPv4 and IPv6 ranges it works", async () => {
    for (const ip of ["203.0.113.7", "2001:db8::1"]) {
      assert.equal((await call(ctx.app, "/api/e2/domains", k.key, {}, ip)).status, 200);
    }
  });

  await t.step("outside them it answers 403 IP_NOT_ALLOWED and spends no quota", async () => {
    for (const ip of ["198.51.100.1", "2001:db9::1", "127.0.0.1"]) {
      const r = await call(ctx.app, "/api/e2/domains", k.key, {}, ip);
      assert.equal(r.status, 403);
      assert.equal(r.body.code, "IP_NOT_ALLOWED");
      assert.equal(r.headers.get("X-RateLimit-Limit"), null);
    }
  });

  await t.step("a malformed range is a 400 naming the field", async () => {
    const bad = await createKeyViaSession(ctx.app, cookie, {
      name: "bad",
      allowedIps: ["10.0.0.0/8", "10.0.0.0/33"],
    });
    assert.equal(bad.res.status, 400);
    assert.equal(bad.body.field, "allowedIps.1");
  });
});

Deno.test("the allowlist is checked against the proxy-aware client address", async () => {
  await using ctx = await openApp({ config: { trustProxy: { kind: "hops", hops: 1 } } });
  const { cookie } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, {
    name: "proxied",
    allowedIps: ["203.0.113.0/24"],
  });
  const inside = await call(
    ctx.app,
    "/api/e2/domains",
    k.key,
    { headers: { "X-Forwarded-For": "203.0.113.9" } },
    "10.0.0.1",
  );
  assert.equal(inside.status, 200);
  const outside = await call(
    ctx.app,
    "/api/e2/domains",
    k.key,
    { headers: { "X-Forwarded-For": "198.51.100.9" } },
    "203.0.113.1",
  );
  assert.equal(outside.status, 403);
  assert.equal(outside.body.code, "IP_NOT_ALLOWED");
});

Deno.test("a key's own rate limit applies on top of the account's", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const limited = await createKeyViaSession(ctx.app, cookie, {
    name: "slow",
    rateLimit: { max: 3, windowMs: 1000 },
  });
  assert.equal(limited.res.status, 201);
  assert.deepEqual(limited.body.rateLimit, { max: 3, windowMs: 1000 });
  const free = await createKeyViaSession(ctx.app, cookie, { name: "free" });

  await t.step("it admits its max, with headers describing the tighter limit", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await call(ctx.app, "/api/e2/domains", limited.key);
      assert.equal(r.status, 200);
      assert.equal(r.headers.get("X-RateLimit-Limit"), "3");
      assert.equal(r.headers.get("X-RateLimit-Remaining"), String(2 - i));
    }
  });

  await t.step("then 429 with the key's limit in the message", async () => {
    const r = await call(ctx.app, "/api/e2/domains", limited.key);
    assert.equal(r.status, 429);
    assert.match(String(r.body.message), /Maximum 3 requests per second/);
    assert.equal(r.headers.get("X-RateLimit-Limit"), "3");
  });

  await t.step("the account's other keys are not affected", async () => {
    const r = await call(ctx.app, "/api/e2/domains", free.key);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("X-RateLimit-Limit"), String(ctx.config.rateLimit.max));
  });

  await t.step("the next window admits it again", async () => {
    ctx.clock.advance(1000);
    assert.equal((await call(ctx.app, "/api/e2/domains", limited.key)).status, 200);
  });

  await t.step("a limit looser than the account's is a 400 naming rateLimit.max", async () => {
    for (
      const rateLimit of [
        { max: ctx.config.rateLimit.max + 1, windowMs: ctx.config.rateLimit.windowMs },
        { max: ctx.config.rateLimit.max, windowMs: 1000 * 60 * 60 + 1 },
      ]
    ) {
      const bad = await createKeyViaSession(ctx.app, cookie, { name: "fast", rateLimit });
      assert.equal(bad.res.status, 400);
      assert.match(String(bad.body.field), /^rateLimit\./);
    }
  });
});

Deno.test("a key stored before scopes existed keeps working exactly as before", async () => {
  await using ctx = await openApp();
  const account = await createAccountWithKey(ctx.kv, ctx.clock);
  // Rewrite record and pointer in the old shape: no grant fields at all.
  const hash = sha256Hex(account.key);
  const record = (await ctx.kv.get<Record<string, unknown>>(
    apiKeyKey(account.userId, account.keyId),
  )).value!;
  const old = Object.fromEntries(
    Object.entries(record).filter(([k]) =>
      !["scopes", "domainIds", "allowedIps", "rateLimit", "disabled"].includes(k)
    ),
  );
  await ctx.kv.atomic()
    .set(apiKeyKey(account.userId, account.keyId), old)
    .set(apiKeyHashIndexKey(hash), {
      userId: account.userId,
      keyId: account.keyId,
      expiresAt: null,
    })
    .commit();
  assert.equal((await call(ctx.app, "/api/e2/domains", account.key)).status, 200);
  const created = await call(
    ctx.app,
    "/api/e2/domains",
    account.key,
    json({ domain: "old.example.com" }),
  );
  assert.equal(created.status, 201);
  const audit = await call(ctx.app, "/api/e2/audit-log", account.key);
  assert.equal(audit.status, 403);
  assert.equal(audit.body.requiredScope, "audit:read");
});

Deno.test("refusals are audited as api_key.denied, at most once per key per minute", async () => {
  resetDenialGate();
  await using ctx = await openApp();
  const { cookie, userId } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, {
    name: "reader",
    scopes: ["domains:read"],
  });
  for (let i = 0; i < 3; i++) {
    const r = await call(ctx.app, "/api/e2/domains", k.key, json({ domain: "x.example.com" }));
    assert.equal(r.status, 403);
  }
  const denied = (events: AuditEvent[]) => events.filter((e) => e.action === "api_key.denied");
  const events = await pollUntil(
    () => auditEvents(ctx.kv, userId),
    (e) => denied(e).length > 0,
  );
  assert.equal(denied(events).length, 1);
  const [event] = denied(events);
  assert.equal(event.target.id, k.id);
  assert.equal(event.outcome, "denied");
  assert.deepEqual(event.actor, { type: "api_key", id: k.id });
  assert.equal(event.details?.scope, "domains:write");
  assert.ok(!JSON.stringify(event).includes(k.key));
});

Deno.test("creating, changing, rolling, deleting and revoking keys are audited in their commits", async () => {
  await using ctx = await openApp();
  const { cookie, userId } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, { name: "audited" });
  const patched = await ctx.app.request(
    `${BASE}/api/e2/api-keys/${k.id}`,
    withCookie(cookie, json({ scopes: ["domains:read"] }, { method: "PATCH" })),
  );
  assert.equal(patched.status, 200);
  const rolled = await ctx.app.request(
    `${BASE}/api/e2/api-keys/${k.id}/roll`,
    withCookie(cookie, json({ expiresInHours: 0 })),
  );
  assert.equal(rolled.status, 201);
  const replacement = await rolled.json();
  assert.deepEqual(replacement.scopes, ["domains:read"]);
  const deleted = await ctx.app.request(
    `${BASE}/api/e2/api-keys/${replacement.id}`,
    withCookie(cookie, { method: "DELETE" }),
  );
  assert.equal(deleted.status, 200);
  const self = await createKeyViaSession(ctx.app, cookie, { name: "self" });
  const revoked = await call(ctx.app, "/api/e2/auth/revoke-key", self.key, { method: "POST" });
  assert.equal(revoked.status, 200);

  const events = (await auditEvents(ctx.kv, userId)).filter((e) => e.action.startsWith("api_key."));
  const summary = events.map((e) => [e.action, e.target.id]);
  for (
    const expected of [
      ["api_key.created", k.id],
      ["api_key.updated", k.id],
      ["api_key.rolled", k.id],
      ["api_key.deleted", replacement.id],
      ["api_key.created", self.id],
      ["api_key.revoked", self.id],
    ]
  ) {
    assert.ok(
      summary.some(([a, id]) => a === expected[0] && id === expected[1]),
      `missing ${expected.join(" ")} in ${JSON.stringify(summary)}`,
    );
  }
  const updated = events.find((e) => e.action === "api_key.updated")!;
  assert.deepEqual(updated.details?.changed, ["scopes"]);
  assert.equal(updated.actor.type, "session");
  const text = JSON.stringify(events);
  for (const secret of [k.key, replacement.key, self.key]) assert.ok(!text.includes(secret));
});

Deno.test("the dashboard's create form fields become the create body's grant", () => {
  assert.deepEqual(grantFromForm({ name: "old form" }, BUILT_IN_VOCABULARY), {});
  assert.deepEqual(
    grantFromForm({
      scopes_present: "1",
      scope_domains_read: "on",
      allowedIps: "203.0.113.0/24, 2001:db8::/32",
      domainIds: "",
      rateLimitMax: "10",
      rateLimitWindowSeconds: "60",
    }, BUILT_IN_VOCABULARY),
    {
      scopes: ["domains:read"],
      allowedIps: ["203.0.113.0/24", "2001:db8::/32"],
      rateLimit: { max: 10, windowMs: 60_000 },
    },
  );
});

Deno.test("a scoped, IP-restricted key costs no KV access beyond a default key's", async () => {
  const kv = await Deno.openKv(":memory:");
  const recording = recordingKv(kv);
  await using ctx = await openApp({ kv: recording.kv });
  const { cookie } = await signUp(ctx.app);
  const plain = await createKeyViaSession(ctx.app, cookie, { name: "plain" });
  const scoped = await createKeyViaSession(ctx.app, cookie, {
    name: "scoped",
    scopes: ["domains:read"],
    allowedIps: ["127.0.0.1/32"],
  });
  const accessesOf = async (key: string) => {
    // Warm the verified-key cache, the lastUsedAt throttle and the rate-limit lease.
    for (let i = 0; i < 3; i++) await call(ctx.app, "/api/e2/domains", key);
    await ctx.app.idle();
    recording.accesses.length = 0;
    assert.equal((await call(ctx.app, "/api/e2/domains", key)).status, 200);
    await ctx.app.idle();
    return recording.accesses.filter((a) => a.op === "get" || a.op === "getMany").length;
  };
  assert.equal(await accessesOf(scoped.key), await accessesOf(plain.key));
});
