import assert from "node:assert/strict";
import type { App } from "../../app.ts";
import { generateApiKey } from "../../auth/api_keys/format.ts";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { tenantStore } from "../../store/tenant.ts";
import { bearer, createAccountWithKey, makeTestApp } from "../_helpers.ts";

const SEED_401 = {
  error: "Unauthorized",
  message: "Authentication required. Provide a valid session cookie or Bearer token.",
  statusCode: 401,
};

/** One domain, so that listing has index entries to read. */
async function addDomain(app: App, key: string): Promise<void> {
  const res = await app.request("/api/e2/domains", {
    ...bearer(key, { headers: { "Content-Type": "application/json" } }),
    method: "POST",
    body: JSON.stringify({ domain: `d${crypto.randomUUID().slice(0, 8)}.example.com` }),
  });
  assert.equal(res.status, 201);
  await res.body?.cancel();
}

async function assertSeed401(res: Response) {
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("WWW-Authenticate"), 'Bearer realm="API", charset="UTF-8"');
  assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
  assert.deepEqual(await res.json(), SEED_401);
}

Deno.test("a new account's domain list is exactly the seed's success body", async () => {
  const t = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(t.kv, t.clock);
    const res = await t.app.request("/api/e2/domains", bearer(key));
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
    assert.deepEqual(await res.json(), {
      data: [],
      pagination: { limit: 50, offset: 0, total: 0, hasMore: false },
    });
  } finally {
    await t.close();
  }
});

Deno.test("every failed credential gets the seed's 401, whatever was wrong", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
    const cases: [string, Record<string, string>][] = [
      ["no Authorization header", {}],
      ["another scheme", { Authorization: `Basic ${btoa("a:b")}` }],
      ["scheme only", { Authorization: "Bearer" }],
      ["empty token", { Authorization: "Bearer " }],
      ["malformed token", { Authorization: "Bearer not-a-key" }],
      ["bad checksum", {
        Authorization: `Bearer ${key.slice(0, -1)}${key.at(-1) === "a" ? "b" : "a"}`,
      }],
      ["well formed but never issued", { Authorization: `Bearer ${generateApiKey()}` }],
      ["key followed by junk", { Authorization: `Bearer ${key} x` }],
    ];
    for (const [name, headers] of cases) {
      await t.step(name, async () => {
        await assertSeed401(await ctx.app.request("/api/e2/domains", { headers }));
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("the Bearer scheme is matched case-insensitively", async () => {
  const t = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(t.kv, t.clock);
    for (const scheme of ["bearer", "BEARER", "BeArEr"]) {
      const res = await t.app.request("/api/e2/domains", {
        headers: { Authorization: `${scheme} ${key}` },
      });
      assert.equal(res.status, 200, scheme);
      await res.body?.cancel();
    }
  } finally {
    await t.close();
  }
});

Deno.test("a key stops working the moment its expiry passes", async () => {
  const t = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(t.kv, t.clock, { expiresInDays: 1 });
    const ok = await t.app.request("/api/e2/domains", bearer(key));
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    t.clock.advance(86_400_000 - 1);
    const stillOk = await t.app.request("/api/e2/domains", bearer(key));
    assert.equal(stillOk.status, 200);
    await stillOk.body?.cancel();
    t.clock.advance(1);
    await assertSeed401(await t.app.request("/api/e2/domains", bearer(key)));
  } finally {
    await t.close();
  }
});

Deno.test("a deleted key is refused and the account's other keys keep working", async () => {
  const t = await makeTestApp();
  try {
    const { userId, key, keyId } = await createAccountWithKey(t.kv, t.clock);
    const store = tenantStore(t.kv, userId, t.clock);
    const second = await issueApiKey(store.apiKeys, { name: "new", nowMs: t.clock() });
    await store.apiKeys.delete(keyId);
    await assertSeed401(await t.app.request("/api/e2/domains", bearer(key)));
    const res = await t.app.request("/api/e2/domains", bearer(second.key));
    assert.equal(res.status, 200);
    await res.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("lastUsedAt is written on first use, then at most once a minute and again within 90 s", async () => {
  const t = await makeTestApp();
  try {
    const { userId, key, keyId } = await createAccountWithKey(t.kv, t.clock);
    const store = tenantStore(t.kv, userId, t.clock);
    assert.equal((await store.apiKeys.get(keyId)).lastUsedAt, null);
    const first = t.clock();
    for (let i = 0; i < 5; i++) {
      (await t.app.request("/api/e2/domains", bearer(key))).body?.cancel();
      await t.app.idle();
      t.clock.advance(10_000);
    }
    assert.equal((await store.apiKeys.get(keyId)).lastUsedAt, new Date(first).toISOString());
    // The next write is due 60 to 90 s after the last (spread at random): 90 s later it is due.
    t.clock.advance(40_000);
    (await t.app.request("/api/e2/domains", bearer(key))).body?.cancel();
    await t.app.idle();
    assert.equal((await store.apiKeys.get(keyId)).lastUsedAt, new Date(t.clock()).toISOString());
  } finally {
    await t.close();
  }
});

Deno.test("invalid list parameters get the documented 400 naming the parameter", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
    const cases: [string, string][] = [
      ["limit=0", "limit"],
      ["limit=101", "limit"],
      ["limit=abc", "limit"],
      ["limit=1.5", "limit"],
      ["limit=", "limit"],
      ["offset=-1", "offset"],
      ["offset=x", "offset"],
      ["status=active", "status"],
      ["canReceive=yes", "canReceive"],
      ["limit=5&limit=6", "limit"],
    ];
    for (const [query, field] of cases) {
      await t.step(query, async () => {
        const res = await ctx.app.request(`/api/e2/domains?${query}`, bearer(key));
        assert.equal(res.status, 400);
        assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
        const body = await res.json();
        assert.equal(body.error, "Bad Request");
        assert.equal(body.message, "Validation failed. Check your request parameters.");
        assert.equal(body.statusCode, 400);
        assert.equal(body.field, field);
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("valid list parameters are echoed in the pagination", async () => {
  const t = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(t.kv, t.clock);
    const res = await t.app.request(
      "/api/e2/domains?limit=100&offset=7&status=verified&canReceive=false",
      bearer(key),
    );
    assert.equal(res.status, 200);
    assert.deepEqual((await res.json()).pagination, {
      limit: 100,
      offset: 7,
      total: 0,
      hasMore: false,
    });
  } finally {
    await t.close();
  }
});

Deno.test("unknown paths are 404 and wrong methods 405, in the error shape", async () => {
  const t = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(t.kv, t.clock);
    // Under /api/ (a browser path gets an HTML page: tests/dashboard/not_found_test.ts).
    const missing = await t.app.request("/api/no/such/path");
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), {
      error: "Not Found",
      message: "Not found.",
      statusCode: 404,
    });
    const wrong = await t.app.request("/api/e2/domains", bearer(key, { method: "PUT" }));
    assert.equal(wrong.status, 405);
    assert.ok(wrong.headers.get("Allow")?.includes("GET"));
    const body = await wrong.json();
    assert.equal(body.error, "Method Not Allowed");
    assert.equal(body.statusCode, 405);
  } finally {
    await t.close();
  }
});

Deno.test("every response carries a request id, and a 500 quotes it without internals", async () => {
  const t = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(t.kv, t.clock);
    const ok = await t.app.request("/healthz");
    assert.match(ok.headers.get("X-Request-Id") ?? "", /^req_[0-9A-Za-z]{22}$/);
    assert.deepEqual(await ok.json(), { status: "ok", kv: "ok" });

    await addDomain(t.app, key);
    // A store that breaks after authentication: the list read throws.
    const realList = t.kv.list.bind(t.kv);
    t.kv.list = () => {
      throw new Error("SQLITE internal detail /var/secret/path");
    };
    try {
      const res = await t.app.request("/api/e2/domains", bearer(key));
      assert.equal(res.status, 500);
      const requestId = res.headers.get("X-Request-Id");
      const text = await res.text();
      const body = JSON.parse(text);
      assert.equal(body.error, "Internal Server Error");
      assert.equal(body.statusCode, 500);
      assert.equal(body.requestId, requestId);
      assert.ok(!text.includes("SQLITE") && !text.includes("/var/secret") && !text.includes("at "));
    } finally {
      t.kv.list = realList;
    }
  } finally {
    await t.close();
  }
});

Deno.test("healthz reports a KV that does not answer as 503", async () => {
  const t = await makeTestApp();
  try {
    t.kv.get = () => Promise.reject(new Error("down"));
    const res = await t.app.request("/healthz");
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.equal(body.statusCode, 503);
    assert.equal(body.kv, "unavailable");
  } finally {
    await t.close();
  }
});

Deno.test("a store that stalls gets a 500 with the request id once the deadline passes", async () => {
  const t = await makeTestApp({ config: { requestTimeoutMs: 200 } });
  try {
    const { key } = await createAccountWithKey(t.kv, t.clock);
    await addDomain(t.app, key);
    const realList = t.kv.list.bind(t.kv);
    // A listing whose first page never arrives.
    t.kv.list = (() => ({
      next: () => new Promise(() => {}),
      [Symbol.asyncIterator]() {
        return this;
      },
    })) as unknown as typeof t.kv.list;
    try {
      const started = performance.now();
      const res = await t.app.request("/api/e2/domains?offset=0", bearer(key));
      assert.ok(performance.now() - started >= 190);
      assert.equal(res.status, 500);
      const body = await res.json();
      assert.equal(body.statusCode, 500);
      assert.equal(body.requestId, res.headers.get("X-Request-Id"));
    } finally {
      t.kv.list = realList;
    }
    const healed = await t.app.request("/api/e2/domains", bearer(key));
    assert.equal(healed.status, 200);
    await healed.body?.cancel();
  } finally {
    await t.close();
  }
});
