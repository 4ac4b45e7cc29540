/**
 * Settings > API Keys > one key (issue 22 item 17): what a person asks about a key before
 * trusting, rolling or deleting it, on one page: its settings (prefix, scopes, restrictions,
 * state), when it was created, expires and was last used, and from which address (recorded with
 * lastUsedAt, off the request path: auth/api_keys/verifier.ts), its requests per day
 * (routes/usage, the same reads and chart as Settings > Usage) and its own audit events
 * (store/audit_log/reads.ts, filtered to the key as target).
 *
 * Reads only: every change stays on the keys page's forms, so this page adds no action to secure.
 * It reaches KV only through the session's tenant store; an id of another account (or none) is
 * a 404 like any unknown page.
 */
import type { Context, Hono } from "hono";
import type { AccountService } from "../../auth/accounts/service.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import type { Clock } from "../../lib/clock.ts";
import { HttpError } from "../../lib/errors.ts";
import { type ApiKeyView, apiKeyView } from "../../store/api_keys.ts";
import type { AuditEventView } from "../../store/audit_log/reads.ts";
import type { DayUsage, RuleUsage } from "../../store/usage.ts";
import { type EventNames, eventNames } from "../audit_log/event_names.tsx";
import { EventsTable } from "../audit_log/pages.tsx";
import { formatDate, relative } from "../dashboard/format.ts";
import { keyNames } from "../dashboard/key_names.tsx";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Layout, NotFoundPage } from "../dashboard/layout.tsx";
import { dailyLimit, UsageChart } from "../usage/pages.tsx";
import type { UsageReads } from "../usage/operations.ts";
import { keyIdParam } from "./operations.ts";

const KEYS_PATH = "/settings/api-keys";
/** The chart's period: the keys table's sparkline shows the same 30 days. */
export const KEY_DETAIL_DAYS = 30;
/** The newest events shown; the Security log has them all, with paging. */
export const KEY_DETAIL_EVENTS = 20;

/** The page's address for a key id (the keys table links each name here). */
export function keyDetailHref(id: string): string {
  return `${KEYS_PATH}/${encodeURIComponent(id)}`;
}

export type KeyDetailProps = {
  email: string;
  apiKey: ApiKeyView;
  days: DayUsage[];
  /** Its forward-auth and verify answers by rule over the same days (none: no such traffic). */
  rules?: RuleUsage[];
  /** The account rate limit, drawn against the daily requests as on Settings > Usage. */
  rateLimit: { max: number; windowMs: number };
  events: AuditEventView[];
  names: EventNames;
  nowMs: number;
};

/** A time as a date and "N days ago / in N days"; `none` when there is no time. */
function When(props: { iso: string | null; nowMs: number; none: string }) {
  if (props.iso === null) return <span class="muted">{props.none}</span>;
  return (
    <>
      <time datetime={props.iso}>{formatDate(props.iso)}</time>{" "}
      <span class="muted">({relative(props.iso, props.nowMs)})</span>
    </>
  );
}

function stateOf(k: ApiKeyView, nowMs: number): string {
  if (k.disabled) return "Disabled: it authenticates nothing until enabled again.";
  if (k.expiresAt !== null && Date.parse(k.expiresAt) <= nowMs) return "Expired.";
  return "Active.";
}

/** The key's settings and times, as a definition list (`.record`, as the domain records). */
function Settings(props: { k: ApiKeyView; nowMs: number }) {
  const { k, nowMs } = props;
  return (
    <div class="record">
      <dl>
        <dt>Prefix</dt>
        <dd>
          <code>{k.start}…</code>
        </dd>
        <dt>State</dt>
        <dd>{stateOf(k, nowMs)}</dd>
        <dt>Scopes</dt>
        <dd>
          {k.scopes.map((s, i) => (
            <>
              {i ? ", " : ""}
              <code>{s}</code>
            </>
          ))}
        </dd>
        <dt>Domains</dt>
        <dd>{k.domainIds ? `Only ${k.domainIds.length} chosen` : "All of the account's"}</dd>
        <dt>Addresses</dt>
        <dd>{k.allowedIps ? k.allowedIps.join(", ") : "Any"}</dd>
        <dt>Rate limit</dt>
        <dd>
          {k.rateLimit
            ? `${k.rateLimit.max} requests per ${k.rateLimit.windowMs / 1000} s`
            : "The account's"}
        </dd>
        <dt>Created</dt>
        <dd>
          <When iso={k.createdAt} nowMs={nowMs} none="" />
        </dd>
        <dt>Expires</dt>
        <dd>
          <When iso={k.expiresAt} nowMs={nowMs} none="Never" />
        </dd>
        <dt>Last used</dt>
        <dd>
          <When iso={k.lastUsedAt} nowMs={nowMs} none="Never" />
        </dd>
        <dt>From</dt>
        <dd data-last-used-ip>
          {k.lastUsedIp ?? <span class="muted">{k.lastUsedAt ? "Not recorded" : "—"}</span>}
        </dd>
      </dl>
    </div>
  );
}

function Events(props: { events: AuditEventView[]; names: EventNames }) {
  if (props.events.length === 0) return <p class="empty">No events about this key.</p>;
  return (
    <EventsTable
      events={props.events}
      names={props.names}
      caption="Events about this key, newest first."
      target={false}
    />
  );
}

export function KeyDetailPage(props: KeyDetailProps) {
  const { apiKey: k } = props;
  const total = props.days.reduce((s, d) => s + d.requests, 0);
  return (
    <Layout title={`API key ${k.name}`} email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href={KEYS_PATH}>Settings › API Keys</a> › {k.name}
      </nav>
      <h1>{k.name}</h1>
      <section class="card" aria-labelledby="key-settings-heading">
        <h2 id="key-settings-heading">Settings</h2>
        <Settings k={k} nowMs={props.nowMs} />
        <p class="hint">
          Last use is recorded about once a minute, with the address of that request. Change, roll
          or delete the key on <a href={KEYS_PATH}>the keys page</a>.
        </p>
      </section>
      <section class="card" aria-labelledby="key-usage-heading">
        <h2 id="key-usage-heading">Requests per day</h2>
        <p class="hint">
          {total.toLocaleString("en-US")} requests in the last {KEY_DETAIL_DAYS}{" "}
          days (UTC). Counts trail requests by up to a minute.
        </p>
        <UsageChart totals={props.days} limit={dailyLimit(props.rateLimit)} />
        {props.rules?.length ? <RuleTable rules={props.rules} /> : null}
      </section>
      <section class="card" aria-labelledby="key-events-heading">
        <h2 id="key-events-heading">Events</h2>
        <p class="hint">
          The newest {KEY_DETAIL_EVENTS} events about this key; the{" "}
          <a href="/settings/security-log">Security log</a> has every event.
        </p>
        <Events events={props.events} names={props.names} />
      </section>
    </Layout>
  );
}

/** The key's forward-auth answers by rule (docs/forward-auth.md), busiest first. */
function RuleTable(props: { rules: RuleUsage[] }) {
  return (
    <table class="rules">
      <caption>Forward auth, by rule ({KEY_DETAIL_DAYS} days)</caption>
      <thead>
        <tr>
          <th scope="col">Rule</th>
          <th scope="col">Answers</th>
          <th scope="col">Allowed</th>
          <th scope="col">Refused</th>
          <th scope="col">Rate-limited</th>
          <th scope="col">Failed</th>
        </tr>
      </thead>
      <tbody>
        {props.rules.map((r) => (
          <tr key={r.rule}>
            <th scope="row">
              <code>{r.rule}</code>
            </th>
            <td>{r.requests.toLocaleString("en-US")}</td>
            <td>{r["2xx"].toLocaleString("en-US")}</td>
            <td>{r["4xx"].toLocaleString("en-US")}</td>
            <td>{r["429"].toLocaleString("en-US")}</td>
            <td>{r["5xx"].toLocaleString("en-US")}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export type KeyDetailDeps = {
  kit: DashboardKit;
  clock: Clock;
  usage: UsageReads;
  rateLimit: { max: number; windowMs: number };
  /** The caller's live sessions, to name the events' actors as the Security log does. */
  accounts: Pick<AccountService, "listSessions">;
};

/** Registers GET /settings/api-keys/:id (after the session middleware). */
export function registerKeyDetailPage(app: Hono<AppEnv>, deps: KeyDetailDeps): void {
  app.get(`${KEYS_PATH}/:id`, async (c) => {
    const store = c.get("store");
    const record = await keyOf(c);
    const user = await store.user();
    if (!record) {
      const path = new URL(c.req.url).pathname;
      return deps.kit.page(<NotFoundPage path={path} email={user.email} />, 404);
    }
    const [usage, byRule, events, keys, sessions] = await Promise.all([
      deps.usage.forAccountKey(store, record.id, KEY_DETAIL_DAYS),
      deps.usage.rulesForKey(store, record.id, KEY_DETAIL_DAYS),
      store.auditLog.page({ targetId: record.id, limit: KEY_DETAIL_EVENTS }),
      store.apiKeys.list(),
      sessionsOf(c, deps.accounts),
    ]);
    return deps.kit.page(
      <KeyDetailPage
        email={user.email}
        apiKey={apiKeyView(record)}
        days={usage?.days ?? []}
        rules={byRule.rules}
        rateLimit={deps.rateLimit}
        events={events.data}
        names={eventNames(keyNames(keys), sessions)}
        nowMs={deps.clock()}
      />,
    );
  });
}

/** The key of the path's id in the caller's account, or null (malformed, unknown, another's). */
async function keyOf(c: Context<AppEnv>) {
  try {
    return await c.get("store").apiKeys.get(keyIdParam(c.req.param("id") ?? ""));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    if (err instanceof HttpError && err.status === 404) return null;
    throw err;
  }
}

/** The caller's live sessions (a key never reaches the dashboard: then none). */
function sessionsOf(c: Context<AppEnv>, accounts: KeyDetailDeps["accounts"]) {
  const p = c.get("principal");
  if (p.method !== "session" || !p.sessionId) return Promise.resolve([]);
  return accounts.listSessions({ userId: p.userId, sessionId: p.sessionId });
}
