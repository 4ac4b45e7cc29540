/**
 * Isolation comes from the key layout: while serving an authenticated request, every key the
 * server touches starts with that request's userId or is one of the named pointer indexes.
 */
import assert from "node:assert/strict";
import { createApp } from "../app.ts";
import { fakeClock } from "../lib/clock.ts";
import { testConfig } from "../lib/config.ts";
import { isPointerIndexKey, revocationCounterKey } from "../store/keys.ts";
import { recordingKv } from "./_recording_kv.ts";
import { bearer, createAccountWithKey } from "./_helpers.ts";

/** Keys that belong to no account and carry no account data. */
const OPERATIONAL = [JSON.stringify(revocationCounterKey())];

function isAllowed(key: Deno.KvKey, userId: string): boolean {
  return key[0] === userId || isPointerIndexKey(key) || OPERATIONAL.includes(JSON.stringify(key));
}

Deno.test("an authenticated request touches only its own account's keys and pointer indexes", async (t) => {
  const base = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const { kv, accesses } = recordingKv(base);
  const app = createApp({ kv, clock, config: testConfig() });
  try {
    const a = await createAccountWithKey(base, clock);
    const b = await createAccountWithKey(base, clock);
    const requests: [string, RequestInit][] = [
      ["/api/e2/domains", bearer(a.key)],
      ["/api/e2/domains?limit=5&offset=2&status=pending", bearer(a.key)],
      ["/api/e2/domains?canReceive=true", bearer(a.key)],
    ];
    for (const [path, init] of requests) {
      await t.step(`${init.method ?? "GET"} ${path}`, async () => {
        accesses.length = 0;
        const res = await app.request(path, init);
        await res.body?.cancel();
        await app.idle();
        assert.ok(res.status < 500, `status ${res.status}`);
        assert.ok(accesses.length > 0, "the request read something");
        const stray = accesses.filter((x) => !isAllowed(x.key, a.userId));
        assert.deepEqual(stray, []);
        assert.ok(!accesses.some((x) => x.key[0] === b.userId), "never B's keys");
      });
    }
  } finally {
    await app.idle();
    base.close();
  }
});
