/**
 * Brings a store written by an earlier version of the server up to the current layout
 * (`deno task admin migrate`). Idempotent: a second run changes nothing, and each change is its
 * own checked commit, so a run cut short is finished by running it again.
 *
 * - Domain counters [u, "count", "domains", f] were plain numbers moved by checked writes; they
 *   are Deno.KvU64 now, moved by `sum` (store/domains/plan.ts), and `sum` refuses a number.
 * - A domain's name pointer ["idx", "domain", name] was claimed at creation; it is now the
 *   verified owner's claim only (store/domains/store.ts I5), so pointers of pending or failed records
 *   are removed, which lets other accounts add and verify those names.
 * - Key pointers without a `grant` (written before issue 23) mean LEGACY_GRANT (domains:read,
 *   domains:write), as a record without grant fields does (store/api_keys.ts `grantOf`), so no
 *   migration is needed for them. A pointer without a grant whose record says otherwise (a key
 *   created by a build between issue 23's first version and this rule) gets its record's grant
 *   written out (`grants`), so it keeps what its record says; on any other store this is a
 *   no-op.
 */
import type { DomainNamePointer, DomainRecord } from "./domains/store.ts";
import { type ApiKeyPointer, type ApiKeyRecord, grantOf, isLegacyGrant } from "./api_keys.ts";
import { apiKeyHashIndexKey, domainKey } from "./keys.ts";

export type MigrationReport = {
  counters: number;
  pointers: number;
  /** Key pointers without a grant given their record's (when it is not LEGACY_GRANT). */
  grants: number;
  scanned: number;
};

export async function migrateStore(kv: Deno.Kv): Promise<MigrationReport> {
  const report: MigrationReport = { counters: 0, pointers: 0, grants: 0, scanned: 0 };
  for await (const e of kv.list({ prefix: [] })) {
    report.scanned++;
    const [root, family, kind] = e.key;
    if (
      typeof root === "string" && root.startsWith("usr_") && family === "count" &&
      kind === "domains" && typeof e.value === "number"
    ) {
      const n = BigInt(Math.max(0, Math.trunc(e.value)));
      const res = await kv.atomic().check(e).set(e.key, new Deno.KvU64(n)).commit();
      if (res.ok) report.counters++;
    } else if (root === "idx" && family === "domain") {
      const p = e.value as DomainNamePointer;
      const record = await kv.get<DomainRecord>(domainKey(p.userId, p.domainId));
      if (record.value?.status === "verified" && record.value.domain === e.key[2]) continue;
      const res = await kv.atomic().check(e).check(record).delete(e.key).commit();
      if (res.ok) report.pointers++;
    } else if (
      typeof root === "string" && root.startsWith("usr_") && family === "api_key" &&
      e.key.length === 3
    ) {
      if (await pinKeyGrant(kv, e as Deno.KvEntry<ApiKeyRecord>)) report.grants++;
    }
  }
  return report;
}

/** Writes a key's grant into its pointer when the pointer has none but the record differs. */
async function pinKeyGrant(kv: Deno.Kv, record: Deno.KvEntry<ApiKeyRecord>): Promise<boolean> {
  const grant = grantOf(record.value);
  if (typeof record.value.hash !== "string" || isLegacyGrant(grant)) return false;
  const pointer = await kv.get<ApiKeyPointer>(apiKeyHashIndexKey(record.value.hash));
  if (!pointer.value || pointer.value.grant) return false;
  const res = await kv.atomic().check(record).check(pointer)
    .set(pointer.key, { ...pointer.value, grant }).commit();
  return res.ok;
}
