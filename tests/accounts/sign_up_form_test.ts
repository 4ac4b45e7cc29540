/**
 * Issue 22, item 13: the sign-up form shows every field's problem at once (each field marked
 * `aria-invalid`, its message beside it, the first one focused), and a taken address is said
 * the same way on the page as in the API: one policy, explicit (409 `EMAIL_TAKEN`), since a
 * sign-up that signs the new account in at once cannot hide whether an address is in use.
 */
import assert from "node:assert/strict";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, json, signUp } from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

function formPost(fields: Record<string, string>): RequestInit {
  return {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...SAME_ORIGIN },
    body: new URLSearchParams(fields).toString(),
  };
}

/** The `<input …>` tag of the field named `name`. */
function inputTag(html: string, name: string): string {
  const tag = new RegExp(`<input[^>]*name="${name}"[^>]*>`).exec(html)?.[0];
  assert.ok(tag, `no input ${name}`);
  return tag;
}

/** Whether the field is marked, described by its message, and that message's text. */
function fieldProblem(html: string, name: string, id = name): string | null {
  const tag = inputTag(html, name);
  if (!/aria-invalid="true"/.test(tag)) return null;
  assert.match(tag, new RegExp(`aria-describedby="[^"]*\\b${id}-problem\\b`));
  return new RegExp(`<p class="field-error" id="${id}-problem">([^<]*)</p>`).exec(html)?.[1] ??
    null;
}

Deno.test("sign-up shows every field's problem at once", async (t) => {
  const ctx = await makeTestApp();
  try {
    await t.step("three fields wrong: three marked, the first focused, input kept", async () => {
      const res = await ctx.app.request(
        `${BASE}/sign-up`,
        formPost({ name: "n".repeat(101), email: "not-an-email", password: "short" }),
      );
      assert.equal(res.status, 400);
      const html = await res.text();
      assert.equal(fieldProblem(html, "name"), "Name must be at most 100 characters.");
      assert.equal(fieldProblem(html, "email"), "Email must be a valid email address.");
      assert.equal(fieldProblem(html, "password"), "Password must be at least 12 characters.");
      // The banner screen readers announce names all three.
      const banner = /id="form-error"[^>]*>([^<]*)</.exec(html)?.[1] ?? "";
      for (const word of ["Name", "Email", "Password"]) assert.match(banner, new RegExp(word));
      assert.equal([...html.matchAll(/\bautofocus\b/g)].length, 1);
      assert.match(inputTag(html, "name"), /autofocus/);
      assert.match(inputTag(html, "name"), new RegExp(`value="${"n".repeat(101)}"`));
      assert.match(inputTag(html, "email"), /value="not-an-email"/);
      assert.doesNotMatch(inputTag(html, "password"), /value=/);
    });

    await t.step("only the password wrong: only it is marked, and focused", async () => {
      const res = await ctx.app.request(
        `${BASE}/sign-up`,
        formPost({ email: freshEmail(), password: "short" }),
      );
      const html = await res.text();
      assert.equal(fieldProblem(html, "name"), null);
      assert.equal(fieldProblem(html, "email"), null);
      assert.ok(fieldProblem(html, "password"));
      assert.match(inputTag(html, "password"), /autofocus/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a taken address: 409 EMAIL_TAKEN in the API, the same words beside the page's field", async () => {
  const ctx = await makeTestApp();
  try {
    const { email } = await signUp(ctx.app);
    const api = await ctx.app.request(
      `${BASE}/api/auth/sign-up`,
      json({ email: email.toUpperCase(), password: TEST_PASSWORD }),
    );
    assert.equal(api.status, 409);
    const body = await api.json();
    assert.equal(body.code, "EMAIL_TAKEN");
    const betterAuth = await ctx.app.request(
      `${BASE}/api/auth/sign-up/email`,
      json({ name: "Ada", email, password: TEST_PASSWORD }, { headers: SAME_ORIGIN }),
    );
    assert.equal(betterAuth.status, 409);
    assert.equal((await betterAuth.json()).code, "EMAIL_TAKEN");

    const page = await ctx.app.request(
      `${BASE}/sign-up`,
      formPost({ name: "Ada", email, password: TEST_PASSWORD }),
    );
    assert.equal(page.status, 409);
    assert.equal(page.headers.get("Set-Cookie"), null);
    const html = await page.text();
    assert.equal(fieldProblem(html, "email"), body.message);
    assert.match(html, /href="\/sign-in">Sign in<\/a> or\s*<a href="\/forgot-password">/);
    assert.match(inputTag(html, "name"), /value="Ada"/);
  } finally {
    await ctx.close();
  }
});
