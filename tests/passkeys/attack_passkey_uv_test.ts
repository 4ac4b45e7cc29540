/**
 * Issue 20, defect 2: a passkey stands in for the password and the second factor at once, so
 * every passkey ceremony needs user verification (the authenticator's PIN, biometric or screen
 * lock), not only user presence. A security key touched without its PIN, in anyone's hand, signs
 * in to nothing, completes no second step, puts no session in sudo mode and registers nothing.
 * The software authenticator (tests/_webauthn.ts) answers with the UP bit only when asked.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import { listPasskeys } from "../../store/passkeys.ts";
import { listSessions } from "../../store/sessions.ts";
import { getTwoFactor } from "../../store/two_factor.ts";
import { makeTestApp, TEST_PASSWORD, type TestApp } from "../_helpers.ts";
import { BASE, Jar, json } from "../sessions_helpers.ts";
import { call, type Options, signedUp, SoftAuthenticator } from "../_webauthn.ts";

const UV_CODE = "PASSKEY_USER_VERIFICATION_REQUIRED";

async function registered(ctx: TestApp, jar: Jar): Promise<SoftAuthenticator> {
  const auth = await SoftAuthenticator.create();
  const options = await call(ctx, jar, "generate-register-options");
  assert.equal(options.status, 200);
  const r = await call(ctx, jar, "verify-registration", {
    response: await auth.register(options.body as unknown as Options),
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return auth;
}

async function post(ctx: TestApp, jar: Jar, path: string, body: unknown) {
  const res = jar.take(await ctx.app.request(`${BASE}${path}`, jar.init(json(body))));
  return { status: res.status, body: await res.json() };
}

/** Password, TOTP (enrolled and confirmed) and a passkey: the account the issue describes. */
async function passwordTotpAndPasskey(ctx: TestApp) {
  const account = await signedUp(ctx);
  const enable = await post(ctx, account.jar, "/api/auth/two-factor/enable", {
    password: TEST_PASSWORD,
  });
  assert.equal(enable.status, 200, JSON.stringify(enable.body));
  const totp = OTPAuth.URI.parse(enable.body.totpURI) as OTPAuth.TOTP;
  const confirm = await post(ctx, account.jar, "/api/auth/two-factor/verify-totp", {
    code: totp.generate({ timestamp: ctx.clock() }),
  });
  assert.equal(confirm.status, 200, JSON.stringify(confirm.body));
  assert.equal((await getTwoFactor(ctx.kv, account.userId))?.enabled, true);
  return { ...account, auth: await registered(ctx, account.jar) };
}

/** The password step: a jar with only the pending sign-in's cookie. */
async function pendingFor(ctx: TestApp, email: string): Promise<Jar> {
  const jar = new Jar();
  const r = await post(ctx, jar, "/api/auth/sign-in/email", { email, password: TEST_PASSWORD });
  assert.equal(r.body.twoFactorRedirect, true, JSON.stringify(r.body));
  return jar;
}

async function sessionCount(ctx: TestApp, userId: string): Promise<number> {
  return (await listSessions(ctx.kv, userId, ctx.clock())).length;
}

Deno.test("issue 20: every passkey ceremony asks the browser for user verification 'required'", async (t) => {
  await using stack = new AsyncDisposableStack();
  const ctx = await makeTestApp();
  stack.defer(() => ctx.close());
  const a = await signedUp(ctx);
  await registered(ctx, a.jar);

  await t.step("registration options", async () => {
    const r = await call(ctx, a.jar, "generate-register-options");
    const selection = r.body.authenticatorSelection as Record<string, unknown>;
    assert.equal(selection.userVerification, "required");
  });
  await t.step("sign-in options, signed out", async () => {
    const r = await call(ctx, new Jar(), "generate-authenticate-options");
    assert.equal(r.body.userVerification, "required");
  });
  await t.step("second-step options after the password", async () => {
    const r = await call(ctx, await pendingFor(ctx, a.email), "generate-authenticate-options");
    assert.equal(r.body.userVerification, "required");
  });
  await t.step("re-authentication options", async () => {
    const r = await call(ctx, a.jar, "generate-reauthenticate-options", {});
    assert.equal(r.body.userVerification, "required");
  });
});

Deno.test("issue 20: a passkey without user verification opens no session on a password+TOTP account", async (t) => {
  await using stack = new AsyncDisposableStack();
  const ctx = await makeTestApp();
  stack.defer(() => ctx.close());
  const a = await passwordTotpAndPasskey(ctx);
  const sessionsBefore = await sessionCount(ctx, a.userId);

  await t.step(
    "user presence alone signing in is refused: 401 with its code, no session",
    async () => {
      const browser = new Jar();
      const options = await call(ctx, browser, "generate-authenticate-options");
      const r = await call(ctx, browser, "verify-authentication", {
        response: await a.auth.assert(options.body as unknown as Options, { userVerified: false }),
      });
      assert.equal(r.status, 401, JSON.stringify(r.body));
      assert.equal(r.body.code, UV_CODE);
      assert.equal(typeof r.body.message, "string");
      assert.equal(browser.get("inbound_session"), undefined);
      assert.equal(await sessionCount(ctx, a.userId), sessionsBefore);
      const [stored] = await listPasskeys(ctx.kv, a.userId);
      assert.equal(stored.lastUsedAt, null, "a refused assertion records no use");
    },
  );

  await t.step("nor completes the second step after the password", async () => {
    const pending = await pendingFor(ctx, a.email);
    const options = await call(ctx, pending, "generate-authenticate-options");
    const r = await call(ctx, pending, "verify-authentication", {
      response: await a.auth.assert(options.body as unknown as Options, { userVerified: false }),
    });
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.equal(r.body.code, UV_CODE);
    assert.equal(pending.get("inbound_session"), undefined);
    assert.equal(await sessionCount(ctx, a.userId), sessionsBefore);
  });

  await t.step("with user verification the same passkey signs in", async () => {
    const browser = new Jar();
    const options = await call(ctx, browser, "generate-authenticate-options");
    const r = await call(ctx, browser, "verify-authentication", {
      response: await a.auth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(browser.get("inbound_session"));
    assert.equal(await sessionCount(ctx, a.userId), sessionsBefore + 1);
  });

  await t.step("and completes the second step", async () => {
    const pending = await pendingFor(ctx, a.email);
    const options = await call(ctx, pending, "generate-authenticate-options");
    const r = await call(ctx, pending, "verify-authentication", {
      response: await a.auth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(pending.get("inbound_session"));
  });
});

Deno.test("issue 20: re-authentication by passkey needs user verification", async (t) => {
  await using stack = new AsyncDisposableStack();
  const ctx = await makeTestApp();
  stack.defer(() => ctx.close());
  const a = await signedUp(ctx);
  const auth = await registered(ctx, a.jar);
  ctx.clock.advance(11 * 60_000);
  assert.equal((await call(ctx, a.jar, "generate-register-options")).status, 403);

  await t.step("user presence alone is refused and sudo mode stays off", async () => {
    const options = await call(ctx, a.jar, "generate-reauthenticate-options", {});
    const r = await call(ctx, a.jar, "reauthenticate", {
      response: await auth.assert(options.body as unknown as Options, { userVerified: false }),
    });
    assert.equal(r.status, 401, JSON.stringify(r.body));
    assert.equal(r.body.code, UV_CODE);
    const after = await call(ctx, a.jar, "generate-register-options");
    assert.equal(after.status, 403);
    assert.equal(after.body.code, "REAUTHENTICATION_REQUIRED");
  });

  await t.step("a verified user re-authenticates", async () => {
    const options = await call(ctx, a.jar, "generate-reauthenticate-options", {});
    const r = await call(ctx, a.jar, "reauthenticate", {
      response: await auth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal((await call(ctx, a.jar, "generate-register-options")).status, 200);
  });
});

Deno.test("issue 20: a credential made without user verification is not registered", async (t) => {
  await using stack = new AsyncDisposableStack();
  const ctx = await makeTestApp();
  stack.defer(() => ctx.close());
  const a = await signedUp(ctx);
  const auth = await SoftAuthenticator.create();

  await t.step("400 with its code, nothing stored", async () => {
    const options = await call(ctx, a.jar, "generate-register-options");
    const r = await call(ctx, a.jar, "verify-registration", {
      response: await auth.register(options.body as unknown as Options, undefined, {
        userVerified: false,
      }),
    });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(r.body.code, UV_CODE);
    assert.deepEqual(await listPasskeys(ctx.kv, a.userId), []);
  });

  await t.step("the same authenticator with user verification is", async () => {
    const options = await call(ctx, a.jar, "generate-register-options");
    const r = await call(ctx, a.jar, "verify-registration", {
      response: await auth.register(options.body as unknown as Options),
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual((await listPasskeys(ctx.kv, a.userId)).map((p) => p.credentialId), [auth.id]);
  });
});
