import assert from "node:assert/strict";
import { issueApiKey, rollApiKey } from "../../auth/api_keys/issue.ts";
import { fakeClock } from "../../lib/clock.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import {
  ApiKeyLimitError,
  ApiKeyNotRollableError,
  apiKeyView,
  DEFAULT_GRANT,
  lookupApiKeyPointer,
} from "../../store/api_keys.ts";
import { apiKeyHashIndexKey } from "../../store/keys.ts";
import { RevocationHub } from "../../store/revocation.ts";
import { tenantStore } from "../../store/tenant.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

async function setup(maxApiKeys = 50) {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 5, 1));
  const revoked: string[] = [];
  const revocations = new RevocationHub();
  revocations.subscribe((r) => {
    if (r.kind === "api_key") revoked.push(r.hash);
  });
  const store = tenantStore(kv, "usr_test", clock, { maxApiKeys, revocations });
  return { kv, clock, store, revoked };
}

Deno.test("a created key is stored only as its digest, with a pointer that resolves to it", async () => {
  const { kv, store } = await setup();
  try {
    const { key, record } = await issueApiKey(store.apiKeys, { name: "ci", nowMs: 0 });
    assert.equal(record.hash, sha256Hex(key));
    const dump = JSON.stringify(
      await Array.fromAsync(kv.list({ prefix: [] })),
      (_k, v) => typeof v === "bigint" ? v.toString() : v,
    );
    assert.ok(!dump.includes(key), "the plaintext key is nowhere in KV");
    const pointer = await lookupApiKeyPointer(kv, record.hash);
    // Issue 23: the grant is spelled out (a pointer without one means the legacy default).
    assert.deepEqual(pointer.value, {
      userId: "usr_test",
      keyId: record.id,
      expiresAt: null,
      grant: { ...DEFAULT_GRANT, scopes: [...DEFAULT_GRANT.scopes] },
    });
    assert.equal(await store.apiKeys.count(), 1);
  } finally {
    kv.close();
  }
});

Deno.test("concurrent creates never exceed the per-account cap or miscount", async () => {
  const { kv, store } = await setup(5);
  try {
    const results = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => issueApiKey(store.apiKeys, { name: `k${i}`, nowMs: 0 })),
    );
    const created = results.filter((r) => r.status === "fulfilled").length;
    const refused = results.filter((r) =>
      r.status === "rejected" && r.reason instanceof ApiKeyLimitError
    ).length;
    assert.equal(created, 5);
    assert.equal(refused, 7);
    assert.equal(await store.apiKeys.count(), 5);
    assert.equal((await store.apiKeys.list()).length, 5);
  } finally {
    kv.close();
  }
});

Deno.test("deleting a key removes record and pointer together and reports the revocation", async () => {
  const { kv, store, revoked } = await setup();
  try {
    const { record } = await issueApiKey(store.apiKeys, { name: "old", nowMs: 0 });
    await store.apiKeys.delete(record.id);
    assert.equal((await kv.get(apiKeyHashIndexKey(record.hash))).versionstamp, null);
    await assert.rejects(() => store.apiKeys.get(record.id), Deno.errors.NotFound);
    await assert.rejects(() => store.apiKeys.delete(record.id), Deno.errors.NotFound);
    assert.equal(await store.apiKeys.count(), 0);
    assert.deepEqual(revoked, [record.hash]);
  } finally {
    kv.close();
  }
});

Deno.test("rolling a key issues a replacement and keeps the old one only for the grace period", async () => {
  const { kv, clock, store } = await setup();
  try {
    const { record } = await issueApiKey(store.apiKeys, { name: "prod", nowMs: clock() });
    const rolled = await rollApiKey(store.apiKeys, record.id, 3_600_000);
    assert.equal(rolled.record.name, "prod");
    assert.notEqual(rolled.record.id, record.id);
    assert.equal(rolled.old.expiresAt, new Date(clock() + 3_600_000).toISOString());
    const oldPointer = await lookupApiKeyPointer(kv, record.hash);
    assert.equal(oldPointer.value?.expiresAt, clock() + 3_600_000);
    assert.equal(await store.apiKeys.count(), 2);

    const now = await rollApiKey(store.apiKeys, rolled.record.id, 0);
    assert.equal((await lookupApiKeyPointer(kv, rolled.record.hash)).value, null);
    assert.ok((await lookupApiKeyPointer(kv, now.record.hash)).value);
    assert.equal(await store.apiKeys.count(), 2);
  } finally {
    kv.close();
  }
});

Deno.test("a roll's replacement lives the old key's own lifetime from the roll, never its grace deadline", async (t) => {
  const { kv, clock, store, revoked } = await setup();
  try {
    const { record } = await issueApiKey(store.apiKeys, {
      name: "prod",
      expiresInDays: 30,
      nowMs: clock(),
    });
    clock.advance(5 * DAY);
    const first = await rollApiKey(store.apiKeys, record.id, HOUR);
    await t.step("the replacement expires 30 days after the roll", () => {
      assert.equal(first.record.expiresAt, new Date(clock() + 30 * DAY).toISOString());
      assert.equal(first.old.expiresAt, new Date(clock() + HOUR).toISOString());
      assert.deepEqual(revoked, [record.hash]);
    });
    await t.step("the replacement's replacement too, not 1 hour", async () => {
      clock.advance(DAY);
      const second = await rollApiKey(store.apiKeys, first.record.id, HOUR);
      assert.equal(second.record.expiresAt, new Date(clock() + 30 * DAY).toISOString());
      const pointer = await lookupApiKeyPointer(kv, second.record.hash);
      assert.equal(pointer.value?.expiresAt, clock() + 30 * DAY);
    });
    await t.step("an explicit lifetime wins, null meaning never", async () => {
      const k = await issueApiKey(store.apiKeys, { name: "k", expiresInDays: 7, nowMs: clock() });
      const r = await rollApiKey(store.apiKeys, k.record.id, 0, { expiresInDays: 365 });
      assert.equal(r.record.expiresAt, new Date(clock() + 365 * DAY).toISOString());
      const never = await rollApiKey(store.apiKeys, r.record.id, 0, { expiresInDays: null });
      assert.equal(never.record.expiresAt, null);
    });
    await t.step("the grace marker never leaves the store", async () => {
      const old = await store.apiKeys.get(first.record.id);
      assert.equal(typeof old.replacedBy, "string");
      assert.equal("replacedBy" in apiKeyView(old), false);
    });
  } finally {
    kv.close();
  }
});

Deno.test("an expired key, or one in its grace period, cannot be rolled and nothing is written", async (t) => {
  const { kv, clock, store, revoked } = await setup();
  try {
    await t.step("expired", async () => {
      const { record } = await issueApiKey(store.apiKeys, {
        name: "old",
        expiresInDays: 1,
        nowMs: clock(),
      });
      clock.advance(DAY);
      const count = await store.apiKeys.count();
      await assert.rejects(
        () => rollApiKey(store.apiKeys, record.id, HOUR),
        (err) => err instanceof ApiKeyNotRollableError && err.reason === "expired",
      );
      assert.equal(await store.apiKeys.count(), count);
      assert.deepEqual(revoked, []);
    });
    await t.step("in its grace period", async () => {
      const { record } = await issueApiKey(store.apiKeys, { name: "g", nowMs: clock() });
      await rollApiKey(store.apiKeys, record.id, DAY);
      const before = await store.apiKeys.get(record.id);
      const count = await store.apiKeys.count();
      await assert.rejects(
        () => rollApiKey(store.apiKeys, record.id, 0),
        (err) => err instanceof ApiKeyNotRollableError && err.reason === "rolled",
      );
      assert.deepEqual(await store.apiKeys.get(record.id), before);
      assert.equal(await store.apiKeys.count(), count);
      assert.ok((await lookupApiKeyPointer(kv, record.hash)).value, "still in its grace period");
    });
  } finally {
    kv.close();
  }
});
