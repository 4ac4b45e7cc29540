/**
 * Settings > Security log: the account's audit log (store/audit_log/reads.ts; the API's is
 * routes/audit_log/operations.ts), newest first, in an accessible table, with filters (action, since) in a
 * plain GET form and cursor pagination by links. No script; nothing here changes an event. Keys,
 * sessions and browsers are named as the rest of the dashboard names them (event_names.tsx); on a
 * phone each row is a card whose values carry their column's label (`data-label`).
 */
import type { Context, Hono } from "hono";
import type { AccountService } from "../../auth/accounts/service.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { AUDIT_ACTIONS, type AuditAction } from "../../store/audit_log/events.ts";
import {
  type AuditEventView,
  InvalidCursorError,
  isAuditAction,
} from "../../store/audit_log/reads.ts";
import { formatDate } from "../dashboard/format.ts";
import type { DashboardKit } from "../dashboard/kit.ts";
import { keyNames } from "../dashboard/key_names.tsx";
import { Banner, Layout } from "../dashboard/layout.tsx";
import { Actor, Browser, type EventNames, eventNames, Target } from "./event_names.tsx";

export const SECURITY_LOG_PATH = "/settings/security-log";
export const SECURITY_LOG_PAGE_SIZE = 25;

/** What each action is called on the page. */
const ACTION_LABELS: Record<AuditAction, string> = {
  "api_key.created": "API key created",
  "api_key.updated": "API key updated",
  "api_key.rolled": "API key rolled",
  "api_key.deleted": "API key deleted",
  "api_key.revoked": "API key revoked",
  "api_key.denied": "API key refused",
  "session.created": "Signed in",
  "session.sign_in_failed": "Sign-in failed",
  "session.second_factor_required": "Password accepted, second factor required",
  "session.second_factor_failed": "Second factor failed",
  "session.revoked": "Session ended",
  "user.password_changed": "Password changed",
  "user.password_reset": "Password reset",
  "user.email_verified": "Email address verified",
  "user.two_factor_changed": "Two-factor changed",
  "user.suspended": "Account suspended",
  "user.unsuspended": "Account reactivated",
  "domain.created": "Domain added",
  "domain.verified": "Domain verified",
  "domain.updated": "Domain catch-all changed",
  "domain.deleted": "Domain deleted",
  "endpoint.created": "Endpoint created",
  "endpoint.updated": "Endpoint updated",
  "endpoint.deleted": "Endpoint deleted",
  "endpoint.secret_rolled": "Endpoint signing secret rolled",
  "endpoint.tested": "Endpoint tested",
  "email_address.created": "Email address added",
  "email_address.updated": "Email address updated",
  "email_address.deleted": "Email address deleted",
};

export type SecurityLogPageProps = {
  email: string;
  events: AuditEventView[];
  /** The account's keys and live sessions, to name the events' actors and targets. */
  names: EventNames;
  action: AuditAction | null;
  /** The `since` date as entered (YYYY-MM-DD), or "". */
  since: string;
  /** The cursor of the next (older) page, or null. */
  nextCursor: string | null;
  /** Whether this page was reached with a cursor (then "Newest" leads back). */
  paged: boolean;
  error?: string;
};

/** The page's URL with the current filters and `cursor`. */
export function securityLogHref(
  filters: { action: AuditAction | null; since: string },
  cursor?: string,
): string {
  const q = new URLSearchParams();
  if (filters.action) q.set("action", filters.action);
  if (filters.since) q.set("since", filters.since);
  if (cursor) q.set("cursor", cursor);
  const s = q.toString();
  return s ? `${SECURITY_LOG_PATH}?${s}` : SECURITY_LOG_PATH;
}

/** How a second factor is named on the page (an event's `details.method` / `methods`). */
const FACTOR_NAMES: Record<string, string> = {
  totp: "authenticator code",
  backup_code: "recovery code",
  passkey: "passkey",
};

/** The action's label, with the second factor it concerns when the event names one. */
function actionText(e: AuditEventView): string {
  const label = ACTION_LABELS[e.action] ?? e.action;
  const d = e.details;
  if (e.action === "session.second_factor_failed" && typeof d?.method === "string") {
    return `${label} (${FACTOR_NAMES[d.method] ?? d.method})`;
  }
  if (e.action === "session.second_factor_required" && Array.isArray(d?.methods)) {
    return `${label} (${d.methods.map((m) => FACTOR_NAMES[m] ?? m).join(" or ")})`;
  }
  if (e.action === "domain.updated" && typeof d?.isCatchAllEnabled === "boolean") {
    return `${label} (${d.isCatchAllEnabled ? `on, to ${d.catchAllEndpointId}` : "off"})`;
  }
  return label;
}

function EventRow(props: { e: AuditEventView; names: EventNames; target: boolean }) {
  const { e, names } = props;
  return (
    <tr>
      <td data-label="Time">
        <time datetime={e.time}>{formatDate(e.time)}</time>
      </td>
      <td data-label="Event">
        {actionText(e)}
        <span class="muted">
          {" "}
          <code>{e.action}</code>
        </span>
      </td>
      {props.target
        ? (
          <td data-label="Target">
            <Target e={e} names={names} />
          </td>
        )
        : null}
      <td data-label="By">
        <Actor e={e} names={names} />
      </td>
      <td data-label="Address">{e.ip ?? <span class="muted">—</span>}</td>
      <td data-label="Browser">
        <Browser userAgent={e.userAgent} />
      </td>
      <td data-label="Outcome">
        {e.outcome === "success"
          ? "Success"
          : <strong class="flag">{e.outcome === "denied" ? "Denied" : "Failed"}</strong>}
      </td>
    </tr>
  );
}

/**
 * Security events as a table, newest first: the Security log's, and a key's own page's (without
 * the Target column, which would name the key on every row).
 */
export function EventsTable(
  props: { events: AuditEventView[]; names: EventNames; caption: string; target: boolean },
) {
  return (
    <table class="log">
      <caption class="visually-hidden">{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Event</th>
          {props.target ? <th scope="col">Target</th> : null}
          <th scope="col">By</th>
          <th scope="col">Address</th>
          <th scope="col">Browser</th>
          <th scope="col">Outcome</th>
        </tr>
      </thead>
      <tbody>
        {props.events.map((e) => (
          <EventRow key={e.id} e={e} names={props.names} target={props.target} />
        ))}
      </tbody>
    </table>
  );
}

export function SecurityLogPage(props: SecurityLogPageProps) {
  const filters = { action: props.action, since: props.since };
  return (
    <Layout title="Security log" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">Settings › Security log</nav>
      <h1>Security log</h1>
      <p class="muted">
        Sign-ins (second-factor steps included), ended sessions, password and key changes, and
        domain changes of this account, newest first. Events are kept for a limited time and cannot
        be changed or deleted.
      </p>
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}

      <section class="card" aria-labelledby="filter-title">
        <h2 id="filter-title">Filter</h2>
        <form method="get" action={SECURITY_LOG_PATH}>
          <div class="row">
            <div class="field">
              <label for="log-action">Event</label>
              <select id="log-action" name="action">
                <option value="" selected={props.action === null}>All events</option>
                {AUDIT_ACTIONS.map((a) => (
                  <option key={a} value={a} selected={props.action === a}>
                    {ACTION_LABELS[a]}
                  </option>
                ))}
              </select>
            </div>
            <div class="field">
              <label for="log-since">Since</label>
              <input id="log-since" name="since" type="date" value={props.since} />
            </div>
            <div class="field">
              <button type="submit">Apply</button>
            </div>
          </div>
        </form>
      </section>

      <section class="card" aria-labelledby="events-title">
        <h2 id="events-title">Events</h2>
        {props.events.length === 0
          ? <p class="muted">No events{props.action || props.since ? " match" : " yet"}.</p>
          : (
            <EventsTable
              events={props.events}
              names={props.names}
              caption="Security events, newest first"
              target
            />
          )}
        {props.paged || props.nextCursor
          ? (
            <nav class="pager" aria-label="Pages">
              {props.paged ? <a href={securityLogHref(filters)}>← Newest</a> : <span></span>}
              {props.nextCursor
                ? <a href={securityLogHref(filters, props.nextCursor)}>Older events →</a>
                : <span></span>}
            </nav>
          )
          : null}
      </section>
    </Layout>
  );
}

// --- Routes ----------------------------------------------------------------------------------

export type AuditLogPagesDeps = {
  kit: DashboardKit;
  /** The account's live sessions, to name the sessions the events concern. */
  accounts: Pick<AccountService, "listSessions">;
};

/** Registers Settings > Security log (after the session middleware). */
export function registerAuditLogPages(app: Hono<AppEnv>, deps: AuditLogPagesDeps): void {
  app.get(SECURITY_LOG_PATH, (c) => securityLog(c, deps));
}

/**
 * One page of events. Filters that do not parse are dropped with a 400 saying why (the page
 * still shows, unfiltered by them); a cursor that does not parse shows the newest events.
 */
async function securityLog(c: Context<AppEnv>, deps: AuditLogPagesDeps): Promise<Response> {
  const store = c.get("store");
  const rawAction = c.req.query("action") ?? "";
  const rawSince = c.req.query("since") ?? "";
  const cursor = c.req.query("cursor") || undefined;
  const action = isAuditAction(rawAction) ? rawAction : null;
  const sinceOk = /^\d{4}-\d{2}-\d{2}$/.test(rawSince) && !isNaN(Date.parse(rawSince));
  const errors: string[] = [];
  if (rawAction && !action) errors.push("That event type does not exist.");
  if (rawSince && !sinceOk) errors.push("Since must be a date (YYYY-MM-DD).");
  const filter = {
    action: action ?? undefined,
    sinceMs: sinceOk ? Date.parse(rawSince) : undefined,
  };
  let result;
  try {
    result = await store.auditLog.page({ ...filter, limit: SECURITY_LOG_PAGE_SIZE, cursor });
  } catch (err) {
    if (!(err instanceof InvalidCursorError)) throw err;
    errors.push("That page link is not valid; showing the newest events.");
    result = await store.auditLog.page({ ...filter, limit: SECURITY_LOG_PAGE_SIZE });
  }
  const [user, keys, sessions] = await Promise.all([
    store.user(),
    store.apiKeys.list(),
    sessionsOf(c, deps),
  ]);
  return deps.kit.page(
    <SecurityLogPage
      email={user.email}
      events={result.data}
      names={eventNames(keyNames(keys), sessions)}
      action={action}
      since={sinceOk ? rawSince : ""}
      nextCursor={result.nextCursor}
      paged={cursor !== undefined && errors.length === 0}
      error={errors.length ? errors.join(" ") : undefined}
    />,
    errors.length ? 400 : 200,
  );
}

/** The caller's live sessions (a key never reaches the dashboard: then none). */
function sessionsOf(c: Context<AppEnv>, deps: AuditLogPagesDeps) {
  const p = c.get("principal");
  if (p.method !== "session" || !p.sessionId) return Promise.resolve([]);
  return deps.accounts.listSessions({ userId: p.userId, sessionId: p.sessionId });
}
