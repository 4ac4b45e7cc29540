/**
 * Issue 20, defects 1 and 10: the dashboard's forms.
 *
 * 1. Sudo mode is a property of the operation (auth/sudo.ts `SUDO_OPERATIONS`), decided before
 *    any body is read: a stale session posting to a sudo form gets the "Confirm it's you" prompt
 *    (403) or a refusal (415), whatever the body (urlencoded, multipart, none, text/plain, JSON),
 *    and nothing changes. The JSON API asks the same list, before parsing the body.
 * 10. A broken multipart body is a bad input like any other: a 4xx HTML page, never a 500.
 *
 * The clock is fake.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import type { App } from "../../app.ts";
import type { LogEntry } from "../../lib/log.ts";
import { formOperation, needsSudo } from "../../routes/two_factor/pages.tsx";
import { getTwoFactor } from "../../store/two_factor.ts";
import { getUser } from "../../store/accounts/users.ts";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, Jar, json } from "../sessions_helpers.ts";

const ELEVEN_MINUTES = 11 * 60_000;
const PROMPT = /Confirm it(&#39;|')s you/;

type Fields = Record<string, string>;

/** The bodies a client can post a form with. */
const BODIES: { name: string; init: (fields: Fields) => RequestInit; prompt: boolean }[] = [
  {
    name: "urlencoded",
    prompt: true,
    init: (f) => ({
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(f).toString(),
    }),
  },
  {
    name: "multipart",
    prompt: false,
    init: (f) => {
      const data = new FormData();
      for (const [k, v] of Object.entries(f)) data.append(k, v);
      return { method: "POST", body: data };
    },
  },
  { name: "no body", prompt: true, init: () => ({ method: "POST" }) },
  {
    name: "text/plain",
    prompt: false,
    init: (f) => ({
      method: "POST",
      headers: { "Content-Type": "text/plain" },
      body: new URLSearchParams(f).toString(),
    }),
  },
  { name: "JSON", prompt: false, init: (f) => json(f) },
];

async function signedUp(app: App): Promise<{ jar: Jar; userId: string }> {
  const jar = new Jar();
  const res = jar.take(
    await app.request(
      `${BASE}/api/auth/sign-up`,
      json({ email: freshEmail(), password: TEST_PASSWORD }),
    ),
  );
  assert.equal(res.status, 201);
  return { jar, userId: (await res.json()).user.id };
}

async function postJson(app: App, jar: Jar, path: string, body: unknown): Promise<Response> {
  return jar.take(await app.request(`${BASE}${path}`, jar.init(json(body))));
}

async function keyIds(app: App, jar: Jar): Promise<string[]> {
  const res = jar.take(await app.request(`${BASE}/api/e2/api-keys`, jar.init()));
  assert.equal(res.status, 200);
  return (await res.json()).data.map((k: { id: string }) => k.id);
}

/** The prompt page (403) or a 415 HTML page; never the action. */
async function assertRefused(res: Response, prompt: boolean, label: string): Promise<void> {
  const text = await res.text();
  assert.equal(res.status, prompt ? 403 : 415, `${label}: ${res.status} ${text.slice(0, 200)}`);
  assert.match(res.headers.get("Content-Type") ?? "", /^text\/html/, label);
  if (prompt) assert.match(text, PROMPT, label);
}

Deno.test("a stale session's sudo forms never act, whatever the body", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock, kv } = env;
    const a = await signedUp(app);
    const created = await postJson(app, a.jar, "/api/e2/api-keys", { name: "kept" });
    assert.equal(created.status, 201);
    const keyId: string = (await created.json()).id;

    // A second account with the authenticator on, for the forms that change it.
    const b = await signedUp(app);
    const enable = await postJson(app, b.jar, "/api/auth/two-factor/enable", {
      password: TEST_PASSWORD,
    });
    const totp = OTPAuth.URI.parse((await enable.json()).totpURI) as OTPAuth.TOTP;
    const verified = await postJson(app, b.jar, "/api/auth/two-factor/verify-totp", {
      code: totp.generate({ timestamp: clock() }),
    });
    assert.equal(verified.status, 200);
    await verified.body?.cancel();

    const hashA = (await getUser(kv, a.userId))?.passwordHash;
    const twoFactorB = await getTwoFactor(kv, b.userId);
    clock.advance(ELEVEN_MINUTES);

    const pw = TEST_PASSWORD;
    const forms: [Jar, string, Fields][] = [
      [a.jar, "/settings/api-keys", { name: "sneaky", _sudo_password: "" }],
      [a.jar, `/settings/api-keys/${keyId}/roll`, { expiresInHours: "0" }],
      [a.jar, `/settings/api-keys/${keyId}/delete`, {}],
      [a.jar, "/settings/security/password", { currentPassword: pw, newPassword: pw + "!" }],
      [a.jar, "/settings/security/delete", { password: pw }],
      [a.jar, "/settings/security/two-factor/enable", { password: pw }],
      [a.jar, "/settings/security/two-factor/verify", { code: "000000" }],
      [b.jar, "/settings/security/two-factor/disable", { password: pw }],
      [b.jar, "/settings/security/two-factor/backup-codes", { password: pw }],
    ];
    for (const [jar, path, fields] of forms) {
      for (const body of BODIES) {
        await t.step(`${body.name} POST ${path.replace(keyId, ":id")}`, async () => {
          const res = jar.take(await app.request(`${BASE}${path}`, jar.init(body.init(fields))));
          await assertRefused(res, body.prompt, `${body.name} ${path}`);
          // Nothing changed: the key, the password, the account and both second factors.
          assert.deepEqual(await keyIds(app, a.jar), [keyId]);
          assert.equal((await getUser(kv, a.userId))?.passwordHash, hashA);
          assert.equal(await getTwoFactor(kv, a.userId), null);
          assert.deepEqual(await getTwoFactor(kv, b.userId), twoFactorB);
        });
      }
    }

    await t.step("a multipart body carrying the right password is refused too", async () => {
      const body = BODIES[1].init({ name: "sneaky", _sudo_password: TEST_PASSWORD });
      const res = a.jar.take(await app.request(`${BASE}/settings/api-keys`, a.jar.init(body)));
      await assertRefused(res, false, "multipart with proof");
      assert.deepEqual(await keyIds(app, a.jar), [keyId]);
    });
  } finally {
    await env.close();
  }
});

Deno.test("a body-less sudo form gets the prompt, and the prompt completes it", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;
    const { jar } = await signedUp(app);
    const created = await postJson(app, jar, "/api/e2/api-keys", { name: "to delete" });
    const keyId: string = (await created.json()).id;
    clock.advance(ELEVEN_MINUTES);
    const path = `/settings/api-keys/${keyId}/delete`;

    await t.step("no body: the prompt, posting back to the same address", async () => {
      const res = jar.take(await app.request(`${BASE}${path}`, jar.init({ method: "POST" })));
      assert.equal(res.status, 403);
      const page = await res.text();
      assert.match(page, PROMPT);
      assert.ok(page.includes(`<form method="post" action="${path}"`));
      assert.deepEqual(await keyIds(app, jar), [keyId]);
    });

    await t.step("the prompt's password then deletes the key", async () => {
      const res = jar.take(
        await app.request(
          `${BASE}${path}`,
          jar.init(BODIES[0].init({ _sudo_password: TEST_PASSWORD })),
        ),
      );
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("Location"), "/settings/api-keys?notice=deleted");
      assert.deepEqual(await keyIds(app, jar), []);
    });
  } finally {
    await env.close();
  }
});

Deno.test("the JSON API and the dashboard ask one list of sudo operations", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;

    const res = await app.request(`${BASE}/api/e2/openapi.json`);
    type Op = { operationId: string; "x-sudo"?: string };
    const paths: Record<string, Record<string, Op>> = (await res.json()).paths;
    const ops = Object.values(paths).flatMap((byMethod) => Object.values(byMethod));
    const documented = new Set(ops.map((o) => o.operationId));
    // Issue 21: sudo mode is a field of each operation's declaration (routes/registry.ts), which
    // the document writes as `x-sudo`; the dashboard's forms are checked against the same map.
    const sudoOperations = new Map(
      ops.flatMap((o) =>
        o["x-sudo"] ? [[o.operationId, o["x-sudo"] === "always" ? true : "session"] as const] : []
      ),
    );

    await t.step("the declared sudo operations are the ones issue 20 listed", () => {
      assert.deepEqual([...sudoOperations.keys()].sort(), [
        "changePassword",
        "createApiKey",
        "deleteApiKey",
        "deleteUser",
        "disableTwoFactor",
        "enableTwoFactor",
        "generateBackupCodes",
        "passkeyDelete",
        "passkeyGenerateRegisterOptions",
        "passkeyVerifyRegistration",
        "rollApiKey",
        // Issue 23: rolling a webhook's signing secret issues a secret, so it needs sudo too.
        "rollEndpointSecret",
        "updateApiKey",
        "verifyTotp",
      ]);
    });

    await t.step("every dashboard form under /settings names a documented operation", () => {
      const forms = app.routes.filter((r) => r.method === "POST" && r.path.startsWith("/settings"));
      assert.ok(forms.length >= 12, `only ${forms.length} forms found`);
      for (const { path } of forms) {
        const op = formOperation(path.replaceAll(/:[a-z]+/gi, "x"));
        assert.ok(op !== null && documented.has(op), `${path}: ${op}`);
      }
    });

    await t.step("a form naming no operation needs sudo mode (fail closed)", () => {
      assert.equal(needsSudo("POST", "/settings/something-new", sudoOperations), true);
      assert.equal(needsSudo("POST", "/settings/security/name", sudoOperations), false);
      assert.equal(needsSudo("GET", "/settings/api-keys", sudoOperations), false);
      assert.equal(needsSudo("POST", "/settings/security/two-factor/verify", sudoOperations), true);
    });

    await t.step("a stale session's key creation is refused before its body is read", async () => {
      const { jar } = await signedUp(app);
      clock.advance(ELEVEN_MINUTES);
      for (const body of [{ name: "" }, { nonsense: true }]) {
        const res = await postJson(app, jar, "/api/e2/api-keys", body);
        assert.equal(res.status, 403);
        assert.equal((await res.json()).code, "REAUTHENTICATION_REQUIRED");
      }
      const res = jar.take(
        await app.request(`${BASE}/api/e2/api-keys`, jar.init({ method: "POST", body: "x" })),
      );
      assert.equal(res.status, 403);
      assert.equal((await res.json()).code, "REAUTHENTICATION_REQUIRED");
    });
  } finally {
    await env.close();
  }
});

Deno.test("a broken multipart body answers a 4xx HTML page on every form, never a 500", async (t) => {
  const logs: LogEntry[] = [];
  const env = await makeTestApp({ logger: (e) => logs.push(e) });
  try {
    const { app } = env;
    const { jar } = await signedUp(app);
    const anonymous = new Jar();
    const paths: [Jar, string][] = [
      [anonymous, "/sign-in"],
      [anonymous, "/sign-up"],
      [anonymous, "/forgot-password"],
      [anonymous, "/reset-password"],
      [anonymous, "/sign-in/two-factor"],
      [jar, "/settings/api-keys"],
      [jar, "/settings/security/name"],
      [jar, "/settings/security/two-factor/enable"],
      [jar, "/settings/domains"],
    ];
    const broken: [string, string, string][] = [
      ["boundary=x, body not multipart", "multipart/form-data; boundary=x", "email=a&password=b"],
      ["no boundary", "multipart/form-data", "--x\r\nContent-Disposition: form-data\r\n\r\n"],
      [
        "unterminated part",
        "multipart/form-data; boundary=x",
        '--x\r\nContent-Disposition: form-data; name="email"\r\n\r\na',
      ],
    ];
    for (const [who, path] of paths) {
      for (const [name, type, body] of broken) {
        await t.step(`${path}: ${name}`, async () => {
          const before = logs.length;
          const res = who.take(
            await app.request(
              `${BASE}${path}`,
              who.init({ method: "POST", headers: { "Content-Type": type }, body }),
            ),
          );
          const text = await res.text();
          assert.ok([400, 415].includes(res.status), `${res.status} ${text.slice(0, 200)}`);
          assert.match(res.headers.get("Content-Type") ?? "", /^text\/html/);
          assert.match(text, /<form|<a /);
          const errors = logs.slice(before).filter((e) => e.level === "error");
          assert.deepEqual(errors, []);
        });
      }
    }
  } finally {
    await env.close();
  }
});
