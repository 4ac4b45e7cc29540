/**
 * A suspended account is refused with 403 (not 401: the credential is fine), before any of its
 * data is read, by key and by session alike. Suspension signs the account out (its sessions are
 * deleted), so after reactivation its keys work again but its old cookies answer 401.
 */
import assert from "node:assert/strict";
import { sessionManager } from "../../auth/sessions/manager.ts";
import { fakeClock } from "../../lib/clock.ts";
import { HttpError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { indexPrefix, sessionPrefix, userKey } from "../../store/keys.ts";
import { createSession, type SessionPointer } from "../../store/sessions.ts";
import { getUser, setUserStatus, type UserRecord } from "../../store/accounts/users.ts";
import {
  bearer,
  createAccountWithKey,
  makeTestApp,
  removeKvFile,
  runAdminCli,
  startServer,
  tempKvPath,
} from "../_helpers.ts";
import {
  BASE,
  createKeyViaSession,
  SEED_401,
  signUp,
  statusOf,
  withCookie,
} from "../sessions_helpers.ts";

const DAY = 86_400_000;

async function assertSuspended(res: Response) {
  assert.equal(res.status, 403);
  assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
  assert.deepEqual(await res.json(), {
    error: "Forbidden",
    message: "This account is suspended.",
    statusCode: 403,
    code: "ACCOUNT_SUSPENDED",
  });
}

Deno.test("a suspended account's API key gets 403 until the account is reactivated", async () => {
  const t = await makeTestApp();
  try {
    const a = await createAccountWithKey(t.kv, t.clock);
    const ok = await t.app.request("/api/e2/domains", bearer(a.key));
    assert.equal(ok.status, 200);
    await ok.body?.cancel();

    await setUserStatus(t.kv, a.userId, "suspended");
    // The key was cached as verified; the status change reaches the cache through the
    // revocation counter, which is polled at most every 250 ms.
    t.clock.advance(1000);
    await assertSuspended(await t.app.request("/api/e2/domains", bearer(a.key)));

    await setUserStatus(t.kv, a.userId, "active");
    t.clock.advance(1000);
    const back = await t.app.request("/api/e2/domains", bearer(a.key));
    assert.equal(back.status, 200);
    await back.body?.cancel();
  } finally {
    await t.close();
  }
});

Deno.test("suspending an account signs it out: its cookie answers 401 and the dashboard asks to sign in", async () => {
  const t = await makeTestApp();
  try {
    const { cookie, userId } = await signUp(t.app);
    await setUserStatus(t.kv, userId, "suspended");
    const api = await t.app.request(`${BASE}/api/e2/domains`, withCookie(cookie));
    assert.equal(api.status, 401);
    assert.deepEqual(await api.json(), SEED_401);
    const page = await t.app.request(`${BASE}/settings/api-keys`, withCookie(cookie));
    assert.equal(page.status, 303);
    // A dead session cookie: sign in again, then back to the page (issue 22, item 5).
    assert.equal(
      page.headers.get("Location"),
      "/sign-in?notice=session-expired&next=%2Fsettings%2Fapi-keys",
    );
  } finally {
    await t.close();
  }
});

/** Marks the account suspended without signing it out, as a server before this change did. */
async function suspendInPlace(kv: Deno.Kv, userId: string): Promise<void> {
  const entry = await kv.get<UserRecord>(userKey(userId));
  assert.ok(entry.value);
  await kv.set(userKey(userId), { ...entry.value, status: "suspended" });
}

Deno.test("a live session of a suspended account is refused with 403 everywhere it is used", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie, userId } = await signUp(ctx.app);
    await suspendInPlace(ctx.kv, userId);

    await t.step("GET /api/auth/session answers 403 ACCOUNT_SUSPENDED, like /api/e2", async () => {
      await assertSuspended(await ctx.app.request(`${BASE}/api/auth/session`, withCookie(cookie)));
      await assertSuspended(await ctx.app.request(`${BASE}/api/e2/domains`, withCookie(cookie)));
    });

    await t.step("the dashboard says the account cannot be used", async () => {
      const page = await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie));
      assert.equal(page.status, 403);
      assert.match(await page.text(), /This account is suspended\./);
      const home = await ctx.app.request(`${BASE}/`, withCookie(cookie));
      assert.equal(home.status, 303);
      assert.equal(home.headers.get("Location"), "/sign-in");
    });

    await t.step("unsuspending does not revive that session", async () => {
      await setUserStatus(ctx.kv, userId, "active");
      const res = await ctx.app.request(`${BASE}/api/auth/session`, withCookie(cookie));
      assert.equal(res.status, 401);
      assert.deepEqual(await res.json(), SEED_401);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("after suspend and unsuspend the old cookie answers 401 and the account's key works again", async () => {
  const t = await makeTestApp();
  try {
    const { cookie, userId } = await signUp(t.app);
    const { key } = await createKeyViaSession(t.app, cookie);
    assert.equal(
      await statusOf(t.app.request(`${BASE}/api/auth/session`, withCookie(cookie))),
      200,
    );

    await setUserStatus(t.kv, userId, "suspended");
    await assertSuspended(await t.app.request(`${BASE}/api/e2/domains`, bearer(key)));
    await setUserStatus(t.kv, userId, "active");

    const session = await t.app.request(`${BASE}/api/auth/session`, withCookie(cookie));
    assert.equal(session.status, 401);
    assert.deepEqual(await session.json(), SEED_401);
    assert.equal(await statusOf(t.app.request(`${BASE}/api/e2/domains`, withCookie(cookie))), 401);
    assert.equal(await statusOf(t.app.request(`${BASE}/api/e2/domains`, bearer(key))), 200);
  } finally {
    await t.close();
  }
});

Deno.test("suspension deletes every session of the account, records and pointers, however many", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const a = await createAccountWithKey(kv, clock);
  const b = await createAccountWithKey(kv, clock);
  // More sessions than one commit may delete, so the purge has to work in batches.
  for (let i = 0; i < 700; i++) {
    await createSession(kv, {
      userId: a.userId,
      hash: sha256Hex(`a${i}`),
      nowMs: clock(),
      ttlMs: DAY,
    });
  }
  await createSession(kv, { userId: b.userId, hash: sha256Hex("b"), nowMs: clock(), ttlMs: DAY });

  await setUserStatus(kv, a.userId, "suspended");

  assert.equal((await Array.fromAsync(kv.list({ prefix: sessionPrefix(a.userId) }))).length, 0);
  const pointers = await Array.fromAsync(
    kv.list<SessionPointer>({ prefix: indexPrefix("session") }),
  );
  assert.deepEqual(pointers.map((e) => e.value.userId), [b.userId]);
  assert.equal((await getUser(kv, a.userId))?.status, "suspended");
});

Deno.test("reactivating an account that is already active signs nobody out", async () => {
  const t = await makeTestApp();
  try {
    const { cookie, userId } = await signUp(t.app);
    const user = await setUserStatus(t.kv, userId, "active");
    assert.equal(user.status, "active");
    assert.equal(
      await statusOf(t.app.request(`${BASE}/api/auth/session`, withCookie(cookie))),
      200,
    );
  } finally {
    await t.close();
  }
});

Deno.test("no session can be started for a suspended account", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const a = await createAccountWithKey(kv, clock);
  const sessions = sessionManager({ kv, clock, ttlMs: DAY });
  await setUserStatus(kv, a.userId, "suspended");
  await assert.rejects(
    () => sessions.start(a.userId),
    (err) => err instanceof HttpError && err.status === 403,
  );
  assert.equal((await Array.fromAsync(kv.list({ prefix: sessionPrefix(a.userId) }))).length, 0);
});

Deno.test("suspension refuses this process's cached keys on the very next request", async () => {
  const t = await makeTestApp();
  try {
    const a = await createAccountWithKey(t.kv, t.clock);
    assert.equal(await statusOf(t.app.request("/api/e2/domains", bearer(a.key))), 200);
    assert.equal(await statusOf(t.app.request("/api/e2/domains", bearer(a.key))), 200);

    // The clock does not move: no revocation poll can run, only the in-process invalidation.
    await setUserStatus(t.kv, a.userId, "suspended");
    await assertSuspended(await t.app.request("/api/e2/domains", bearer(a.key)));

    await setUserStatus(t.kv, a.userId, "active");
    assert.equal(await statusOf(t.app.request("/api/e2/domains", bearer(a.key))), 200);
  } finally {
    await t.close();
  }
});

Deno.test("a key whose account record is gone is refused like an unknown key", async () => {
  const t = await makeTestApp();
  try {
    const a = await createAccountWithKey(t.kv, t.clock);
    await t.kv.delete(userKey(a.userId));
    const res = await t.app.request("/api/e2/domains", bearer(a.key));
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error, "Unauthorized");
  } finally {
    await t.close();
  }
});

Deno.test("admin user:suspend refuses a running server's keys within a second, and unsuspend restores them", async () => {
  const kvPath = await tempKvPath();
  const env = { DENO_KV_PATH: kvPath };
  const server = await startServer(env);
  try {
    const created = await runAdminCli(
      ["user:create", "--email", "ops@example.com", "--password", "a long enough password"],
      env,
    );
    assert.equal(created.code, 0, created.stderr);
    const key = (await runAdminCli(
      ["key:create", "--email", "ops@example.com", "--name", "prod"],
      env,
    )).stdout.trim();
    const status = async () => {
      const res = await fetch(`${server.url}/api/e2/domains`, bearer(key));
      await res.body?.cancel();
      return res.status;
    };
    assert.equal(await status(), 200);

    const suspended = await runAdminCli(["user:suspend", "--email", "ops@example.com"], env);
    assert.equal(suspended.code, 0, suspended.stderr);
    assert.equal(JSON.parse(suspended.stdout).status, "suspended");
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await status(), 403);

    assert.equal(
      (await runAdminCli(["user:unsuspend", "--email", "ops@example.com"], env)).code,
      0,
    );
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(await status(), 200);

    const unknown = await runAdminCli(["user:suspend", "--email", "nobody@example.com"], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no account/);
  } finally {
    await server.stop();
    await removeKvFile(kvPath);
  }
});
