/**
 * Issue 13, `PATCH /api/e2/api-keys/{id}`: changing a key's name, scopes and restrictions, and
 * disabling it; the change reaches this process at once and every other process within 1 s.
 */
import assert from "node:assert/strict";
import type { App } from "../../app.ts";
import { SUDO_WINDOW_MS } from "../../auth/sudo.ts";
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
  json,
  SEED_401,
  signUp,
  withCookie,
} from "../sessions_helpers.ts";

async function openApp(): Promise<TestApp & AsyncDisposable> {
  const ctx = await makeTestApp();
  return Object.assign(ctx, { [Symbol.asyncDispose]: () => ctx.close() });
}

async function patch(
  app: App,
  cookie: string,
  id: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await app.request(
    `${BASE}/api/e2/api-keys/${id}`,
    withCookie(cookie, json(body, { method: "PATCH" })),
  );
  return { status: res.status, body: await res.json() };
}

async function domains(app: App, key: string, init: RequestInit = {}) {
  const res = await app.request(`${BASE}/api/e2/domains`, bearer(key, init));
  return { status: res.status, body: await res.json() };
}

Deno.test("PATCH changes a key's name, scopes and restrictions, applied at once", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, { name: "ci" });
  assert.equal((await domains(ctx.app, k.key)).status, 200);

  await t.step("name and scopes change; the answer is the key's new view", async () => {
    const r = await patch(ctx.app, cookie, k.id, { name: "ci-read", scopes: ["domains:read"] });
    assert.equal(r.status, 200);
    assert.equal(r.body.name, "ci-read");
    assert.deepEqual(r.body.scopes, ["domains:read"]);
    assert.equal(r.body.id, k.id);
    assert.equal(r.body.key, undefined);
  });

  await t.step("the cached key obeys the new scopes on its next request", async () => {
    const w = await domains(ctx.app, k.key, json({ domain: "a.example.com" }));
    assert.equal(w.status, 403);
    assert.equal(w.body.code, "INSUFFICIENT_SCOPE");
    assert.equal((await domains(ctx.app, k.key)).status, 200);
  });

  await t.step("allowedIps and rateLimit apply at once, and null lifts them", async () => {
    const r = await patch(ctx.app, cookie, k.id, {
      allowedIps: ["198.51.100.0/24"],
      rateLimit: { max: 5, windowMs: 1000 },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.rateLimit, { max: 5, windowMs: 1000 });
    // app.request has no peer address: "unknown" is outside every range.
    const refused = await domains(ctx.app, k.key);
    assert.equal(refused.status, 403);
    assert.equal(refused.body.code, "IP_NOT_ALLOWED");
    const lifted = await patch(ctx.app, cookie, k.id, { allowedIps: null, rateLimit: null });
    assert.equal(lifted.status, 200);
    assert.equal(lifted.body.allowedIps, null);
    assert.equal((await domains(ctx.app, k.key)).status, 200);
  });

  await t.step("the list shows the change", async () => {
    const list = await (await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie)))
      .json();
    const item = list.data.find((x: { id: string }) => x.id === k.id);
    assert.equal(item.name, "ci-read");
    assert.deepEqual(item.scopes, ["domains:read"]);
  });
});

Deno.test("a disabled key answers the seed's 401 until it is enabled again", async () => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, { name: "paused" });
  assert.equal((await domains(ctx.app, k.key)).status, 200);
  const off = await patch(ctx.app, cookie, k.id, { disabled: true });
  assert.equal(off.status, 200);
  assert.equal(off.body.disabled, true);
  const refused = await domains(ctx.app, k.key);
  assert.equal(refused.status, 401);
  assert.deepEqual(refused.body, SEED_401);
  const on = await patch(ctx.app, cookie, k.id, { disabled: false });
  assert.equal(on.body.disabled, false);
  assert.equal((await domains(ctx.app, k.key)).status, 200);
});

Deno.test("PATCH refuses what it cannot do", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, cookie, { name: "k" });

  await t.step("a Bearer key cannot change keys (403 SESSION_REQUIRED)", async () => {
    const res = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${k.id}`,
      bearer(
        k.key,
        json({ scopes: ["domains:read", "domains:write", "audit:read"] }, {
          method: "PATCH",
        }),
      ),
    );
    assert.equal(res.status, 403);
    assert.equal((await res.json()).code, "SESSION_REQUIRED");
  });

  await t.step("an unknown or malformed id answers 404", async () => {
    for (const id of ["key_0000000000000000000000", "nope"]) {
      assert.equal((await patch(ctx.app, cookie, id, { name: "x" })).status, 404);
    }
  });

  await t.step("an empty body, an unknown field or scope is a 400", async () => {
    assert.equal((await patch(ctx.app, cookie, k.id, {})).status, 400);
    const unknown = await patch(ctx.app, cookie, k.id, { hash: "x" });
    assert.equal(unknown.status, 400);
    const scope = await patch(ctx.app, cookie, k.id, { scopes: ["admin"] });
    assert.equal(scope.status, 400);
    assert.equal(scope.body.field, "scopes.0");
  });

  await t.step("another account's key answers 404", async () => {
    const other = await createAccountWithKey(ctx.kv, ctx.clock);
    assert.equal((await patch(ctx.app, cookie, other.keyId, { name: "mine" })).status, 404);
  });

  await t.step("a session older than the sudo window must re-authenticate", async () => {
    ctx.clock.advance(SUDO_WINDOW_MS + 1000);
    const r = await patch(ctx.app, cookie, k.id, { name: "late" });
    assert.equal(r.status, 403);
    assert.equal(r.body.code, "REAUTHENTICATION_REQUIRED");
  });
});

async function status(server: ServerProcess, key: string, init: RequestInit = {}) {
  const res = await fetch(`${server.url}/api/e2/domains`, bearer(key, init));
  await res.body?.cancel();
  return res.status;
}

Deno.test("a change made by another process reaches both servers within 1 second", async (t) => {
  const path = await tempKvPath();
  // The servers write the same SQLite file (leases, lastUsedAt): this process's writes retry
  // SQLite's transient lock like the servers' own do (store/retrying_kv.ts).
  const kv = retryingKv(await Deno.openKv(path));
  const env = { DENO_KV_PATH: path, LOG_LEVEL: "silent", RATE_LIMIT_MAX: "1000" };
  const servers: ServerProcess[] = [];
  try {
    const account = await createAccountWithKey(kv, systemClock);
    const keys = apiKeyStore(kv, account.userId, systemClock);
    servers.push(...await Promise.all([startServer(env), startServer(env)]));
    const create = () => json({ domain: `d${crypto.randomUUID().slice(0, 8)}.example.com` });

    await t.step("both servers accept the key (and cache it)", async () => {
      for (let i = 0; i < 5; i++) {
        for (const s of servers) assert.equal(await status(s, account.key), 200);
      }
    });

    await t.step("narrowed to domains:read elsewhere, both refuse writes 1 s later", async () => {
      await keys.update(account.keyId, { scopes: ["domains:read"] });
      await new Promise((r) => setTimeout(r, 1000));
      for (const s of servers) {
        assert.equal(await status(s, account.key, create()), 403);
        assert.equal(await status(s, account.key), 200);
      }
    });

    await t.step("disabled elsewhere, both answer 401 1 s later; enabled, 200 again", async () => {
      await keys.update(account.keyId, { disabled: true });
      await new Promise((r) => setTimeout(r, 1000));
      for (const s of servers) assert.equal(await status(s, account.key), 401);
      await keys.update(account.keyId, { disabled: false });
      await new Promise((r) => setTimeout(r, 1000));
      for (const s of servers) assert.equal(await status(s, account.key), 200);
    });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    kv.close();
    await removeKvFile(path);
  }
});
