/**
 * PENDING (not run: the file name does not end in _test.ts). The reference answers 403
 * `{"error":"Forbidden",...}` for a suspended account. Today only sign-in refuses one
 * (auth/accounts.ts); its API keys and its existing sessions still authenticate on every /api/e2
 * route (measured in phase 2: list 200, domain create 201, key create by session 201), because
 * neither the key verifier nor the session lookup reads the account's status. The fix belongs to
 * the verifier's owner (see the phase 2 report for the proposal). Enable by renaming to
 * hardening_suspended_test.ts once suspended accounts are refused.
 */
import assert from "node:assert/strict";
import { userKey } from "../store/keys.ts";
import type { UserRecord } from "../store/users.ts";
import { createAccountWithKey, makeTestApp } from "./_helpers.ts";
import { errorShapeProblems, protectedApiRoutes, seedSession, seen, Tally } from "./_hardening.ts";

Deno.test("a suspended account's keys and sessions get the reference's 403 on every /api/e2 route", async () => {
  const h = await makeTestApp();
  const tally = new Tally("suspended");
  try {
    const a = await createAccountWithKey(h.kv, h.clock);
    const { cookie } = await seedSession(h.kv, a.userId, h.clock);
    const user = await h.kv.get<UserRecord>(userKey(a.userId));
    await h.kv.set(userKey(a.userId), { ...user.value!, status: "suspended" });
    for (const route of protectedApiRoutes(h.app)) {
      for (
        const [label, auth] of [["Bearer", { Authorization: `Bearer ${a.key}` }], ["session", {
          Cookie: cookie,
        }]] as const
      ) {
        const headers = new Headers(auth);
        const init: RequestInit = { method: route.method, headers };
        if (!["GET", "HEAD", "DELETE"].includes(route.method)) {
          headers.set("Content-Type", "application/json");
          init.body = "{}";
        }
        const r = await seen(await h.app.request(`http://localhost${route.path}`, init));
        const p = errorShapeProblems(r, [403]);
        // The same code as sign-in's refusal, so a 403 SESSION_REQUIRED does not pass for it.
        if (r.status === 403 && JSON.parse(r.body).code !== "ACCOUNT_SUSPENDED") p.push("code");
        tally.record(`${route.method} ${route.pattern} (${label})`, p);
      }
    }
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});
