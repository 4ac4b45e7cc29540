/**
 * Issue 22 item 8: keys, sessions and browsers are named one way on every page.
 *
 * - A key is "name (prefix…)" ("ci key (inb_xXaAEw…)") on Usage and the Security log as on API
 *   Keys, never its record id (`key_…`) while it exists; a deleted key shows its id and "deleted".
 * - The Security log summarises user agents as the Sessions list does ("Safari on macOS", the
 *   header as sent kept in the title) and names sessions as that list does, never by `ses_…` id.
 * - The phone cards of the log and of the Sessions list label every value (`data-label`).
 */
import assert from "node:assert/strict";
import { makeTestApp } from "../_helpers.ts";
import type { App } from "../../app.ts";
import { BASE, createKeyViaSession, json, withCookie } from "../sessions_helpers.ts";

const SAFARI_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 " +
  "(KHTML, like Gecko) Version/17.4 Safari/605.1.15";

/** A request from Safari on macOS with the session cookie. */
function fromSafari(cookie: string, init: RequestInit = {}): RequestInit {
  const headers = new Headers(init.headers);
  headers.set("User-Agent", SAFARI_MAC);
  return withCookie(cookie, { ...init, headers });
}

/** The visible text of `html` (tags dropped, spaces collapsed). */
function text(html: string): string {
  return html.replace(/<[^>]+>/g, "").replace(/\s+/g, " ");
}

/** The `<td>`s of the first `<tbody>` after `marker`. */
function cells(html: string, marker: string): string[] {
  const body = html.slice(html.indexOf(marker)).match(/<tbody>([\s\S]*?)<\/tbody>/)?.[1] ?? "";
  return body.match(/<td[^>]*>/g) ?? [];
}

/**
 * An account signed up from Safari on macOS (the shared `signUp` sends no User-Agent) with keys
 * "ci key" (used), "old key" (used, then deleted) and "reader" (refused a write), and a failed
 * sign-in.
 */
async function seed(app: App) {
  const signUpRes = await app.request(
    `${BASE}/api/auth/sign-up`,
    json({ email: "naming@example.com", password: "correct horse battery staple" }, {
      headers: { "User-Agent": SAFARI_MAC },
    }),
  );
  assert.equal(signUpRes.status, 201);
  const cookie = signUpRes.headers.get("Set-Cookie")!.split(";")[0];

  const ci = await createKeyViaSession(app, cookie, { name: "ci key" });
  const old = await createKeyViaSession(app, cookie, { name: "old key" });
  const used = await app.request(`${BASE}/api/e2/domains`, {
    headers: { Authorization: `Bearer ${ci.key}`, "User-Agent": "curl/8.5.0" },
  });
  assert.equal(used.status, 200);
  await used.body?.cancel();
  const oldUse = await app.request(`${BASE}/api/e2/domains`, {
    headers: { Authorization: `Bearer ${old.key}` },
  });
  await oldUse.body?.cancel();
  const del = await app.request(
    `${BASE}/api/e2/api-keys/${old.id}`,
    withCookie(cookie, { method: "DELETE" }),
  );
  assert.equal(del.status, 200);
  await del.body?.cancel();
  const narrow = await createKeyViaSession(app, cookie, {
    name: "reader",
    scopes: ["domains:read"],
  });
  const refused = await app.request(
    `${BASE}/api/e2/domains`,
    json({ domain: "example.com" }, { headers: { Authorization: `Bearer ${narrow.key}` } }),
  );
  assert.equal(refused.status, 403);
  await refused.body?.cancel();
  const failed = await app.request(
    `${BASE}/api/auth/sign-in/email`,
    json({ email: "naming@example.com", password: "not the password" }),
  );
  assert.equal(failed.status, 401);
  await failed.body?.cancel();
  await app.idle();
  return { cookie, ci, old, narrow };
}

Deno.test("keys, sessions and browsers are named the same on Usage, the Security log and Sessions", async (t) => {
  const env = await makeTestApp();
  try {
    const { app } = env;
    const { cookie, ci, old, narrow } = await seed(app);
    const start = ci.body.start as string;
    const named = `ci key (${start}…)`;

    await t.step(
      "the Security log names keys by name and prefix; a deleted one by id",
      async () => {
        const res = await app.request(`${BASE}/settings/security-log`, fromSafari(cookie));
        assert.equal(res.status, 200);
        const html = await res.text();
        const visible = text(html);
        assert.ok(visible.includes(named), named);
        assert.ok(visible.includes(`old key (${old.id}, deleted)`), "deleted key: id, deleted");
        assert.ok(!visible.includes(ci.id), "a live key's record id is not shown");
        const reader = `reader (${narrow.body.start}…)`;
        assert.ok(visible.includes(`API key ${reader}`), "a key as the actor, named too");
      },
    );

    await t.step(
      "the log summarises browsers and names sessions as the Sessions list",
      async () => {
        const html = await (await app.request(`${BASE}/settings/security-log`, fromSafari(cookie)))
          .text();
        const visible = text(html);
        assert.ok(
          visible.includes("Safari on macOS (this device)"),
          "the session as the list names it",
        );
        assert.ok(!/Session ses_|\bses_[A-Za-z0-9]/.test(visible), "no session ids");
        assert.ok(!visible.includes("AppleWebKit"), "no raw user agent in the text");
        assert.ok(html.includes(`title="${SAFARI_MAC}"`), "the header as sent, in the title");
        assert.ok(visible.includes("Sign-in form"), "before a session: the form");
      },
    );

    await t.step("Usage names keys the same way", async () => {
      const res = await app.request(`${BASE}/settings/usage?days=7`, fromSafari(cookie));
      const visible = text(await res.text());
      assert.ok(visible.includes(named), named);
      assert.ok(visible.includes(`${old.id} (deleted)`), "the deleted key: its id, deleted");
      assert.ok(!visible.includes(ci.id));
    });

    await t.step("every value of a log row and of a session row carries its label", async () => {
      const log = await (await app.request(`${BASE}/settings/security-log`, fromSafari(cookie)))
        .text();
      const logCells = cells(log, 'id="events-title"');
      assert.ok(logCells.length >= 7);
      assert.deepEqual(logCells.filter((c) => !/data-label="[A-Z]/.test(c)), []);
      const security = await (await app.request(`${BASE}/settings/security`, fromSafari(cookie)))
        .text();
      const sessionCells = cells(security, 'id="sessions-title"');
      // The last cell is the "Sign out" button: it names itself.
      assert.deepEqual(
        sessionCells.slice(0, 4).map((c) => /data-label="([^"]+)"/.exec(c)?.[1]),
        ["Browser", "Address", "Signed in", "Last seen"],
      );
      assert.ok(text(security).includes("Safari on macOS"));
    });
  } finally {
    await env.close();
  }
});
