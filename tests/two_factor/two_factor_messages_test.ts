/**
 * Issue 22 item 9: two-factor says what happened and names things one way.
 *
 * - A right code used again in its window says "This code was already used. Wait for the next
 *   one." (a wrong one still says "Invalid code."), at sign-in, in sudo mode and on the dashboard.
 * - "Recovery code(s)" everywhere on the pages and in messages ("backup" stays only in the API's
 *   field names and paths: better-auth's contract).
 * - The dashboard shows recovery codes only once the app's first code confirmed the enrolment:
 *   never on the set-up page (a reload there loses nothing), and the codes it shows are the ones
 *   that work. The JSON API keeps better-auth's contract: the codes `enable` answers stay valid.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import type { App } from "../../app.ts";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, Jar, json } from "../sessions_helpers.ts";

const REPLAY = "This code was already used. Wait for the next one.";

function codeAt(totpURI: string, nowMs: number): string {
  return (OTPAuth.URI.parse(totpURI) as OTPAuth.TOTP).generate({ timestamp: nowMs });
}

async function post(app: App, jar: Jar, path: string, body: unknown): Promise<Response> {
  return jar.take(await app.request(`${BASE}${path}`, jar.init(json(body))));
}

/** A dashboard form post (same origin), following no redirect. */
async function postForm(
  app: App,
  jar: Jar,
  path: string,
  fields: Record<string, string>,
): Promise<Response> {
  return jar.take(
    await app.request(
      `${BASE}${path}`,
      jar.init({
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: BASE },
        body: new URLSearchParams(fields).toString(),
      }),
    ),
  );
}

async function getPage(app: App, jar: Jar, path: string): Promise<string> {
  const res = jar.take(await app.request(`${BASE}${path}`, jar.init()));
  assert.equal(res.status, 200, path);
  return await res.text();
}

async function signedUp(app: App): Promise<{ jar: Jar; email: string }> {
  const jar = new Jar();
  const email = freshEmail();
  const res = await post(app, jar, "/api/auth/sign-up", { email, password: TEST_PASSWORD });
  assert.equal(res.status, 201);
  return { jar, email };
}

/** The visible text of `html`: tags dropped, entities of the test's strings decoded. */
function text(html: string): string {
  return html.replace(/<[^>]+>/g, " ").replaceAll("&#39;", "'").replaceAll("&quot;", '"')
    .replace(/\s+/g, " ");
}

Deno.test("a reused code says it was already used; a wrong one says it is invalid", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;
    const { jar, email } = await signedUp(app);
    const enable = await post(app, jar, "/api/auth/two-factor/enable", {
      password: TEST_PASSWORD,
    });
    const { totpURI, backupCodes } = await enable.json();
    const first = codeAt(totpURI, clock());
    assert.equal(
      (await post(app, jar, "/api/auth/two-factor/verify-totp", { code: first })).status,
      200,
    );

    await t.step("the enrolment's code again, signed in: already used", async () => {
      const res = await post(app, jar, "/api/auth/two-factor/verify-totp", { code: first });
      assert.equal(res.status, 401);
      const body = await res.json();
      assert.equal(body.message, REPLAY);
      assert.equal(body.code, "INVALID_CODE", "better-auth's code stays");
    });

    await t.step("at sign-in: a wrong code is invalid, a used one already used", async () => {
      const pending = new Jar();
      await post(app, pending, "/api/auth/sign-in/email", { email, password: TEST_PASSWORD });
      const wrong = await post(app, pending, "/api/auth/two-factor/verify-totp", {
        code: first === "000000" ? "111111" : "000000",
      });
      assert.equal(wrong.status, 401);
      assert.equal((await wrong.json()).message, "Invalid code.");
      const used = await post(app, pending, "/api/auth/two-factor/verify-totp", { code: first });
      assert.equal(used.status, 401);
      assert.equal((await used.json()).message, REPLAY);
      clock.advance(30_000);
      const next = await post(app, pending, "/api/auth/two-factor/verify-totp", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(next.status, 200, "the next code still works");
    });

    await t.step("re-authentication with a used code: already used", async () => {
      const res = await post(app, jar, "/api/auth/reauthenticate", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).message, REPLAY);
    });

    await t.step('a wrong recovery code says "recovery code"', async () => {
      const pending = new Jar();
      await post(app, pending, "/api/auth/sign-in/email", { email, password: TEST_PASSWORD });
      const res = await post(app, pending, "/api/auth/two-factor/verify-backup-code", {
        code: "aaaaa-aaaaa",
      });
      assert.equal(res.status, 401);
      const body = await res.json();
      assert.equal(body.message, "Invalid recovery code.");
      assert.equal(body.code, "INVALID_BACKUP_CODE");
      const ok = await post(app, pending, "/api/auth/two-factor/verify-backup-code", {
        code: backupCodes[0],
      });
      assert.equal(ok.status, 200, "the API's codes from enable work after verify-totp");
    });

    await t.step("the sign-in page shows the replay message too", async () => {
      const pending = new Jar();
      await post(app, pending, "/api/auth/sign-in/email", { email, password: TEST_PASSWORD });
      const res = await postForm(app, pending, "/sign-in/two-factor", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(res.status, 401);
      assert.ok(text(await res.text()).includes(REPLAY));
    });
  } finally {
    await env.close();
  }
});

Deno.test("the dashboard shows recovery codes only after the first code confirms", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;
    const { jar, email } = await signedUp(app);
    let secret = "";
    let codes: string[] = [];

    await t.step("set-up shows the QR code and key, no recovery codes", async () => {
      const res = await postForm(app, jar, "/settings/security/two-factor/enable", {
        password: TEST_PASSWORD,
      });
      assert.equal(res.status, 303);
      const location = res.headers.get("Location")!;
      assert.ok(!location.includes("codes="), location);
      const html = await getPage(app, jar, location);
      secret = /id="totp-secret">([A-Z2-7]+)</.exec(html)?.[1] ?? "";
      assert.ok(secret, "the key is shown");
      assert.ok(!html.includes('id="recovery-codes"'), "no codes before the app is proven");
      assert.match(text(html), /Once the app's first code is accepted, you get ten recovery codes/);
      const again = await getPage(app, jar, "/settings/security");
      assert.ok(again.includes('id="totp-secret"'), "a reload keeps the set-up");
    });

    const uri = () => `otpauth://totp/x?secret=${secret}`;

    await t.step("a wrong code is refused on the page; nothing is shown", async () => {
      const res = await postForm(app, jar, "/settings/security/two-factor/verify", {
        code: codeAt(uri(), clock()) === "000000" ? "111111" : "000000",
      });
      assert.equal(res.status, 401);
      const html = await res.text();
      assert.ok(text(html).includes("Invalid code."));
      assert.ok(!html.includes('id="recovery-codes"'));
    });

    await t.step("the first code turns it on and shows ten recovery codes once", async () => {
      const res = await postForm(app, jar, "/settings/security/two-factor/verify", {
        code: codeAt(uri(), clock()),
      });
      assert.equal(res.status, 303);
      const location = res.headers.get("Location")!;
      assert.match(location, /notice=two-factor-on&codes=/);
      const html = await getPage(app, jar, location);
      codes = [...html.matchAll(/<li><code>([a-z2-9]{5}-[a-z2-9]{5})<\/code><\/li>/g)].map((m) =>
        m[1]
      );
      assert.equal(codes.length, 10);
      assert.match(text(html), /Your recovery codes/);
      assert.ok(!(await getPage(app, jar, location)).includes('id="recovery-codes"'), "once");
    });

    await t.step("the same code again on the page: already used", async () => {
      const res = await postForm(app, jar, "/settings/security/two-factor/verify", {
        code: codeAt(uri(), clock()),
      });
      assert.equal(res.status, 401);
      assert.ok(text(await res.text()).includes(REPLAY));
    });

    await t.step("the codes shown are the ones that sign in", async () => {
      const pending = new Jar();
      await post(app, pending, "/api/auth/sign-in/email", { email, password: TEST_PASSWORD });
      const res = await post(app, pending, "/api/auth/two-factor/verify-backup-code", {
        code: codes[3],
      });
      assert.equal(res.status, 200);
    });

    await t.step('the pages say "recovery code", never "backup code"', async () => {
      const security = await getPage(app, jar, "/settings/security");
      const pending = new Jar();
      await post(app, pending, "/api/auth/sign-in/email", { email, password: TEST_PASSWORD });
      const second = await getPage(app, pending, "/sign-in/two-factor");
      for (const html of [security, second]) {
        assert.ok(!/backup code/i.test(text(html)));
        assert.match(text(html), /recovery code/i);
      }
    });
  } finally {
    await env.close();
  }
});
