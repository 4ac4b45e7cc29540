/**
 * `POST /api/e2/keys/verify`: one test per outcome code, the service token's own checks (missing,
 * wrong, revoked, used elsewhere, an API key used here) and the `ip` assertion permission.
 */
import assert from "node:assert/strict";
import { revokeServiceToken } from "../../auth/service_tokens.ts";
import { setUserStatus } from "../../store/accounts/users.ts";
import { listServiceTokens } from "../../store/service_tokens.ts";
import { FaultyKv } from "../_faulty_kv.ts";
import { createAccountWithKey } from "../_helpers.ts";
import { BASE, createKeyViaSession, SEED_401, signUp, withCookie } from "../sessions_helpers.ts";
import { openFwdApp, serviceToken, verify } from "./_fixtures.ts";

Deno.test("verify: each outcome code", async (t) => {
  await using ctx = await openFwdApp({
    config: { rateLimit: { max: 5, windowMs: 60_000, failOpen: false } },
  });
  const token = await serviceToken(ctx.kv, true);
  const { cookie, userId } = await signUp(ctx.app);
  const reader = await createKeyViaSession(ctx.app, cookie, {
    name: "orders reader",
    scopes: ["orders:read"],
  });
  assert.equal(reader.res.status, 201, JSON.stringify(reader.body));

  await t.step("valid: identity, scopes and the rate limit", async () => {
    const r = await verify(ctx.app, token, { key: reader.key, scope: "orders:read" });
    assert.equal(r.status, 200);
    assert.equal(r.body.valid, true);
    assert.equal(r.body.userId, userId);
    assert.equal(r.body.keyId, reader.id);
    assert.equal(r.body.name, "orders reader");
    assert.deepEqual(r.body.scopes, ["orders:read"]);
    const rl = r.body.ratelimit as Record<string, number>;
    assert.equal(rl.limit, 5);
    // The account's window: the key's creation (a session request) and this check.
    assert.equal(rl.remaining, 3);
    assert.ok(rl.reset > 0);
    // The verified key's limit is in the body, not on the service's response.
    assert.equal(r.headers.get("X-RateLimit-Limit"), null);
  });

  await t.step("INSUFFICIENT_SCOPE (by scope and by rule)", async () => {
    const r = await verify(ctx.app, token, { key: reader.key, scope: "orders:write" });
    assert.deepEqual([r.status, r.body.valid, r.body.code], [200, false, "INSUFFICIENT_SCOPE"]);
    assert.equal(r.body.requiredScope, "orders:write");
    const byRule = await verify(ctx.app, token, {
      key: reader.key,
      method: "POST",
      path: "/orders/1",
    });
    assert.equal(byRule.body.code, "INSUFFICIENT_SCOPE");
  });

  await t.step("RATE_LIMITED, with retryAfter and the limit", async () => {
    // Five requests per window: four spent above (each check spends one), this one is the last.
    const last = await verify(ctx.app, token, { key: reader.key });
    assert.equal(last.body.valid, true, JSON.stringify(last.body));
    assert.equal((last.body.ratelimit as Record<string, number>).remaining, 0);
    const r = await verify(ctx.app, token, { key: reader.key });
    assert.deepEqual([r.status, r.body.valid, r.body.code], [200, false, "RATE_LIMITED"]);
    assert.ok((r.body.retryAfter as number) >= 1);
    assert.equal((r.body.ratelimit as Record<string, number>).remaining, 0);
  });

  await t.step("NOT_FOUND: unknown and malformed keys", async () => {
    for (const key of ["inb_nope", reader.key.slice(0, -2) + "zz"]) {
      const r = await verify(ctx.app, token, { key });
      assert.deepEqual([r.status, r.body.valid, r.body.code], [200, false, "NOT_FOUND"]);
    }
  });

  await t.step("NO_MATCHING_RULE: an unknown rule, or a path no rule covers", async () => {
    const a = await verify(ctx.app, token, { key: reader.key, rule: "nope" });
    assert.equal(a.body.code, "NO_MATCHING_RULE");
    const b = await verify(ctx.app, token, {
      key: reader.key,
      method: "GET",
      path: "/orders/../admin",
    });
    assert.equal(b.body.code, "NO_MATCHING_RULE");
  });
});

Deno.test("verify: EXPIRED, DISABLED, ACCOUNT_SUSPENDED", async (t) => {
  await using ctx = await openFwdApp();
  const token = await serviceToken(ctx.kv);

  await t.step("EXPIRED", async () => {
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock, { expiresInDays: 1 });
    ctx.clock.advance(2 * 86_400_000);
    const r = await verify(ctx.app, token, { key });
    assert.deepEqual([r.status, r.body.valid, r.body.code], [200, false, "EXPIRED"]);
  });

  await t.step("DISABLED", async () => {
    const { cookie } = await signUp(ctx.app);
    const made = await createKeyViaSession(ctx.app, cookie, { name: "k" });
    const patch = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${made.id}`,
      withCookie(cookie, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ disabled: true }),
      }),
    );
    assert.equal(patch.status, 200, await patch.text());
    const r = await verify(ctx.app, token, { key: made.key });
    assert.deepEqual([r.status, r.body.valid, r.body.code], [200, false, "DISABLED"]);
  });

  await t.step("ACCOUNT_SUSPENDED", async () => {
    const { key, userId } = await createAccountWithKey(ctx.kv, ctx.clock);
    await setUserStatus(ctx.kv, userId, "suspended");
    const r = await verify(ctx.app, token, { key });
    assert.deepEqual([r.status, r.body.valid, r.body.code], [200, false, "ACCOUNT_SUSPENDED"]);
  });
});

Deno.test("verify: IP_NOT_ALLOWED and who may assert the client's address", async (t) => {
  await using ctx = await openFwdApp();
  const asserting = await serviceToken(ctx.kv, true);
  const plain = await serviceToken(ctx.kv, false);
  const { cookie } = await signUp(ctx.app);
  const office = await createKeyViaSession(ctx.app, cookie, {
    name: "office",
    allowedIps: ["203.0.113.0/24"],
  });

  await t.step(
    "an allowed token's ip inside the range: valid; outside: IP_NOT_ALLOWED",
    async () => {
      const ok = await verify(ctx.app, asserting, { key: office.key, ip: "203.0.113.5" });
      assert.equal(ok.body.valid, true, JSON.stringify(ok.body));
      // The asserted address is the key's last-used one (the service's own is not).
      await ctx.app.idle();
      const list = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
      const keys = (await list.json()).data as { id: string; lastUsedIp: string | null }[];
      assert.equal(keys.find((k) => k.id === office.id)?.lastUsedIp, "203.0.113.5");
      const no = await verify(ctx.app, asserting, { key: office.key, ip: "198.51.100.1" });
      assert.deepEqual([no.status, no.body.code], [200, "IP_NOT_ALLOWED"]);
    },
  );

  await t.step(
    "a restricted key with no asserted address: IP_NOT_ALLOWED (fail closed)",
    async () => {
      const r = await verify(ctx.app, plain, { key: office.key });
      assert.deepEqual([r.status, r.body.code], [200, "IP_NOT_ALLOWED"]);
    },
  );

  await t.step("a token without --may-assert-ip passing ip: 403 for the call", async () => {
    const r = await verify(ctx.app, plain, { key: office.key, ip: "203.0.113.5" });
    assert.equal(r.status, 403);
    assert.equal(r.body.code, "IP_ASSERTION_NOT_ALLOWED");
  });

  await t.step("a bad address or an unknown scope: 400 for the call", async () => {
    assert.equal((await verify(ctx.app, asserting, { key: office.key, ip: "nope" })).status, 400);
    const r = await verify(ctx.app, asserting, { key: office.key, scope: "nope:read" });
    assert.equal(r.status, 400);
    assert.equal(r.body.field, "scope");
  });
});

Deno.test("verify: only a service token authenticates the call, and only this call", async (t) => {
  await using ctx = await openFwdApp();
  const token = await serviceToken(ctx.kv);
  const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
  const SEED = JSON.stringify(SEED_401);

  await t.step("missing, wrong or an API key: the seed's 401", async () => {
    for (const t of [null, "inbsvc_" + "x".repeat(43), token.slice(0, -1) + "Q", key]) {
      const r = await verify(ctx.app, t, { key });
      assert.equal(r.status, 401, String(t));
      assert.equal(JSON.stringify(r.body), SEED);
    }
  });

  await t.step("a bad body from an unauthenticated caller is still a 401", async () => {
    const r = await verify(ctx.app, null, { nope: 1 });
    assert.equal(r.status, 401);
  });

  await t.step("the service token on another route: 401 like an unknown key", async () => {
    const res = await ctx.app.request(`${BASE}/api/e2/domains`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 401);
    assert.equal(await res.text(), SEED);
    const fwd = await ctx.app.request(`${BASE}/api/auth/forward`, {
      headers: { Authorization: `Bearer ${token}`, "X-Forwarded-Uri": "/v1/x" },
    });
    assert.equal(fwd.status, 401);
    await fwd.body?.cancel();
  });

  await t.step("a revoked token is refused on the next call", async () => {
    assert.equal((await verify(ctx.app, token, { key })).status, 200);
    const [record] = await listServiceTokens(ctx.kv);
    assert.ok(await revokeServiceToken(ctx.kv, record.id));
    assert.equal((await verify(ctx.app, token, { key })).status, 401);
  });
});

Deno.test("verify: the store failing is a 503 for the call", async () => {
  const faulty = new FaultyKv(await Deno.openKv(":memory:"));
  await using ctx = await openFwdApp({ kv: faulty.kv });
  const token = await serviceToken(ctx.kv);
  const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
  faulty.setMode({ kind: "throw", ops: ["get", "getMany", "list", "commit"] });
  try {
    const r = await verify(ctx.app, token, { key });
    assert.equal(r.status, 503);
  } finally {
    faulty.heal();
  }
});
