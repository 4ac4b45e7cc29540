/** Real `/api/auth/*` answers, from sign-up to account deletion, match the OpenAPI document. */
import assert from "node:assert/strict";
import { TEST_PASSWORD } from "../_helpers.ts";
import { domainTestApp } from "../_domains.ts";
import { assertMatchesDocument } from "../_openapi.ts";
import { BASE, cookieFrom, freshEmail, json, withCookie } from "../sessions_helpers.ts";

Deno.test("every /api/auth answer validates against the document", async (t) => {
  const ctx = await domainTestApp();
  try {
    let cookie = "";
    const call = async (
      method: string,
      path: string,
      init: RequestInit,
      status: number,
    ): Promise<Response> => {
      const res = await ctx.app.request(`${BASE}${path}`, { ...init, method });
      const text = await res.clone().text();
      assert.equal(res.status, status, `${method} ${path}: ${text}`);
      const body = text ? JSON.parse(text) : null;
      assertMatchesDocument(ctx.doc, method, path, status, res.headers.get("Content-Type"), body);
      return res;
    };
    const signed = (init: RequestInit = {}) => withCookie(cookie, init);
    const email = freshEmail();
    const password = TEST_PASSWORD;

    await t.step("sign-up, sign-in and the session", async () => {
      cookie = cookieFrom(
        await call("POST", "/api/auth/sign-up", json({ email, password, name: "Ada" }), 201),
      );
      await call("GET", "/api/auth/session", signed(), 200);
      await call("POST", "/api/auth/sign-in", json({ email, password }), 200);
      await call("POST", "/api/auth/sign-in", json({ email, password: "wrong password" }), 401);
      await call("POST", "/api/auth/sign-up", json({ email, password: "short" }), 400);
    });
    await t.step("better-auth's sign-up, sign-in and get-session", async () => {
      const other = freshEmail();
      await call(
        "POST",
        "/api/auth/sign-up/email",
        json({ name: "Bo", email: other, password }),
        200,
      );
      await call("POST", "/api/auth/sign-in/email", json({ email: other, password }), 200);
      await call("GET", "/api/auth/get-session", signed(), 200);
      await call("GET", "/api/auth/get-session", {}, 200);
    });
    await t.step("account and session management", async () => {
      await call("POST", "/api/auth/update-user", signed(json({ name: "Ada King" })), 200);
      const changed = await call(
        "POST",
        "/api/auth/change-password",
        signed(json({ currentPassword: password, newPassword: password + "!" })),
        200,
      );
      await changed.body?.cancel();
      const list = await call("GET", "/api/auth/list-sessions", signed(), 200);
      assert.ok(Array.isArray(await list.json()));
      await call("POST", "/api/auth/revoke-session", signed(json({ token: "ses_none" })), 200);
      await call("POST", "/api/auth/revoke-other-sessions", signed(json({})), 200);
      await call("POST", "/api/auth/request-password-reset", json({ email }), 200);
      await call(
        "POST",
        "/api/auth/reset-password",
        json({ newPassword: password, token: "x" }),
        400,
      );
      await call("POST", "/api/auth/delete-user", signed(json({ password: password + "!" })), 200);
      await call("POST", "/api/auth/sign-out", signed(json({})), 200);
      await call("GET", "/api/auth/session", signed(), 401);
    });
  } finally {
    await ctx.close();
  }
});
