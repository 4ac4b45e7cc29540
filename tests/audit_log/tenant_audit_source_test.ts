/**
 * A request's audit context is made only when the request records an event: a read-only request
 * (the hot path) never builds it, and a request that writes builds it once.
 */
import assert from "node:assert/strict";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { fakeClock } from "../../lib/clock.ts";
import type { AuditContext, AuditEvent } from "../../store/audit_log/events.ts";
import { auditPrefix } from "../../store/keys.ts";
import { RevocationHub } from "../../store/revocation.ts";
import { tenantStore } from "../../store/tenant.ts";

Deno.test("a tenant store given an audit function calls it only for its first recorded event", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 10, 30));
  let made = 0;
  const ctx: AuditContext = {
    actor: { type: "session", id: "ses_1" },
    ip: "203.0.113.5",
    userAgent: "test",
  };
  const store = tenantStore(kv, "usr_audit", clock, {
    maxApiKeys: 10,
    revocations: new RevocationHub(),
    audit: () => {
      made++;
      return ctx;
    },
  });

  await store.domains.list({}, { limit: 10, offset: 0 });
  await store.apiKeys.list();
  assert.equal(made, 0, "reads record nothing, so the context is never made");

  const first = await issueApiKey(store.apiKeys, { name: "one", nowMs: clock() });
  await issueApiKey(store.apiKeys, { name: "two", nowMs: clock() });
  await store.apiKeys.delete(first.record.id);
  assert.equal(made, 1, "three events, one context");

  const events = (await Array.fromAsync(kv.list<AuditEvent>({ prefix: auditPrefix("usr_audit") })))
    .map((e) => e.value);
  assert.deepEqual(
    events.map((e) => e.action).sort(),
    ["api_key.created", "api_key.created", "api_key.deleted"],
  );
  for (const e of events) {
    assert.deepEqual(e.actor, ctx.actor);
    assert.equal(e.ip, ctx.ip);
    assert.equal(e.userAgent, ctx.userAgent);
  }
});
