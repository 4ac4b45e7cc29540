/**
 * PENDING (not run: the file name does not end in _test.ts). Issue 6 asks that a body with a field
 * the route does not know be refused with 400; today POST /api/e2/domains and POST
 * /api/e2/api-keys accept and ignore unknown fields (their zod objects are not `.strict()`).
 * Enable by renaming to hardening_unknown_fields_test.ts once the routes' schemas refuse unknown
 * fields (or parseJsonBody does it for every object schema), then set `strict: true` for them in
 * hardening_input_test.ts's BODY_ROUTES so the whole unknown-field table runs against them.
 */
import assert from "node:assert/strict";
import { bearer, createAccountWithKey, makeTestApp } from "./_helpers.ts";
import { errorShapeProblems, seen, Tally } from "./_hardening.ts";

Deno.test("every JSON-body route refuses an unknown field with a 400 that names it", async () => {
  const h = await makeTestApp();
  const tally = new Tally("unknown-fields");
  try {
    const a = await createAccountWithKey(h.kv, h.clock);
    const up = await h.app.request("http://localhost/api/auth/sign-up", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        email: `u-${crypto.randomUUID()}@example.com`,
        password: "correct horse battery staple",
      }),
    });
    const cookie = up.headers.get("Set-Cookie")!.split(";")[0];
    const routes: [string, string, Record<string, unknown>, RequestInit][] = [
      ["POST", "/api/e2/domains", { domain: "unknown-field.com" }, bearer(a.key)],
      ["POST", "/api/e2/api-keys", { name: "k" }, { headers: { Cookie: cookie } }],
      ["POST", "/api/auth/sign-in", { email: "x@example.com", password: "p" }, {}],
    ];
    for (const [method, path, valid, init] of routes) {
      const headers = new Headers(init.headers);
      headers.set("Content-Type", "application/json");
      const res = await h.app.request(`http://localhost${path}`, {
        method,
        headers,
        body: JSON.stringify({ ...valid, isAdmin: true }),
      });
      const r = await seen(res);
      const p = errorShapeProblems(r, [400]);
      if (!r.body.includes("isAdmin")) p.push("the answer does not name the unknown field");
      tally.record(`${method} ${path} with an unknown field`, p);
    }
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});
