/**
 * The audit log (issue 13 item 4): which changes write which events, what an event holds (never
 * a secret), `GET /api/e2/audit-log` (pages, cursor, filters, exports, who may read it) and
 * retention. Atomicity is tests/audit_log/audit_log_atomicity_test.ts.
 */
import assert from "node:assert/strict";
import { runAdmin } from "../../admin/cli.ts";
import type { App } from "../../app.ts";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { appendAudit, type AuditAction, type AuditEvent } from "../../store/audit_log/events.ts";
import { auditPrefix } from "../../store/keys.ts";
import { issuePasswordReset } from "../../store/accounts/password_reset.ts";
import { tenantStore } from "../../store/tenant.ts";
import { getUser } from "../../store/accounts/users.ts";
import { bearer, createAccountWithKey, makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { domainTestApp, publishAndCheck } from "../_domains.ts";
import { BASE, cookieFrom, fromIp, json, signUp, withCookie } from "../sessions_helpers.ts";

const UA = "Mozilla/5.0 (X11; Linux x86_64) AuditTest/1.0";

async function eventsOf(kv: Deno.Kv, userId: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for await (const e of kv.list<AuditEvent>({ prefix: auditPrefix(userId) })) out.push(e.value);
  return out;
}

function actions(events: AuditEvent[]): AuditAction[] {
  return events.map((e) => e.action);
}

function withUa(init: RequestInit): RequestInit {
  const headers = new Headers(init.headers);
  headers.set("User-Agent", UA);
  return { ...init, headers };
}

Deno.test("session events are written for sign-in, failed sign-in of an account, and every revocation", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { app, kv } = ctx;
    const a = await signUp(app);
    const env = fromIp("203.0.113.9");
    const signIn = (password: string, email = a.email) =>
      app.request(`${BASE}/api/auth/sign-in`, withUa(json({ email, password })), env);

    await t.step(
      "sign-up and sign-in each record session.created with address and agent",
      async () => {
        const res = await signIn(TEST_PASSWORD);
        assert.equal(res.status, 200);
        const sessionId = (await res.json()).session.id;
        const created = (await eventsOf(kv, a.userId)).filter((e) =>
          e.action === "session.created"
        );
        assert.equal(created.length, 2);
        const last = created.find((e) => e.target.id === sessionId);
        assert.ok(last, "the sign-in's session is the event's target");
        assert.deepEqual(last.actor, { type: "session", id: sessionId });
        assert.equal(last.ip, "203.0.113.9");
        assert.equal(last.userAgent, UA);
        assert.equal(last.outcome, "success");
      },
    );

    await t.step(
      "a wrong password for an existing account records session.sign_in_failed",
      async () => {
        const res = await signIn("not the password at all");
        assert.equal(res.status, 401);
        await app.idle();
        const failed = (await eventsOf(kv, a.userId)).filter((e) =>
          e.action === "session.sign_in_failed"
        );
        assert.equal(failed.length, 1);
        assert.equal(failed[0].outcome, "failure");
        assert.equal(failed[0].target.id, a.userId);
        assert.equal(failed[0].ip, "203.0.113.9");
      },
    );

    await t.step("an unknown email records nothing anywhere", async () => {
      const before = (await Array.fromAsync(kv.list({ prefix: [] }))).filter((e) =>
        e.key[1] === "audit"
      ).length;
      const res = await signIn("whatever password", "nobody-here@example.com");
      assert.equal(res.status, 401);
      await app.idle();
      const after = (await Array.fromAsync(kv.list({ prefix: [] }))).filter((e) =>
        e.key[1] === "audit"
      ).length;
      assert.equal(after, before);
    });

    await t.step(
      "revoke-session and sign-out record session.revoked by the acting session",
      async () => {
        const other = await signIn(TEST_PASSWORD);
        const otherId = (await other.json()).session.id;
        const res = await app.request(
          `${BASE}/api/auth/revoke-session`,
          withCookie(a.cookie, withUa(json({ token: otherId }))),
          env,
        );
        assert.equal(res.status, 200);
        const revoked = (await eventsOf(kv, a.userId)).filter((e) =>
          e.action === "session.revoked"
        );
        assert.equal(revoked.length, 1);
        assert.equal(revoked[0].target.id, otherId);
        assert.equal(revoked[0].actor.type, "session");
        assert.notEqual(revoked[0].actor.id, otherId);

        const out = await app.request(
          `${BASE}/api/auth/sign-out`,
          withCookie(a.cookie, json({})),
          env,
        );
        assert.equal(out.status, 200);
        const after = (await eventsOf(kv, a.userId)).filter((e) => e.action === "session.revoked");
        assert.equal(after.length, 2);
        const own = after.find((e) => e.target.id !== otherId);
        assert.ok(own);
        assert.equal(own.actor.id, own.target.id, "signing out revokes the acting session");
      },
    );

    await t.step(
      "revoke-other-sessions records one session.revoked per session ended",
      async () => {
        const keep = await signIn(TEST_PASSWORD);
        const cookie = cookieFrom(keep);
        await signIn(TEST_PASSWORD);
        await signIn(TEST_PASSWORD);
        const before = (await eventsOf(kv, a.userId)).filter((e) => e.action === "session.revoked");
        const res = await app.request(
          `${BASE}/api/auth/revoke-other-sessions`,
          withCookie(cookie, json({})),
          env,
        );
        assert.equal(res.status, 200);
        const after = (await eventsOf(kv, a.userId)).filter((e) => e.action === "session.revoked");
        // The two other sessions plus the one left from the first step.
        assert.equal(after.length - before.length, 3);
      },
    );
  } finally {
    await ctx.close();
  }
});

Deno.test("user events are written for password change, password reset, suspension and unsuspension", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { app, kv, clock } = ctx;
    const a = await signUp(app);

    await t.step("change-password records user.password_changed by the session", async () => {
      const res = await app.request(
        `${BASE}/api/auth/change-password`,
        withCookie(
          a.cookie,
          withUa(
            json({ currentPassword: TEST_PASSWORD, newPassword: "a whole new passphrase 42" }),
          ),
        ),
        fromIp("198.51.100.4"),
      );
      assert.equal(res.status, 200, await res.clone().text());
      const [e] = (await eventsOf(kv, a.userId)).filter((e) =>
        e.action === "user.password_changed"
      );
      assert.ok(e);
      assert.equal(e.actor.type, "session");
      assert.deepEqual(e.target, { type: "user", id: a.userId, name: a.email });
      assert.equal(e.ip, "198.51.100.4");
      assert.equal(e.userAgent, UA);
    });

    await t.step("a reset with a token records user.password_reset", async () => {
      const issued = await issuePasswordReset(kv, a.userId, clock());
      assert.ok(issued);
      const res = await app.request(
        `${BASE}/api/auth/reset-password`,
        withUa(json({ token: issued.token, newPassword: "reset to this passphrase 7" })),
        fromIp("198.51.100.5"),
      );
      assert.equal(res.status, 200, await res.clone().text());
      const [e] = (await eventsOf(kv, a.userId)).filter((e) => e.action === "user.password_reset");
      assert.ok(e);
      assert.equal(e.ip, "198.51.100.5");
      assert.equal(e.userAgent, UA);
    });

    await t.step(
      "admin suspend, unsuspend and revoke-sessions record events by the admin",
      async () => {
        const out: string[] = [];
        const io = { kv, out: (l: string) => out.push(l), passwordCost: 10, maxApiKeys: 50 };
        await runAdmin(["user:suspend", "--email", a.email], io);
        assert.equal((await getUser(kv, a.userId))?.status, "suspended");
        await runAdmin(["user:suspend", "--email", a.email], io);
        await runAdmin(["user:unsuspend", "--email", a.email], io);
        const s = await app.request(
          `${BASE}/api/auth/sign-in`,
          json({ email: a.email, password: "reset to this passphrase 7" }),
        );
        assert.equal(s.status, 200);
        await runAdmin(["user:revoke-sessions", "--email", a.email], io);
        const events = await eventsOf(kv, a.userId);
        const admin = events.filter((e) => e.actor.type === "admin");
        // One each (the second suspend changed nothing); the CLI's clock may give them one ms.
        assert.deepEqual(actions(admin).sort(), [
          "session.revoked",
          "user.suspended",
          "user.unsuspended",
        ]);
        for (const e of admin) {
          assert.deepEqual(e.actor, { type: "admin", id: "admin-cli" });
          assert.equal(e.ip, null);
        }
      },
    );
  } finally {
    await ctx.close();
  }
});

Deno.test("domain events are written for create, verification and delete, by the key that acted", async () => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const created = await a.create("audit-example.com");
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await publishAndCheck(ctx, a, id, created.body.records ?? created.body.dnsRecords ?? []);
    const got = await a.request("GET", `/api/e2/domains/${id}`);
    assert.equal(got.body.status, "verified");
    // Events of one millisecond are in no particular order: let time pass between the changes.
    ctx.clock.advance(1);
    const del = await a.request("DELETE", `/api/e2/domains/${id}`);
    assert.equal(del.status, 200);
    const events = await eventsOf(ctx.kv, a.userId);
    const domainEvents = events.filter((e) => e.target.type === "domain");
    assert.deepEqual(actions(domainEvents), [
      "domain.created",
      "domain.verified",
      "domain.deleted",
    ]);
    for (const e of domainEvents) {
      assert.equal(e.actor.type, "api_key");
      assert.deepEqual(e.target, { type: "domain", id, name: "audit-example.com" });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("no stored event holds a key, token, password, password hash or digest", async () => {
  const ctx = await makeTestApp();
  try {
    const { app, kv, clock } = ctx;
    const a = await signUp(app);
    const store = tenantStore(kv, a.userId, clock);
    const { key } = await issueApiKey(store.apiKeys, { name: "k", nowMs: clock() });
    const sessionToken = a.cookie.split("=")[1];
    const newPassword = "a secret new passphrase 99";
    await app.request(
      `${BASE}/api/auth/change-password`,
      withCookie(a.cookie, json({ currentPassword: TEST_PASSWORD, newPassword })),
    );
    const issued = await issuePasswordReset(kv, a.userId, clock());
    assert.ok(issued);
    const resetPassword = "after the reset passphrase 5";
    await app.request(
      `${BASE}/api/auth/reset-password`,
      json({ token: issued.token, newPassword: resetPassword }),
    );
    await app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email: a.email, password: "wrong guess of a password" }),
    );
    await app.request("/api/e2/domains", bearer(key, json({ domain: "secret-check.example" })));
    await app.idle();
    const user = await getUser(kv, a.userId);
    assert.ok(user);
    const secrets = [
      key,
      sha256Hex(key),
      sessionToken,
      sha256Hex(sessionToken),
      TEST_PASSWORD,
      newPassword,
      resetPassword,
      issued.token,
      sha256Hex(issued.token),
      user.passwordHash,
    ];
    const events = await eventsOf(kv, a.userId);
    assert.ok(events.length >= 5, `events: ${actions(events)}`);
    const text = JSON.stringify(events);
    for (const s of secrets) assert.ok(!text.includes(s), "an event holds a secret");
  } finally {
    await ctx.close();
  }
});

/** Writes `n` events for the account straight to the store, one ms apart from `startMs`. */
async function seed(
  kv: Deno.Kv,
  userId: string,
  n: number,
  startMs: number,
  make: (i: number) => { action: AuditAction; userAgent?: string } = () => ({
    action: "domain.created",
  }),
): Promise<void> {
  for (let i = 0; i < n; i++) {
    const op = kv.atomic();
    const m = make(i);
    appendAudit(
      op,
      userId,
      {
        actor: { type: "api_key", id: "key_seed" },
        ip: "192.0.2.1",
        userAgent: m.userAgent ?? "seed",
      },
      { action: m.action, target: { type: "domain", id: `dom_${i}`, name: `d${i}.example` } },
      startMs + i,
    );
    await op.commit();
  }
}

Deno.test("the audit-log route pages newest first with an opaque cursor and filters by action and time", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { app, kv, clock } = ctx;
    const session = await signUp(app);
    const start = clock() - 60_000;
    await seed(kv, session.userId, 25, start, (i) => ({
      action: i % 5 === 0 ? "domain.deleted" : "domain.created",
    }));
    const get = (q: string) =>
      app.request(`${BASE}/api/e2/audit-log${q}`, withCookie(session.cookie));

    await t.step("pages cover every event once, newest first", async () => {
      const seen: string[] = [];
      const times: number[] = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const res: Response = await get(`?limit=7${cursor ? `&cursor=${cursor}` : ""}`);
        assert.equal(res.status, 200);
        const body = await res.json();
        assert.ok(body.data.length <= 7);
        for (const e of body.data) {
          seen.push(e.id);
          times.push(Date.parse(e.time));
          assert.equal(e.expiresAtMs, undefined, "the internal expiry is not returned");
        }
        cursor = body.pagination.nextCursor;
        assert.equal(body.pagination.hasMore, cursor !== null);
        pages++;
      } while (cursor);
      // 25 seeded plus the sign-up's session.created.
      assert.equal(seen.length, 26);
      assert.equal(new Set(seen).size, 26);
      assert.deepEqual(times, [...times].sort((x, y) => y - x));
      assert.equal(pages, 4);
    });

    await t.step("a cursor that was not returned is a 400 naming it", async () => {
      for (const bad of ["nope", "WyJ4Il0", "a".repeat(300), "WyJhMSIsLTEsImV2dF94Il0"]) {
        const res = await get(`?cursor=${bad}`);
        assert.equal(res.status, 400, bad);
        const body = await res.json();
        assert.equal(body.statusCode, 400);
        assert.equal(body.field, "cursor");
      }
    });

    await t.step("action filters, an unknown action is a 400", async () => {
      const res = await get("?action=domain.deleted&limit=100");
      const body = await res.json();
      assert.equal(body.data.length, 5);
      assert.ok(body.data.every((e: AuditEvent) => e.action === "domain.deleted"));
      const bad = await get("?action=domain.exploded");
      assert.equal(bad.status, 400);
      assert.equal((await bad.json()).field, "action");
    });

    await t.step("since keeps events at or after the time; a bad time is a 400", async () => {
      const since = new Date(start + 20).toISOString();
      const body = await (await get(`?since=${since}&limit=100`)).json();
      // Seeded events 20..24, and the sign-up's session.created (now).
      assert.equal(body.data.length, 6);
      const bad = await get("?since=yesterday");
      assert.equal(bad.status, 400);
    });

    await t.step("nothing changes or deletes events", async () => {
      for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
        const res = await app.request(
          `${BASE}/api/e2/audit-log`,
          withCookie(session.cookie, {
            method,
          }),
        );
        assert.equal(res.status, 405, method);
      }
    });

    await t.step("another account sees none of these events", async () => {
      const other = await signUp(app);
      const res = await app.request(`${BASE}/api/e2/audit-log?limit=100`, withCookie(other.cookie));
      const body = await res.json();
      assert.deepEqual(body.data.map((e: AuditEvent) => e.action), ["session.created"]);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("exports stream JSON Lines and CSV with quotes, commas, newlines and formulas escaped", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { app, kv, clock } = ctx;
    const s = await signUp(app);
    const nasty = ['=HYPERLINK("http://x","y"),z', "+1", "-2", "@SUM(A1)", 'line\nbreak "q"'];
    await seed(kv, s.userId, nasty.length, clock() - 10_000, (i) => ({
      action: "domain.created",
      userAgent: nasty[i],
    }));

    await t.step("jsonl: one event per line, newest first", async () => {
      const res = await app.request(
        `${BASE}/api/e2/audit-log?format=jsonl`,
        withCookie(s.cookie),
      );
      assert.equal(res.status, 200);
      assert.match(res.headers.get("Content-Type") ?? "", /^application\/x-ndjson/);
      const lines = (await res.text()).trimEnd().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines.length, nasty.length + 1);
      assert.equal(lines[0].action, "session.created");
      assert.equal(lines[1].userAgent, nasty[nasty.length - 1]);
    });

    await t.step("csv: RFC 4180 quoting and a leading ' before formula characters", async () => {
      const res = await app.request(
        `${BASE}/api/e2/audit-log?format=csv&action=domain.created`,
        withCookie(s.cookie),
      );
      assert.equal(res.status, 200);
      assert.match(res.headers.get("Content-Type") ?? "", /^text\/csv/);
      assert.match(res.headers.get("Content-Disposition") ?? "", /attachment/);
      const text = await res.text();
      const rows = text.split("\r\n");
      assert.equal(
        rows[0],
        "id,time,action,actor_type,actor_id,target_type,target_id,target_name,ip,user_agent,outcome,details",
      );
      assert.ok(text.includes(`"'=HYPERLINK(""http://x"",""y""),z"`));
      assert.ok(text.includes(",'+1,"));
      assert.ok(text.includes(",'-2,"));
      assert.ok(text.includes(",'@SUM(A1),"));
      assert.ok(text.includes(`,"line\nbreak ""q""",`));
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a key reads the log only with the audit:read scope; sessions always can", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { app, kv, clock } = ctx;
    const a = await createAccountWithKey(kv, clock);
    const store = tenantStore(kv, a.userId, clock);
    const reader = await issueApiKey(store.apiKeys, {
      name: "auditor",
      nowMs: clock(),
      grant: { scopes: ["audit:read"] },
    });

    await t.step(
      "a default key (domains:read, domains:write) gets 403 INSUFFICIENT_SCOPE",
      async () => {
        const res = await app.request(`${BASE}/api/e2/audit-log`, bearer(a.key));
        assert.equal(res.status, 403);
        const body = await res.json();
        assert.equal(body.code, "INSUFFICIENT_SCOPE");
        assert.equal(body.requiredScope, "audit:read");
      },
    );

    await t.step("a key with audit:read gets the page", async () => {
      const res = await app.request(`${BASE}/api/e2/audit-log`, bearer(reader.key));
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.ok(Array.isArray(body.data));
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("events older than the retention period are not listed", async (t) => {
  const DAY = 24 * 3600_000;
  /** Signs in afresh (sessions last 7 days) and lists the seeded events. */
  async function seededListed(app: App, email: string) {
    const res = await app.request(
      `${BASE}/api/auth/sign-in`,
      json({ email, password: TEST_PASSWORD }),
    );
    assert.equal(res.status, 200);
    const list = await app.request(
      `${BASE}/api/e2/audit-log?action=domain.created&limit=100`,
      withCookie(cookieFrom(res)),
    );
    assert.equal(list.status, 200);
    return (await list.json()).data.length;
  }

  await t.step("default 90 days", async () => {
    const ctx = await makeTestApp();
    try {
      const { app, kv, clock } = ctx;
      const s = await signUp(app);
      await seed(kv, s.userId, 3, clock());
      assert.equal(await seededListed(app, s.email), 3);
      clock.advance(89 * DAY);
      assert.equal(await seededListed(app, s.email), 3, "still listed on day 89");
      clock.advance(2 * DAY);
      assert.equal(await seededListed(app, s.email), 0, "gone on day 91");
    } finally {
      await ctx.close();
    }
  });

  await t.step("AUDIT_RETENTION_DAYS shortens it, in the stored expiry and on read", async () => {
    const ctx = await makeTestApp({ config: { auditRetentionDays: 7 } });
    try {
      const { app, kv, clock } = ctx;
      const s = await signUp(app);
      const [stored] = await eventsOf(kv, s.userId);
      assert.equal(stored.expiresAtMs, clock() + 7 * DAY);
      // Seeded with the default (90-day) expiry: the configured 7 days still apply on read.
      await seed(kv, s.userId, 2, clock());
      clock.advance(6 * DAY);
      assert.equal(await seededListed(app, s.email), 2);
      clock.advance(2 * DAY);
      assert.equal(await seededListed(app, s.email), 0);
      // A domain event, written by the domain store through the request's tenant store (a fresh
      // account: the first one's session has expired by now).
      const later = await signUp(app);
      const created = await app.request(
        `${BASE}/api/e2/domains`,
        withCookie(later.cookie, json({ domain: "retention.example" })),
      );
      assert.equal(created.status, 201, await created.clone().text());
      const domainEvent = (await eventsOf(kv, later.userId))
        .find((e) => e.action === "domain.created");
      assert.equal(domainEvent?.expiresAtMs, clock() + 7 * DAY);
    } finally {
      await ctx.close();
    }
  });
});

Deno.test("the dashboard's Security log page lists, filters and pages the events without inline script", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { app, kv, clock } = ctx;
    const s = await signUp(app);
    await seed(kv, s.userId, 30, clock() - 60_000, (i) => ({
      action: i === 3 ? "domain.deleted" : "domain.created",
      userAgent: i === 29 ? "<script>alert(1)</script>" : "seed",
    }));
    const open = (q = "") => app.request(`${BASE}/settings/security-log${q}`, withCookie(s.cookie));

    await t.step(
      "the first page is an accessible table of the newest 25, with a link to older",
      async () => {
        const res = await open();
        assert.equal(res.status, 200);
        const html = await res.text();
        assert.match(html, /<caption[^>]*>Security events, newest first<\/caption>/);
        assert.equal((html.match(/<th scope="col">/g) ?? []).length, 7);
        assert.equal((html.match(/<tbody>[\s\S]*<\/tbody>/)?.[0].match(/<tr>/g) ?? []).length, 25);
        assert.ok(!/<script(?![^>]*\bsrc=)[^>]*>/.test(html), "no inline script");
        assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"), "agents are escaped");
        assert.match(
          html,
          /href="\/settings\/security-log" aria-current="page">Security log<\/a>/,
        );
        const older = /href="(\/settings\/security-log\?cursor=[^"]+)"/.exec(html);
        assert.ok(older, "a link to older events");
        const next = await app.request(
          `${BASE}${older[1].replaceAll("&amp;", "&")}`,
          withCookie(s.cookie),
        );
        const nextHtml = await next.text();
        // 31 events: 25 on the first page, 6 on the second.
        assert.equal(
          (nextHtml.match(/<tbody>[\s\S]*<\/tbody>/)?.[0].match(/<tr>/g) ?? []).length,
          6,
        );
        assert.ok(nextHtml.includes("← Newest"));
      },
    );

    await t.step("filters by event type and date", async () => {
      const html = await (await open("?action=domain.deleted")).text();
      assert.equal((html.match(/<tbody>[\s\S]*<\/tbody>/)?.[0].match(/<tr>/g) ?? []).length, 1);
      const future = new Date(clock() + 2 * 24 * 3600_000).toISOString().slice(0, 10);
      const none = await (await open(`?since=${future}`)).text();
      assert.ok(none.includes("No events match."));
    });

    await t.step("a bad filter or page link says so with a 400", async () => {
      for (const q of ["?action=nope", "?since=tomorrow", "?cursor=garbage"]) {
        const res = await open(q);
        assert.equal(res.status, 400, q);
        assert.match(await res.text(), /role="alert"/);
      }
    });
  } finally {
    await ctx.close();
  }
});
