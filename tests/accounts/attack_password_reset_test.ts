/**
 * Issue 20, defects 4 and 6: password-reset links.
 *   4. A link issued before a credential change (password change or reset, TOTP enabled or
 *      disabled, recovery codes regenerated, a passkey added or removed, signing out everywhere)
 *      must not work after it.
 *   6. An anonymous client must not be able to flood an address with reset mail, nor kill the
 *      link its owner is about to use by asking again; the answer stays the same for everyone.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import type { App } from "../../app.ts";
import {
  RESET_MAIL_INTERVAL_MS,
  resetLink,
  resetRedirectPath,
} from "../../auth/accounts/service.ts";
import type { AuditContext } from "../../store/audit_log/events.ts";
import { addPasskey, deletePasskey, type NewPasskey } from "../../store/passkeys.ts";
import { issuePasswordReset, PASSWORD_RESET_TTL_MS } from "../../store/accounts/password_reset.ts";
import { deleteAllSessions } from "../../store/sessions.ts";
import { removeSecondFactors } from "../../store/two_factor.ts";
import { makeTestApp, TEST_PASSWORD, type TestApp } from "../_helpers.ts";
import { linkIn, type ReceivedMail, startSmtpSink } from "../_smtp_sink.ts";
import { BASE, fromIp, Jar, json } from "../sessions_helpers.ts";

const CTX: AuditContext = { actor: { type: "session", id: "test" }, ip: null, userAgent: null };

let ipCounter = 0;
/** A fresh client address per request, so the per-address throttles do not interfere. */
const freshIp = () => fromIp(`203.0.113.${(++ipCounter % 250) + 1}`);

async function post(app: App, jar: Jar, path: string, body: unknown): Promise<Response> {
  return jar.take(await app.request(`${BASE}${path}`, jar.init(json(body)), freshIp()));
}

async function signUpJar(app: App): Promise<{ jar: Jar; email: string; userId: string }> {
  const jar = new Jar();
  const email = `reset-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const res = await post(app, jar, "/api/auth/sign-up", { email, password: TEST_PASSWORD });
  assert.equal(res.status, 201);
  return { jar, email, userId: (await res.json()).user.id };
}

/** POST /api/auth/reset-password with `token`: the status and error code, if any. */
async function resetWith(app: App, token: string, newPassword = "a reset passphrase 1234") {
  const res = await app.request(
    `${BASE}/api/auth/reset-password`,
    json({ token, newPassword }),
    freshIp(),
  );
  const body = await res.json();
  return { status: res.status, code: body.code as string | undefined };
}

/** Whether the reset page accepts `token` now (it checks without spending it). */
async function linkLive(app: App, token: string): Promise<boolean> {
  const res = await app.request(`${BASE}/reset-password?token=${encodeURIComponent(token)}`);
  await res.body?.cancel();
  return res.status === 200;
}

async function sessionAlive(app: App, jar: Jar): Promise<boolean> {
  const res = await app.request(`${BASE}/api/auth/session`, jar.init());
  await res.body?.cancel();
  return res.status === 200;
}

/** A link for the account, as the mail carries it (store/accounts/password_reset.ts). */
async function issueLink(h: TestApp, userId: string): Promise<string> {
  const issued = await issuePasswordReset(h.kv, userId, h.clock());
  assert.ok(issued);
  return issued.token;
}

/**
 * A passkey as the store keeps one once registration verified it (the WebAuthn ceremony is
 * tests/passkeys/passkeys_test.ts's; here only the credential change matters).
 */
function passkeyOf(userId: string, name: string): NewPasskey {
  return {
    userId,
    name,
    credentialId: btoa(name).replace(/=+$/, ""),
    publicKey: new Uint8Array([1, 2, 3]),
    counter: 0,
    transports: ["internal"],
    deviceType: "multiDevice",
    backedUp: true,
  };
}

const INVALID = { status: 400, code: "INVALID_TOKEN" };

/** The link is dead: the reset page refuses it (nothing spent), and so does a reset. */
async function assertDead(app: App, token: string): Promise<void> {
  assert.equal(await linkLive(app, token), false, "the reset page still accepts the link");
  assert.deepEqual(await resetWith(app, token), INVALID);
}

Deno.test("a reset link dies with every credential change (issue 20, defect 4)", async (t) => {
  const h = await makeTestApp();
  try {
    const { app, clock } = h;

    await t.step("a password change revokes a link issued before it", async () => {
      const a = await signUpJar(app);
      const token = await issueLink(h, a.userId);
      const changed = await post(app, a.jar, "/api/auth/change-password", {
        currentPassword: TEST_PASSWORD,
        newPassword: "changed by the owner 42",
      });
      assert.equal(changed.status, 200);
      await assertDead(app, token);
      assert.ok(await sessionAlive(app, a.jar), "the owner stays signed in");
      const signIn = await post(app, new Jar(), "/api/auth/sign-in", {
        email: a.email,
        password: "changed by the owner 42",
      });
      assert.equal(signIn.status, 200, "the owner's new password stands");
    });

    await t.step("a link issued after the change works", async () => {
      const a = await signUpJar(app);
      const changed = await post(app, a.jar, "/api/auth/change-password", {
        currentPassword: TEST_PASSWORD,
        newPassword: "changed by the owner 42",
      });
      assert.equal(changed.status, 200);
      const token = await issueLink(h, a.userId);
      assert.deepEqual(await resetWith(app, token), { status: 200, code: undefined });
    });

    await t.step("a reset spends every outstanding link of the account", async () => {
      const a = await signUpJar(app);
      const first = await issueLink(h, a.userId);
      const second = await issueLink(h, a.userId);
      assert.equal((await resetWith(app, second)).status, 200);
      assert.deepEqual(await resetWith(app, first, "another passphrase 99"), INVALID);
    });

    let totpURI = "";
    const a = await signUpJar(app);
    await t.step("enabling TOTP revokes it", async () => {
      const token = await issueLink(h, a.userId);
      const enable = await post(app, a.jar, "/api/auth/two-factor/enable", {
        password: TEST_PASSWORD,
      });
      assert.equal(enable.status, 200);
      totpURI = (await enable.json()).totpURI;
      assert.ok(await linkLive(app, token), "a pending enrolment protects nothing yet");
      const code = (OTPAuth.URI.parse(totpURI) as OTPAuth.TOTP).generate({ timestamp: clock() });
      const verify = await post(app, a.jar, "/api/auth/two-factor/verify-totp", { code });
      assert.equal(verify.status, 200);
      await assertDead(app, token);
    });

    await t.step("regenerating the recovery codes revokes it", async () => {
      const token = await issueLink(h, a.userId);
      const res = await post(app, a.jar, "/api/auth/two-factor/generate-backup-codes", {
        password: TEST_PASSWORD,
      });
      assert.equal(res.status, 200);
      await assertDead(app, token);
    });

    await t.step("disabling TOTP revokes it", async () => {
      const token = await issueLink(h, a.userId);
      const res = await post(app, a.jar, "/api/auth/two-factor/disable", {
        password: TEST_PASSWORD,
      });
      assert.equal(res.status, 200);
      await assertDead(app, token);
      assert.ok(await sessionAlive(app, a.jar));
    });

    await t.step("adding a passkey revokes it, and so does removing one", async () => {
      const before = await issueLink(h, a.userId);
      const passkey = await addPasskey(h.kv, passkeyOf(a.userId, "laptop"), CTX, clock());
      await assertDead(app, before);
      const again = await issueLink(h, a.userId);
      assert.ok(await deletePasskey(h.kv, a.userId, passkey.id, CTX, clock()));
      await assertDead(app, again);
    });

    await t.step("an operator removing every second factor revokes it", async () => {
      await addPasskey(h.kv, passkeyOf(a.userId, "phone"), CTX, clock());
      const token = await issueLink(h, a.userId);
      assert.deepEqual(await removeSecondFactors(h.kv, a.userId, { ctx: CTX, nowMs: clock() }), {
        totp: false,
        passkeys: 1,
      });
      await assertDead(app, token);
    });

    await t.step("signing out everywhere else revokes it", async () => {
      const token = await issueLink(h, a.userId);
      const res = await post(app, a.jar, "/api/auth/revoke-other-sessions", {});
      assert.equal(res.status, 200);
      await assertDead(app, token);
      assert.ok(await sessionAlive(app, a.jar));
    });

    await t.step("signing out everywhere revokes it, with no session left to end", async () => {
      const token = await issueLink(h, a.userId);
      assert.equal(await deleteAllSessions(h.kv, a.userId), 1);
      await assertDead(app, token);
      const later = await issueLink(h, a.userId);
      assert.equal(await deleteAllSessions(h.kv, a.userId), 0);
      await assertDead(app, later);
    });

    await t.step("a sign-in (nothing changed) leaves it live", async () => {
      const token = await issueLink(h, a.userId);
      const signIn = await post(app, new Jar(), "/api/auth/sign-in", {
        email: a.email,
        password: TEST_PASSWORD,
      });
      assert.equal(signIn.status, 200);
      assert.ok(await linkLive(app, token));
    });
  } finally {
    await h.close();
  }
});

Deno.test("reset mail: one per address per quiet period, the live link kept (issue 20, defect 6)", async (t) => {
  await using smtp = await startSmtpSink();
  const h = await makeTestApp({ config: { smtp: smtp.config } });
  try {
    const { app, clock } = h;
    const request = async (email: string) => {
      const res = await app.request(
        `${BASE}/api/auth/request-password-reset`,
        json({ email }),
        freshIp(),
      );
      return {
        status: res.status,
        body: await res.text(),
        type: res.headers.get("Content-Type"),
        cache: res.headers.get("Cache-Control"),
        cookie: res.headers.get("Set-Cookie"),
      };
    };
    const tokenOf = (mail: ReceivedMail) => linkIn(mail).searchParams.get("token") ?? "";
    const a = await signUpJar(app);

    let first = "";
    await t.step("ten requests in a row send one mail", async () => {
      const answers = [];
      for (let i = 0; i < 10; i++) answers.push(await request(a.email));
      await app.idle();
      assert.equal(smtp.received.length, 1);
      first = tokenOf(smtp.received[0]);
      for (const answer of answers) assert.deepEqual(answer, answers[0]);
    });

    await t.step("the mailed link survives the requests that came after it", async () => {
      assert.ok(await linkLive(app, first));
    });

    await t.step("a quiet answer, a mailed one and an unknown email's are identical", async () => {
      clock.advance(60_000); // past the per-email throttle window
      const quiet = await request(a.email);
      const unknown = await request(`nobody-${crypto.randomUUID()}@example.com`);
      clock.advance(RESET_MAIL_INTERVAL_MS);
      const mailed = await request(a.email);
      assert.deepEqual(quiet, mailed);
      assert.deepEqual(unknown, mailed);
      assert.equal(mailed.status, 200);
      await smtp.waitFor(2);
      await app.idle();
      assert.equal(smtp.received.length, 2);
    });

    await t.step("a later mail's link does not kill the earlier one", async () => {
      const second = tokenOf(smtp.received[1]);
      assert.notEqual(second, first);
      assert.ok(await linkLive(app, first));
      assert.ok(await linkLive(app, second));
      assert.equal((await resetWith(app, first)).status, 200);
      assert.deepEqual(await resetWith(app, second, "another passphrase 99"), INVALID);
    });

    await t.step("just under the quiet period after a mail, nothing is sent", async () => {
      clock.advance(60_000);
      await request(a.email);
      await smtp.waitFor(3);
      clock.advance(RESET_MAIL_INTERVAL_MS - 1);
      await request(a.email);
      await app.idle();
      assert.equal(smtp.received.length, 3);
      clock.advance(1);
      await request(a.email);
      await smtp.waitFor(4);
    });

    await t.step("concurrent requests send one mail", async () => {
      clock.advance(Math.max(RESET_MAIL_INTERVAL_MS, 60_000));
      const answers = await Promise.all(Array.from({ length: 8 }, () => request(a.email)));
      await app.idle();
      assert.equal(smtp.received.length, 5);
      for (const answer of answers) assert.equal(answer.status, 200);
    });

    await t.step("the dashboard's form follows the same rule", async () => {
      clock.advance(60_000);
      const form = await app.request(`${BASE}/forgot-password`, {
        method: "POST",
        headers: {
          "Content-Type": "application/x-www-form-urlencoded",
          "Sec-Fetch-Site": "same-origin",
        },
        body: new URLSearchParams({ email: a.email }),
      }, freshIp());
      assert.equal(form.status, 303);
      assert.equal(form.headers.get("Location"), "/forgot-password?notice=reset-sent");
      await app.idle();
      assert.equal(smtp.received.length, 5, "within the quiet period: no mail");
      assert.ok(await linkLive(app, tokenOf(smtp.received[4])));
    });

    await t.step("links still expire an hour after their mail", async () => {
      const last = tokenOf(smtp.received[4]);
      clock.advance(PASSWORD_RESET_TTL_MS);
      assert.equal(await linkLive(app, last), false);
    });
  } finally {
    await h.close();
  }
});

Deno.test("a reset link never leaves the site, whatever redirectTo's dot segments say", async (t) => {
  const origin = "http://localhost";
  for (
    const redirectTo of [
      "/.//evil.com",
      "/%2e//evil.com",
      "/..//evil.com",
      "/a/..//evil.com",
      `${origin}//evil.com`,
      `${origin}/.//evil.com/steal`,
    ]
  ) {
    await t.step(`${redirectTo} is refused (400 INVALID_REDIRECT)`, () => {
      assert.throws(() => resetRedirectPath(redirectTo, origin), /redirectTo must be a path/);
    });
  }
  await t.step("a link is built on the origin, never on a host in its path", () => {
    assert.equal(new URL(resetLink(origin, "//evil.com", "t")).origin, origin);
    assert.equal(resetLink(origin, "/reset-password", "t"), `${origin}/reset-password?token=t`);
  });
  await t.step("through the API: no mail to another host, 400", async () => {
    const ctx = await makeTestApp();
    try {
      const res = await ctx.app.request(
        `${BASE}/api/auth/request-password-reset`,
        json({ email: "victim@example.com", redirectTo: "/.//evil.com" }),
      );
      assert.equal(res.status, 400);
      assert.equal((await res.json()).code, "INVALID_REDIRECT");
    } finally {
      await ctx.close();
    }
  });
});
