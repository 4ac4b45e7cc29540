/**
 * Attack on issue 24's eventual pointer reads (auth/api_keys/verifier.ts `#readPointer`): on Deno
 * Deploy a read with `consistency: "eventual"` may be answered by a replica that has not yet seen
 * the latest commits. The local file and KV Connect answer every read strongly, so this test wraps
 * the KV in a lagging replica: reads asking for "eventual" are served from a snapshot taken at
 * `sync()`, everything else (strong reads, commits) goes to the primary.
 *
 * The verifier's own contract (its header comment, and tests/api_keys/api_key_cache_test.ts "the
 * process that deletes a key refuses it on the next request"): a revocation committed by this
 * process is honoured by this process at once. A replica still behind that revocation, whose
 * revocation counter equals the last strong poll's, re-admits the revoked key.
 */
import assert from "node:assert/strict";
import { ApiKeyVerifier, FRESH_MS } from "../../auth/api_keys/verifier.ts";
import { fakeClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import { apiKeyStore } from "../../store/api_keys.ts";
import { RevocationHub } from "../../store/revocation.ts";
import { setUserStatus } from "../../store/accounts/users.ts";
import { createAccountWithKey } from "../_helpers.ts";

/** A Deno.Kv whose eventual reads come from a replica that lags until `sync()`. */
async function laggingReplica(primary: Deno.Kv) {
  const replica = await Deno.openKv(":memory:");
  let eventualReads = 0;
  const isEventual = (opts: unknown) =>
    (opts as { consistency?: string } | undefined)?.consistency === "eventual";
  const kv = new Proxy(primary, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== "function") return value;
      if (prop === "get" || prop === "getMany") {
        return (keys: unknown, opts?: unknown) => {
          if (!isEventual(opts)) return value.call(target, keys, opts);
          eventualReads++;
          const read = Reflect.get(replica, prop, replica) as (k: unknown, o: unknown) => unknown;
          return read.call(replica, keys, opts);
        };
      }
      return value.bind(target);
    },
  });
  return {
    kv,
    eventualReads: () => eventualReads,
    /** Copies the primary's whole state into the replica (what the replica has "caught up" to). */
    async sync() {
      for await (const e of replica.list({ prefix: [] })) await replica.delete(e.key);
      for await (const e of primary.list({ prefix: [] })) await replica.set(e.key, e.value);
    },
    close() {
      replica.close();
    },
  };
}

async function setup() {
  const primary = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const account = await createAccountWithKey(primary, clock);
  const replica = await laggingReplica(primary);
  const hub = new RevocationHub();
  const verifier = new ApiKeyVerifier(replica.kv, clock, silentLogger, { revocations: hub });
  /**
   * A cache hit, which starts the background poll, and that poll's end: the next poll is then not
   * due for POLL_INTERVAL_MS (the fake clock does not move), so a request right after reads the
   * pointer without a concurrent strong poll (on a busy server, the common case: a poll every
   * 250 ms, requests in between).
   */
  const polled = async (key: string) => {
    assert.ok(await verified(key));
    await verifier.idle();
  };
  const verified = async (key: string) => {
    const outcome = await verifier.verify(key);
    return outcome.kind === "ok" ? outcome.principal : null;
  };
  return {
    primary,
    clock,
    account,
    replica,
    verifier,
    verified,
    polled,
    hub,
    keys: () => apiKeyStore(primary, account.userId, clock, { maxKeys: 50, revocations: hub }),
    async close() {
      await verifier.idle();
      replica.close();
      primary.close();
    },
  };
}

Deno.test("attack: a lagging replica re-admits a key this process just deleted", async (t) => {
  const s = await setup();
  try {
    await t.step("the key is verified (strong first read) and the replica catches up", async () => {
      assert.ok(await s.verified(s.account.key));
      await s.polled(s.account.key);
      await s.replica.sync();
    });
    await t.step("this process deletes the key", async () => {
      await s.keys().delete(s.account.keyId);
      assert.equal((await s.primary.get(["meta", "revocations"])).value !== null, true);
    });
    await t.step("its next request with the key is refused (same instant)", async () => {
      const before = s.replica.eventualReads();
      const principal = await s.verified(s.account.key);
      // The attack did reach the replica: the pointer was read eventually (else the test would
      // pass for the wrong reason).
      assert.ok(s.replica.eventualReads() > before, "the pointer read went to the replica");
      assert.equal(principal, null, "a key deleted by this process must be refused at once");
    });
  } finally {
    await s.close();
  }
});

Deno.test("attack: a lagging replica re-admits a key this process just disabled", async () => {
  const s = await setup();
  try {
    assert.ok(await s.verified(s.account.key));
    await s.polled(s.account.key);
    await s.replica.sync();
    await s.keys().update(s.account.keyId, { disabled: true });
    assert.equal(await s.verified(s.account.key), null, "disabled keys are refused at once");
  } finally {
    await s.close();
  }
});

Deno.test("attack: a lagging replica restores scopes this process just narrowed", async () => {
  const s = await setup();
  try {
    assert.ok(await s.verified(s.account.key));
    await s.polled(s.account.key);
    await s.replica.sync();
    await s.keys().update(s.account.keyId, { scopes: ["domains:read"] });
    const principal = await s.verified(s.account.key);
    assert.ok(principal, "the key itself is still valid");
    assert.deepEqual(
      principal.access?.scopes,
      ["domains:read"],
      "the narrowed grant applies at once (the replica's pointer has the wider one)",
    );
  } finally {
    await s.close();
  }
});

Deno.test("defended: another process's deletion is refused once the cache bound passes", async () => {
  const s = await setup();
  const otherHub = new RevocationHub();
  try {
    assert.ok(await s.verified(s.account.key));
    await s.replica.sync();
    // Another process (its own hub) deletes the key; the replica still has it.
    await apiKeyStore(s.primary, s.account.userId, s.clock, { maxKeys: 50, revocations: otherHub })
      .delete(s.account.keyId);
    s.clock.advance(FRESH_MS);
    assert.ok(FRESH_MS < 1000);
    assert.equal(await s.verified(s.account.key), null, "refused within 1 s of the deletion");
    // And a replica still behind after the strong poll is not trusted again.
    assert.equal(await s.verified(s.account.key), null);
  } finally {
    await s.close();
  }
});

Deno.test("defended: a lagging replica does not re-admit a key of an account just suspended", async () => {
  const s = await setup();
  try {
    assert.ok(await s.verified(s.account.key));
    await s.polled(s.account.key);
    await s.replica.sync();
    await setUserStatus(s.primary, s.account.userId, "suspended", s.hub);
    const before = s.replica.eventualReads();
    const outcome = await s.verifier.verify(s.account.key);
    assert.ok(s.replica.eventualReads() > before, "the pointer read went to the replica");
    // The account is read strongly after the (stale) pointer: its standing is the primary's.
    assert.equal(outcome.kind, "suspended");
  } finally {
    await s.close();
  }
});
