/**
 * An outsider's attempts on the second factor (issue 12): the pending sign-in used as a session,
 * codes of another account, races on one code or one recovery code, brute force across fresh
 * sign-ins, a suspension between the two steps, stale sessions changing the second factors, and
 * secrets (TOTP secret, recovery codes, pending token) leaking into logs, errors or audit events.
 * Every test asserts the secure behaviour.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import type { App } from "../../app.ts";
import type { LogEntry } from "../../lib/log.ts";
import { auditPrefix } from "../../store/keys.ts";
import { setUserStatus } from "../../store/accounts/users.ts";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, fromIp, Jar, json } from "../sessions_helpers.ts";

const ELEVEN_MINUTES = 11 * 60_000;
type Clock = { (): number; advance(ms: number): void };

function codeAt(totpURI: string, nowMs: number): string {
  return (OTPAuth.URI.parse(totpURI) as OTPAuth.TOTP).generate({ timestamp: nowMs });
}

async function post(
  app: App,
  jar: Jar,
  path: string,
  body: unknown,
  ip = "203.0.113.7",
): Promise<Response> {
  return jar.take(await app.request(`${BASE}${path}`, jar.init(json(body)), fromIp(ip)));
}

async function get(app: App, jar: Jar, path: string): Promise<Response> {
  return jar.take(await app.request(`${BASE}${path}`, jar.init({ redirect: "manual" })));
}

/** Signs up and completes TOTP enrolment. */
async function enrolled(app: App, clock: Clock) {
  const jar = new Jar();
  const email = freshEmail();
  const up = await post(app, jar, "/api/auth/sign-up", { email, password: TEST_PASSWORD });
  assert.equal(up.status, 201);
  const userId: string = (await up.json()).user.id;
  const res = await post(app, jar, "/api/auth/two-factor/enable", { password: TEST_PASSWORD });
  assert.equal(res.status, 200);
  const { totpURI, backupCodes } = await res.json();
  const verify = await post(app, jar, "/api/auth/two-factor/verify-totp", {
    code: codeAt(totpURI, clock()),
  });
  assert.equal(verify.status, 200);
  await verify.body?.cancel();
  return { jar, email, userId, totpURI: totpURI as string, backupCodes: backupCodes as string[] };
}

/** The password step: a jar holding only the pending cookie. */
async function pendingFor(app: App, email: string, ip?: string): Promise<Jar> {
  const jar = new Jar();
  const res = await post(app, jar, "/api/auth/sign-in/email", {
    email,
    password: TEST_PASSWORD,
  }, ip);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).twoFactorRedirect, true);
  assert.ok(jar.get("inbound_two_factor"), "a pending cookie is set");
  assert.equal(jar.get("inbound_session"), undefined, "no session cookie");
  return jar;
}

async function sessionUser(app: App, jar: Jar): Promise<string | null> {
  const res = await get(app, jar, "/api/auth/get-session");
  const body = await res.json();
  return body?.user?.id ?? null;
}

Deno.test("a pending sign-in authenticates nothing, however its cookie is presented", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock } = env;
  const { email } = await enrolled(app, clock);
  const pending = await pendingFor(app, email);
  const value = pending.get("inbound_two_factor")!;

  await t.step("get-session is null and the API keys routes answer 401", async () => {
    assert.equal(await sessionUser(app, pending), null);
    const list = await get(app, pending, "/api/e2/api-keys");
    assert.equal(list.status, 401);
    await list.body?.cancel();
    const create = await post(app, pending, "/api/e2/api-keys", { name: "sneaky" });
    assert.equal(create.status, 401);
    await create.body?.cancel();
  });

  await t.step("the dashboard's pages send it to sign in instead of showing them", async () => {
    for (const path of ["/settings/api-keys", "/settings/security", "/settings/usage"]) {
      const res = await get(app, pending, path);
      assert.notEqual(res.status, 200, path);
      const text = await res.text();
      assert.ok(!text.includes(email), `${path} shows nothing of the account`);
    }
  });

  await t.step("its value presented as the session cookie is no session either", async () => {
    for (const forgedValue of [value, value.split(".")[1]]) {
      const forged = new Jar();
      forged.set("inbound_session", forgedValue);
      assert.equal(await sessionUser(app, forged), null);
      const res = await get(app, forged, "/api/e2/api-keys");
      assert.equal(res.status, 401);
      await res.body?.cancel();
    }
  });

  await t.step("settings routes refuse it: re-authentication, enable, disable", async () => {
    for (
      const [path, body] of [
        ["/api/auth/reauthenticate", { password: TEST_PASSWORD }],
        ["/api/auth/two-factor/enable", { password: TEST_PASSWORD }],
        ["/api/auth/two-factor/disable", { password: TEST_PASSWORD }],
        ["/api/auth/two-factor/generate-backup-codes", { password: TEST_PASSWORD }],
      ] as const
    ) {
      const res = await post(app, pending, path, body);
      assert.equal(res.status, 401, path);
      await res.body?.cancel();
    }
  });
});

Deno.test("a pending sign-in accepts only its own account's code, and only once", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock } = env;
  const a = await enrolled(app, clock);
  const b = await enrolled(app, clock);
  clock.advance(30_000);

  await t.step("account B's current code does not complete account A's sign-in", async () => {
    const pendingA = await pendingFor(app, a.email);
    const res = await post(app, pendingA, "/api/auth/two-factor/verify-totp", {
      code: codeAt(b.totpURI, clock()),
    });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    assert.equal(pendingA.get("inbound_session"), undefined);
  });

  await t.step("account B's recovery code does not either", async () => {
    const pendingA = await pendingFor(app, a.email);
    const res = await post(app, pendingA, "/api/auth/two-factor/verify-backup-code", {
      code: b.backupCodes[0],
    });
    assert.equal(res.status, 401);
    await res.body?.cancel();
  });

  await t.step("A's cookie with B's account id in it names no pending sign-in", async () => {
    const pendingA = await pendingFor(app, a.email);
    const token = pendingA.get("inbound_two_factor")!.split(".")[1];
    const forged = new Jar();
    forged.set("inbound_two_factor", `${b.userId}.${token}`);
    const res = await post(app, forged, "/api/auth/two-factor/verify-totp", {
      code: codeAt(b.totpURI, clock()),
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).code, "INVALID_TWO_FACTOR_COOKIE");
  });

  await t.step("a completed pending cookie, replayed with the next code, is refused", async () => {
    const pendingA = await pendingFor(app, a.email);
    const cookie = pendingA.get("inbound_two_factor")!;
    const ok = await post(app, pendingA, "/api/auth/two-factor/verify-totp", {
      code: codeAt(a.totpURI, clock()),
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    clock.advance(30_000);
    const replay = new Jar();
    replay.set("inbound_two_factor", cookie);
    const res = await post(app, replay, "/api/auth/two-factor/verify-totp", {
      code: codeAt(a.totpURI, clock()),
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).code, "INVALID_TWO_FACTOR_COOKIE");
    assert.equal(replay.get("inbound_session"), undefined);
  });
});

Deno.test("one code or one recovery code raced by two sign-ins completes exactly one", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock } = env;
  const { email, totpURI, backupCodes } = await enrolled(app, clock);
  clock.advance(30_000);

  await t.step("two verify-totp requests with one code: one 200, one 401", async () => {
    const jars = [await pendingFor(app, email), await pendingFor(app, email)];
    const code = codeAt(totpURI, clock());
    const results = await Promise.all(
      jars.map((j) => post(app, j, "/api/auth/two-factor/verify-totp", { code })),
    );
    const statuses = results.map((r) => r.status).sort();
    await Promise.all(results.map((r) => r.body?.cancel()));
    assert.deepEqual(statuses, [200, 401]);
    assert.equal(jars.filter((j) => j.get("inbound_session") !== undefined).length, 1);
  });

  await t.step("the same code in its window is refused to a third sign-in", async () => {
    clock.advance(10_000);
    const jar = await pendingFor(app, email);
    const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
      code: codeAt(totpURI, clock() - 10_000),
    });
    assert.equal(res.status, 401);
    await res.body?.cancel();
  });

  await t.step("one recovery code sent by three sign-ins at once: exactly one wins", async () => {
    const jars = [
      await pendingFor(app, email),
      await pendingFor(app, email),
      await pendingFor(app, email),
    ];
    const results = await Promise.all(
      jars.map((j) =>
        post(app, j, "/api/auth/two-factor/verify-backup-code", { code: backupCodes[0] })
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    await Promise.all(results.map((r) => r.body?.cancel()));
    assert.deepEqual(statuses, [200, 401, 401]);
  });

  await t.step("and it is refused ever after, in any spelling", async () => {
    const jar = await pendingFor(app, email);
    const res = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
      code: backupCodes[0].toUpperCase().replace("-", ""),
    });
    assert.equal(res.status, 401);
    await res.body?.cancel();
  });
});

Deno.test("guessing codes is throttled per account across fresh sign-ins and clients", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock, config } = env;
  const { email, totpURI } = await enrolled(app, clock);
  // The enrolment's own code counted too: start the guesses in a fresh window.
  clock.advance(2 * config.signInThrottle.windowMs);

  let last = new Jar();
  await t.step("the guesses are spread over new pending sign-ins and addresses", async () => {
    // Two guesses per sign-in: the password step has its own per-account limit.
    for (let i = 0; i < config.signInThrottle.max; i++) {
      const ip = `198.51.100.${i + 1}`;
      const jar = i % 2 === 0 ? await pendingFor(app, email, ip) : last;
      last = jar;
      const res = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
        code: "aaaaa-aaaaa",
      }, ip);
      assert.equal(res.status, 401);
      await res.body?.cancel();
    }
  });

  await t.step("then even the right code from a new address answers 429", async () => {
    const ip = "192.0.2.200";
    const jar = await pendingFor(app, email, ip);
    const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
      code: codeAt(totpURI, clock()),
    }, ip);
    assert.equal(res.status, 429);
    assert.ok(res.headers.get("Retry-After"));
    assert.equal((await res.json()).code, "TOO_MANY_ATTEMPTS");
    assert.equal(jar.get("inbound_session"), undefined);
  });
});

Deno.test("an account suspended between the password and the code gets no session", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, kv, clock } = env;
  const { email, userId, totpURI, backupCodes } = await enrolled(app, clock);
  clock.advance(30_000);

  await t.step("the right code answers 403 and sets no session cookie", async () => {
    const jar = await pendingFor(app, email);
    await setUserStatus(kv, userId, "suspended");
    const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
      code: codeAt(totpURI, clock()),
    });
    assert.equal(res.status, 403);
    await res.body?.cancel();
    assert.equal(jar.get("inbound_session"), undefined);
  });

  await t.step("so does a recovery code", async () => {
    await setUserStatus(kv, userId, "active");
    const jar = await pendingFor(app, email);
    await setUserStatus(kv, userId, "suspended");
    const res = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
      code: backupCodes[1],
    });
    assert.equal(res.status, 403);
    await res.body?.cancel();
    assert.equal(jar.get("inbound_session"), undefined);
  });
});

Deno.test("a stale or password-less session cannot change the second factors", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock } = env;
  const { jar, email } = await enrolled(app, clock);
  const key = await post(app, jar, "/api/e2/api-keys", { name: "k" });
  assert.equal(key.status, 201);
  const keyId: string = (await key.json()).id;

  await t.step("a fresh session without the password cannot disable 2FA", async () => {
    for (const body of [{}, { password: "wrong password" }]) {
      const res = await post(app, jar, "/api/auth/two-factor/disable", body);
      assert.equal(res.status, 400);
      await res.body?.cancel();
    }
    const pending = await pendingFor(app, email);
    assert.ok(pending.get("inbound_two_factor"), "still enrolled");
  });

  await t.step("eleven minutes on, every change answers 403 even with the password", async () => {
    clock.advance(ELEVEN_MINUTES);
    const attempts: [string, unknown][] = [
      ["/api/auth/two-factor/disable", { password: TEST_PASSWORD }],
      ["/api/auth/two-factor/generate-backup-codes", { password: TEST_PASSWORD }],
      ["/api/auth/change-password", {
        currentPassword: TEST_PASSWORD,
        newPassword: TEST_PASSWORD + "!",
      }],
      ["/api/auth/delete-user", { password: TEST_PASSWORD }],
      ["/api/e2/api-keys", { name: "stale" }],
      [`/api/e2/api-keys/${keyId}/roll`, { expiresInHours: 0 }],
    ];
    for (const [path, body] of attempts) {
      const res = await post(app, jar, path, body);
      assert.equal(res.status, 403, path);
      assert.equal((await res.json()).code, "REAUTHENTICATION_REQUIRED", path);
    }
    for (const method of ["PATCH", "DELETE"]) {
      const res = jar.take(
        await app.request(
          `${BASE}/api/e2/api-keys/${keyId}`,
          jar.init(method === "PATCH" ? { ...json({ name: "x" }), method } : { method }),
        ),
      );
      assert.equal(res.status, 403, method);
      await res.body?.cancel();
    }
  });

  await t.step("a stale passkey registration is refused too", async () => {
    const res = await get(app, jar, "/api/auth/passkey/generate-register-options");
    assert.equal(res.status, 403);
    await res.body?.cancel();
  });
});

Deno.test("no secret of the second factor reaches a log line, an error body or the audit log", async (t) => {
  await using stack = new AsyncDisposableStack();
  const lines: string[] = [];
  const env = await makeTestApp({
    config: { logRequests: true },
    logger: (entry: LogEntry) => lines.push(JSON.stringify(entry)),
  });
  stack.defer(() => env.close());
  const { app, kv, clock } = env;
  const errorBodies: string[] = [];
  const { jar, email, userId, totpURI, backupCodes } = await enrolled(app, clock);
  const secret = new URL(totpURI).searchParams.get("secret")!;
  const pendingTokens: string[] = [];

  await t.step("a run of sign-ins, mistakes and changes", async () => {
    clock.advance(30_000);
    for (const wrong of ["123456", backupCodes[2] + "x", secret]) {
      const pending = await pendingFor(app, email);
      pendingTokens.push(pending.get("inbound_two_factor")!);
      for (const path of ["verify-totp", "verify-backup-code"]) {
        const res = await post(app, pending, `/api/auth/two-factor/${path}`, { code: wrong });
        errorBodies.push(await res.text());
      }
      const unknown = await post(app, pending, "/api/auth/two-factor/verify-totp", {
        code: wrong,
        secret,
      });
      errorBodies.push(await unknown.text());
    }
    const pending = await pendingFor(app, email);
    pendingTokens.push(pending.get("inbound_two_factor")!);
    const code = codeAt(totpURI, clock());
    const ok = await post(app, pending, "/api/auth/two-factor/verify-totp", { code });
    assert.equal(ok.status, 200);
    const replay = new Jar();
    replay.set("inbound_two_factor", pendingTokens.at(-1)!);
    const again = await post(app, replay, "/api/auth/two-factor/verify-totp", { code });
    errorBodies.push(await ok.text(), await again.text());
    const regen = await post(app, jar, "/api/auth/two-factor/generate-backup-codes", {
      password: TEST_PASSWORD,
    });
    assert.equal(regen.status, 200);
    await regen.body?.cancel();
    const off = await post(app, jar, "/api/auth/two-factor/disable", { password: TEST_PASSWORD });
    assert.equal(off.status, 200);
    await off.body?.cancel();
  });

  const secrets = () => [
    secret,
    ...backupCodes,
    ...backupCodes.map((c) => c.replace("-", "")),
    ...pendingTokens,
    ...pendingTokens.map((p) => p.split(".")[1]),
  ];

  await t.step("no log line carries the secret, a recovery code or a pending token", () => {
    assert.ok(lines.length > 0, "the requests were logged");
    const all = lines.join("\n");
    for (const s of secrets()) assert.ok(!all.includes(s), `a log line carries ${s.slice(0, 4)}…`);
  });

  await t.step("no error body carries them", () => {
    const all = errorBodies.join("\n");
    for (const s of secrets()) assert.ok(!all.includes(s), "an error body carries a secret");
  });

  await t.step("no audit event carries them", async () => {
    const events = await Array.fromAsync(kv.list({ prefix: auditPrefix(userId) }));
    assert.ok(events.length > 0);
    const all = JSON.stringify(events.map((e) => e.value));
    for (const s of secrets()) assert.ok(!all.includes(s), "an audit event carries a secret");
  });
});

Deno.test("a stale session can neither complete nor read a pending enrolment", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock } = env;
  const jar = new Jar();
  const email = freshEmail();
  const up = await post(app, jar, "/api/auth/sign-up", { email, password: TEST_PASSWORD });
  assert.equal(up.status, 201);
  await up.body?.cancel();
  const enable = await post(app, jar, "/api/auth/two-factor/enable", { password: TEST_PASSWORD });
  assert.equal(enable.status, 200);
  const { totpURI } = await enable.json();
  const secret = new URL(totpURI).searchParams.get("secret")!;
  clock.advance(ELEVEN_MINUTES);

  await t.step("verify-totp from the stale session answers 403 and enables nothing", async () => {
    const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
      code: codeAt(totpURI, clock()),
    });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).code, "REAUTHENTICATION_REQUIRED");
    const signIn = await post(app, new Jar(), "/api/auth/sign-in/email", {
      email,
      password: TEST_PASSWORD,
    });
    assert.equal(signIn.status, 200);
    assert.equal((await signIn.json()).twoFactorRedirect, undefined, "not enrolled");
  });

  await t.step("the security page does not show the stale session the secret", async () => {
    const res = await get(app, jar, "/settings/security");
    assert.equal(res.status, 200);
    assert.ok(!(await res.text()).includes(secret), "the pending secret is on the page");
  });

  await t.step("after re-authenticating, the code completes the enrolment", async () => {
    const re = await post(app, jar, "/api/auth/reauthenticate", { password: TEST_PASSWORD });
    assert.equal(re.status, 200);
    await re.body?.cancel();
    clock.advance(30_000);
    const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
      code: codeAt(totpURI, clock()),
    });
    assert.equal(res.status, 200);
    await res.body?.cancel();
  });
});
