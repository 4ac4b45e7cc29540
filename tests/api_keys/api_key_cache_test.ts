/**
 * The verified-key cache: hits skip KV, expiry is still checked on every request, a revocation
 * is honoured at once by the process that made it and within 1 s by another process sharing the
 * KV (two verifiers on one KV stand in for two processes; the clock is fake).
 */
import assert from "node:assert/strict";
import { ApiKeyVerifier, FRESH_MS } from "../../auth/api_keys/verifier.ts";
import { rollApiKey } from "../../auth/api_keys/issue.ts";
import { fakeClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import { apiKeyStore } from "../../store/api_keys.ts";
import { RevocationHub } from "../../store/revocation.ts";
import { createAccountWithKey } from "../_helpers.ts";
import { recordingKv } from "../_recording_kv.ts";

const isPointerRead = (key: Deno.KvKey) => key[0] === "idx" && key[1] === "api_key";

/** The principal a key verifies to, or null when it is refused (invalid or suspended). */
async function verified(v: ApiKeyVerifier, key: string) {
  const outcome = await v.verify(key);
  return outcome.kind === "ok" ? outcome.principal : null;
}

async function setup() {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const recording = recordingKv(kv);
  const account = await createAccountWithKey(kv, clock, { expiresInDays: 1 });
  // Each verifier stands for a process: it and that process's stores share a revocation hub.
  const hub = new RevocationHub();
  const verifier = new ApiKeyVerifier(recording.kv, clock, silentLogger, { revocations: hub });
  return {
    kv,
    clock,
    account,
    verifier,
    hub,
    pointerReads: () =>
      recording.accesses.filter((a) =>
        (a.op === "get" || a.op === "getMany") && isPointerRead(a.key)
      ).length,
    /** The account's key store, as a route in the process of hub `h` uses it. */
    keysOf: (h: RevocationHub) =>
      apiKeyStore(kv, account.userId, clock, { maxKeys: 50, revocations: h }),
    async close() {
      await verifier.idle();
      kv.close();
    },
  };
}

Deno.test("a verified key is served from the cache without reading its pointer again", async () => {
  const s = await setup();
  try {
    assert.equal((await verified(s.verifier, s.account.key))?.userId, s.account.userId);
    const reads = s.pointerReads();
    for (let i = 0; i < 5; i++) {
      assert.equal((await verified(s.verifier, s.account.key))?.keyId, s.account.keyId);
    }
    assert.equal(s.pointerReads(), reads);
  } finally {
    await s.close();
  }
});

Deno.test("a cached key's expiry is checked against the clock on every request", async () => {
  const s = await setup();
  try {
    assert.ok(await verified(s.verifier, s.account.key));
    s.clock.advance(86_400_000);
    assert.equal(await verified(s.verifier, s.account.key), null);
  } finally {
    await s.close();
  }
});

Deno.test("the process that deletes a key refuses it on the next request", async () => {
  const s = await setup();
  try {
    assert.ok(await verified(s.verifier, s.account.key));
    await s.keysOf(s.hub).delete(s.account.keyId);
    assert.equal(await verified(s.verifier, s.account.key), null, "same instant, no poll needed");
  } finally {
    await s.close();
  }
});

Deno.test("a roll's shortened grace period applies at once to the cached old key", async () => {
  const s = await setup();
  try {
    assert.ok(await verified(s.verifier, s.account.key));
    const rolled = await rollApiKey(s.keysOf(s.hub), s.account.keyId, 1000);
    assert.ok(await verified(s.verifier, s.account.key), "within the grace period");
    s.clock.advance(1000);
    assert.equal(await verified(s.verifier, s.account.key), null);
    assert.ok(await verified(s.verifier, rolled.key));
  } finally {
    await s.close();
  }
});

Deno.test("another process's revocation is honoured within 1 second", async (t) => {
  const s = await setup();
  const otherHub = new RevocationHub();
  const other = new ApiKeyVerifier(s.kv, s.clock, silentLogger, { revocations: otherHub });
  try {
    await t.step("both processes have the key cached", async () => {
      assert.ok(await verified(s.verifier, s.account.key));
      assert.ok(await verified(other, s.account.key));
    });
    await t.step("the other process deletes it and refuses it at once", async () => {
      await s.keysOf(otherHub).delete(s.account.keyId);
      assert.equal(await verified(other, s.account.key), null);
    });
    await t.step("this process refuses it once its cache is older than the bound", async () => {
      s.clock.advance(FRESH_MS);
      assert.ok(FRESH_MS < 1000);
      assert.equal(await verified(s.verifier, s.account.key), null);
    });
    await t.step("and 1 second after the revocation in any case", async () => {
      s.clock.advance(1000 - FRESH_MS);
      assert.equal(await verified(s.verifier, s.account.key), null);
    });
  } finally {
    await other.idle();
    await s.close();
  }
});

Deno.test("a lookup that raced a revocation does not put the revoked key back in the cache", async () => {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const account = await createAccountWithKey(kv, clock);
  // The first pointer read waits at a gate, so the revocation commits while it is in flight.
  const atGate = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  let gated = true;
  const gate = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop !== "get" && prop !== "getMany") {
        return typeof value === "function" ? value.bind(target) : value;
      }
      // The pointer is read with `get` or, with the revocation counter, `getMany` (issue 24).
      return async (
        key: Deno.KvKey | Deno.KvKey[],
        opts?: { consistency?: Deno.KvConsistencyLevel },
      ) => {
        const many = prop === "getMany";
        const keys = many ? key as Deno.KvKey[] : [key as Deno.KvKey];
        const entries = many ? await target.getMany(keys, opts) : [await target.get(keys[0])];
        if (gated && keys.some(isPointerRead)) {
          gated = false;
          atGate.resolve();
          await release.promise;
        }
        return many ? entries : entries[0];
      };
    },
  });
  const hub = new RevocationHub();
  const verifier = new ApiKeyVerifier(gate, clock, silentLogger, { revocations: hub });
  try {
    const racing = verifier.verify(account.key); // reads the pointer before the delete...
    await atGate.promise;
    const keys = apiKeyStore(kv, account.userId, clock, { maxKeys: 50, revocations: hub });
    await keys.delete(account.keyId);
    release.resolve(); // ...and answers after it
    assert.equal(
      (await racing).kind,
      "ok",
      "the racing request itself was concurrent with the revocation",
    );
    assert.equal(await verified(verifier, account.key), null);
  } finally {
    await verifier.idle();
    kv.close();
  }
});
