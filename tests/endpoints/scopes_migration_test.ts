/**
 * Issue 23's rule for existing keys, without an upgrade window: the new scopes joined
 * DEFAULT_SCOPES, the grant of a key created now without `scopes`, which is written out in its
 * record and its pointer. A key stored before (a pointer without a grant; a record with the old
 * default domains:read and domains:write, or with no scopes at all) holds LEGACY_DEFAULT_SCOPES,
 * what it could do then, with or without `admin migrate` (now a no-op for such keys).
 *
 * (The rule changed: until this follow-up a pointer without a grant meant the new six-scope
 * default until `admin migrate` pinned it, and a key from before scopes existed gained the new
 * scopes. Neither is widened now.)
 */
import assert from "node:assert/strict";
import { verifyStore } from "../../admin/verify.ts";
import { DEFAULT_SCOPES } from "../../lib/scopes.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { apiKeyHashIndexKey, apiKeyKey } from "../../store/keys.ts";
import { migrateStore } from "../../store/migrate.ts";
import { bearer, createAccountWithKey, makeTestApp } from "../_helpers.ts";

type Pointer = { grant?: { scopes: string[] } };

Deno.test("keys stored before issue 23 keep the old default; new keys get the new one", async (t) => {
  const ctx = await makeTestApp();
  try {
    const pinned = await createAccountWithKey(ctx.kv, ctx.clock);
    const legacy = await createAccountWithKey(ctx.kv, ctx.clock);
    const fresh = await createAccountWithKey(ctx.kv, ctx.clock);
    /** Rewrites a key's record and pointer as an older version stored them. */
    const storeAsBefore = async (
      a: { userId: string; keyId: string; key: string },
      scopes: string[] | null,
    ) => {
      const recordKey = apiKeyKey(a.userId, a.keyId);
      const record = (await ctx.kv.get<Record<string, unknown>>(recordKey)).value!;
      const grantFields = ["scopes", "domainIds", "allowedIps", "rateLimit", "disabled"];
      const old = Object.fromEntries(
        Object.entries(record).filter(([k]) => !grantFields.includes(k)),
      );
      const written = scopes === null ? old : {
        ...old,
        scopes,
        domainIds: null,
        allowedIps: null,
        rateLimit: null,
        disabled: false,
      };
      await ctx.kv.atomic()
        .set(recordKey, written)
        .set(apiKeyHashIndexKey(sha256Hex(a.key)), {
          userId: a.userId,
          keyId: a.keyId,
          expiresAt: null,
        })
        .commit();
    };
    // What an explicit ["domains:read", "domains:write"] (or no scopes) stored before issue 23.
    await storeAsBefore(pinned, ["domains:read", "domains:write"]);
    // A key from before scopes existed.
    await storeAsBefore(legacy, null);

    const status = async (key: string, path: string) => {
      const res = await ctx.app.request(path, bearer(key));
      const body = res.status === 403 ? await res.json() : (await res.body?.cancel(), null);
      return body ? `${res.status} ${body.code}` : String(res.status);
    };

    await t.step("a pointer without a grant reads domains and nothing new", async () => {
      for (const k of [pinned, legacy]) {
        assert.equal(await status(k.key, "/api/e2/domains"), "200");
        assert.equal(await status(k.key, "/api/e2/endpoints"), "403 INSUFFICIENT_SCOPE");
        assert.equal(await status(k.key, "/api/e2/email-addresses"), "403 INSUFFICIENT_SCOPE");
        assert.equal(await status(k.key, "/api/e2/audit-log"), "403 INSUFFICIENT_SCOPE");
      }
    });

    await t.step("a key created now without scopes has its grant in its pointer", async () => {
      const pointer = await ctx.kv.get<Pointer>(apiKeyHashIndexKey(sha256Hex(fresh.key)));
      assert.deepEqual(pointer.value?.grant?.scopes, [...DEFAULT_SCOPES]);
      assert.equal(await status(fresh.key, "/api/e2/endpoints"), "200");
      assert.equal(await status(fresh.key, "/api/e2/email-addresses"), "200");
      assert.equal(await status(fresh.key, "/api/e2/domains"), "200");
      assert.equal(await status(fresh.key, "/api/e2/audit-log"), "403 INSUFFICIENT_SCOPE");
    });

    await t.step("admin verify finds every record and pointer in agreement", async () => {
      const report = await verifyStore(ctx.kv);
      assert.deepEqual(report.violations, []);
      assert.equal(report.ok, true);
    });

    await t.step("admin migrate changes none of these keys", async () => {
      assert.equal((await migrateStore(ctx.kv)).grants, 0);
      const pointer = await ctx.kv.get<Pointer>(apiKeyHashIndexKey(sha256Hex(pinned.key)));
      assert.equal(pointer.value?.grant, undefined, "the old pointer stays as it was");
      // A fresh app: no cached grant.
      const again = await makeTestApp({ kv: ctx.kv, clock: ctx.clock });
      try {
        const res = await again.app.request("/api/e2/endpoints", bearer(legacy.key));
        assert.equal(res.status, 403);
        assert.equal((await res.json()).code, "INSUFFICIENT_SCOPE");
      } finally {
        await again.app.idle();
      }
    });

    await t.step("migrate pins a grantless pointer whose record says more", async () => {
      // A key created by issue 23's first build with the six-scope default: record with the
      // scopes, pointer without a grant. Verify reports the disagreement; migrate repairs it.
      const window = await createAccountWithKey(ctx.kv, ctx.clock);
      await storeAsBefore(window, [...DEFAULT_SCOPES]);
      const before = await verifyStore(ctx.kv);
      assert.equal(before.ok, false);
      assert.match(before.violations[0].detail, /index grant/);
      assert.equal((await migrateStore(ctx.kv)).grants, 1);
      assert.equal((await verifyStore(ctx.kv)).ok, true);
    });
  } finally {
    await ctx.close();
  }
});
