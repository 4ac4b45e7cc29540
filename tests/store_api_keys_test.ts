import assert from "node:assert/strict";
import { issueApiKey, rollApiKey } from "../auth/issue_api_key.ts";
import { fakeClock } from "../lib/clock.ts";
import { sha256Hex } from "../lib/sha256.ts";
import { ApiKeyLimitError, lookupApiKeyPointer } from "../store/api_keys.ts";
import { apiKeyHashIndexKey } from "../store/keys.ts";
import { tenantStore } from "../store/tenant.ts";

async function setup(maxApiKeys = 50) {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 5, 1));
  const revoked: string[] = [];
  const store = tenantStore(kv, "usr_test", clock, {
    maxApiKeys,
    onRevoke: (hash) => revoked.push(hash),
  });
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
    assert.deepEqual(pointer.value, { userId: "usr_test", keyId: record.id, expiresAt: null });
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
