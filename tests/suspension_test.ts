/**
 * A suspended account is refused with 403 (not 401: the credential is fine), before any of its
 * data is read, by key and by session alike, and is served again once reactivated.
 */
import assert from "node:assert/strict";
import { setUserStatus } from "../store/users.ts";
import { userKey } from "../store/keys.ts";
import {
  bearer,
  createAccountWithKey,
  makeTestApp,
  removeKvFile,
  runAdminCli,
  startServer,
  tempKvPath,
} from "./_helpers.ts";
import { BASE, signUp, withCookie } from "./sessions_helpers.ts";

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

Deno.test("a suspended account's session gets 403 on the API and is sent to sign in on the dashboard", async () => {
  const t = await makeTestApp();
  try {
    const { cookie, userId } = await signUp(t.app);
    await setUserStatus(t.kv, userId, "suspended");
    await assertSuspended(await t.app.request(`${BASE}/api/e2/domains`, withCookie(cookie)));
    const page = await t.app.request(`${BASE}/settings/api-keys`, withCookie(cookie));
    assert.equal(page.status, 303);
    assert.equal(page.headers.get("Location"), "/sign-in");
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
