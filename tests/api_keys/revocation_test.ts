/**
 * The one revocation helper: every revoking write bumps the cross-process counter in its own
 * commit and, only once that commit succeeded, tells this process's verifiers, which drop what
 * was revoked before the next request.
 */
import assert from "node:assert/strict";
import { ApiKeyVerifier } from "../../auth/api_keys/verifier.ts";
import { fakeClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import { revocationCounterKey } from "../../store/keys.ts";
import { commitRevocation, RevocationHub, type Revoked } from "../../store/revocation.ts";
import { setUserStatus } from "../../store/accounts/users.ts";
import { createAccountWithKey } from "../_helpers.ts";

async function counter(kv: Deno.Kv): Promise<bigint> {
  return (await kv.get<Deno.KvU64>(revocationCounterKey())).value?.value ?? 0n;
}

Deno.test("a revocation bumps the counter in its commit and notifies only after it succeeded", async (t) => {
  await using kv = await Deno.openKv(":memory:");
  const hub = new RevocationHub();
  const seen: Revoked[] = [];
  hub.subscribe((r) => seen.push(r));

  await t.step("a committed revocation", async () => {
    const op = kv.atomic().set(["x"], 1);
    const res = await commitRevocation(op, { kind: "api_key", hash: "h1" }, hub);
    assert.equal(res.ok, true);
    assert.equal(await counter(kv), 1n);
    assert.equal((await kv.get(["x"])).value, 1);
    assert.deepEqual(seen, [{ kind: "api_key", hash: "h1" }]);
  });

  await t.step("a commit whose check failed revokes nothing and tells no one", async () => {
    const op = kv.atomic().check({ key: ["x"], versionstamp: null }).set(["x"], 2);
    const res = await commitRevocation(op, { kind: "account", userId: "usr_a" }, hub);
    assert.equal(res.ok, false);
    assert.equal(await counter(kv), 1n);
    assert.equal(seen.length, 1);
  });

  await t.step("a listener that throws does not keep the others from hearing", async () => {
    const other: Revoked[] = [];
    const off = hub.subscribe(() => {
      throw new Error("boom");
    });
    hub.subscribe((r) => other.push(r));
    await commitRevocation(kv.atomic(), { kind: "api_key", hash: "h2" }, hub);
    off();
    assert.deepEqual(other, [{ kind: "api_key", hash: "h2" }]);
    assert.equal(seen.length, 2);
  });
});

Deno.test("suspension drops the account's cached keys in this process at once, and reactivation again", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const hub = new RevocationHub();
  const verifier = new ApiKeyVerifier(kv, clock, silentLogger, { revocations: hub });
  try {
    const a = await createAccountWithKey(kv, clock);
    const b = await createAccountWithKey(kv, clock);
    assert.equal((await verifier.verify(a.key)).kind, "ok");
    assert.equal((await verifier.verify(b.key)).kind, "ok");
    // Cached: answered synchronously, with the same (frozen) outcome every time.
    const hit = verifier.verify(a.key);
    assert.ok(!(hit instanceof Promise));
    assert.equal(verifier.verify(a.key), hit);
    assert.ok(Object.isFrozen(hit));

    await setUserStatus(kv, a.userId, "suspended", hub);
    // The clock stands still, so no counter poll can have run: only the hub's notice did this.
    assert.deepEqual(await verifier.verify(a.key), { kind: "suspended", userId: a.userId });
    assert.ok(!(verifier.verify(b.key) instanceof Promise), "another account stays cached");

    await setUserStatus(kv, a.userId, "active", hub);
    const back = await verifier.verify(a.key);
    assert.equal(back.kind, "ok");
  } finally {
    await verifier.idle();
  }
});

Deno.test("an unknown, malformed or expired key is invalid", async () => {
  await using kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const verifier = new ApiKeyVerifier(kv, clock, silentLogger, {
    revocations: new RevocationHub(),
  });
  try {
    const a = await createAccountWithKey(kv, clock, { expiresInDays: 1 });
    assert.deepEqual(verifier.verify("inb_short"), { kind: "invalid" });
    assert.deepEqual(await verifier.verify("x".repeat(a.key.length)), { kind: "invalid" });
    assert.equal((await verifier.verify(a.key)).kind, "ok");
    clock.advance(86_400_000);
    assert.deepEqual(await verifier.verify(a.key), { kind: "invalid" });
  } finally {
    await verifier.idle();
  }
});
