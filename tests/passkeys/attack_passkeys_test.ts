/**
 * An outsider's attempts on passkeys (issue 12): another account's passkey or a forged user handle
 * as a second step or a sign-in, challenges used twice or carried to another session or pending
 * sign-in, registering a credential into another account. Every test asserts the secure
 * behaviour. The software authenticator is tests/passkeys/passkeys_test.ts's, copied.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import { listPasskeys } from "../../store/passkeys.ts";
import { getTwoFactor } from "../../store/two_factor.ts";
import { setUserStatus } from "../../store/accounts/users.ts";
import { makeTestApp, TEST_PASSWORD, type TestApp } from "../_helpers.ts";
import { BASE, Jar, json } from "../sessions_helpers.ts";

import { b64url, call, enc, type Options, signedUp, SoftAuthenticator } from "../_webauthn.ts";

async function registered(ctx: TestApp, jar: Jar) {
  const auth = await SoftAuthenticator.create();
  const options = await call(ctx, jar, "generate-register-options");
  assert.equal(options.status, 200);
  const r = await call(ctx, jar, "verify-registration", {
    response: await auth.register(options.body as unknown as Options),
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return auth;
}

/** The password step of an account with a passkey: a jar with only the pending cookie. */
async function pendingFor(ctx: TestApp, email: string): Promise<Jar> {
  const jar = new Jar();
  const res = jar.take(
    await ctx.app.request(
      `${BASE}/api/auth/sign-in/email`,
      json({ email, password: TEST_PASSWORD }),
    ),
  );
  assert.equal(res.status, 200);
  assert.equal((await res.json()).twoFactorRedirect, true);
  return jar;
}

/** `user.id` as the authenticator would carry it: base64url of the id's bytes. */
function handleOf(userId: string): string {
  return b64url(enc.encode(userId));
}

Deno.test("a passkey answers only for the account that holds it", async (t) => {
  await using stack = new AsyncDisposableStack();
  const ctx = await makeTestApp();
  stack.defer(() => ctx.close());
  const a = await signedUp(ctx);
  await registered(ctx, a.jar);
  const b = await signedUp(ctx);
  const bAuth = await registered(ctx, b.jar);

  await t.step(
    "B's passkey claiming A's user handle does not complete A's second step",
    async () => {
      const pending = await pendingFor(ctx, a.email);
      const options = await call(ctx, pending, "generate-authenticate-options");
      bAuth.userHandle = handleOf(a.userId);
      const r = await call(ctx, pending, "verify-authentication", {
        response: await bAuth.assert(options.body as unknown as Options),
      });
      assert.equal(r.status, 401);
      assert.equal(pending.get("inbound_session"), undefined);
    },
  );

  await t.step("nor signs in to A from a signed-out browser", async () => {
    const browser = new Jar();
    const options = await call(ctx, browser, "generate-authenticate-options");
    bAuth.userHandle = handleOf(a.userId);
    const r = await call(ctx, browser, "verify-authentication", {
      response: await bAuth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 401);
    assert.equal(browser.get("inbound_session"), undefined);
  });

  await t.step("nor re-authenticates A's session", async () => {
    const options = await call(ctx, a.jar, "generate-reauthenticate-options", {});
    bAuth.userHandle = handleOf(a.userId);
    const r = await call(ctx, a.jar, "reauthenticate", {
      response: await bAuth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 401);
  });
});

Deno.test("passkey challenges are single-use and stay with what they were issued to", async (t) => {
  await using stack = new AsyncDisposableStack();
  const ctx = await makeTestApp();
  stack.defer(() => ctx.close());
  const a = await signedUp(ctx);
  const aAuth = await registered(ctx, a.jar);
  const b = await signedUp(ctx);

  await t.step(
    "A's registration challenge, carried into B's session, registers nothing",
    async () => {
      const options = await call(ctx, a.jar, "generate-register-options");
      const stolen = new Jar();
      for (const part of b.jar.header().split("; ")) {
        const eq = part.indexOf("=");
        stolen.set(part.slice(0, eq), part.slice(eq + 1));
      }
      stolen.set("inbound_webauthn", a.jar.get("inbound_webauthn")!);
      const auth = await SoftAuthenticator.create();
      const r = await call(ctx, stolen, "verify-registration", {
        response: await auth.register(options.body as unknown as Options),
      });
      assert.equal(r.status, 400);
      assert.equal((await listPasskeys(ctx.kv, b.userId)).length, 0);
      assert.equal((await listPasskeys(ctx.kv, a.userId)).length, 1);
    },
  );

  await t.step("a registration answer sent twice stores one passkey", async () => {
    const options = await call(ctx, b.jar, "generate-register-options");
    const auth = await SoftAuthenticator.create();
    const response = await auth.register(options.body as unknown as Options);
    const cookie = b.jar.get("inbound_webauthn")!;
    const first = await call(ctx, b.jar, "verify-registration", { response });
    assert.equal(first.status, 200);
    b.jar.set("inbound_webauthn", cookie);
    const second = await call(ctx, b.jar, "verify-registration", { response });
    assert.equal(second.status, 400);
    assert.equal((await listPasskeys(ctx.kv, b.userId)).length, 1);
  });

  await t.step("a second-step challenge does not serve another pending sign-in", async () => {
    const first = await pendingFor(ctx, a.email);
    const options = await call(ctx, first, "generate-authenticate-options");
    const second = await pendingFor(ctx, a.email);
    second.set("inbound_webauthn", first.get("inbound_webauthn")!);
    const r = await call(ctx, second, "verify-authentication", {
      response: await aAuth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 401);
    assert.equal(second.get("inbound_session"), undefined);
  });

  await t.step("a signed-out challenge does not complete a pending sign-in", async () => {
    const signedOut = new Jar();
    const options = await call(ctx, signedOut, "generate-authenticate-options");
    const pending = await pendingFor(ctx, a.email);
    pending.set("inbound_webauthn", signedOut.get("inbound_webauthn")!);
    const r = await call(ctx, pending, "verify-authentication", {
      response: await aAuth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 401);
    assert.equal(pending.get("inbound_session"), undefined);
  });

  await t.step("an accepted assertion replayed with its challenge cookie is refused", async () => {
    const pending = await pendingFor(ctx, a.email);
    const pendingCookie = pending.get("inbound_two_factor")!;
    const options = await call(ctx, pending, "generate-authenticate-options");
    const challengeCookie = pending.get("inbound_webauthn")!;
    const response = await aAuth.assert(options.body as unknown as Options);
    const ok = await call(ctx, pending, "verify-authentication", { response });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const replay = new Jar();
    replay.set("inbound_two_factor", pendingCookie);
    replay.set("inbound_webauthn", challengeCookie);
    const r = await call(ctx, replay, "verify-authentication", { response });
    assert.notEqual(r.status, 200);
    assert.equal(replay.get("inbound_session"), undefined);
  });

  await t.step("a pending sign-in used up by a passkey takes no code after", async () => {
    const pending = await pendingFor(ctx, a.email);
    const cookie = pending.get("inbound_two_factor")!;
    const options = await call(ctx, pending, "generate-authenticate-options");
    const ok = await call(ctx, pending, "verify-authentication", {
      response: await aAuth.assert(options.body as unknown as Options),
    });
    assert.equal(ok.status, 200);
    const replay = new Jar();
    replay.set("inbound_two_factor", cookie);
    const res = replay.take(
      await ctx.app.request(
        `${BASE}/api/auth/two-factor/verify-backup-code`,
        replay.init(json({ code: "aaaaa-aaaaa" })),
      ),
    );
    assert.equal(res.status, 401);
    assert.equal((await res.json()).code, "INVALID_TWO_FACTOR_COOKIE");
  });
});

Deno.test("a passkey of a suspended account completes no sign-in", async (t) => {
  await using stack = new AsyncDisposableStack();
  const ctx = await makeTestApp();
  stack.defer(() => ctx.close());
  const a = await signedUp(ctx);
  const auth = await registered(ctx, a.jar);

  await t.step("as the second step after the password", async () => {
    const pending = await pendingFor(ctx, a.email);
    const options = await call(ctx, pending, "generate-authenticate-options");
    await setUserStatus(ctx.kv, a.userId, "suspended");
    const r = await call(ctx, pending, "verify-authentication", {
      response: await auth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 403);
    assert.equal(pending.get("inbound_session"), undefined);
  });

  await t.step("or alone", async () => {
    const browser = new Jar();
    const options = await call(ctx, browser, "generate-authenticate-options");
    const r = await call(ctx, browser, "verify-authentication", {
      response: await auth.assert(options.body as unknown as Options),
    });
    assert.equal(r.status, 403);
    assert.equal(browser.get("inbound_session"), undefined);
  });
});

Deno.test("an unfinished TOTP enrolment is no second step for a passkey account", async (t) => {
  await using stack = new AsyncDisposableStack();
  const ctx = await makeTestApp();
  stack.defer(() => ctx.close());
  const a = await signedUp(ctx);
  await registered(ctx, a.jar);
  const enable = a.jar.take(
    await ctx.app.request(
      `${BASE}/api/auth/two-factor/enable`,
      a.jar.init(json({ password: TEST_PASSWORD })),
    ),
  );
  assert.equal(enable.status, 200);
  const { totpURI } = await enable.json();

  await t.step("a code of the pending secret does not complete the sign-in", async () => {
    const pending = await pendingFor(ctx, a.email);
    const code = (OTPAuth.URI.parse(totpURI) as OTPAuth.TOTP).generate({
      timestamp: ctx.clock(),
    });
    const res = pending.take(
      await ctx.app.request(
        `${BASE}/api/auth/two-factor/verify-totp`,
        pending.init(json({ code })),
      ),
    );
    assert.equal(res.status, 401);
    await res.body?.cancel();
    assert.equal(pending.get("inbound_session"), undefined);
  });

  await t.step("and the enrolment stays unfinished", async () => {
    const status = await getTwoFactor(ctx.kv, a.userId);
    assert.equal(status?.enabled, false);
  });
});
