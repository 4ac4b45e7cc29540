/** The dashboard's Roll form when the key cannot be rolled: the page says why, nothing is issued. */
import assert from "node:assert/strict";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, cookieFrom, freshEmail, withCookie } from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

function form(fields: Record<string, string>): RequestInit {
  return {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...SAME_ORIGIN },
    body: new URLSearchParams(fields).toString(),
  };
}

/** The keys listed, by their rows (a key already rolled offers no Roll form: issue 22, item 11). */
const keyIds = (html: string) =>
  [...html.matchAll(/<tr data-key-id="(key_[0-9A-Za-z]{22})"/g)].map((m) => m[1]);

Deno.test("rolling a key twice from the page shows a readable 409 and issues no second key", async () => {
  const ctx = await makeTestApp();
  try {
    const signUp = await ctx.app.request(
      `${BASE}/sign-up`,
      form({ email: freshEmail(), password: TEST_PASSWORD }),
    );
    const cookie = cookieFrom(signUp);
    // Post/Redirect/Get: each key form answers 303 to the page, which is then fetched.
    const posted = await ctx.app.request(
      `${BASE}/settings/api-keys`,
      withCookie(cookie, form({ name: "ci", expiresInDays: "" })),
    );
    assert.equal(posted.status, 303);
    const created = await (await ctx.app.request(
      `${BASE}${posted.headers.get("Location")}`,
      withCookie(cookie),
    )).text();
    const [id] = keyIds(created);
    const first = await ctx.app.request(
      `${BASE}/settings/api-keys/${id}/roll`,
      withCookie(cookie, form({ expiresInHours: "24" })),
    );
    assert.equal(first.status, 303);
    const rolled = await ctx.app.request(
      `${BASE}${first.headers.get("Location")}`,
      withCookie(cookie),
    );
    assert.equal(keyIds(await rolled.text()).length, 2);

    const again = await ctx.app.request(
      `${BASE}/settings/api-keys/${id}/roll`,
      withCookie(cookie, form({ expiresInHours: "24" })),
    );
    assert.equal(again.status, 409);
    assert.match(again.headers.get("Content-Type") ?? "", /^text\/html/);
    const html = await again.text();
    assert.match(html, /role="alert"[^>]*>This API key was already rolled/);
    assert.doesNotMatch(html, /id="new-key"/);
    assert.equal(keyIds(html).length, 2);
  } finally {
    await ctx.close();
  }
});
