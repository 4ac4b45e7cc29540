/**
 * Isolation comes from the key layout: while serving an authenticated request, every key the
 * server touches starts with that request's userId or is one of the named pointer indexes.
 */
import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { fakeClock } from "../../lib/clock.ts";
import { testConfig } from "../../lib/config.ts";
import { isPointerIndexKey, revocationCounterKey } from "../../store/keys.ts";
import { recordingKv } from "../_recording_kv.ts";
import { bearer, createAccountWithKey } from "../_helpers.ts";
import { FakeResolver } from "../_domains.ts";
import { BASE, json, signUp, withCookie } from "../sessions_helpers.ts";

/** Keys that belong to no account and carry no account data. */
const OPERATIONAL = [JSON.stringify(revocationCounterKey())];

function isAllowed(key: Deno.KvKey, userId: string): boolean {
  return key[0] === userId || isPointerIndexKey(key) || OPERATIONAL.includes(JSON.stringify(key));
}

Deno.test("every authenticated route touches only its own account's keys and pointer indexes", async (t) => {
  const base = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const { kv, accesses } = recordingKv(base);
  const app = createApp({ kv, clock, config: testConfig(), resolver: new FakeResolver() });
  try {
    const a = await createAccountWithKey(base, clock);
    const b = await createAccountWithKey(base, clock);
    const session = await signUp(app);
    const bDomain = await (await app.request(
      `${BASE}/api/e2/domains`,
      bearer(b.key, json({ domain: "b-owned.example" })),
    )).json();
    // B's request is counted for B's key (routes/usage/recorder.ts): flush it now, not during A's first step.
    await app.idle();

    // Requests by A (Bearer) and by the session account (cookie), in an order where each step's
    // ids come from the one before.
    type Step = { name: string; userId: () => string; run: () => Response | Promise<Response> };
    let domainId = "";
    let keyId = "";
    const asA = (path: string, init: RequestInit = {}) =>
      app.request(`${BASE}${path}`, bearer(a.key, init));
    const asSession = (path: string, init: RequestInit = {}) =>
      app.request(`${BASE}${path}`, withCookie(session.cookie, init));
    const steps: Step[] = [
      { name: "list domains", userId: () => a.userId, run: () => asA("/api/e2/domains") },
      {
        name: "list with filters and a live check",
        userId: () => a.userId,
        run: () => asA("/api/e2/domains?status=pending&canReceive=false&check=true&offset=1"),
      },
      {
        name: "create a domain",
        userId: () => a.userId,
        run: async () => {
          const res = await asA("/api/e2/domains", json({ domain: "a-owned.example" }));
          domainId = (await res.clone().json()).id;
          return res;
        },
      },
      {
        name: "create a domain another account owns",
        userId: () => a.userId,
        run: () => asA("/api/e2/domains", json({ domain: "b-owned.example" })),
      },
      {
        name: "retrieve with a DNS check",
        userId: () => a.userId,
        run: () => asA(`/api/e2/domains/${domainId}?check=true`),
      },
      {
        name: "update a pending domain",
        userId: () => a.userId,
        run: () =>
          asA(`/api/e2/domains/${domainId}`, {
            ...json({ isCatchAllEnabled: true }),
            method: "PATCH",
          }),
      },
      {
        name: "retrieve another account's domain id",
        userId: () => a.userId,
        run: () => asA(`/api/e2/domains/${bDomain.id}`),
      },
      {
        name: "delete another account's domain id",
        userId: () => a.userId,
        run: () => asA(`/api/e2/domains/${bDomain.id}`, { method: "DELETE" }),
      },
      {
        name: "delete a domain",
        userId: () => a.userId,
        run: () => asA(`/api/e2/domains/${domainId}`, { method: "DELETE" }),
      },
      {
        name: "list keys by session",
        userId: () => session.userId,
        run: () => asSession("/api/e2/api-keys"),
      },
      {
        name: "create a key by session",
        userId: () => session.userId,
        run: async () => {
          const res = await asSession("/api/e2/api-keys", json({ name: "iso" }));
          keyId = (await res.clone().json()).id;
          return res;
        },
      },
      {
        name: "roll a key by session",
        userId: () => session.userId,
        run: async () => {
          const res = await asSession(
            `/api/e2/api-keys/${keyId}/roll`,
            json({ expiresInHours: 0 }),
          );
          keyId = (await res.clone().json()).id;
          return res;
        },
      },
      {
        name: "delete another account's key id by session",
        userId: () => session.userId,
        run: () => asSession(`/api/e2/api-keys/${a.keyId}`, { method: "DELETE" }),
      },
      {
        name: "delete a key by session",
        userId: () => session.userId,
        run: () => asSession(`/api/e2/api-keys/${keyId}`, { method: "DELETE" }),
      },
      {
        name: "list domains by session",
        userId: () => session.userId,
        run: () => asSession("/api/e2/domains"),
      },
      {
        name: "revoke the key that made the request",
        userId: () => a.userId,
        run: () => asA("/api/e2/auth/revoke-key", { method: "POST" }),
      },
    ];
    for (const step of steps) {
      await t.step(step.name, async () => {
        accesses.length = 0;
        const res = await step.run();
        await res.body?.cancel();
        await app.idle();
        assert.ok(res.status < 500 && res.status !== 401, `status ${res.status}`);
        assert.ok(accesses.length > 0, "the request touched the store");
        const userId = step.userId();
        const stray = accesses.filter((x) => !isAllowed(x.key, userId));
        assert.deepEqual(stray, []);
        for (const other of [a.userId, b.userId, session.userId].filter((u) => u !== userId)) {
          assert.ok(!accesses.some((x) => x.key[0] === other), "never another account's keys");
        }
      });
    }
    await t.step("the check itself catches a stray key", () => {
      assert.equal(isAllowed([b.userId, "domain", "x"], a.userId), false);
      assert.equal(isAllowed(["throttle", "sign-in:ip", "1.2.3.4", 0], a.userId), false);
    });
  } finally {
    await app.idle();
    base.close();
  }
});
