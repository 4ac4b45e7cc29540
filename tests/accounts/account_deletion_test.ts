/**
 * Account deletion (store/accounts/deletion.ts): through the API and the dashboard with the
 * password, and by `admin user:delete`; nothing of the account is left, a crash midway is
 * reported by `admin verify` and finished by the CLI, and no commit exceeds KV's limits.
 */
import assert from "node:assert/strict";
import { runAdmin } from "../../admin/cli.ts";
import { verifyStore } from "../../admin/verify.ts";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { sessionManager } from "../../auth/sessions/manager.ts";
import type { RecordCheck } from "../../lib/dns.ts";
import { fakeClock } from "../../lib/clock.ts";
import { deleteAccount } from "../../store/accounts/deletion.ts";
import { domainStore } from "../../store/domains/store.ts";
import { tenantStore } from "../../store/tenant.ts";
import { bearer, createAccountWithKey, makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import { domainInput } from "../_domains.ts";
import {
  BASE,
  cookieFrom,
  createKeyViaSession,
  json,
  signUp,
  statusOf,
  withCookie,
} from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };
const CROSS_SITE = { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" };

const ALL_VERIFIED: RecordCheck[] = [
  { kind: "verification", isVerified: true },
  { kind: "mx", isVerified: true },
  { kind: "spf", isVerified: true },
  { kind: "dmarc", isVerified: true },
];

/**
 * Every key under the account, every pointer naming it, and its tombstone, as text. Throttle
 * counters (["throttle", scope, subject, window]) are left out: they expire with their window.
 */
async function remnants(kv: Deno.Kv, userId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of kv.list({ prefix: [] })) {
    if (e.key[0] === "throttle") continue;
    const v = e.value as { userId?: unknown } | null;
    const names = e.key[0] === "idx" && typeof v === "object" && v?.userId === userId;
    if (e.key[0] === userId || names || e.key.includes(userId)) out.push(JSON.stringify(e.key));
  }
  return out;
}

function deleteRequest(cookie: string, password: string, headers: HeadersInit = SAME_ORIGIN) {
  return withCookie(cookie, json({ password }, { headers }));
}

Deno.test("deleting an account through the API leaves nothing of it and frees its names", async (t) => {
  const h = await makeTestApp();
  try {
    const a = await signUp(h.app);
    const b = await signUp(h.app);
    const signIn = await h.app.request(
      `${BASE}/api/auth/sign-in/email`,
      json({ email: a.email, password: TEST_PASSWORD }),
    );
    const otherCookie = cookieFrom(signIn);
    const k1 = await createKeyViaSession(h.app, a.cookie);
    const k2 = await createKeyViaSession(h.app, a.cookie, { name: "second" });
    const domains = domainStore(h.kv, a.userId, h.clock);
    const parent = await domains.create(domainInput("deleted.example"));
    await domains.applyCheck(parent.id, ALL_VERIFIED);
    const sub = await domains.create(domainInput("mail.deleted.example"));
    assert.equal(sub.status, "verified");
    await domains.create(domainInput("pending.example"));
    const api = (key: string) => h.app.request(`${BASE}/api/e2/domains`, bearer(key));
    const session = (cookie: string) =>
      h.app.request(`${BASE}/api/auth/session`, withCookie(cookie));
    // Warm the key cache: deletion must drop cached keys too.
    assert.equal(await statusOf(api(k1.key)), 200);
    assert.equal(await statusOf(api(k2.key)), 200);
    const before = await remnants(h.kv, a.userId);

    await t.step("a wrong password is 400 INVALID_PASSWORD and deletes nothing", async () => {
      const res = await h.app.request(
        `${BASE}/api/auth/delete-user`,
        deleteRequest(a.cookie, "not the password at all"),
      );
      assert.equal(res.status, 400);
      assert.equal((await res.json()).code, "INVALID_PASSWORD");
      assert.deepEqual(await remnants(h.kv, a.userId), before);
      assert.equal(await statusOf(api(k1.key)), 200);
    });

    await t.step("a cross-site request is 403 and deletes nothing", async () => {
      const res = await h.app.request(
        `${BASE}/api/auth/delete-user`,
        deleteRequest(a.cookie, TEST_PASSWORD, CROSS_SITE),
      );
      assert.equal(res.status, 403);
      await res.body?.cancel();
      assert.deepEqual(await remnants(h.kv, a.userId), before);
    });

    await t.step("without a session it is 401", async () => {
      const res = await h.app.request(
        `${BASE}/api/auth/delete-user`,
        json({ password: TEST_PASSWORD }, { headers: SAME_ORIGIN }),
      );
      assert.equal(res.status, 401);
      await res.body?.cancel();
    });

    await t.step("the password deletes it: better-auth's answer, cookie cleared", async () => {
      const res = await h.app.request(
        `${BASE}/api/auth/delete-user`,
        deleteRequest(a.cookie, TEST_PASSWORD),
      );
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { success: true, message: "User deleted" });
      assert.match(res.headers.get("Set-Cookie") ?? "", /Max-Age=0/i);
    });

    await t.step("its keys and sessions answer 401 at once", async () => {
      assert.equal(await statusOf(api(k1.key)), 401);
      assert.equal(await statusOf(api(k2.key)), 401);
      assert.equal(await statusOf(session(a.cookie)), 401);
      assert.equal(await statusOf(session(otherCookie)), 401);
    });

    await t.step("nothing remains under its id and no index points to it", async () => {
      assert.deepEqual(await remnants(h.kv, a.userId), []);
      const report = await verifyStore(h.kv);
      assert.deepEqual(report.violations, []);
    });

    await t.step("another account can verify its domain name", async () => {
      const theirs = domainStore(h.kv, b.userId, h.clock);
      const copy = await theirs.create(domainInput("deleted.example"));
      const outcome = await theirs.applyCheck(copy.id, ALL_VERIFIED);
      assert.equal(outcome.record.status, "verified");
    });

    await t.step("the email can sign up again, as a new account", async () => {
      const again = await signUp(h.app, a.email);
      assert.notEqual(again.userId, a.userId);
    });
  } finally {
    await h.close();
  }
});

Deno.test("Settings > Security deletes the account with the password, Post/Redirect/Get", async (t) => {
  const h = await makeTestApp();
  try {
    const a = await signUp(h.app);
    const form = (password: string) =>
      withCookie(a.cookie, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", ...SAME_ORIGIN },
        body: new URLSearchParams({ password }).toString(),
      });

    await t.step("the page says what deletion deletes and asks for the password", async () => {
      const res = await h.app.request(`${BASE}/settings/security`, withCookie(a.cookie));
      const html = await res.text();
      assert.match(html, /<h2 id="delete-title">Delete account<\/h2>/);
      assert.match(html, /every API key/);
      assert.match(html, /domain names become free/);
      assert.match(html, /action="\/settings\/security\/delete"/);
    });

    await t.step("a wrong password re-renders the page with the error", async () => {
      const res = await h.app.request(`${BASE}/settings/security/delete`, form("wrong password!"));
      assert.equal(res.status, 400);
      assert.match(await res.text(), /The password is not correct/);
      assert.notDeepEqual(await remnants(h.kv, a.userId), []);
    });

    await t.step("the password deletes it and redirects to sign-in with a notice", async () => {
      const res = await h.app.request(`${BASE}/settings/security/delete`, form(TEST_PASSWORD));
      assert.equal(res.status, 303);
      assert.equal(res.headers.get("Location"), "/sign-in?notice=account-deleted");
      assert.deepEqual(await remnants(h.kv, a.userId), []);
      const page = await h.app.request(`${BASE}/sign-in?notice=account-deleted`);
      assert.match(await page.text(), /Your account was deleted/);
    });
  } finally {
    await h.close();
  }
});

class Killed extends Error {}

/** A KV whose `killAt`-th commit (counting from 1) throws before reaching the store. */
function killableKv(kv: Deno.Kv, killAt: number) {
  let commits = 0;
  const wrapOp = (op: Deno.AtomicOperation): Deno.AtomicOperation =>
    new Proxy(op, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== "function") return value;
        if (prop === "commit") {
          return () => {
            if (++commits === killAt) throw new Killed(`killed at commit ${killAt}`);
            return value.apply(target, []);
          };
        }
        return (...args: unknown[]) => {
          const result = value.apply(target, args);
          return result === target ? receiver : result;
        };
      },
    });
  return new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "atomic") return () => wrapOp(target.atomic());
      return value.bind(target);
    },
  });
}

/** An account with `domains` domains (every fifth verified), `keys` keys and two sessions. */
async function bigAccount(kv: Deno.Kv, clock: ReturnType<typeof fakeClock>, n: {
  domains: number;
  keys: number;
}) {
  const account = await createAccountWithKey(kv, clock);
  const store = tenantStore(kv, account.userId, clock);
  for (let i = 1; i < n.keys; i++) {
    await issueApiKey(store.apiKeys, { name: `k${i}`, expiresInDays: null, nowMs: clock() });
  }
  const domains = domainStore(kv, account.userId, clock, { maxDomains: 1000 });
  for (let i = 0; i < n.domains; i++) {
    const r = await domains.create(domainInput(`d${i}.big.example`));
    if (i % 5 === 0) await domains.applyCheck(r.id, ALL_VERIFIED);
  }
  const sessions = sessionManager({ kv, clock, ttlMs: 86_400_000 });
  await sessions.start(account.userId);
  await sessions.start(account.userId);
  return account;
}

Deno.test("a deletion killed midway is reported by admin verify and finished by user:delete", async (t) => {
  for (const killAt of [2, 3, 5]) {
    await t.step(`killed at commit ${killAt}`, async () => {
      await using kv = await Deno.openKv(":memory:");
      const clock = fakeClock(Date.UTC(2026, 0, 1));
      const account = await bigAccount(kv, clock, { domains: 150, keys: 10 });
      const other = await createAccountWithKey(kv, clock);
      await assert.rejects(
        deleteAccount(killableKv(kv, killAt), account.userId, { nowMs: clock() }),
        Killed,
      );
      const report = await verifyStore(kv);
      assert.equal(report.ok, false);
      assert.deepEqual(report.violations.map((v) => v.kind), ["deletion_unfinished"]);
      assert.match(report.violations[0].detail, new RegExp(`user:delete --id ${account.userId}`));
      assert.notDeepEqual(await remnants(kv, account.userId), []);

      const lines: string[] = [];
      await runAdmin(["user:delete", "--id", account.userId], {
        kv,
        out: (l) => lines.push(l),
        passwordCost: 10,
        maxApiKeys: 50,
      });
      const printed = JSON.parse(lines.join("\n"));
      assert.equal(printed.deleted.userId, account.userId);
      assert.deepEqual(await remnants(kv, account.userId), []);
      assert.deepEqual((await verifyStore(kv)).violations, []);
      assert.ok((await kv.get([other.userId, "user"])).value, "the other account is untouched");
    });
  }
});

Deno.test("an account with 1,000 domains and 50 keys deletes within KV's commit limits", async () => {
  await using base = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const account = await bigAccount(base, clock, { domains: 1000, keys: 50 });
  const commits: { mutations: number; checks: number }[] = [];
  const counting = new Proxy(base, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop !== "atomic") return value.bind(target);
      return () => {
        const tally = { mutations: 0, checks: 0 };
        const op = target.atomic();
        return new Proxy(op, {
          get(o, p, receiver) {
            const v = Reflect.get(o, p, receiver);
            if (typeof v !== "function") return v;
            return (...args: unknown[]) => {
              if (p === "check") tally.checks += args.length;
              else if (p === "mutate") tally.mutations += args.length;
              else if (["set", "delete", "sum", "min", "max"].includes(String(p))) {
                tally.mutations++;
              } else if (p === "commit") commits.push(tally);
              const result = v.apply(o, args);
              return result === o ? receiver : result;
            };
          },
        });
      };
    },
  });
  const summary = await deleteAccount(counting, account.userId, { nowMs: clock() });
  assert.ok(summary);
  assert.equal(summary.domains, 1000);
  assert.equal(summary.apiKeys, 50);
  assert.equal(summary.sessions, 2);
  assert.equal(summary.namesReleased, 200);
  assert.equal(summary.commits, commits.length);
  assert.ok(commits.length > 1);
  for (const c of commits) {
    assert.ok(c.mutations <= 1000, `${c.mutations} mutations in one commit`);
    assert.ok(c.checks <= 100, `${c.checks} checks in one commit`);
  }
  assert.deepEqual(await remnants(base, account.userId), []);
  assert.deepEqual((await verifyStore(base)).violations, []);
});

Deno.test("admin lists and revokes an account's sessions and deletes it by email", async (t) => {
  const h = await makeTestApp();
  try {
    const a = await signUp(h.app);
    const second = cookieFrom(
      await h.app.request(
        `${BASE}/api/auth/sign-in/email`,
        json({ email: a.email, password: TEST_PASSWORD }),
      ),
    );
    const admin = async (...argv: string[]) => {
      const lines: string[] = [];
      await runAdmin(argv, {
        kv: h.kv,
        out: (l) => lines.push(l),
        passwordCost: 10,
        maxApiKeys: 50,
      });
      return lines;
    };

    await t.step("user:sessions prints each session without a token or digest", async () => {
      const lines = await admin("user:sessions", "--email", a.email);
      assert.equal(lines.length, 2);
      for (const line of lines) {
        const s = JSON.parse(line);
        assert.deepEqual(Object.keys(s).sort(), [
          "createdAt",
          "expiresAt",
          "id",
          "ip",
          "lastSeenAt",
          "userAgent",
        ]);
        assert.match(s.id, /^ses_/);
        for (const cookie of [a.cookie, second]) assert.ok(!line.includes(cookie.split("=")[1]));
        assert.ok(!/[0-9a-f]{64}/.test(line), "no digest");
      }
    });

    await t.step("user:revoke-sessions signs every session out", async () => {
      const lines = await admin("user:revoke-sessions", "--email", a.email);
      assert.deepEqual(JSON.parse(lines[0]), { id: a.userId, email: a.email, revokedSessions: 2 });
      for (const cookie of [a.cookie, second]) {
        assert.equal(
          await statusOf(h.app.request(`${BASE}/api/auth/session`, withCookie(cookie))),
          401,
        );
      }
    });

    await t.step("user:delete --email deletes it and prints what went", async () => {
      const lines = await admin("user:delete", "--email", a.email);
      const { deleted } = JSON.parse(lines.join("\n"));
      assert.equal(deleted.userId, a.userId);
      assert.equal(deleted.email, a.email);
      assert.deepEqual(await remnants(h.kv, a.userId), []);
      await assert.rejects(admin("user:delete", "--email", a.email), /no account/);
    });

    await t.step("user:delete needs exactly one of --email and --id", async () => {
      await assert.rejects(admin("user:delete"), /either --email or --id/);
      await assert.rejects(admin("user:delete", "--id", "nope"), /usr_/);
    });
  } finally {
    await h.close();
  }
});
