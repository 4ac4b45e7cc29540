/**
 * Sudo mode (auth/sudo.ts): key management, password and account changes need a proof of identity
 * in the session's last 10 minutes; `POST /api/auth/reauthenticate` gives one. The clock is fake.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import type { App } from "../../app.ts";
import { SUDO_WINDOW_MS } from "../../auth/sudo.ts";
import { bearer, createAccountWithKey, makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, Jar, json } from "../sessions_helpers.ts";

const ELEVEN_MINUTES = 11 * 60_000;

async function post(app: App, jar: Jar, path: string, body: unknown): Promise<Response> {
  return jar.take(await app.request(`${BASE}${path}`, jar.init(json(body))));
}

async function signedUp(app: App): Promise<Jar> {
  const jar = new Jar();
  const res = await post(app, jar, "/api/auth/sign-up", {
    email: freshEmail(),
    password: TEST_PASSWORD,
  });
  assert.equal(res.status, 201);
  return jar;
}

async function createKey(app: App, jar: Jar): Promise<Response> {
  return await post(app, jar, "/api/e2/api-keys", { name: "sudo test" });
}

function form(fields: Record<string, string>, jar: Jar): RequestInit {
  return jar.init({
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  });
}

async function assertReauthRequired(res: Response): Promise<void> {
  assert.equal(res.status, 403);
  const body = await res.json();
  assert.equal(body.error, "Forbidden");
  assert.equal(body.statusCode, 403);
  assert.equal(body.code, "REAUTHENTICATION_REQUIRED");
  assert.equal(typeof body.message, "string");
}

Deno.test("sudo mode refuses a stale session's sensitive actions until it re-authenticates", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;
    const jar = await signedUp(app);
    let keyId = "";

    await t.step("a fresh session creates a key", async () => {
      const res = await createKey(app, jar);
      assert.equal(res.status, 201);
      keyId = (await res.json()).id;
    });

    await t.step("at the end of the window it still may", async () => {
      clock.advance(SUDO_WINDOW_MS);
      const res = await createKey(app, jar);
      assert.equal(res.status, 201);
      await res.body?.cancel();
    });

    await t.step("eleven minutes after sign-in: create, roll, delete answer 403", async () => {
      clock.advance(ELEVEN_MINUTES - SUDO_WINDOW_MS);
      await assertReauthRequired(await createKey(app, jar));
      await assertReauthRequired(
        await post(app, jar, `/api/e2/api-keys/${keyId}/roll`, { expiresInHours: 0 }),
      );
      await assertReauthRequired(
        jar.take(
          await app.request(`${BASE}/api/e2/api-keys/${keyId}`, jar.init({ method: "DELETE" })),
        ),
      );
    });

    await t.step("so do changing the password, deleting the account and 2FA changes", async () => {
      await assertReauthRequired(
        await post(app, jar, "/api/auth/change-password", {
          currentPassword: TEST_PASSWORD,
          newPassword: TEST_PASSWORD + "!",
        }),
      );
      await assertReauthRequired(
        await post(app, jar, "/api/auth/delete-user", { password: TEST_PASSWORD }),
      );
      await assertReauthRequired(
        await post(app, jar, "/api/auth/two-factor/enable", { password: TEST_PASSWORD }),
      );
    });

    await t.step("reading stays open: the key list answers 200", async () => {
      const res = jar.take(await app.request(`${BASE}/api/e2/api-keys`, jar.init()));
      assert.equal(res.status, 200);
      await res.body?.cancel();
    });

    await t.step("a wrong password does not re-authenticate", async () => {
      const res = await post(app, jar, "/api/auth/reauthenticate", { password: "wrong" });
      assert.equal(res.status, 400);
      await res.body?.cancel();
      await assertReauthRequired(await createKey(app, jar));
    });

    await t.step("after re-authenticating with the password, the action works", async () => {
      const res = await post(app, jar, "/api/auth/reauthenticate", { password: TEST_PASSWORD });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).status, true);
      const created = await createKey(app, jar);
      assert.equal(created.status, 201);
      await created.body?.cancel();
    });

    await t.step("and expires again eleven minutes later", async () => {
      clock.advance(ELEVEN_MINUTES);
      await assertReauthRequired(await createKey(app, jar));
    });

    await t.step("re-authentication needs a signed-in session", async () => {
      const res = await app.request(
        `${BASE}/api/auth/reauthenticate`,
        json({ password: TEST_PASSWORD }),
      );
      assert.equal(res.status, 401);
      await res.body?.cancel();
    });
  } finally {
    await env.close();
  }
});

Deno.test("an authenticator code re-authenticates an enrolled session, once per code", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;
    const jar = await signedUp(app);
    const enable = await post(app, jar, "/api/auth/two-factor/enable", { password: TEST_PASSWORD });
    const totp = OTPAuth.URI.parse((await enable.json()).totpURI) as OTPAuth.TOTP;
    const first = totp.generate({ timestamp: clock() });
    assert.equal(
      (await post(app, jar, "/api/auth/two-factor/verify-totp", { code: first })).status,
      200,
    );

    clock.advance(ELEVEN_MINUTES);
    await t.step("a stale session is refused, then accepted after a code", async () => {
      await assertReauthRequired(await createKey(app, jar));
      const code = totp.generate({ timestamp: clock() });
      const res = await post(app, jar, "/api/auth/reauthenticate", { code });
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const created = await createKey(app, jar);
      assert.equal(created.status, 201);
      await created.body?.cancel();
      clock.advance(ELEVEN_MINUTES);
      const again = await post(app, jar, "/api/auth/reauthenticate", { code: "000000" });
      assert.equal(again.status, 401);
      await again.body?.cancel();
    });
  } finally {
    await env.close();
  }
});

Deno.test("Bearer keys are never asked to re-authenticate", async () => {
  const env = await makeTestApp();
  try {
    const { app, kv, clock } = env;
    const { key } = await createAccountWithKey(kv, clock);
    clock.advance(ELEVEN_MINUTES * 10);
    const res = await app.request(`${BASE}/api/e2/domains`, bearer(key));
    assert.equal(res.status, 200);
    await res.body?.cancel();
    const keys = await app.request(`${BASE}/api/e2/api-keys`, bearer(key, json({ name: "x" })));
    const body = await keys.json();
    assert.notEqual(body.code, "REAUTHENTICATION_REQUIRED");
  } finally {
    await env.close();
  }
});

Deno.test("the dashboard asks inline for a proof, then completes the original action", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;
    const jar = await signedUp(app);
    clock.advance(ELEVEN_MINUTES);

    let prompt = "";
    await t.step("a stale session's key form answers a 'Confirm it's you' page", async () => {
      const res = jar.take(
        await app.request(`${BASE}/settings/api-keys`, form({ name: "from the form" }, jar)),
      );
      assert.equal(res.status, 403);
      prompt = await res.text();
      assert.match(prompt, /Confirm it(&#39;|')s you/);
      assert.match(prompt, /<form method="post" action="\/settings\/api-keys"/);
      assert.match(prompt, /<input type="hidden" name="name" value="from the form"/);
      assert.ok(!/<script>/.test(prompt));
    });

    await t.step("a wrong password shows the prompt again and creates nothing", async () => {
      const res = jar.take(
        await app.request(
          `${BASE}/settings/api-keys`,
          form({ name: "from the form", _sudo_password: "wrong" }, jar),
        ),
      );
      assert.equal(res.status, 403);
      assert.match(await res.text(), /password is not correct/);
      const list = jar.take(await app.request(`${BASE}/api/e2/api-keys`, jar.init()));
      assert.deepEqual((await list.json()).data, []);
    });

    await t.step("the password with the original fields creates the key (PRG)", async () => {
      const res = jar.take(
        await app.request(
          `${BASE}/settings/api-keys`,
          form({ name: "from the form", _sudo_password: TEST_PASSWORD }, jar),
        ),
      );
      assert.equal(res.status, 303);
      assert.match(res.headers.get("Location") ?? "", /^\/settings\/api-keys\?flash=/);
      const list = jar.take(await app.request(`${BASE}/api/e2/api-keys`, jar.init()));
      const names = (await list.json()).data.map((k: { name: string }) => k.name);
      assert.deepEqual(names, ["from the form"]);
    });

    await t.step("the session is then in sudo mode for the next action", async () => {
      const res = jar.take(
        await app.request(`${BASE}/settings/api-keys`, form({ name: "second" }, jar)),
      );
      assert.equal(res.status, 303);
    });
  } finally {
    await env.close();
  }
});
