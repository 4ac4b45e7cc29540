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
 */
import type { DomainNamePointer, DomainRecord } from "./domains/store.ts";
import { domainKey } from "./keys.ts";

export type MigrationReport = { counters: number; pointers: number; scanned: number };

export async function migrateStore(kv: Deno.Kv): Promise<MigrationReport> {
  const report: MigrationReport = { counters: 0, pointers: 0, scanned: 0 };
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
    }
  }
  return report;
}
