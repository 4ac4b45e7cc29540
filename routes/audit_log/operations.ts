/**
 * `GET /api/e2/audit-log`: the account's security events (store/audit_log/events.ts writes them in the
 * commit of each change), newest first, for a dashboard session or a key with `audit:read`.
 * JSON pages with an opaque cursor, or the whole (filtered) log streamed as JSON Lines or CSV.
 * Read-only: no route changes or deletes an event.
 */
import type { Context } from "hono";
import { z } from "zod";
import { DEFAULT_PAGE_SIZE, pageLimit } from "../query.ts";
import { visibleDomainIds } from "../../auth/api_keys/policy.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { jsonResponse, validationError } from "../../lib/errors.ts";
import { AUDIT_ACTIONS } from "../../store/audit_log/events.ts";
import {
  type AuditEventView,
  type AuditFilter,
  decodeAuditCursor,
  InvalidCursorError,
} from "../../store/audit_log/reads.ts";
import type { RouteRegistry } from "../registry.ts";

export const AUDIT_LOG_PATH = "/api/e2/audit-log";

export const auditLogQuery = z.object({
  limit: pageLimit(),
  cursor: z.string().max(200, "must be at most 200 characters").optional()
    .describe("`pagination.nextCursor` of the previous page; opaque."),
  action: z.enum(AUDIT_ACTIONS).optional().describe("Only events of this action."),
  since: z.iso.datetime({ offset: true, message: "must be an ISO 8601 date-time" }).optional()
    .describe("Only events at or after this time (ISO 8601)."),
  format: z.enum(["json", "jsonl", "csv"]).optional()
    .describe("json (default): one page. jsonl or csv: every matching event, streamed."),
});

const auditEventSchema = z.object({
  id: z.string(),
  time: z.string().describe("ISO 8601"),
  action: z.enum(AUDIT_ACTIONS),
  actor: z.object({ type: z.enum(["session", "api_key", "admin"]), id: z.string() }),
  target: z.object({
    type: z.enum(["api_key", "session", "user", "domain", "endpoint", "email_address"]),
    id: z.string(),
    name: z.string().optional(),
  }),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  outcome: z.enum(["success", "failure", "denied"]),
  details: z.record(
    z.string(),
    z.union([z.string(), z.number(), z.boolean(), z.array(z.string()), z.null()]),
  ).optional(),
});

export const auditLogResponse = z.object({
  data: z.array(auditEventSchema),
  pagination: z.object({
    limit: z.number().int(),
    nextCursor: z.string().nullable().describe(
      "Pass as `cursor` for the next page; null at the end.",
    ),
    hasMore: z.boolean(),
  }),
});

/** The CSV columns, in order. */
export const AUDIT_CSV_COLUMNS = [
  "id",
  "time",
  "action",
  "actor_type",
  "actor_id",
  "target_type",
  "target_id",
  "target_name",
  "ip",
  "user_agent",
  "outcome",
  "details",
] as const;

/**
 * One CSV cell (RFC 4180): quoted when it holds a quote, comma or line break, quotes doubled. A
 * cell a spreadsheet would run as a formula (leading `=`, `+`, `-`, `@`, tab or carriage
 * return: OWASP's CSV injection list) gets a leading `'`, so it is shown as text.
 */
export function csvCell(value: string | null | undefined): string {
  let s = value ?? "";
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function auditCsvRow(e: AuditEventView): string {
  return [
    e.id,
    e.time,
    e.action,
    e.actor.type,
    e.actor.id,
    e.target.type,
    e.target.id,
    e.target.name,
    e.ip,
    e.userAgent,
    e.outcome,
    e.details ? JSON.stringify(e.details) : "",
  ].map(csvCell).join(",") + "\r\n";
}

/** Streams `lines` as the response body, pulling one event at a time from the store. */
function streamed(lines: AsyncGenerator<string>, type: string, filename: string): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await lines.next();
      if (next.done) controller.close();
      else controller.enqueue(enc.encode(next.value));
    },
    async cancel() {
      await lines.return(undefined);
    },
  });
  return new Response(body, {
    headers: {
      "Content-Type": type,
      "Content-Disposition": `attachment; filename="${filename}"`,
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
    },
  });
}

/**
 * An event as a key restricted to the domains `visible` may see it (null: it may not; `visible`
 * null: it sees every domain). Like the API, the log does not tell such a key about the other
 * domains: their domain events (domain.*, whose target is the domain) and their e-mail addresses'
 * events (which name the domain in `details.domainId`, issue 23) are not shown. Endpoints are
 * every key's to see, but an `endpoint.deleted` event counts the addresses and catch-all domains
 * the delete detached: those counts are shown only when the event lists the domains they cover
 * (`details.domainIds`) and the key sees all of them; else they are left out, and `domainIds`
 * keeps only the key's own domains.
 */
export function eventForDomains(
  e: AuditEventView,
  visible: ReadonlySet<string> | null,
): AuditEventView | null {
  if (visible === null) return e;
  if (e.target.type === "domain") return visible.has(e.target.id) ? e : null;
  if (e.target.type === "email_address") {
    return visible.has(String(e.details?.domainId)) ? e : null;
  }
  if (e.target.type !== "endpoint" || e.action !== "endpoint.deleted" || !e.details) return e;
  const ids = e.details.domainIds;
  if (Array.isArray(ids) && ids.every((id) => visible.has(id))) return e;
  const { emailAddressesUpdated: _a, domainsUpdated: _d, domainIds: _i, ...rest } = e.details;
  const own = Array.isArray(ids) ? ids.filter((id) => visible.has(id)) : [];
  return { ...e, details: { ...rest, ...(own.length ? { domainIds: own } : {}) } };
}

function cursorError(): never {
  throw validationError([{
    path: "cursor",
    message: "is not a cursor this endpoint returned",
  }]);
}

export function registerAuditLogRoutes(registry: RouteRegistry): void {
  registry.add({
    method: "get",
    path: AUDIT_LOG_PATH,
    operationId: "listAuditLog",
    scope: "audit:read",
    summary: "List audit-log events",
    description: "The account's security events, newest first: sign-ins (and failed ones), " +
      "sessions revoked, password changes and resets, suspensions, API key and domain changes. " +
      "Each is written in the same commit as the change it records and kept " +
      "AUDIT_RETENTION_DAYS (default 90). A dashboard session, or an API key with the " +
      "`audit:read` scope. `format=jsonl` or `format=csv` streams every matching event " +
      "instead of one page.",
    tags: ["Audit log"],
    query: auditLogQuery,
    responses: {
      200: { description: "One page of events.", schema: auditLogResponse, name: "AuditLogPage" },
    },
    errors: [400, 403],
    handler: async (c: Context<AppEnv>, { query }) => {
      const store = c.get("store");
      // A key restricted to some domains sees no event about the others: like their ids, the
      // log must not tell it they exist (a page may then hold fewer than `limit` events).
      const restrictedTo = visibleDomainIds(c.get("principal"));
      const seen = (e: AuditEventView) => eventForDomains(e, restrictedTo);
      const filter: AuditFilter = {
        action: query.action,
        sinceMs: query.since === undefined ? undefined : Date.parse(query.since),
      };
      if (query.format === "jsonl" || query.format === "csv") {
        if (query.cursor !== undefined) {
          try {
            decodeAuditCursor(query.cursor);
          } catch {
            cursorError();
          }
        }
        const events = store.auditLog.all(filter, query.cursor);
        if (query.format === "jsonl") {
          return streamed(
            (async function* () {
              for await (const e of events) {
                const v = seen(e);
                if (v) yield JSON.stringify(v) + "\n";
              }
            })(),
            "application/x-ndjson; charset=utf-8",
            "audit-log.jsonl",
          );
        }
        return streamed(
          (async function* () {
            yield AUDIT_CSV_COLUMNS.join(",") + "\r\n";
            for await (const e of events) {
              const v = seen(e);
              if (v) yield auditCsvRow(v);
            }
          })(),
          "text/csv; charset=utf-8",
          "audit-log.csv",
        );
      }
      const limit = query.limit ?? DEFAULT_PAGE_SIZE;
      let page;
      try {
        page = await store.auditLog.page({ ...filter, limit, cursor: query.cursor });
      } catch (err) {
        if (err instanceof InvalidCursorError) cursorError();
        throw err;
      }
      return jsonResponse(
        {
          data: page.data.flatMap((e) => seen(e) ?? []),
          pagination: { limit, nextCursor: page.nextCursor, hasMore: page.nextCursor !== null },
        },
        200,
        { "Cache-Control": "no-store" },
      );
    },
  });
}
