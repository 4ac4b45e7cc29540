/**
 * An audit event exists exactly when its change does: each is in the same atomic commit. A
 * commit that fails (an injected fault on every commit carrying an audit key, or a check that
 * loses a race) writes neither the change nor the event.
 */
import assert from "node:assert/strict";
import { hashPassword } from "../../auth/passwords/hash.ts";
import { fakeClock } from "../../lib/clock.ts";
import {
  ADMIN_AUDIT_CONTEXT,
  type AuditContext,
  type AuditEvent,
} from "../../store/audit_log/events.ts";
import { domainStore } from "../../store/domains/store.ts";
import { auditPrefix } from "../../store/keys.ts";
import { consumePasswordReset, issuePasswordReset } from "../../store/accounts/password_reset.ts";
import {
  createSessionForActiveUser,
  deleteSession,
  getSessionRecord,
} from "../../store/sessions.ts";
import {
  createUser,
  getUser,
  setUserStatus,
  updatePasswordHash,
} from "../../store/accounts/users.ts";
import { FaultyKv } from "../_faulty_kv.ts";
import { domainInput } from "../_domains.ts";

const CTX: AuditContext = {
  actor: { type: "session", id: "ses_test" },
  ip: "192.0.2.10",
  userAgent: "atomicity-test",
};

async function eventsOf(kv: Deno.Kv, userId: string): Promise<AuditEvent[]> {
  const out: AuditEvent[] = [];
  for await (const e of kv.list<AuditEvent>({ prefix: auditPrefix(userId) })) out.push(e.value);
  return out;
}

/** Every commit that writes an audit event fails, before anything is applied. */
const FAIL_AUDITED_COMMITS = {
  kind: "throw",
  ops: ["commit"],
  keys: (k: Deno.KvKey) => k[1] === "audit",
} as const;

Deno.test("a commit that fails writes neither the change nor its audit event", async (t) => {
  const faulty = new FaultyKv(await Deno.openKv(":memory:"));
  const kv = faulty.kv;
  const clock = fakeClock(Date.UTC(2026, 2, 1));
  try {
    const user = await createUser(kv, {
      email: "atomic@example.com",
      passwordHash: await hashPassword("first passphrase 1", 10),
      nowMs: clock(),
    });
    const domains = domainStore(kv, user.id, clock, { audit: CTX });

    await t.step("domain.created", async () => {
      faulty.setMode(FAIL_AUDITED_COMMITS);
      await assert.rejects(() => domains.create(domainInput("atomic.example")));
      assert.equal(await domains.count(), 0);
      assert.deepEqual(await eventsOf(kv, user.id), []);
      faulty.heal();
      await domains.create(domainInput("atomic.example"));
      assert.equal(await domains.count(), 1);
      assert.deepEqual((await eventsOf(kv, user.id)).map((e) => e.action), ["domain.created"]);
    });

    await t.step("domain.deleted", async () => {
      const [record] = (await domains.list({}, { limit: 1, offset: 0 })).data;
      faulty.setMode(FAIL_AUDITED_COMMITS);
      await assert.rejects(() => domains.delete(record.id));
      assert.equal(await domains.count(), 1);
      faulty.heal();
      assert.equal((await eventsOf(kv, user.id)).length, 1);
    });

    await t.step("session.created and session.revoked", async () => {
      const input = {
        userId: user.id,
        hash: "a".repeat(64),
        nowMs: clock(),
        ttlMs: 60_000,
        audit: CTX,
      };
      faulty.setMode(FAIL_AUDITED_COMMITS);
      await assert.rejects(() => createSessionForActiveUser(kv, input));
      assert.equal((await Array.fromAsync(kv.list({ prefix: [user.id, "session"] }))).length, 0);
      faulty.heal();
      const session = await createSessionForActiveUser(kv, input);
      faulty.setMode(FAIL_AUDITED_COMMITS);
      await assert.rejects(() =>
        deleteSession(kv, user.id, session.id, { ctx: CTX, nowMs: clock() })
      );
      assert.ok(await getSessionRecord(kv, user.id, session.id), "the session is still there");
      faulty.heal();
      assert.deepEqual(
        (await eventsOf(kv, user.id)).map((e) => e.action).sort(),
        ["domain.created", "session.created"],
      );
    });

    await t.step("user.password_changed", async () => {
      const before = await getUser(kv, user.id);
      assert.ok(before);
      faulty.setMode(FAIL_AUDITED_COMMITS);
      await assert.rejects(() =>
        updatePasswordHash(kv, user.id, before.passwordHash, "next-hash", clock(), {
          ctx: CTX,
          nowMs: clock(),
        })
      );
      faulty.heal();
      assert.equal((await getUser(kv, user.id))?.passwordHash, before.passwordHash);
      assert.equal(
        (await eventsOf(kv, user.id)).filter((e) => e.action === "user.password_changed").length,
        0,
      );
    });

    await t.step("user.suspended", async () => {
      faulty.setMode(FAIL_AUDITED_COMMITS);
      await assert.rejects(() =>
        setUserStatus(kv, user.id, "suspended", undefined, {
          ctx: ADMIN_AUDIT_CONTEXT,
          nowMs: clock(),
        })
      );
      faulty.heal();
      assert.equal((await getUser(kv, user.id))?.status, "active");
      assert.equal(
        (await eventsOf(kv, user.id)).filter((e) => e.action === "user.suspended").length,
        0,
      );
    });
  } finally {
    faulty.close();
  }
});

Deno.test("a write whose check loses records no event; of racing resets exactly one is recorded", async (t) => {
  await using kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 2, 1));
  const user = await createUser(kv, {
    email: "race@example.com",
    passwordHash: "old-hash",
    nowMs: clock(),
  });
  const stamp = { ctx: CTX, nowMs: clock() };

  await t.step(
    "a password change against a stale hash changes nothing and records nothing",
    async () => {
      assert.equal(await updatePasswordHash(kv, user.id, "stale", "new", clock(), stamp), false);
      assert.deepEqual(await eventsOf(kv, user.id), []);
    },
  );

  await t.step("eight resets with one token: one succeeds, one user.password_reset", async () => {
    const issued = await issuePasswordReset(kv, user.id, clock());
    assert.ok(issued);
    const results = await Promise.all(
      Array.from(
        { length: 8 },
        (_, i) => consumePasswordReset(kv, issued.token, `hash-${i}`, clock(), stamp),
      ),
    );
    assert.equal(results.filter((r) => r !== null).length, 1);
    const events = (await eventsOf(kv, user.id)).filter((e) => e.action === "user.password_reset");
    assert.equal(events.length, 1);
  });
});
