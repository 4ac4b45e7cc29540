import assert from "node:assert/strict";
import type { AccountEvent } from "../../auth/accounts/service.ts";
import { LAST_SEEN_INTERVAL_MS, sessionManager } from "../../auth/sessions/manager.ts";
import { fakeClock } from "../../lib/clock.ts";
import { summariseUserAgent } from "../../lib/user_agent.ts";
import { getSessionRecord, listSessions } from "../../store/sessions.ts";
import { createUser } from "../../store/accounts/users.ts";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, cookieFrom, freshEmail, json, signUp, withCookie } from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

function form(cookie: string, fields: Record<string, string> = {}, headers = SAME_ORIGIN) {
  return withCookie(cookie, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

Deno.test("user-agent summaries name the browser and the system only", async (t) => {
  const cases: [string | null, string][] = [
    [
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) " +
      "Chrome/126.0.0.0 Safari/537.36",
      "Chrome on macOS",
    ],
    [
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " +
      "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
      "Edge on Windows",
    ],
    [
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like " +
      "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
      "Safari on iOS",
    ],
    ["Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox on Linux"],
    ["curl/8.5.0", "curl"],
    [null, "Unknown browser"],
    ["x".repeat(10_000), "Unknown browser"],
  ];
  for (const [header, summary] of cases) {
    await t.step(`${String(header).slice(0, 40)} -> ${summary}`, () => {
      assert.equal(summariseUserAgent(header), summary);
    });
  }
});

Deno.test("a session's lastSeenAt is written at most once a minute, off the request path", async (t) => {
  await using kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.parse("2025-01-01T00:00:00Z"));
  const sessions = sessionManager({ kv, clock, ttlMs: 86_400_000 });
  const user = await createUser(kv, { email: freshEmail(), passwordHash: "x", nowMs: clock() });
  const issued = await sessions.start(user.id, { ip: "203.0.113.7", userAgent: "Firefox" });
  const req = new Request(BASE, { headers: { Cookie: `inbound_session=${issued.token}` } });
  const lastSeen = async () => {
    await sessions.settle();
    return (await getSessionRecord(kv, user.id, issued.sessionId))?.lastSeenAt;
  };

  await t.step("the record starts with its origin and lastSeenAt = createdAt", async () => {
    const r = await getSessionRecord(kv, user.id, issued.sessionId);
    assert.equal(r?.ip, "203.0.113.7");
    assert.equal(r?.userAgent, "Firefox");
    assert.equal(r?.lastSeenAt, r?.createdAt);
  });

  await t.step("requests within the minute write nothing", async () => {
    const stamp = (await kv.get([user.id, "session", issued.sessionId])).versionstamp;
    for (let i = 0; i < 50; i++) {
      clock.advance(1000);
      assert.equal((await sessions.resolve(req)).kind, "ok");
    }
    await sessions.settle();
    assert.equal((await kv.get([user.id, "session", issued.sessionId])).versionstamp, stamp);
  });

  await t.step("the first request a minute on writes it once", async () => {
    clock.advance(LAST_SEEN_INTERVAL_MS);
    const at = new Date(clock()).toISOString();
    assert.equal((await sessions.resolve(req)).kind, "ok");
    assert.equal(await lastSeen(), at);
    clock.advance(1000);
    assert.equal((await sessions.resolve(req)).kind, "ok");
    assert.equal(await lastSeen(), at);
  });

  await t.step("a touch never brings a signed-out session back", async () => {
    clock.advance(LAST_SEEN_INTERVAL_MS);
    const resolving = sessions.resolve(req);
    assert.equal(await sessions.end(req), true);
    await resolving;
    await sessions.settle();
    assert.deepEqual(await listSessions(kv, user.id, clock()), []);
  });
});

Deno.test("password change over JSON revokes other sessions by default and keeps this one", async (t) => {
  const events: AccountEvent[] = [];
  const h = await makeTestApp({ accountEvents: (e) => events.push(e) });
  try {
    const a = await signUp(h.app);
    const signIn = async () => {
      const res = await h.app.request(
        `${BASE}/api/auth/sign-in/email`,
        json({ email: a.email, password: TEST_PASSWORD }),
      );
      assert.equal(res.status, 200);
      return cookieFrom(res);
    };
    const session = async (cookie: string) =>
      await (await h.app.request(`${BASE}/api/auth/get-session`, withCookie(cookie))).json();
    const other = await signIn();

    await t.step("without revokeOtherSessions the other session ends", async () => {
      const res = await h.app.request(
        `${BASE}/api/auth/change-password`,
        withCookie(
          a.cookie,
          json({ currentPassword: TEST_PASSWORD, newPassword: "a new passphrase" }),
        ),
      );
      assert.equal(res.status, 200);
      assert.equal((await res.json()).token, null);
      assert.equal(await session(other), null);
      assert.notEqual(await session(a.cookie), null);
    });

    await t.step("revokeOtherSessions: false keeps them", async () => {
      const res0 = await h.app.request(
        `${BASE}/api/auth/sign-in/email`,
        json({ email: a.email, password: "a new passphrase" }),
      );
      const second = cookieFrom(res0);
      const res = await h.app.request(
        `${BASE}/api/auth/change-password`,
        withCookie(
          a.cookie,
          json({
            currentPassword: "a new passphrase",
            newPassword: TEST_PASSWORD,
            revokeOtherSessions: false,
          }),
        ),
      );
      assert.equal(res.status, 200);
      assert.notEqual(await session(second), null);
    });

    await t.step("account events reach the one seam, without secrets", () => {
      const types = events.map((e) => e.type);
      assert.deepEqual(types, [
        "sign-up",
        "sign-in",
        "password-changed",
        "sign-in",
        "password-changed",
      ]);
      const text = JSON.stringify(events);
      assert.ok(!text.includes(TEST_PASSWORD) && !text.includes("a new passphrase"));
      assert.ok(!text.includes(a.cookie.split("=")[1]));
    });

    await t.step(
      "unauthenticated account routes answer 401, get-session answers null",
      async () => {
        for (const path of ["/api/auth/list-sessions"]) {
          assert.equal((await h.app.request(`${BASE}${path}`)).status, 401);
        }
        for (const path of ["/api/auth/change-password", "/api/auth/update-user"]) {
          assert.equal((await h.app.request(`${BASE}${path}`, json({}))).status, 401);
        }
        const res = await h.app.request(`${BASE}/api/auth/get-session`);
        assert.equal(res.status, 200);
        assert.equal(await res.json(), null);
      },
    );
  } finally {
    await h.close();
  }
});

Deno.test("Settings > Security lists sessions and signs them out, Post/Redirect/Get", async (t) => {
  const h = await makeTestApp();
  try {
    const a = await signUp(h.app);
    const res0 = await h.app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email: a.email, password: TEST_PASSWORD }, {
        headers: { "User-Agent": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0" },
      }),
    );
    const other = cookieFrom(res0);
    const page = async (cookie = a.cookie) => {
      const res = await h.app.request(`${BASE}/settings/security`, withCookie(cookie));
      return {
        status: res.status,
        html: await res.text(),
        csp: res.headers.get("Content-Security-Policy"),
      };
    };

    await t.step(
      "the page lists both sessions, this device marked, linked from the nav",
      async () => {
        const p = await page();
        assert.equal(p.status, 200);
        assert.match(p.csp ?? "", /script-src 'self'/);
        assert.equal((p.html.match(/This device/g) ?? []).length, 1);
        assert.match(p.html, /Firefox on Linux/);
        assert.match(p.html, /href="\/settings\/security"/);
        assert.ok(!/<script>/.test(p.html));
      },
    );

    await t.step("the name form saves and redirects", async () => {
      const res = await h.app.request(
        `${BASE}/settings/security/name`,
        form(a.cookie, { name: " Grace " }),
      );
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("Location"), "/settings/security?notice=name-saved");
      assert.match((await page()).html, /value="Grace"/);
      const bad = await h.app.request(
        `${BASE}/settings/security/name`,
        form(a.cookie, { name: "  " }),
      );
      assert.equal(bad.status, 400);
    });

    await t.step("a cross-site post is refused", async () => {
      const res = await h.app.request(
        `${BASE}/settings/security/other-sessions/revoke`,
        form(a.cookie, {}, { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" }),
      );
      assert.equal(res.status, 403);
      assert.equal((await page(other)).status, 200);
    });

    await t.step("Sign out on the other session ends it", async () => {
      const id = /sessions\/(ses_[A-Za-z0-9]+)\/revoke/g;
      const html = (await page()).html;
      const own =
        (await (await h.app.request(`${BASE}/api/auth/session`, withCookie(a.cookie))).json())
          .session.id;
      const ids = [...html.matchAll(id)].map((m) => m[1]).filter((x) => x !== own);
      assert.equal(ids.length, 1);
      const res = await h.app.request(
        `${BASE}/settings/security/sessions/${ids[0]}/revoke`,
        form(a.cookie),
      );
      assert.equal(res.status, 303);
      assert.equal((await page(other)).status, 303, "the other browser goes to sign-in");
      assert.equal((await page()).status, 200);
    });

    await t.step("Sign out everywhere else, and a password change, keep this session", async () => {
      const again = cookieFrom(
        await h.app.request(
          `${BASE}/api/auth/sign-in`,
          json({ email: a.email, password: TEST_PASSWORD }),
        ),
      );
      const res = await h.app.request(
        `${BASE}/settings/security/other-sessions/revoke`,
        form(a.cookie),
      );
      assert.equal(res.status, 303);
      assert.equal((await page(again)).status, 303);
      const third = cookieFrom(
        await h.app.request(
          `${BASE}/api/auth/sign-in`,
          json({ email: a.email, password: TEST_PASSWORD }),
        ),
      );
      const wrong = await h.app.request(
        `${BASE}/settings/security/password`,
        form(a.cookie, { currentPassword: "nope nope nope", newPassword: "another passphrase" }),
      );
      assert.equal(wrong.status, 400);
      const changed = await h.app.request(
        `${BASE}/settings/security/password`,
        form(a.cookie, { currentPassword: TEST_PASSWORD, newPassword: "another passphrase" }),
      );
      assert.equal(changed.status, 303);
      assert.equal(changed.headers.get("Location"), "/settings/security?notice=password-changed");
      assert.equal((await page(third)).status, 303);
      assert.equal((await page()).status, 200);
    });
  } finally {
    await h.close();
  }
});
