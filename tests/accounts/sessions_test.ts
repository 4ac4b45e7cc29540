import assert from "node:assert/strict";
import { sha256Hex } from "../../lib/sha256.ts";
import { hashPassword } from "../../auth/passwords/hash.ts";
import { createSession, deleteSessionByHash, findSession } from "../../store/sessions.ts";
import { sessionHashIndexKey, sessionKey, userKey } from "../../store/keys.ts";
import { createUser } from "../../store/accounts/users.ts";
import { bearer, createAccountWithKey, makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import {
  BASE,
  cookieFrom,
  createKeyViaSession,
  freshEmail,
  fromIp,
  json,
  SEED_401,
  signUp,
  statusOf,
  withCookie,
} from "../sessions_helpers.ts";

async function allEntries(kv: Deno.Kv): Promise<Deno.KvEntry<unknown>[]> {
  const out: Deno.KvEntry<unknown>[] = [];
  for await (const e of kv.list({ prefix: [] })) out.push(e);
  return out;
}

async function assertSeed401(res: Response) {
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("WWW-Authenticate"), 'Bearer realm="API", charset="UTF-8"');
  assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
  assert.deepEqual(await res.json(), SEED_401);
}

Deno.test("sign-up creates an account and a session whose token KV never sees", async (t) => {
  const ctx = await makeTestApp();
  try {
    const email = freshEmail();
    const res = await ctx.app.request(
      `${BASE}/api/auth/sign-up`,
      json({ email, password: TEST_PASSWORD }),
    );
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("Cache-Control"), "no-store");
    const body = await res.json();
    const setCookie = res.headers.get("Set-Cookie") ?? "";
    const token = cookieFrom(res).split("=")[1];

    await t.step("the body names the account and the session, never the token", () => {
      assert.equal(body.user.email, email);
      assert.match(body.user.id, /^usr_/);
      assert.match(body.session.id, /^ses_/);
      assert.ok(!JSON.stringify(body).includes(token));
    });

    await t.step("the cookie is HttpOnly, SameSite=Lax, Path=/ and holds 256 random bits", () => {
      assert.match(setCookie, /^inbound_session=[A-Za-z0-9_-]{43};/);
      assert.match(setCookie, /; HttpOnly/);
      assert.match(setCookie, /; SameSite=Lax/);
      assert.match(setCookie, /; Path=\//);
      assert.match(setCookie, /; Max-Age=604800/);
      // Plain HTTP on localhost: a Secure cookie would not be stored by every client.
      assert.doesNotMatch(setCookie, /Secure/);
    });

    await t.step("KV holds the token's SHA-256 digest in the pointer and the record", async () => {
      const digest = sha256Hex(token);
      const pointer = await ctx.kv.get<{ userId: string; sessionId: string; expiresAt: number }>(
        sessionHashIndexKey(digest),
      );
      assert.equal(pointer.value?.userId, body.user.id);
      assert.equal(pointer.value?.sessionId, body.session.id);
      assert.equal(pointer.value?.expiresAt, ctx.clock() + ctx.config.sessionTtlMs);
      const record = await ctx.kv.get<{ hash: string; expiresAt: string }>(
        sessionKey(body.user.id, body.session.id),
      );
      assert.equal(record.value?.hash, digest);
      assert.equal(record.value?.expiresAt, body.session.expiresAt);
      const everything = JSON.stringify(
        (await allEntries(ctx.kv)).map((e) => [e.key, e.value]),
        (_k, v) => typeof v === "bigint" ? String(v) : v,
      );
      assert.ok(!everything.includes(token), "the raw token is stored somewhere");
    });

    await t.step("the session endpoint recognises the cookie", async () => {
      const me = await ctx.app.request(
        `${BASE}/api/auth/session`,
        withCookie(cookieFrom(res)),
      );
      assert.equal(me.status, 200);
      const meBody = await me.json();
      assert.equal(meBody.user.email, email);
      assert.equal(meBody.session.id, body.session.id);
      assert.equal(meBody.session.expiresAt, body.session.expiresAt);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("sign-up refuses bad input with the JSON error shape", async (t) => {
  const ctx = await makeTestApp();
  try {
    const taken = freshEmail();
    await signUp(ctx.app, taken);
    const cases: [string, RequestInit, number, Record<string, unknown>][] = [
      [
        "a password under 12 characters",
        json({ email: freshEmail(), password: "short-pass1" }),
        400,
        {
          field: "password",
        },
      ],
      ["an invalid email", json({ email: "not-an-email", password: TEST_PASSWORD }), 400, {
        field: "email",
      }],
      [
        "a taken email (any case)",
        json({ email: taken.toUpperCase(), password: TEST_PASSWORD }),
        409,
        {
          code: "EMAIL_TAKEN",
        },
      ],
      ["a body that is not JSON", { method: "POST", body: "email=a" }, 415, {}],
    ];
    for (const [name, init, status, extra] of cases) {
      await t.step(name, async () => {
        const res = await ctx.app.request(`${BASE}/api/auth/sign-up`, init);
        assert.equal(res.status, status);
        assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
        assert.equal(res.headers.get("Set-Cookie"), null);
        const body = await res.json();
        assert.equal(body.statusCode, status);
        assert.equal(typeof body.error, "string");
        assert.equal(typeof body.message, "string");
        for (const [k, v] of Object.entries(extra)) assert.equal(body[k], v, k);
        assert.ok(!JSON.stringify(body).includes(TEST_PASSWORD));
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("every sign-in issues a fresh token and deletes the session it replaced", async () => {
  const ctx = await makeTestApp();
  try {
    const { cookie: first, email } = await signUp(ctx.app);
    const res = await ctx.app.request(
      `${BASE}/api/auth/sign-in`,
      withCookie(first, json({ email, password: TEST_PASSWORD })),
    );
    assert.equal(res.status, 200);
    const second = cookieFrom(res);
    assert.notEqual(second, first);
    await assertSeed401(await ctx.app.request(`${BASE}/api/auth/session`, withCookie(first)));
    assert.equal(
      await statusOf(ctx.app.request(`${BASE}/api/auth/session`, withCookie(second))),
      200,
    );
    const third = cookieFrom(
      await ctx.app.request(`${BASE}/api/auth/sign-in`, json({ email, password: TEST_PASSWORD })),
    );
    assert.notEqual(third, second);
  } finally {
    await ctx.close();
  }
});

Deno.test("an unknown email and a wrong password get the same answer", async () => {
  const ctx = await makeTestApp();
  try {
    const { email } = await signUp(ctx.app);
    const wrong = await ctx.app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email, password: "wrong password entirely" }),
    );
    const unknown = await ctx.app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email: freshEmail(), password: "wrong password entirely" }),
    );
    assert.equal(wrong.status, 401);
    assert.equal(unknown.status, 401);
    const headersOf = (r: Response) => [...r.headers].filter(([name]) => name !== "x-request-id");
    assert.deepEqual(headersOf(wrong), headersOf(unknown));
    const [a, b] = [await wrong.json(), await unknown.json()];
    assert.deepEqual(a, b);
    assert.deepEqual(a, {
      error: "Unauthorized",
      message: "Invalid email or password.",
      statusCode: 401,
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("an unknown email costs as much password hashing as a wrong password", async () => {
  // A real cost (2^14) so that scrypt dominates the timing; medians of a few tries.
  const ctx = await makeTestApp({
    config: { passwordHashCost: 14, signInThrottle: { max: 1000, windowMs: 60_000 } },
  });
  try {
    const email = freshEmail();
    await createUser(ctx.kv, {
      email,
      passwordHash: await hashPassword(TEST_PASSWORD, 14),
      nowMs: ctx.clock(),
    });
    const time = async (body: unknown) => {
      const samples: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        await statusOf(ctx.app.request(`${BASE}/api/auth/sign-in`, json(body)));
        samples.push(performance.now() - started);
      }
      return samples.sort((x, y) => x - y)[2];
    };
    await time({ email: freshEmail(), password: "warm up the dummy" });
    const wrong = await time({ email, password: "wrong password entirely" });
    const unknown = await time({ email: freshEmail(), password: "wrong password entirely" });
    const ratio = unknown / wrong;
    assert.ok(ratio > 0.5 && ratio < 2, `unknown ${unknown}ms vs wrong ${wrong}ms`);
  } finally {
    await ctx.close();
  }
});

Deno.test("sign-out deletes the session server-side and clears the cookie", async () => {
  const ctx = await makeTestApp();
  try {
    const { cookie, userId } = await signUp(ctx.app);
    const token = cookie.split("=")[1];
    const out = await ctx.app.request(
      `${BASE}/api/auth/sign-out`,
      withCookie(cookie, { method: "POST" }),
    );
    assert.equal(out.status, 200);
    assert.match(out.headers.get("Set-Cookie") ?? "", /^inbound_session=; Max-Age=0;/);
    assert.deepEqual(await out.json(), { success: true, message: "Signed out." });
    // The browser would drop the cookie; a copy of it must still be worthless.
    assert.equal(
      (await ctx.kv.get(sessionHashIndexKey(sha256Hex(token)))).versionstamp,
      null,
    );
    const left = await Array.fromAsync(ctx.kv.list({ prefix: [userId, "session"] }));
    assert.equal(left.length, 0);
    await assertSeed401(await ctx.app.request(`${BASE}/api/e2/domains`, withCookie(cookie)));
    await assertSeed401(await ctx.app.request(`${BASE}/api/auth/session`, withCookie(cookie)));
  } finally {
    await ctx.close();
  }
});

Deno.test("a session stops working when the expiry in its value passes", async () => {
  const ctx = await makeTestApp({ config: { sessionTtlMs: 3_600_000 } });
  try {
    const { cookie } = await signUp(ctx.app);
    ctx.clock.advance(3_600_000 - 1);
    assert.equal(
      await statusOf(ctx.app.request(`${BASE}/api/e2/domains`, withCookie(cookie))),
      200,
    );
    ctx.clock.advance(1);
    // KV has not deleted anything yet (its own clock is real time): the value's expiry decides.
    const pointers = await Array.fromAsync(ctx.kv.list({ prefix: ["idx", "session"] }));
    assert.equal(pointers.length, 1);
    await assertSeed401(await ctx.app.request(`${BASE}/api/e2/domains`, withCookie(cookie)));
    await assertSeed401(await ctx.app.request(`${BASE}/api/auth/session`, withCookie(cookie)));
  } finally {
    await ctx.close();
  }
});

Deno.test("off localhost the cookie is Secure and __Host- prefixed, and only that name is read", async (t) => {
  const ctx = await makeTestApp();
  try {
    for (
      const origin of ["https://inbound.example", "http://inbound.example", "https://localhost"]
    ) {
      await t.step(origin, async () => {
        const res = await ctx.app.request(
          `${origin}/api/auth/sign-up`,
          json({ email: freshEmail(), password: TEST_PASSWORD }),
        );
        assert.equal(res.status, 201);
        const set = res.headers.get("Set-Cookie") ?? "";
        assert.match(set, /^__Host-inbound_session=[A-Za-z0-9_-]{43};/);
        assert.match(set, /; Path=\//);
        assert.match(set, /; HttpOnly/);
        assert.match(set, /; Secure/);
        assert.match(set, /; SameSite=Lax/);
        assert.doesNotMatch(set, /Domain=/);
        const token = cookieFrom(res).split("=")[1];
        assert.equal(
          await statusOf(
            ctx.app.request(
              `${origin}/api/auth/session`,
              withCookie(`__Host-inbound_session=${token}`),
            ),
          ),
          200,
        );
        // The unprefixed name could have been planted by a sibling subdomain: ignored here.
        assert.equal(
          await statusOf(
            ctx.app.request(`${origin}/api/auth/session`, withCookie(`inbound_session=${token}`)),
          ),
          401,
        );
      });
    }
    await t.step("127.0.0.1 over plain HTTP uses the plain name", async () => {
      const res = await ctx.app.request(
        "http://127.0.0.1:8000/api/auth/sign-up",
        json({ email: freshEmail(), password: TEST_PASSWORD }),
      );
      assert.match(res.headers.get("Set-Cookie") ?? "", /^inbound_session=/);
      await res.body?.cancel();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a valid session takes precedence over a Bearer key", async () => {
  const ctx = await makeTestApp();
  try {
    const a = await signUp(ctx.app);
    const { id: aKeyId } = await createKeyViaSession(ctx.app, a.cookie, { name: "a's key" });
    const b = await createAccountWithKey(ctx.kv, ctx.clock, { keyName: "b's key" });
    const res = await ctx.app.request(
      `${BASE}/api/e2/api-keys`,
      withCookie(a.cookie, bearer(b.key)),
    );
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.deepEqual(body.data.map((k: { id: string }) => k.id), [aKeyId]);
  } finally {
    await ctx.close();
  }
});

Deno.test("an invalid cookie falls through to the Bearer key; neither gives the seed's 401", async (t) => {
  const ctx = await makeTestApp({ config: { sessionTtlMs: 60_000 } });
  try {
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
    const { cookie: expired } = await signUp(ctx.app);
    ctx.clock.advance(60_000);
    const bogus = `inbound_session=${"A".repeat(43)}`;
    const cases: [string, string][] = [
      ["a well-formed token never issued", bogus],
      ["a malformed token", "inbound_session=garbage"],
      ["an expired session", expired],
    ];
    for (const [name, cookie] of cases) {
      await t.step(`${name} with a Bearer key: 200`, async () => {
        const res = await ctx.app.request(
          `${BASE}/api/e2/domains`,
          withCookie(cookie, bearer(key)),
        );
        assert.equal(res.status, 200);
        await res.body?.cancel();
      });
      await t.step(`${name} alone: the seed's 401`, async () => {
        await assertSeed401(await ctx.app.request(`${BASE}/api/e2/domains`, withCookie(cookie)));
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("a cookie-authenticated state change from another origin is refused with 403", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const attempt = (headers: Record<string, string>) =>
      ctx.app.request(
        `${BASE}/api/e2/api-keys`,
        withCookie(cookie, json({ name: "forged" }, { headers })),
      );
    const refused: [string, Record<string, string>][] = [
      ["Origin of another site", { Origin: "https://evil.example" }],
      ["Origin on another port of this host", { Origin: "http://localhost:9999" }],
      ["Origin null (sandboxed frame)", { Origin: "null" }],
      ["Sec-Fetch-Site: cross-site", { "Sec-Fetch-Site": "cross-site" }],
      ["Sec-Fetch-Site: same-site", { "Sec-Fetch-Site": "same-site" }],
    ];
    for (const [name, headers] of refused) {
      await t.step(`${name}: 403`, async () => {
        const res = await attempt(headers);
        assert.equal(res.status, 403);
        assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
        const body = await res.json();
        assert.equal(body.error, "Forbidden");
        assert.equal(body.statusCode, 403);
        assert.equal(body.code, "CROSS_SITE_REQUEST");
      });
    }
    await t.step("nothing was created by the refused requests", async () => {
      const list = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
      assert.deepEqual((await list.json()).data, []);
    });
    const allowed: [string, Record<string, string>][] = [
      ["same origin", { Origin: "http://localhost", "Sec-Fetch-Site": "same-origin" }],
      ["no browser headers (curl)", {}],
    ];
    for (const [name, headers] of allowed) {
      await t.step(`${name}: 201`, async () => {
        assert.equal(await statusOf(attempt(headers)), 201);
      });
    }
    await t.step("a cross-site GET (safe method) is not refused", async () => {
      const res = await ctx.app.request(
        `${BASE}/api/e2/domains`,
        withCookie(cookie, { headers: { "Sec-Fetch-Site": "cross-site" } }),
      );
      assert.equal(await statusOf(res), 200);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("Bearer-authenticated requests are not subject to the cross-site check", async () => {
  const ctx = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
    const res = await ctx.app.request(
      `${BASE}/api/e2/auth/revoke-key`,
      bearer(key, {
        method: "POST",
        headers: { Origin: "https://elsewhere.example", "Sec-Fetch-Site": "cross-site" },
      }),
    );
    assert.equal(res.status, 200);
    assert.equal((await res.json()).success, true);
  } finally {
    await ctx.close();
  }
});

Deno.test("sign-in, sign-up and sign-out from another origin are refused", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { email, cookie } = await signUp(ctx.app);
    const evil = { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" };
    for (
      const [path, init] of [
        ["sign-in", json({ email, password: TEST_PASSWORD }, { headers: evil })],
        ["sign-up", json({ email: freshEmail(), password: TEST_PASSWORD }, { headers: evil })],
        ["sign-out", withCookie(cookie, { method: "POST", headers: evil })],
      ] as const
    ) {
      await t.step(path, async () => {
        const res = await ctx.app.request(`${BASE}/api/auth/${path}`, init);
        assert.equal(res.status, 403);
        assert.equal(res.headers.get("Set-Cookie"), null);
        assert.equal((await res.json()).error, "Forbidden");
      });
    }
    await t.step("the session survived the forged sign-out", async () => {
      assert.equal(
        await statusOf(ctx.app.request(`${BASE}/api/auth/session`, withCookie(cookie))),
        200,
      );
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("sign-in attempts are limited per email with 429 and Retry-After", async () => {
  const ctx = await makeTestApp({ config: { signInThrottle: { max: 3, windowMs: 60_000 } } });
  try {
    const { email } = await signUp(ctx.app);
    ctx.clock.set(Math.floor(ctx.clock() / 60_000) * 60_000 + 15_000);
    for (let i = 0; i < 3; i++) {
      const res = await ctx.app.request(
        `${BASE}/api/auth/sign-in`,
        json({ email, password: "guess number " + i }),
        fromIp(`198.51.100.${i + 1}`),
      );
      assert.equal(await statusOf(res), 401);
    }
    // Even the right password is refused now: the limit is on attempts, not failures.
    const limited = await ctx.app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email: email.toUpperCase(), password: TEST_PASSWORD }),
      fromIp("198.51.100.99"),
    );
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("Retry-After"), "45");
    assert.equal(limited.headers.get("Set-Cookie"), null);
    assert.equal(limited.headers.get("Content-Type"), "application/json; charset=utf-8");
    const body = await limited.json();
    assert.equal(body.error, "Too Many Requests");
    assert.equal(body.statusCode, 429);
    assert.match(body.message, /Retry after 45 seconds/);
    ctx.clock.advance(45_000);
    const later = await ctx.app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email, password: TEST_PASSWORD }),
      fromIp("198.51.100.99"),
    );
    assert.equal(await statusOf(later), 200);
  } finally {
    await ctx.close();
  }
});

Deno.test("sign-in attempts are limited per IP across emails", async () => {
  const ctx = await makeTestApp({ config: { signInThrottle: { max: 2, windowMs: 60_000 } } });
  try {
    const ip = fromIp("203.0.113.7");
    for (let i = 0; i < 2; i++) {
      const res = await ctx.app.request(
        `${BASE}/api/auth/sign-in`,
        json({ email: freshEmail(), password: "whatever password" }),
        ip,
      );
      assert.equal(await statusOf(res), 401);
    }
    const limited = await ctx.app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email: freshEmail(), password: "whatever password" }),
      ip,
    );
    assert.equal(limited.status, 429);
    const retry = Number(limited.headers.get("Retry-After"));
    assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= 60, `Retry-After ${retry}`);
    await limited.body?.cancel();
    // Another address is not affected.
    const other = await ctx.app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email: freshEmail(), password: "whatever password" }),
      fromIp("203.0.113.8"),
    );
    assert.equal(await statusOf(other), 401);
  } finally {
    await ctx.close();
  }
});

Deno.test("concurrent sign-in attempts are all counted", async () => {
  const ctx = await makeTestApp({
    config: {
      signInThrottle: { max: 5, windowMs: 60_000 },
      // One in flight per address is the hashing pool's own rule (tests/accounts/password_hashing_test.ts);
      // lifted here so that all 12 reach the throttle, which is what this test counts.
      passwordHashQueue: { perAddress: 12, max: 12, waitMs: 5_000 },
    },
  });
  try {
    const ip = fromIp("192.0.2.44");
    const statuses = await Promise.all(
      Array.from({ length: 12 }, () =>
        statusOf(ctx.app.request(
          `${BASE}/api/auth/sign-in`,
          json({ email: "same@example.com", password: "whatever password" }),
          ip,
        ))),
    );
    assert.equal(statuses.filter((s) => s === 401).length, 5, statuses.join(","));
    assert.equal(statuses.filter((s) => s === 429).length, 7, statuses.join(","));
  } finally {
    await ctx.close();
  }
});

Deno.test("the session store writes and deletes pointer and record together", async (t) => {
  const kv = await Deno.openKv(":memory:");
  try {
    const now = Date.UTC(2026, 0, 1);
    const record = await createSession(kv, {
      userId: "usr_x",
      hash: "ab".repeat(32),
      nowMs: now,
      ttlMs: 1000,
    });
    await t.step("a second session with the same digest is refused", async () => {
      await assert.rejects(() =>
        createSession(kv, { userId: "usr_y", hash: "ab".repeat(32), nowMs: now, ttlMs: 1000 })
      );
      assert.equal((await findSession(kv, "ab".repeat(32), now))?.userId, "usr_x");
    });
    await t.step("expiry is checked against the caller's clock", async () => {
      assert.ok(await findSession(kv, "ab".repeat(32), now + 999));
      assert.equal(await findSession(kv, "ab".repeat(32), now + 1000), null);
    });
    await t.step("deleting removes both keys", async () => {
      assert.equal(await deleteSessionByHash(kv, "ab".repeat(32)), true);
      assert.equal((await kv.get(sessionKey("usr_x", record.id))).versionstamp, null);
      assert.equal((await kv.get(sessionHashIndexKey("ab".repeat(32)))).versionstamp, null);
      assert.equal(await deleteSessionByHash(kv, "ab".repeat(32)), false);
    });
  } finally {
    kv.close();
  }
});

Deno.test("a suspended account cannot sign in, even with the right password", async () => {
  const ctx = await makeTestApp();
  try {
    const { email, userId } = await signUp(ctx.app);
    const entry = await ctx.kv.get<Record<string, unknown>>(userKey(userId));
    await ctx.kv.set(userKey(userId), { ...entry.value, status: "suspended" });
    const res = await ctx.app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email, password: TEST_PASSWORD }),
    );
    assert.equal(res.status, 403);
    assert.equal(res.headers.get("Set-Cookie"), null);
    const body = await res.json();
    assert.equal(body.error, "Forbidden");
    assert.equal(body.code, "ACCOUNT_SUSPENDED");
  } finally {
    await ctx.close();
  }
});
