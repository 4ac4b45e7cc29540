import assert from "node:assert/strict";
import type { App } from "../../app.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { bearer, createAccountWithKey, makeTestApp } from "../_helpers.ts";
import {
  BASE,
  createKeyViaSession,
  json,
  reauthenticate,
  SEED_401,
  signUp,
  statusOf,
  withCookie,
} from "../sessions_helpers.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Issue 13 adds the grant (scopes and restrictions) to the key's view.
const VIEW_FIELDS = [
  "allowedIps",
  "createdAt",
  "disabled",
  "domainIds",
  "expiresAt",
  "id",
  "lastUsedAt",
  "lastUsedIp",
  "name",
  "rateLimit",
  "scopes",
  "start",
];

async function domainsStatus(app: App, key: string): Promise<number> {
  return await statusOf(app.request(`${BASE}/api/e2/domains`, bearer(key)));
}

Deno.test("creating a key answers 201 with the key once, not cached, and it works at once", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const { key, res, body } = await createKeyViaSession(ctx.app, cookie, { name: "production" });
    await t.step("201, no-store, the JSON content type", () => {
      assert.equal(res.status, 201);
      assert.equal(res.headers.get("Cache-Control"), "no-store");
      assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
    });
    await t.step("the body is the key's view plus the key, never its hash", () => {
      assert.deepEqual(Object.keys(body).sort(), [...VIEW_FIELDS, "key"].sort());
      assert.equal(body.name, "production");
      assert.equal(body.lastUsedAt, null);
      assert.equal(body.expiresAt, null);
      assert.match(key, /^inb_[0-9A-Za-z]{42}$/);
      assert.equal(body.start, key.slice(0, 10));
      assert.ok(!JSON.stringify(body).includes(sha256Hex(key)));
    });
    await t.step("the key authenticates the seed's request", async () => {
      assert.equal(await domainsStatus(ctx.app, key), 200);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the key list never contains a key or its hash", async () => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const a = await createKeyViaSession(ctx.app, cookie, { name: "a" });
    ctx.clock.advance(1000);
    const b = await createKeyViaSession(ctx.app, cookie, { name: "b", expiresInDays: 30 });
    const res = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("Cache-Control"), "no-store");
    const text = await res.text();
    for (const k of [a.key, b.key]) {
      assert.ok(!text.includes(k), "a plaintext key is listed");
      assert.ok(!text.includes(sha256Hex(k)), "a key hash is listed");
    }
    const { data } = JSON.parse(text);
    assert.deepEqual(data.map((k: { name: string }) => k.name), ["b", "a"]);
    for (const item of data) assert.deepEqual(Object.keys(item).sort(), VIEW_FIELDS);
    assert.equal(data[0].expiresAt, new Date(ctx.clock() + 30 * DAY).toISOString());
  } finally {
    await ctx.close();
  }
});

Deno.test("key creation validates its body", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const cases: [string, unknown, string][] = [
      ["no name", {}, "name"],
      ["a blank name", { name: "   " }, "name"],
      ["a name over 100 characters", { name: "x".repeat(101) }, "name"],
      ["a fractional expiry", { name: "n", expiresInDays: 1.5 }, "expiresInDays"],
      ["a zero expiry", { name: "n", expiresInDays: 0 }, "expiresInDays"],
      ["an expiry over 3650 days", { name: "n", expiresInDays: 3651 }, "expiresInDays"],
      ["an expiry given as a string", { name: "n", expiresInDays: "7" }, "expiresInDays"],
    ];
    for (const [name, body, field] of cases) {
      await t.step(name, async () => {
        const res = await ctx.app.request(
          `${BASE}/api/e2/api-keys`,
          withCookie(cookie, json(body)),
        );
        assert.equal(res.status, 400);
        const err = await res.json();
        assert.equal(err.error, "Bad Request");
        assert.equal(err.message, "Validation failed. Check your request parameters.");
        assert.equal(err.field, field);
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("a key created with expiresInDays stops working when it expires", async () => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const { key } = await createKeyViaSession(ctx.app, cookie, { name: "n", expiresInDays: 1 });
    ctx.clock.advance(DAY - 1);
    assert.equal(await domainsStatus(ctx.app, key), 200);
    ctx.clock.advance(1);
    assert.equal(await domainsStatus(ctx.app, key), 401);
  } finally {
    await ctx.close();
  }
});

Deno.test("a deleted key stops working at once", async () => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const { key, id } = await createKeyViaSession(ctx.app, cookie);
    assert.equal(await domainsStatus(ctx.app, key), 200);
    const del = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${id}`,
      withCookie(cookie, { method: "DELETE" }),
    );
    assert.equal(del.status, 200);
    assert.deepEqual(await del.json(), {
      success: true,
      id,
      message: "API key deleted. It no longer authenticates.",
    });
    const after = await ctx.app.request(`${BASE}/api/e2/domains`, bearer(key));
    assert.equal(after.status, 401);
    assert.deepEqual(await after.json(), SEED_401);
    const again = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${id}`,
      withCookie(cookie, { method: "DELETE" }),
    );
    assert.equal(again.status, 404);
    await again.body?.cancel();
  } finally {
    await ctx.close();
  }
});

Deno.test("another account's key id answers exactly like a nonexistent id", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const other = await createAccountWithKey(ctx.kv, ctx.clock);
    const missing = "key_" + "Z".repeat(22);
    for (
      const [name, path, init] of [
        ["delete", "", { method: "DELETE" }],
        ["roll", "/roll", json({ expiresInHours: 0 })],
      ] as const
    ) {
      await t.step(name, async () => {
        const theirs = await ctx.app.request(
          `${BASE}/api/e2/api-keys/${other.keyId}${path}`,
          withCookie(cookie, init),
        );
        const none = await ctx.app.request(
          `${BASE}/api/e2/api-keys/${missing}${path}`,
          withCookie(cookie, init),
        );
        const junk = await ctx.app.request(
          `${BASE}/api/e2/api-keys/not-an-id${path}`,
          withCookie(cookie, init),
        );
        assert.equal(theirs.status, 404);
        assert.equal(none.status, 404);
        assert.equal(junk.status, 404);
        const bodies = [await theirs.json(), await none.json(), await junk.json()];
        assert.deepEqual(bodies[0], bodies[1]);
        assert.deepEqual(bodies[0], bodies[2]);
        assert.deepEqual(bodies[0], {
          error: "Not Found",
          message: "No API key with that id.",
          statusCode: 404,
        });
      });
    }
    await t.step("the other account's key still works", async () => {
      assert.equal(await domainsStatus(ctx.app, other.key), 200);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a Bearer key cannot list, create, roll or delete keys", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { key, keyId } = await createAccountWithKey(ctx.kv, ctx.clock);
    const cases: [string, string, RequestInit][] = [
      ["list", "", {}],
      ["create", "", json({ name: "minted by a leaked key" })],
      ["roll", `/${keyId}/roll`, json({ expiresInHours: 0 })],
      ["delete", `/${keyId}`, { method: "DELETE" }],
    ];
    for (const [name, path, init] of cases) {
      await t.step(`${name}: 403`, async () => {
        const res = await ctx.app.request(`${BASE}/api/e2/api-keys${path}`, bearer(key, init));
        assert.equal(res.status, 403);
        assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
        const body = await res.json();
        assert.equal(body.error, "Forbidden");
        assert.equal(body.statusCode, 403);
        assert.equal(body.code, "SESSION_REQUIRED");
      });
    }
    await t.step("the key is unchanged and still the account's only key", async () => {
      assert.equal(await domainsStatus(ctx.app, key), 200);
      const keys = await Array.fromAsync(ctx.kv.list({ prefix: ["idx", "api_key"] }));
      assert.equal(keys.length, 1);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("rolling a key keeps the old one only for the grace period", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);

    await t.step("with 2 hours of grace both work until the grace ends", async () => {
      const old = await createKeyViaSession(ctx.app, cookie, { name: "rolled" });
      const res = await ctx.app.request(
        `${BASE}/api/e2/api-keys/${old.id}/roll`,
        withCookie(cookie, json({ expiresInHours: 2 })),
      );
      assert.equal(res.status, 201);
      assert.equal(res.headers.get("Cache-Control"), "no-store");
      const body = await res.json();
      assert.equal(body.name, "rolled");
      assert.notEqual(body.key, old.key);
      assert.notEqual(body.id, old.id);
      assert.deepEqual(body.previous, {
        id: old.id,
        expiresAt: new Date(ctx.clock() + 2 * HOUR).toISOString(),
        revoked: false,
      });
      assert.equal(await domainsStatus(ctx.app, old.key), 200);
      assert.equal(await domainsStatus(ctx.app, body.key), 200);
      ctx.clock.advance(2 * HOUR);
      await reauthenticate(ctx.app, cookie); // sudo mode: the sign-in is now older than 10 minutes
      assert.equal(await domainsStatus(ctx.app, old.key), 401);
      assert.equal(await domainsStatus(ctx.app, body.key), 200);
    });

    await t.step("with 0 hours the old key is revoked in the same step", async () => {
      const old = await createKeyViaSession(ctx.app, cookie, { name: "now" });
      const res = await ctx.app.request(
        `${BASE}/api/e2/api-keys/${old.id}/roll`,
        withCookie(cookie, json({ expiresInHours: 0 })),
      );
      assert.equal(res.status, 201);
      const body = await res.json();
      assert.equal(body.previous.revoked, true);
      assert.equal(await domainsStatus(ctx.app, old.key), 401);
      assert.equal(await domainsStatus(ctx.app, body.key), 200);
    });

    for (const bad of [-1, 169, 1.5, "24", null]) {
      await t.step(`expiresInHours ${JSON.stringify(bad)} is refused`, async () => {
        const k = await createKeyViaSession(ctx.app, cookie, { name: "bad" });
        const res = await ctx.app.request(
          `${BASE}/api/e2/api-keys/${k.id}/roll`,
          withCookie(cookie, json({ expiresInHours: bad })),
        );
        assert.equal(res.status, 400);
        assert.equal((await res.json()).field, "expiresInHours");
        assert.equal(await domainsStatus(ctx.app, k.key), 200);
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("a rolled key's replacement gets a lifetime of its own, and only a live key can be rolled", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const roll = (id: string, body: Record<string, unknown>) =>
      ctx.app.request(`${BASE}/api/e2/api-keys/${id}/roll`, withCookie(cookie, json(body)));
    const assertNotRollable = async (res: Response) => {
      assert.equal(res.status, 409);
      assert.equal(res.headers.get("x-should-retry"), "false");
      const body = await res.json();
      assert.equal(body.error, "Conflict");
      assert.equal(body.statusCode, 409);
      assert.equal(body.code, "API_KEY_NOT_ROLLABLE");
      assert.equal(typeof body.message, "string");
      assert.equal("key" in body, false);
    };

    await t.step(
      "rolling twice gives the second replacement the original lifetime from now",
      async () => {
        const first = await createKeyViaSession(ctx.app, cookie, {
          name: "twice",
          expiresInDays: 30,
        });
        ctx.clock.advance(2 * DAY); // (the session lives 7 days)
        await reauthenticate(ctx.app, cookie); // sudo mode: the sign-in is now older than 10 minutes
        const a = await (await roll(first.id, { expiresInHours: 1 })).json();
        assert.equal(a.expiresAt, new Date(ctx.clock() + 30 * DAY).toISOString());
        ctx.clock.advance(DAY);
        await reauthenticate(ctx.app, cookie); // sudo mode: the sign-in is now older than 10 minutes
        const res = await roll(a.id, { expiresInHours: 1 });
        assert.equal(res.status, 201);
        const b = await res.json();
        assert.equal(b.expiresAt, new Date(ctx.clock() + 30 * DAY).toISOString());
        assert.equal(b.previous.expiresAt, new Date(ctx.clock() + HOUR).toISOString());
        ctx.clock.advance(2 * HOUR);
        await reauthenticate(ctx.app, cookie); // sudo mode: the sign-in is now older than 10 minutes
        assert.equal(await domainsStatus(ctx.app, b.key), 200);
        assert.equal(await domainsStatus(ctx.app, a.key), 401);
      },
    );

    await t.step("a key that never expires is replaced by one that never expires", async () => {
      const k = await createKeyViaSession(ctx.app, cookie, { name: "forever" });
      const body = await (await roll(k.id, { expiresInHours: 0 })).json();
      assert.equal(body.expiresAt, null);
    });

    await t.step("expiresInDays in the roll body sets the replacement's lifetime", async () => {
      const k = await createKeyViaSession(ctx.app, cookie, { name: "days", expiresInDays: 7 });
      const res = await roll(k.id, { expiresInHours: 0, expiresInDays: 90 });
      assert.equal(res.status, 201);
      assert.equal((await res.json()).expiresAt, new Date(ctx.clock() + 90 * DAY).toISOString());
      const never = await createKeyViaSession(ctx.app, cookie, { name: "never", expiresInDays: 7 });
      const r2 = await roll(never.id, { expiresInHours: 0, expiresInDays: null });
      assert.equal(r2.status, 201);
      assert.equal((await r2.json()).expiresAt, null);
    });

    for (const bad of [0, 3651, 1.5, "30"]) {
      await t.step(`expiresInDays ${JSON.stringify(bad)} is refused`, async () => {
        const k = await createKeyViaSession(ctx.app, cookie, { name: "bad days" });
        const res = await roll(k.id, { expiresInHours: 0, expiresInDays: bad });
        assert.equal(res.status, 400);
        assert.equal((await res.json()).field, "expiresInDays");
        assert.equal(await domainsStatus(ctx.app, k.key), 200);
      });
    }

    await t.step("rolling an expired key answers 409 and issues nothing", async () => {
      const k = await createKeyViaSession(ctx.app, cookie, { name: "expired", expiresInDays: 1 });
      ctx.clock.advance(DAY);
      await reauthenticate(ctx.app, cookie); // sudo mode: the sign-in is now older than 10 minutes
      const before = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
      const count = (await before.json()).data.length;
      await assertNotRollable(await roll(k.id, { expiresInHours: 1 }));
      const after = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
      assert.equal((await after.json()).data.length, count);
    });

    await t.step("rolling a key already in its grace period answers 409", async () => {
      const k = await createKeyViaSession(ctx.app, cookie, { name: "grace" });
      const first = await roll(k.id, { expiresInHours: 24 });
      assert.equal(first.status, 201);
      await first.body?.cancel();
      await assertNotRollable(await roll(k.id, { expiresInHours: 24 }));
      await assertNotRollable(await roll(k.id, { expiresInHours: 0 }));
      assert.equal(await domainsStatus(ctx.app, k.key), 200, "its grace period is unchanged");
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("revoke-key revokes the Bearer key that authenticated the request", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { key, keyId, userId } = await createAccountWithKey(ctx.kv, ctx.clock);
    const { cookie } = await signUp(ctx.app);
    await t.step("the key revokes itself", async () => {
      const res = await ctx.app.request(
        `${BASE}/api/e2/auth/revoke-key`,
        bearer(key, { method: "POST" }),
      );
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), {
        success: true,
        id: keyId,
        message: "API key revoked. It no longer authenticates.",
      });
      assert.equal(await domainsStatus(ctx.app, key), 401);
      assert.equal((await Array.fromAsync(ctx.kv.list({ prefix: [userId, "api_key"] }))).length, 0);
    });
    await t.step("calling it again with the revoked key is the seed's 401", async () => {
      const res = await ctx.app.request(
        `${BASE}/api/e2/auth/revoke-key`,
        bearer(key, { method: "POST" }),
      );
      assert.equal(res.status, 401);
      assert.deepEqual(await res.json(), SEED_401);
    });
    await t.step("a session (no key to revoke) gets a clear 400", async () => {
      const res = await ctx.app.request(
        `${BASE}/api/e2/auth/revoke-key`,
        withCookie(cookie, { method: "POST" }),
      );
      assert.equal(res.status, 400);
      assert.equal((await res.json()).code, "BEARER_KEY_REQUIRED");
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the per-account key cap refuses more keys with a clear 409", async () => {
  const ctx = await makeTestApp({ config: { maxApiKeysPerAccount: 2 } });
  try {
    const { cookie } = await signUp(ctx.app);
    const first = await createKeyViaSession(ctx.app, cookie, { name: "1" });
    await createKeyViaSession(ctx.app, cookie, { name: "2" });
    const third = await createKeyViaSession(ctx.app, cookie, { name: "3" });
    assert.equal(third.res.status, 409);
    assert.equal(third.res.headers.get("x-should-retry"), "false");
    assert.deepEqual(third.body, {
      error: "Conflict",
      message: "An account can hold at most 2 API keys. Delete unused keys first.",
      statusCode: 409,
      code: "API_KEY_LIMIT_REACHED",
      max: 2,
    });
    // Rolling with a grace period would briefly hold three keys: refused the same way.
    const roll = await ctx.app.request(
      `${BASE}/api/e2/api-keys/${first.id}/roll`,
      withCookie(cookie, json({ expiresInHours: 1 })),
    );
    assert.equal(roll.status, 409);
    assert.equal((await roll.json()).code, "API_KEY_LIMIT_REACHED");
    // Deleting one makes room again.
    await statusOf(
      ctx.app.request(
        `${BASE}/api/e2/api-keys/${first.id}`,
        withCookie(cookie, { method: "DELETE" }),
      ),
    );
    const again = await createKeyViaSession(ctx.app, cookie, { name: "3" });
    assert.equal(again.res.status, 201);
  } finally {
    await ctx.close();
  }
});
