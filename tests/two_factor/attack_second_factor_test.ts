/**
 * The second step of a sign-in (issue 20, defects 5 and 11): every attempt on it leaves a trace in
 * the security log (the password accepted, each wrong code), bounded by the same throttle as
 * `session.sign_in_failed`; and a code and the pending sign-in are consumed by one checked commit,
 * so attempts racing on one pending sign-in use up nothing but the winner's code.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import type { App } from "../../app.ts";
import type { AuditEvent } from "../../store/audit_log/events.ts";
import { auditPrefix } from "../../store/keys.ts";
import { getTwoFactor } from "../../store/two_factor.ts";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, fromIp, Jar, json } from "../sessions_helpers.ts";

const UA = "SecondFactorTest/1.0";
const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

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
  const init = jar.init(json(body, { headers: { "User-Agent": UA } }));
  return jar.take(await app.request(`${BASE}${path}`, init, fromIp(ip)));
}

/** A dashboard form post (urlencoded, same origin), redirects not followed. */
async function postForm(
  app: App,
  jar: Jar,
  path: string,
  fields: Record<string, string>,
): Promise<Response> {
  const init = jar.init({
    method: "POST",
    redirect: "manual",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      "User-Agent": UA,
      ...SAME_ORIGIN,
    },
    body: new URLSearchParams(fields).toString(),
  });
  return jar.take(await app.request(`${BASE}${path}`, init, fromIp("203.0.113.8")));
}

/** Signs up and completes TOTP enrolment. */
async function enrolled(app: App, clock: () => number) {
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

/** The password step through the JSON API: a jar holding only the pending cookie. */
async function pendingFor(app: App, email: string): Promise<Jar> {
  const jar = new Jar();
  const res = await post(app, jar, "/api/auth/sign-in/email", { email, password: TEST_PASSWORD });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).twoFactorRedirect, true);
  assert.ok(jar.get("inbound_two_factor"));
  return jar;
}

async function events(kv: Deno.Kv, userId: string): Promise<AuditEvent[]> {
  const list = await Array.fromAsync(kv.list<AuditEvent>({ prefix: auditPrefix(userId) }));
  return list.map((e) => e.value);
}

async function ofAction(kv: Deno.Kv, userId: string, action: string): Promise<AuditEvent[]> {
  return (await events(kv, userId)).filter((e) => e.action === action);
}

Deno.test("second-factor attempts at sign-in leave an audit trace", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock, kv } = env;
  const { email, userId, totpURI, backupCodes } = await enrolled(app, clock);
  clock.advance(30_000);

  await t.step(
    "JSON API: the password accepted, then two wrong codes and a wrong recovery code",
    async () => {
      const jar = await pendingFor(app, email);
      await app.idle();
      const required = await ofAction(kv, userId, "session.second_factor_required");
      assert.equal(required.length, 1, "the accepted password is recorded");
      assert.equal(required[0].outcome, "success");
      assert.equal(required[0].target.id, userId);
      assert.equal(required[0].ip, "203.0.113.7");
      assert.equal(required[0].userAgent, UA);
      assert.deepEqual(required[0].details?.methods, ["totp"]);

      for (const code of ["000000", "111111"]) {
        const res = await post(app, jar, "/api/auth/two-factor/verify-totp", { code });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).code, "INVALID_CODE");
      }
      const wrong = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
        code: "aaaaa-bbbbb",
      });
      assert.equal(wrong.status, 401);
      await wrong.body?.cancel();
      await app.idle();

      const failed = await ofAction(kv, userId, "session.second_factor_failed");
      assert.equal(failed.length, 3, "each wrong second factor is recorded");
      assert.deepEqual(failed.map((e) => e.details?.method).sort(), [
        "backup_code",
        "totp",
        "totp",
      ]);
      for (const e of failed) {
        assert.equal(e.outcome, "failure");
        assert.equal(e.target.id, userId);
        assert.equal(e.ip, "203.0.113.7");
        assert.equal(e.userAgent, UA);
      }
      const text = JSON.stringify(await events(kv, userId));
      for (const secret of ["000000", "111111", "aaaaa-bbbbb", "aaaaabbbbb", ...backupCodes]) {
        assert.ok(!text.includes(secret), "no code reaches the audit log");
      }
      assert.ok(!text.includes(jar.get("inbound_two_factor")!.split(".")[1]));

      // The right code still completes it (nothing of the above consumed the pending sign-in).
      const ok = await post(app, jar, "/api/auth/two-factor/verify-totp", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(ok.status, 200);
      await ok.body?.cancel();
    },
  );

  await t.step("the dashboard's forms record the same events", async () => {
    const before = (await ofAction(kv, userId, "session.second_factor_failed")).length;
    const requiredBefore = (await ofAction(kv, userId, "session.second_factor_required")).length;
    const jar = new Jar();
    const signIn = await postForm(app, jar, "/sign-in", { email, password: TEST_PASSWORD });
    assert.equal(signIn.status, 303);
    assert.ok(jar.get("inbound_two_factor"));
    const totp = await postForm(app, jar, "/sign-in/two-factor", { code: "222222" });
    assert.equal(totp.status, 401);
    await totp.body?.cancel();
    const backup = await postForm(app, jar, "/sign-in/two-factor", { backupCode: "ccccc-ddddd" });
    assert.equal(backup.status, 401);
    await backup.body?.cancel();
    await app.idle();
    const required = await ofAction(kv, userId, "session.second_factor_required");
    assert.equal(required.length, requiredBefore + 1);
    const failed = await ofAction(kv, userId, "session.second_factor_failed");
    assert.equal(failed.length, before + 2);
    assert.ok(failed.every((e) => e.outcome === "failure"));
  });

  await t.step("an expired or forged pending cookie records nothing", async () => {
    const count = (await events(kv, userId)).length;
    const forged = new Jar();
    forged.set("inbound_two_factor", `${userId}.${"A".repeat(43)}`);
    const res = await post(app, forged, "/api/auth/two-factor/verify-totp", { code: "333333" });
    assert.equal(res.status, 401);
    await res.body?.cancel();
    await app.idle();
    assert.equal((await events(kv, userId)).length, count);
  });
});

Deno.test("second-factor failures are bounded by the throttle, like failed passwords", async () => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp({ config: { signInThrottle: { max: 3, windowMs: 60_000 } } });
  stack.defer(() => env.close());
  const { app, clock, kv } = env;
  const { email, userId } = await enrolled(app, clock);
  const jar = await pendingFor(app, email);
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) {
    const res = await post(app, jar, "/api/auth/two-factor/verify-totp", { code: "444444" });
    statuses.push(res.status);
    await res.body?.cancel();
  }
  await app.idle();
  // The enrolment's verify-totp counted one attempt of the account's three.
  assert.deepEqual(statuses, [401, 401, 429, 429, 429, 429, 429, 429]);
  const failed = await ofAction(kv, userId, "session.second_factor_failed");
  assert.equal(failed.length, 2, "a refused (429) attempt records nothing");
});

Deno.test("the audit API, OpenAPI and the security log page know the new actions", async (t) => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock } = env;
  const { jar, email } = await enrolled(app, clock);
  const pending = await pendingFor(app, email);
  const wrong = await post(app, pending, "/api/auth/two-factor/verify-totp", { code: "555555" });
  assert.equal(wrong.status, 401);
  await wrong.body?.cancel();
  await app.idle();

  for (const action of ["session.second_factor_required", "session.second_factor_failed"]) {
    await t.step(`the audit API filters by ${action}`, async () => {
      const res = await app.request(
        `${BASE}/api/e2/audit-log?action=${action}`,
        jar.init(),
      );
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.data.length, 1);
      assert.equal(body.data[0].action, action);
    });
  }

  await t.step("the OpenAPI document lists them in the action enums", async () => {
    const res = await app.request(`${BASE}/api/e2/openapi.json`);
    const text = await res.text();
    assert.ok(text.includes('"session.second_factor_required"'));
    assert.ok(text.includes('"session.second_factor_failed"'));
  });

  await t.step("the security log page words them for people", async () => {
    const res = await app.request(`${BASE}/settings/security-log`, jar.init());
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /Password accepted, second factor required/);
    assert.match(html, /Second factor failed/);
    assert.match(html, /<option [^>]*value="session.second_factor_failed"/);
    assert.match(html, /Second factor failed \(authenticator code\)/);
  });
});

Deno.test("recovery codes raced on one pending sign-in: one session, one code used", async () => {
  await using stack = new AsyncDisposableStack();
  const env = await makeTestApp();
  stack.defer(() => env.close());
  const { app, clock, kv } = env;
  const { email, userId, backupCodes } = await enrolled(app, clock);
  const jar = await pendingFor(app, email);
  const results = await Promise.all(
    backupCodes.slice(0, 4).map((code) =>
      app.request(
        `${BASE}/api/auth/two-factor/verify-backup-code`,
        jar.init(json({ code })),
        fromIp("203.0.113.7"),
      )
    ),
  );
  const statuses = results.map((r) => r.status);
  await Promise.all(results.map((r) => r.body?.cancel()));
  assert.equal(statuses.filter((s) => s === 200).length, 1, `one wins: ${statuses}`);
  assert.ok(statuses.every((s) => s === 200 || s === 401), `${statuses}`);
  assert.equal((await getTwoFactor(kv, userId))?.backupCodes.length, 9, "exactly one code used");
  const created = await ofAction(kv, userId, "session.created");
  assert.equal(created.length, 2, "the sign-up's session and one more");
});

/**
 * A KV whose pending sign-in is taken by "another attempt" right after this request first read
 * it: the deterministic form of losing the race.
 */
function losingKv(kv: Deno.Kv): { kv: Deno.Kv; arm(): void } {
  let armed = false;
  const proxy = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === "get") {
        return async (key: Deno.KvKey, opts?: { consistency?: Deno.KvConsistencyLevel }) => {
          const entry = await target.get(key, opts);
          if (armed && key[1] === "two_factor_pending") {
            armed = false;
            await target.delete(key);
          }
          return entry;
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { kv: proxy, arm: () => (armed = true) };
}

Deno.test("an attempt that loses its pending sign-in consumes no code", async (t) => {
  await using stack = new AsyncDisposableStack();
  const inner = await Deno.openKv(":memory:");
  const losing = losingKv(inner);
  const env = await makeTestApp({ kv: losing.kv });
  stack.defer(() => env.close());
  const { app, clock } = env;
  const { email, userId, totpURI, backupCodes } = await enrolled(app, clock);

  await t.step("a recovery code stays unused", async () => {
    const jar = await pendingFor(app, email);
    losing.arm();
    const res = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
      code: backupCodes[0],
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).code, "INVALID_TWO_FACTOR_COOKIE");
    assert.equal((await getTwoFactor(inner, userId))!.backupCodes.length, 10, "nothing used");
    // So the same code still completes a fresh sign-in.
    const again = await pendingFor(app, email);
    const ok = await post(app, again, "/api/auth/two-factor/verify-backup-code", {
      code: backupCodes[0],
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  });

  await t.step("a TOTP code's step is not marked used", async () => {
    clock.advance(30_000);
    const jar = await pendingFor(app, email);
    const before = (await getTwoFactor(inner, userId))!.lastAcceptedStep;
    losing.arm();
    const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
      code: codeAt(totpURI, clock()),
    });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).code, "INVALID_TWO_FACTOR_COOKIE");
    assert.equal((await getTwoFactor(inner, userId))!.lastAcceptedStep, before);
    // So the same code still completes a fresh sign-in.
    const again = await pendingFor(app, email);
    const ok = await post(app, again, "/api/auth/two-factor/verify-totp", {
      code: codeAt(totpURI, clock()),
    });
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
  });
});
