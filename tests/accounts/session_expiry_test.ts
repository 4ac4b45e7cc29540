/**
 * Issue 22, item 5: a page opened or a form posted under /settings after the session expired
 * goes to sign in with "Your session expired." and `next=` the page it came from (same-origin
 * paths only); signing in, with the password alone or after the second step, lands there. A form
 * posted without a session is not carried out, and the sign-in page says so.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import type { App } from "../../app.ts";
import { safeNextPath, withNext } from "../../routes/accounts/next_path.ts";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, Jar, json } from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };
const EXPIRED = "Your session expired. Sign in again to continue.";

/** A request with the jar's cookies (redirects not followed); the jar keeps what comes back. */
async function send(app: App, jar: Jar, path: string, init: RequestInit = {}): Promise<Response> {
  return jar.take(await app.request(`${BASE}${path}`, jar.init({ redirect: "manual", ...init })));
}

function formPost(fields: Record<string, string>, headers: Record<string, string> = {}) {
  return {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      ...SAME_ORIGIN,
      ...headers,
    },
    body: new URLSearchParams(fields).toString(),
  };
}

/** Signs up through the form: the jar holds the session and the device cookie, as a browser's. */
async function signedUp(app: App): Promise<{ jar: Jar; email: string }> {
  const jar = new Jar();
  const email = freshEmail();
  const res = await send(app, jar, "/sign-up", formPost({ email, password: TEST_PASSWORD }));
  assert.equal(res.status, 303);
  assert.ok(jar.get("inbound_session") && jar.get("inbound_device"));
  return { jar, email };
}

function nextField(html: string): string | null {
  return /<input type="hidden" name="next" value="([^"]*)"/.exec(html)?.[1] ?? null;
}

Deno.test("safeNextPath keeps same-origin paths only", () => {
  for (const good of ["/settings/usage", "/settings/usage?days=7", "/settings/api-keys#x"]) {
    assert.ok(safeNextPath(good)?.startsWith("/settings/"), good);
  }
  assert.equal(safeNextPath("/settings/api-keys#x"), "/settings/api-keys");
  for (
    const bad of [
      "",
      "//evil.example/x",
      "/\\evil.example",
      "\\\\evil.example",
      "https://evil.example/settings",
      "javascript:alert(1)",
      "settings/usage",
      "/.//evil.example",
      "/settings\r\nSet-Cookie: x=1",
      "/" + "a".repeat(3000),
      null,
      undefined,
    ]
  ) {
    assert.equal(safeNextPath(bad), null, String(bad));
  }
  assert.equal(withNext("/sign-in", "//evil.example"), "/sign-in");
  assert.equal(
    withNext("/sign-in?notice=x", "/settings/a?b=c"),
    "/sign-in?notice=x&next=%2Fsettings%2Fa%3Fb%3Dc",
  );
});

Deno.test("an expired session: told so, sent to sign in, and back to the page after it", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { app } = ctx;
    const { jar, email } = await signedUp(app);
    ctx.clock.advance(ctx.config.sessionTtlMs + 1_000);

    await t.step("a page: the sign-in page says why and keeps the address", async () => {
      const res = await send(app, jar, "/settings/usage?days=7");
      assert.equal(res.status, 303);
      const location = res.headers.get("Location") ?? "";
      assert.equal(
        location,
        "/sign-in?notice=session-expired&next=%2Fsettings%2Fusage%3Fdays%3D7",
      );
      const page = await send(app, jar, location);
      const html = await page.text();
      assert.ok(html.includes(EXPIRED), html);
      assert.equal(nextField(html), "/settings/usage?days=7");
    });

    await t.step(
      "a form: back to the page it was on, and it says the action was not done",
      async () => {
        const fromPage = await send(
          app,
          jar,
          "/settings/api-keys",
          formPost({ name: "ci key" }, { Referer: `${BASE}/settings/api-keys?notice=x` }),
        );
        assert.equal(
          fromPage.headers.get("Location"),
          "/sign-in?notice=session-expired-form&next=%2Fsettings%2Fapi-keys",
        );
        // No Referer (or another site's): the section the form's address is in.
        for (const referer of [undefined, "https://evil.example/settings/domains"]) {
          const res = await send(
            app,
            jar,
            "/settings/api-keys/key_x/roll",
            formPost({}, referer ? { Referer: referer } : {}),
          );
          assert.equal(
            res.headers.get("Location"),
            "/sign-in?notice=session-expired-form&next=%2Fsettings%2Fapi-keys",
          );
        }
        const page = await send(app, jar, fromPage.headers.get("Location") ?? "");
        const html = await page.text();
        assert.ok(html.includes(EXPIRED));
        assert.match(html, /What you submitted was not done/);
      },
    );

    await t.step("signing in lands on `next`; nothing was created meanwhile", async () => {
      const res = await send(
        app,
        jar,
        "/sign-in",
        formPost({ email, password: TEST_PASSWORD, next: "/settings/usage?days=7" }),
      );
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("Location"), "/settings/usage?days=7");
      const keys = await send(app, jar, "/api/e2/api-keys");
      assert.equal((await keys.json()).data.length, 0);
    });

    await t.step("a wrong password keeps `next` in the form", async () => {
      const res = await send(
        app,
        new Jar(),
        "/sign-in",
        formPost({ email, password: "wrong password!!", next: "/settings/domains" }),
      );
      assert.equal(res.status, 401);
      assert.equal(nextField(await res.text()), "/settings/domains");
    });

    await t.step("another site's address in `next` is dropped, on the page and after", async () => {
      for (const bad of ["//evil.example/", "https://evil.example/", "/\\evil.example"]) {
        const page = await send(app, new Jar(), `/sign-in?next=${encodeURIComponent(bad)}`);
        assert.equal(nextField(await page.text()), null, bad);
        const res = await send(
          app,
          new Jar(),
          "/sign-in",
          formPost({ email, password: TEST_PASSWORD, next: bad }),
        );
        assert.equal(res.headers.get("Location"), "/settings/api-keys", bad);
      }
    });

    await t.step("a browser that never signed in here is not told a session expired", async () => {
      const res = await send(app, new Jar(), "/settings/usage");
      assert.equal(res.headers.get("Location"), "/sign-in");
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("after the second step too, signing in lands on `next`", async () => {
  const ctx = await makeTestApp();
  try {
    const { app, clock } = ctx;
    const jar = new Jar();
    const email = freshEmail();
    const post = (path: string, body: unknown) =>
      send(app, jar, path, json(body, { headers: SAME_ORIGIN }));
    assert.equal((await post("/api/auth/sign-up", { email, password: TEST_PASSWORD })).status, 201);
    const enabled = await post("/api/auth/two-factor/enable", { password: TEST_PASSWORD });
    const totp = OTPAuth.URI.parse((await enabled.json()).totpURI) as OTPAuth.TOTP;
    const verified = await post("/api/auth/two-factor/verify-totp", {
      code: totp.generate({ timestamp: clock() }),
    });
    assert.equal(verified.status, 200);
    await verified.body?.cancel();
    clock.advance(ctx.config.sessionTtlMs + 60_000);

    const expired = await send(app, jar, "/settings/security");
    const location = expired.headers.get("Location") ?? "";
    assert.equal(location, "/sign-in?notice=session-expired&next=%2Fsettings%2Fsecurity");

    const password = await send(
      app,
      jar,
      "/sign-in",
      formPost({ email, password: TEST_PASSWORD, next: "/settings/security" }),
    );
    assert.equal(password.status, 303);
    const second = password.headers.get("Location") ?? "";
    assert.equal(second, "/sign-in/two-factor?next=%2Fsettings%2Fsecurity");
    const page = await send(app, jar, second);
    const html = await page.text();
    assert.equal([...html.matchAll(/name="next" value="\/settings\/security"/g)].length, 2);

    const wrong = await send(
      app,
      jar,
      "/sign-in/two-factor",
      formPost({ code: "000000", next: "/settings/security" }),
    );
    assert.equal(wrong.status, 401);
    assert.equal(nextField(await wrong.text()), "/settings/security");

    const done = await send(
      app,
      jar,
      "/sign-in/two-factor",
      formPost({ code: totp.generate({ timestamp: clock() }), next: "/settings/security" }),
    );
    assert.equal(done.status, 303);
    assert.equal(done.headers.get("Location"), "/settings/security");
    assert.equal((await send(app, jar, "/settings/security")).status, 200);
  } finally {
    await ctx.close();
  }
});
