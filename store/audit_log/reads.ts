/**
 * Reading the audit log (written only by store/audit_log/events.ts `appendAudit`, in the commit of the
 * change each event records). Newest first is a reverse range read of [userId, "audit"]; a page
 * ends with an opaque cursor naming the last key it read, and the next page reads strictly below
 * it, so events written meanwhile never shift a page. Retention is checked here, on read: an
 * event older than AUDIT_RETENTION_DAYS (or past the expiry it was written with) is never
 * returned, whether or not KV has dropped it yet. Nothing here changes or deletes an event.
 */
import { decodeBase64Url } from "hono/utils/encode";
import type { Clock } from "../../lib/clock.ts";
import { base64Url } from "../../lib/crypto.ts";
import {
  AUDIT_ACTIONS,
  type AuditAction,
  type AuditEvent,
  DEFAULT_AUDIT_RETENTION_DAYS,
} from "./events.ts";
import { auditEventKey, auditPrefix } from "../keys.ts";

const DAY_MS = 24 * 60 * 60 * 1000;

/** A page scans at most this many events (an `action` filter may skip most of them). */
export const AUDIT_SCAN_LIMIT = 2000;

export const AUDIT_PAGE_MAX = 100;

/** What the API returns: the stored event without its internal expiry. */
export type AuditEventView = Omit<AuditEvent, "expiresAtMs">;

export function auditEventView(e: AuditEvent): AuditEventView {
  const { expiresAtMs: _expiresAtMs, ...view } = e;
  return view;
}

export function isAuditAction(value: unknown): value is AuditAction {
  return typeof value === "string" && (AUDIT_ACTIONS as readonly string[]).includes(value);
}

/**
 * `targetId`: only events about that one thing (a key's detail page shows its own events); like
 * `action`, it filters what a page scans, so it shares AUDIT_SCAN_LIMIT.
 */
export type AuditFilter = { action?: AuditAction; sinceMs?: number; targetId?: string };

export type AuditPageQuery = AuditFilter & { limit: number; cursor?: string };

export type AuditPage = { data: AuditEventView[]; nextCursor: string | null };

/** A cursor that this server did not make (or that was altered). */
export class InvalidCursorError extends Error {
  constructor() {
    super("cursor is not a cursor this endpoint returned");
    this.name = "InvalidCursorError";
  }
}

type Position = { timeMs: number; id: string };

const EVENT_ID = /^evt_[0-9A-Za-z]{22}$/;
const CURSOR_SHAPE = /^[A-Za-z0-9_-]{1,200}$/;

/** Cursors are ASCII JSON: its UTF-8 bytes are the Latin-1 ones `btoa` encoded before. */
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function encodeAuditCursor(p: Position): string {
  return base64Url(encoder.encode(JSON.stringify(["a1", p.timeMs, p.id])));
}

/** The position a cursor names; InvalidCursorError for anything this server did not make. */
export function decodeAuditCursor(cursor: string): Position {
  if (!CURSOR_SHAPE.test(cursor)) throw new InvalidCursorError();
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(decodeBase64Url(cursor)));
  } catch {
    throw new InvalidCursorError();
  }
  if (
    !Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== "a1" ||
    !Number.isSafeInteger(parsed[1]) || parsed[1] < 0 ||
    typeof parsed[2] !== "string" || !EVENT_ID.test(parsed[2])
  ) {
    throw new InvalidCursorError();
  }
  return { timeMs: parsed[1], id: parsed[2] };
}

export type AuditLogOptions = { retentionDays?: number };

export function auditLogStore(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: AuditLogOptions = {},
) {
  const retentionMs = (opts.retentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS) * DAY_MS;

  /**
   * Events newest first from below `before` (exclusive), at or after the retention bound and
   * `sinceMs`. Yields each scanned entry's position, and its view when it is live and matches.
   */
  async function* scan(
    filter: AuditFilter,
    before: Position | null,
    batchSize: number,
  ): AsyncGenerator<{ at: Position; event: AuditEventView | null }> {
    const nowMs = clock();
    const lowerMs = Math.max(nowMs - retentionMs, filter.sinceMs ?? 0);
    if (before && before.timeMs < lowerMs) return;
    const start = [...auditPrefix(userId), lowerMs] as Deno.KvKey;
    const selector: Deno.KvListSelector = before
      ? { start, end: auditEventKey(userId, before.timeMs, before.id) }
      : { prefix: auditPrefix(userId), start };
    for await (
      const entry of kv.list<AuditEvent>(selector, { reverse: true, batchSize })
    ) {
      const at = { timeMs: Number(entry.key[2]), id: String(entry.key[3]) };
      const e = entry.value;
      const live = e !== null && typeof e === "object" && e.expiresAtMs > nowMs &&
        Date.parse(e.time) >= lowerMs;
      const matches = live && (filter.action === undefined || e.action === filter.action) &&
        (filter.targetId === undefined || e.target?.id === filter.targetId);
      yield { at, event: matches ? auditEventView(e) : null };
    }
  }

  return {
    /**
     * One page, newest first: at most `limit` events; `nextCursor` is null when nothing older
     * is left. A filtered page stops after AUDIT_SCAN_LIMIT entries even if short (its cursor
     * then continues from there).
     */
    async page(q: AuditPageQuery): Promise<AuditPage> {
      const before = q.cursor === undefined ? null : decodeAuditCursor(q.cursor);
      const limit = Math.max(1, Math.min(AUDIT_PAGE_MAX, q.limit));
      const data: AuditEventView[] = [];
      let last: Position | null = null;
      let scanned = 0;
      let more = false;
      const batch = q.action === undefined && q.targetId === undefined ? limit + 1 : 200;
      for await (const { at, event } of scan(q, before, batch)) {
        if (data.length === limit || scanned === AUDIT_SCAN_LIMIT) {
          more = true;
          break;
        }
        scanned++;
        last = at;
        if (event) data.push(event);
      }
      return { data, nextCursor: more && last ? encodeAuditCursor(last) : null };
    },

    /**
     * Every live event matching `filter`, newest first, from below `cursor` if given (exports
     * stream this). Decode the cursor first: a bad one throws when iteration starts.
     */
    async *all(filter: AuditFilter, cursor?: string): AsyncGenerator<AuditEventView> {
      const before = cursor === undefined ? null : decodeAuditCursor(cursor);
      for await (const { event } of scan(filter, before, 500)) {
        if (event) yield event;
      }
    },
  };
}

export type AuditLogStore = ReturnType<typeof auditLogStore>;
