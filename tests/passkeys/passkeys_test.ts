/**
 * Passkeys on the server side, against a software authenticator (P-256, "none" attestation,
 * written here from the WebAuthn spec): registration, a passkey alone signing in, single-use
 * challenges bound to their session, clone detection by the signature counter, the audit events,
 * the second step of a pending sign-in, re-authentication, deletion, and what lists show.
 */
import assert from "node:assert/strict";
import { auditPrefix, passkeyPrefix } from "../../store/keys.ts";
import {
  CHALLENGE_TTL_MS,
  deleteAllPasskeys,
  listPasskeys,
  takeChallenge,
} from "../../store/passkeys.ts";
import { getSessionRecord } from "../../store/sessions.ts";
import { PASSKEY_OPTIONS_FACTOR } from "../../routes/passkeys/operations.ts";
import { verifyStore } from "../../admin/verify.ts";
import { makeTestApp, TEST_PASSWORD, type TestApp } from "../_helpers.ts";
import { BASE, Jar, json } from "../sessions_helpers.ts";

import { call, type Options, P, signedUp, SoftAuthenticator } from "../_webauthn.ts";

async function registered(ctx: TestApp, jar: Jar, name = "Laptop") {
  const auth = await SoftAuthenticator.create();
  const options = await call(ctx, jar, "generate-register-options");
  assert.equal(options.status, 200);
  const r = await call(ctx, jar, "verify-registration", {
    response: await auth.register(options.body as unknown as Options),
    name,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return { auth, passkey: r.body };
}

async function passkeySignIn(ctx: TestApp, auth: SoftAuthenticator, jar = new Jar()) {
  const options = await call(ctx, jar, "generate-authenticate-options");
  assert.equal(options.status, 200);
  const r = await call(ctx, jar, "verify-authentication", {
    response: await auth.assert(options.body as unknown as Options),
  });
  return { jar, ...r };
}

/** The account's audit events about its second factors, by kind (events of one ms: any order). */
async function twoFactorEvents(kv: Deno.Kv, userId: string): Promise<string[]> {
  const out: string[] = [];
  const list = kv.list<{ action: string; details?: { change?: string } }>({
    prefix: auditPrefix(userId),
  });
  for await (const e of list) {
    if (e.value.action === "user.two_factor_changed") out.push(e.value.details?.change ?? "");
  }
  return out.sort();
}

Deno.test("passkeys: registration, sign-in with a passkey alone, and what is stored", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { jar, userId } = await signedUp(ctx);
    let auth!: SoftAuthenticator;

    await t.step(
      "registration options name this site and ask for a discoverable credential",
      async () => {
        const r = await call(ctx, jar, "generate-register-options");
        assert.equal(r.status, 200);
        const o = r.body as Record<string, Record<string, unknown>>;
        assert.equal(o.rp.id, "localhost");
        assert.equal(o.authenticatorSelection.residentKey, "required");
        assert.equal(o.authenticatorSelection.userVerification, "required");
        assert.ok(jar.get("inbound_webauthn"), "the challenge is named by its own cookie");
      },
    );

    await t.step(
      "a verified registration is stored with its name and audited in its commit",
      async () => {
        const r = await registered(ctx, jar, "Work laptop");
        auth = r.auth;
        assert.equal(r.passkey.name, "Work laptop");
        assert.equal(r.passkey.credentialID, auth.id);
        assert.equal("publicKey" in r.passkey, false, "the public key is not shown");
        const stored = await listPasskeys(ctx.kv, userId);
        assert.equal(stored.length, 1);
        assert.equal(stored[0].credentialId, auth.id);
        assert.ok(stored[0].publicKey instanceof Uint8Array);
        assert.deepEqual(await twoFactorEvents(ctx.kv, userId), ["added"]);
      },
    );

    await t.step("the list shows name and dates, never the public key", async () => {
      const r = await call(ctx, jar, "list-user-passkeys");
      const list = r.body as unknown as Record<string, unknown>[];
      assert.equal(list.length, 1);
      assert.equal(list[0].name, "Work laptop");
      assert.equal("publicKey" in list[0], false);
    });

    await t.step(
      "a passkey alone signs in: a session and device cookie, the counter moved",
      async () => {
        const r = await passkeySignIn(ctx, auth);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal((r.body.user as Record<string, unknown>).id, userId);
        assert.ok(r.jar.get("inbound_session"));
        assert.ok(r.jar.get("inbound_device"));
        assert.equal(r.jar.get("inbound_webauthn"), undefined, "the challenge cookie is cleared");
        const session = await ctx.app.request(`${BASE}/api/auth/get-session`, r.jar.init());
        assert.equal(((await session.json()).user as Record<string, unknown>).id, userId);
        const [stored] = await listPasskeys(ctx.kv, userId);
        assert.equal(stored.counter, auth.counter);
        assert.ok(stored.lastUsedAt);
      },
    );

    await t.step("a counter that does not grow (a cloned authenticator) is refused", async () => {
      const jar2 = new Jar();
      const options = await call(ctx, jar2, "generate-authenticate-options");
      const r = await call(ctx, jar2, "verify-authentication", {
        response: await auth.assert(options.body as unknown as Options, { counter: 1 }),
      });
      assert.equal(r.status, 401);
      assert.equal(r.body.code, "PASSKEY_VERIFICATION_FAILED");
      assert.equal(jar2.get("inbound_session"), undefined);
    });

    await t.step("a challenge is used once", async () => {
      const jar2 = new Jar();
      const options = await call(ctx, jar2, "generate-authenticate-options");
      const cookie = jar2.get("inbound_webauthn")!;
      const response = await auth.assert(options.body as unknown as Options);
      assert.equal((await call(ctx, jar2, "verify-authentication", { response })).status, 200);
      const replay = new Jar();
      replay.set("inbound_webauthn", cookie);
      const again = await call(ctx, replay, "verify-authentication", { response });
      assert.equal(again.status, 400);
      assert.equal(again.body.code, "CHALLENGE_EXPIRED");
    });

    await t.step("a challenge expires after its lifetime", async () => {
      const jar2 = new Jar();
      const options = await call(ctx, jar2, "generate-authenticate-options");
      ctx.clock.advance(CHALLENGE_TTL_MS + 1);
      const r = await call(ctx, jar2, "verify-authentication", {
        response: await auth.assert(options.body as unknown as Options),
      });
      assert.equal(r.status, 400);
      assert.equal(r.body.code, "CHALLENGE_EXPIRED");
    });

    await t.step("an assertion made for another origin is refused", async () => {
      const jar2 = new Jar();
      const options = await call(ctx, jar2, "generate-authenticate-options");
      const r = await call(ctx, jar2, "verify-authentication", {
        response: await auth.assert(options.body as unknown as Options, {
          origin: "https://evil.example",
        }),
      });
      assert.equal(r.status, 401);
    });

    await t.step("an unknown credential is refused", async () => {
      const stranger = await SoftAuthenticator.create();
      stranger.userHandle = auth.userHandle;
      const r = await passkeySignIn(ctx, stranger);
      assert.equal(r.status, 401);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("passkeys: management needs a session, challenges stay with their session", async (t) => {
  const ctx = await makeTestApp();
  try {
    await t.step("signed out, registering, listing and deleting answer 401", async () => {
      const jar = new Jar();
      assert.equal((await call(ctx, jar, "generate-register-options")).status, 401);
      assert.equal((await call(ctx, jar, "list-user-passkeys")).status, 401);
      const id = "pky_" + "a".repeat(22);
      assert.equal((await call(ctx, jar, "delete-passkey", { id })).status, 401);
    });

    await t.step(
      "registration options issued to one session do not register in another",
      async () => {
        const a = await signedUp(ctx);
        const b = await signedUp(ctx);
        const auth = await SoftAuthenticator.create();
        const options = await call(ctx, a.jar, "generate-register-options");
        b.jar.set("inbound_webauthn", a.jar.get("inbound_webauthn")!);
        const r = await call(ctx, b.jar, "verify-registration", {
          response: await auth.register(options.body as unknown as Options),
        });
        assert.equal(r.status, 400);
        assert.deepEqual(await listPasskeys(ctx.kv, b.userId), []);
        assert.deepEqual(await listPasskeys(ctx.kv, a.userId), []);
      },
    );

    await t.step("rename, then delete: audited, and another account's id is a 404", async () => {
      const a = await signedUp(ctx);
      const b = await signedUp(ctx);
      const { passkey } = await registered(ctx, a.jar);
      const renamed = await call(ctx, a.jar, "update-passkey", { id: passkey.id, name: "Phone" });
      assert.equal(renamed.status, 200);
      assert.equal((renamed.body.passkey as Record<string, unknown>).name, "Phone");
      assert.equal((await call(ctx, b.jar, "delete-passkey", { id: passkey.id })).status, 404);
      assert.equal((await call(ctx, a.jar, "delete-passkey", { id: passkey.id })).status, 200);
      assert.deepEqual(await listPasskeys(ctx.kv, a.userId), []);
      assert.deepEqual(await twoFactorEvents(ctx.kv, a.userId), ["added", "removed"]);
    });

    await t.step("registering and deleting need sudo mode: a stale session gets 403", async () => {
      const a = await signedUp(ctx);
      const { passkey } = await registered(ctx, a.jar);
      ctx.clock.advance(11 * 60_000);
      const options = await call(ctx, a.jar, "generate-register-options");
      assert.equal(options.status, 403);
      assert.equal(options.body.code, "REAUTHENTICATION_REQUIRED");
      const del = await call(ctx, a.jar, "delete-passkey", { id: passkey.id });
      assert.equal(del.body.code, "REAUTHENTICATION_REQUIRED");
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("passkeys: re-authentication, the second step, and removal with the account", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { jar, userId, email } = await signedUp(ctx);
    const { auth } = await registered(ctx, jar);

    await t.step("a passkey of the signed-in account re-authenticates the session", async () => {
      ctx.clock.advance(11 * 60_000);
      const options = await call(ctx, jar, "generate-reauthenticate-options", {});
      const allowed = (options.body.allowCredentials as { id: string }[]).map((c) => c.id);
      assert.deepEqual(allowed, [auth.id]);
      const r = await call(ctx, jar, "reauthenticate", {
        response: await auth.assert(options.body as unknown as Options),
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const sessions = await ctx.app.request(`${BASE}/api/auth/get-session`, jar.init());
      const sessionId = ((await sessions.json()).session as Record<string, string>).id;
      const record = await getSessionRecord(ctx.kv, userId, sessionId);
      assert.equal(record?.authenticatedAt, ctx.clock());
      const options2 = await call(ctx, jar, "generate-register-options");
      assert.equal(options2.status, 200, "sudo mode is back");
    });

    await t.step("another account's passkey does not re-authenticate this session", async () => {
      const other = await signedUp(ctx);
      const theirs = await registered(ctx, other.jar);
      const options = await call(ctx, jar, "generate-reauthenticate-options", {});
      const r = await call(ctx, jar, "reauthenticate", {
        response: await theirs.auth.assert(options.body as unknown as Options),
      });
      assert.equal(r.status, 401);
    });

    await t.step("after the password, the passkey completes the pending sign-in", async () => {
      const browser = new Jar();
      const res = browser.take(
        await ctx.app.request(
          `${BASE}/api/auth/sign-in/email`,
          json({ email, password: TEST_PASSWORD }),
        ),
      );
      const body = await res.json();
      assert.equal(body.twoFactorRedirect, true, JSON.stringify(body));
      assert.equal(browser.get("inbound_session"), undefined);
      // Someone else's passkey is not this account's second step.
      const other = await signedUp(ctx);
      const theirs = await registered(ctx, other.jar);
      const o1 = await call(ctx, browser, "generate-authenticate-options");
      const allowed = (o1.body.allowCredentials as { id: string }[]).map((c) => c.id);
      assert.deepEqual(allowed, [auth.id]);
      const wrong = await call(ctx, browser, "verify-authentication", {
        response: await theirs.auth.assert(o1.body as unknown as Options),
      });
      assert.equal(wrong.status, 401);
      assert.equal(browser.get("inbound_session"), undefined);
      const o2 = await call(ctx, browser, "generate-authenticate-options");
      const ok = await call(ctx, browser, "verify-authentication", {
        response: await auth.assert(o2.body as unknown as Options),
      });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.ok(browser.get("inbound_session"));
    });

    await t.step("deleteAllPasskeys removes them, audited when the admin asks", async () => {
      const other = await signedUp(ctx);
      await registered(ctx, other.jar);
      await registered(ctx, other.jar, "Second");
      const n = await deleteAllPasskeys(ctx.kv, other.userId, {
        actor: { type: "admin", id: "admin-cli" },
        ip: null,
        userAgent: null,
      }, ctx.clock());
      assert.equal(n, 2);
      assert.deepEqual(await listPasskeys(ctx.kv, other.userId), []);
      assert.deepEqual(await twoFactorEvents(ctx.kv, other.userId), [
        "added",
        "added",
        "removed_all",
      ]);
    });

    await t.step("admin verify knows passkeys and challenges", async () => {
      await call(ctx, new Jar(), "generate-authenticate-options");
      const report = await verifyStore(ctx.kv);
      assert.equal(report.unrecognised.count, 0, JSON.stringify(report.unrecognised));
    });

    await t.step("deleting the account deletes its passkeys", async () => {
      const r = await ctx.app.request(
        `${BASE}/api/auth/delete-user`,
        jar.init(json({ password: TEST_PASSWORD })),
      );
      assert.equal(r.status, 200, await r.text());
      const left = await Array.fromAsync(ctx.kv.list({ prefix: passkeyPrefix(userId) }));
      assert.deepEqual(left, []);
    });

    await t.step("a challenge id of the wrong shape is not looked up", async () => {
      assert.equal(await takeChallenge(ctx.kv, "not-an-id", ctx.clock()), null);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("passkeys: signed-out ceremonies are throttled per client address", async (t) => {
  const ctx = await makeTestApp({ config: { signInThrottle: { max: 2, windowMs: 60_000 } } });
  try {
    const max = 2 * PASSKEY_OPTIONS_FACTOR;
    await t.step(
      `${max} option requests are answered, the next is 429 with Retry-After`,
      async () => {
        for (let i = 0; i < max; i++) {
          assert.equal((await call(ctx, new Jar(), "generate-authenticate-options")).status, 200);
        }
        const res = await ctx.app.request(`${P}/generate-authenticate-options`);
        assert.equal(res.status, 429);
        assert.equal((await res.json()).code, "TOO_MANY_ATTEMPTS");
        assert.ok(Number(res.headers.get("Retry-After")) > 0);
      },
    );
    await t.step("the next window answers again", async () => {
      ctx.clock.advance(60_000);
      assert.equal((await call(ctx, new Jar(), "generate-authenticate-options")).status, 200);
    });
  } finally {
    await ctx.close();
  }
});
