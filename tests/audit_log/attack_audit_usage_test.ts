/**
 * Issue 13 from an outsider's side: the audit log (cursor forgery, CSV formula injection,
 * secrets in events, events missing or written for failed changes, reading without audit:read)
 * and usage (another account's key). Every test asserts the secure answer.
 */
import assert from "node:assert/strict";
import type { App } from "../../app.ts";
import { resetDenialGate } from "../../auth/api_keys/policy.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import type { AuditEvent } from "../../store/audit_log/events.ts";
import { encodeAuditCursor } from "../../store/audit_log/reads.ts";
import { auditPrefix } from "../../store/keys.ts";
import { bearer, makeTestApp, TEST_PASSWORD, type TestApp } from "../_helpers.ts";
import {
  BASE,
  cookieFrom,
  createKeyViaSession,
  fromIp,
  json,
  signUp,
  withCookie,
} from "../sessions_helpers.ts";

async function openApp(
  opts: Parameters<typeof makeTestApp>[0] = {},
): Promise<TestApp & AsyncDisposable> {
  resetDenialGate();
  const ctx = await makeTestApp(opts);
  return Object.assign(ctx, { [Symbol.asyncDispose]: () => ctx.close() });
}

type Answer = { status: number; text: string; body: Record<string, unknown>; headers: Headers };

async function send(app: App, path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await app.request(`${BASE}${path}`, init, fromIp("127.0.0.1"));
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch { /* not JSON */ }
  return { status: res.status, text, body, headers: res.headers };
}

const asKey = (app: App, key: string, path: string, init: RequestInit = {}) =>
  send(app, path, bearer(key, init));
const asSession = (app: App, cookie: string, path: string, init: RequestInit = {}) =>
  send(app, path, withCookie(cookie, init));

async function storedEvents(kv: Deno.Kv, userId: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for await (const e of kv.list<AuditEvent>({ prefix: auditPrefix(userId) })) out.push(e.value);
  return out;
}

/** RFC 4180 cells of a CSV document. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      row.push(cell);
      cell = "";
    } else if (ch === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += ch;
  }
  if (cell !== "" || row.length) rows.push([...row, cell]);
  return rows;
}

const MISSING_KEY = "key_0000000000000000000000";

Deno.test("usage of another account's key answers exactly like a nonexistent key", async (t) => {
  await using ctx = await openApp();
  const alice = await signUp(ctx.app);
  const mallory = await signUp(ctx.app);
  const victim = await createKeyViaSession(ctx.app, alice.cookie, { name: "victim" });
  for (let i = 0; i < 3; i++) await asKey(ctx.app, victim.key, "/api/e2/domains");
  await ctx.app.idle();

  await t.step("the per-key route answers the same 404 for both", async () => {
    for (const prefix of ["/api/e2", "/api/v2"]) {
      const foreign = await asSession(
        ctx.app,
        mallory.cookie,
        `${prefix}/api-keys/${victim.id}/usage?days=7`,
      );
      const missing = await asSession(
        ctx.app,
        mallory.cookie,
        `${prefix}/api-keys/${MISSING_KEY}/usage?days=7`,
      );
      assert.equal(foreign.status, 404);
      assert.deepEqual(foreign.body, missing.body);
    }
    const own = await asSession(ctx.app, alice.cookie, `/api/e2/api-keys/${victim.id}/usage`);
    assert.equal(own.status, 200);
    const total = (own.body.data as { requests: number }[]).reduce((s, d) => s + d.requests, 0);
    assert.equal(total, 3);
  });

  await t.step("the account route filtered by a foreign key id lists nothing", async () => {
    const r = await asSession(ctx.app, mallory.cookie, `/api/e2/usage?keyId=${victim.id}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data, []);
    const all = await asSession(ctx.app, mallory.cookie, "/api/e2/usage?days=1");
    assert.ok(!all.text.includes(victim.id));
  });

  await t.step("a Bearer key cannot read usage, not even its own", async () => {
    for (
      const path of [
        `/api/e2/api-keys/${victim.id}/usage`,
        "/api/e2/usage",
        "/api/v2/usage",
      ]
    ) {
      const r = await asKey(ctx.app, victim.key, path);
      assert.equal(r.status, 403, path);
      assert.equal(r.body.code, "SESSION_REQUIRED");
    }
  });
});

Deno.test("a forged audit-log cursor never reaches another account's events", async () => {
  await using ctx = await openApp();
  const alice = await signUp(ctx.app);
  const mallory = await signUp(ctx.app);
  await createKeyViaSession(ctx.app, alice.cookie, { name: "alice-secret-project" });
  const aliceEvents = await storedEvents(ctx.kv, alice.userId);
  assert.ok(aliceEvents.length >= 2);
  for (const e of aliceEvents) {
    for (const timeMs of [Date.parse(e.time), Date.parse(e.time) + 1, Date.now() + 86_400_000]) {
      const cursor = encodeAuditCursor({ timeMs, id: e.id });
      for (const format of ["json", "jsonl", "csv"]) {
        const r = await asSession(
          ctx.app,
          mallory.cookie,
          `/api/e2/audit-log?format=${format}&cursor=${cursor}`,
        );
        assert.equal(r.status, 200);
        assert.ok(!r.text.includes(alice.userId), format);
        assert.ok(!r.text.includes("alice-secret-project"), format);
        assert.ok(!r.text.includes(alice.email), format);
      }
    }
  }
});

Deno.test("CSV export neutralises formulas in key names and user agents", async () => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const payloads = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1)"];
  for (const name of payloads) {
    const k = await createKeyViaSession(ctx.app, cookie, { name });
    assert.equal(k.res.status, 201, name);
  }
  const evilUa = "=cmd|' /C calc'!A0";
  await asSession(ctx.app, cookie, "/api/e2/api-keys", {
    ...json({ name: "via ua" }),
    headers: { "Content-Type": "application/json", "User-Agent": evilUa, Cookie: cookie },
  });
  const r = await asSession(ctx.app, cookie, "/api/e2/audit-log?format=csv");
  assert.equal(r.status, 200);
  assert.match(r.headers.get("Content-Type") ?? "", /^text\/csv/);
  const rows = parseCsv(r.text);
  assert.ok(rows.length > payloads.length);
  for (const row of rows) {
    for (const cell of row) assert.doesNotMatch(cell, /^[=+\-@\t\r]/, JSON.stringify(cell));
  }
  const names = rows.map((row) => row[7]);
  for (const name of payloads) assert.ok(names.includes(`'${name}`), name);
  assert.ok(rows.some((row) => row[9] === `'${evilUa}`));
});

Deno.test("audit events never hold a key, its digest, a session token or a password", async () => {
  await using ctx = await openApp();
  const { cookie, userId, email } = await signUp(ctx.app);
  const token = cookie.slice(cookie.indexOf("=") + 1);
  const created = await createKeyViaSession(ctx.app, cookie, { name: "leaky" });
  const rolled = await asSession(
    ctx.app,
    cookie,
    `/api/e2/api-keys/${created.id}/roll`,
    json({ expiresInHours: 1 }),
  );
  assert.equal(rolled.status, 201);
  const newKey = String(rolled.body.key);
  await asSession(
    ctx.app,
    cookie,
    `/api/e2/api-keys/${rolled.body.id}`,
    json({ disabled: true, scopes: ["domains:read"] }, { method: "PATCH" }),
  );
  const signIn = await send(
    ctx.app,
    "/api/auth/sign-in",
    json({ email, password: TEST_PASSWORD }),
  );
  const token2 = cookieFrom(new Response(null, { headers: signIn.headers })).split("=")[1];
  await send(ctx.app, "/api/auth/sign-in", json({ email, password: "wrong " + TEST_PASSWORD }));
  await asKey(ctx.app, created.key, "/api/e2/audit-log");
  await asKey(ctx.app, created.key, "/api/e2/auth/revoke-key", { method: "POST" });
  await ctx.app.idle();

  const secrets = [
    created.key,
    newKey,
    await sha256Hex(created.key),
    await sha256Hex(newKey),
    token,
    token2,
    TEST_PASSWORD,
  ].filter((s) => s.length >= 16);
  const stored = JSON.stringify(await storedEvents(ctx.kv, userId));
  const exported = [
    (await asSession(ctx.app, cookie, "/api/e2/audit-log?limit=100")).text,
    (await asSession(ctx.app, cookie, "/api/e2/audit-log?format=csv")).text,
    (await asSession(ctx.app, cookie, "/api/e2/audit-log?format=jsonl")).text,
  ];
  assert.ok(stored.includes("api_key.rolled"));
  assert.ok(stored.includes("session.sign_in_failed"));
  for (const secret of secrets) {
    for (const text of [stored, ...exported]) {
      assert.ok(!text.includes(secret), `a secret (${secret.slice(0, 6)}…) is in the log`);
    }
  }
});

Deno.test("an audit event exists exactly when its change does", async (t) => {
  await using ctx = await openApp();
  const alice = await signUp(ctx.app);
  const mallory = await signUp(ctx.app);
  const k = await createKeyViaSession(ctx.app, alice.cookie, { name: "k" });
  const count = async (userId: string, action?: string) =>
    (await storedEvents(ctx.kv, userId)).filter((e) => !action || e.action === action).length;

  await t.step("refused changes write nothing", async () => {
    const aliceBefore = await count(alice.userId);
    const malloryBefore = await count(mallory.userId);
    const attempts: [string, string, RequestInit][] = [
      [
        alice.cookie,
        `/api/e2/api-keys/${k.id}`,
        json({ rateLimit: { max: 1e9, windowMs: 1000 } }, {
          method: "PATCH",
        }),
      ],
      [
        alice.cookie,
        `/api/e2/api-keys/${k.id}`,
        json({ domainIds: ["dom_0000000000000000000000"] }, {
          method: "PATCH",
        }),
      ],
      [
        alice.cookie,
        `/api/e2/api-keys/${MISSING_KEY}`,
        json({ disabled: true }, {
          method: "PATCH",
        }),
      ],
      [alice.cookie, `/api/e2/api-keys/${MISSING_KEY}`, { method: "DELETE" }],
      [mallory.cookie, `/api/e2/api-keys/${k.id}`, json({ disabled: true }, { method: "PATCH" })],
      [mallory.cookie, `/api/e2/api-keys/${k.id}`, { method: "DELETE" }],
      [mallory.cookie, `/api/e2/api-keys/${k.id}/roll`, json({ expiresInHours: 0 })],
      [alice.cookie, "/api/e2/domains/dom_0000000000000000000000", { method: "DELETE" }],
      [alice.cookie, "/api/e2/domains", json({ domain: "not a domain" })],
    ];
    for (const [cookie, path, init] of attempts) {
      const r = await asSession(ctx.app, cookie, path, init);
      assert.ok(r.status >= 400, `${init.method} ${path}: ${r.status}`);
    }
    assert.equal(await count(alice.userId), aliceBefore);
    assert.equal(await count(mallory.userId), malloryBefore);
  });

  await t.step("a PATCH that changes nothing records nothing", async () => {
    const before = await count(alice.userId);
    const r = await asSession(
      ctx.app,
      alice.cookie,
      `/api/e2/api-keys/${k.id}`,
      json({ name: "k" }, { method: "PATCH" }),
    );
    assert.equal(r.status, 200);
    assert.equal(await count(alice.userId), before);
  });

  await t.step("disabling and re-enabling are each recorded once", async () => {
    const before = await count(alice.userId, "api_key.updated");
    for (const disabled of [true, false]) {
      const r = await asSession(
        ctx.app,
        alice.cookie,
        `/api/e2/api-keys/${k.id}`,
        json({ disabled }, { method: "PATCH" }),
      );
      assert.equal(r.status, 200);
    }
    const events = (await storedEvents(ctx.kv, alice.userId)).filter((e) =>
      e.action === "api_key.updated"
    );
    assert.equal(events.length, before + 2);
    for (const e of events.slice(-2)) {
      assert.deepEqual(e.details?.changed, ["disabled"]);
      assert.equal(e.outcome, "success");
      assert.equal(e.target.id, k.id);
    }
  });

  await t.step("a domain added and deleted is recorded, a duplicate add is not", async () => {
    const add = await asSession(
      ctx.app,
      alice.cookie,
      "/api/e2/domains",
      json({ domain: "a.example.com" }),
    );
    assert.equal(add.status, 201);
    const dup = await asSession(
      ctx.app,
      alice.cookie,
      "/api/e2/domains",
      json({ domain: "a.example.com" }),
    );
    assert.equal(dup.status, 409);
    assert.equal(await count(alice.userId, "domain.created"), 1);
    const del = await asSession(ctx.app, alice.cookie, `/api/e2/domains/${add.body.id}`, {
      method: "DELETE",
    });
    assert.equal(del.status, 200);
    assert.equal(await count(alice.userId, "domain.deleted"), 1);
  });
});

Deno.test("a key without audit:read cannot read the log by any route or format", async (t) => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const plain = await createKeyViaSession(ctx.app, cookie, { name: "plain" });
  const writer = await createKeyViaSession(ctx.app, cookie, {
    name: "writer",
    scopes: ["domains:read", "domains:write"],
  });

  await t.step("the API answers 403 INSUFFICIENT_SCOPE for every format and prefix", async () => {
    for (const key of [plain.key, writer.key]) {
      for (const prefix of ["/api/e2", "/api/v2"]) {
        for (const q of ["", "?format=csv", "?format=jsonl", "?limit=1&action=api_key.created"]) {
          const r = await asKey(ctx.app, key, `${prefix}/audit-log${q}`);
          assert.equal(r.status, 403, `${prefix}${q}`);
          assert.equal(r.body.code, "INSUFFICIENT_SCOPE");
          assert.ok(!r.text.includes("api_key.created"));
        }
      }
    }
  });

  await t.step("the dashboard's Security log page does not accept a Bearer key", async () => {
    for (const path of ["/settings/security-log", "/settings/security-log?format=csv"]) {
      const r = await asKey(ctx.app, plain.key, path);
      assert.notEqual(r.status, 200, path);
      assert.ok(!r.text.includes("api_key.created"), path);
      assert.ok(!r.text.includes(plain.id), path);
    }
  });

  await t.step("the log is read-only, even for a session", async () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const r = await asSession(ctx.app, cookie, "/api/e2/audit-log", { method });
      assert.ok(r.status === 404 || r.status === 405, `${method}: ${r.status}`);
    }
    const r = await asSession(ctx.app, cookie, "/api/e2/audit-log");
    assert.equal(r.status, 200);
    assert.ok((r.body.data as unknown[]).length >= 2);
  });
});

Deno.test("an audit:read key restricted to some domains does not learn the others from the log", async () => {
  await using ctx = await openApp();
  const { cookie } = await signUp(ctx.app);
  const shown = await asSession(
    ctx.app,
    cookie,
    "/api/e2/domains",
    json({ domain: "shown.example.com" }),
  );
  const hidden = await asSession(
    ctx.app,
    cookie,
    "/api/e2/domains",
    json({ domain: "hidden-brand.example.com" }),
  );
  assert.equal(shown.status, 201);
  assert.equal(hidden.status, 201);
  const k = await createKeyViaSession(ctx.app, cookie, {
    name: "auditor",
    scopes: ["audit:read", "domains:read"],
    domainIds: [shown.body.id],
  });
  assert.equal(k.res.status, 201);
  const direct = await asKey(ctx.app, k.key, `/api/e2/domains/${hidden.body.id}`);
  assert.equal(direct.status, 404);
  for (const q of ["", "?format=csv", "?format=jsonl", "?action=domain.created"]) {
    const r = await asKey(ctx.app, k.key, `/api/e2/audit-log${q}`);
    assert.equal(r.status, 200, q);
    assert.ok(!r.text.includes(String(hidden.body.id)), `hidden id in audit-log${q}`);
    assert.ok(!r.text.includes("hidden-brand.example.com"), `hidden name in audit-log${q}`);
  }
  // The session sees everything, the key's own domain included.
  const all = await asSession(ctx.app, cookie, "/api/e2/audit-log?action=domain.created");
  assert.equal((all.body.data as unknown[]).length, 2);
});
