/**
 * The reads and the audit step that the per-account resource stores (domains, endpoints, e-mail
 * addresses, API keys) share: one definition each of "read these keys in getMany-sized chunks",
 * "every value under a prefix" and "add the audit event of this change to its commit".
 */
import type { Clock } from "../lib/clock.ts";
import {
  appendAudit,
  type AuditAction,
  type AuditContext,
  type AuditEvent,
  type AuditSource,
  type AuditTarget,
  resolveAudit,
} from "./audit_log/events.ts";

/** denokv's most keys in one getMany. */
export const GET_MANY_LIMIT = 10;

/** Entries for `keys` in order, read in chunks of GET_MANY_LIMIT at once (one round trip for <= 10). */
export async function getManyChunked<T>(
  kv: Deno.Kv,
  keys: readonly Deno.KvKey[],
): Promise<Deno.KvEntryMaybe<T>[]> {
  const chunks: Deno.KvKey[][] = [];
  for (let i = 0; i < keys.length; i += GET_MANY_LIMIT) {
    chunks.push(keys.slice(i, i + GET_MANY_LIMIT));
  }
  const got = await Promise.all(chunks.map((c) => kv.getMany<T[]>(c)));
  return got.flat() as Deno.KvEntryMaybe<T>[];
}

/** Every value under `prefix`, in key order (callers bound the range by a quota). */
export async function listValues<T>(kv: Deno.Kv, prefix: Deno.KvKey): Promise<T[]> {
  const out: T[] = [];
  for await (const e of kv.list<T>({ prefix }, { batchSize: 500 })) out.push(e.value);
  return out;
}

/** A store's audit options: the source of the context and the retention (AUDIT_RETENTION_DAYS). */
export type AuditOptions = { audit?: AuditSource; auditRetentionDays?: number };

/** What a store keeps to record its changes: whose they are, its clock, its audit options. */
export type StoreAudit = AuditOptions & { userId: string; clock: Clock };

/**
 * Adds the audit event of a change to the commit that makes it; a no-op when the store has no
 * audit context (and `ctx` gives none). `details` is left out of the event when absent.
 */
export function auditChange(
  op: Deno.AtomicOperation,
  store: StoreAudit,
  action: AuditAction,
  target: AuditTarget,
  details?: AuditEvent["details"],
  ctx: AuditContext | undefined = resolveAudit(store.audit),
): void {
  if (!ctx) return;
  appendAudit(
    op,
    store.userId,
    ctx,
    { action, target, ...(details ? { details } : {}) },
    store.clock(),
    store.auditRetentionDays,
  );
}
