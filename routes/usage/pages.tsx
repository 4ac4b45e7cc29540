/**
 * Settings > Usage: the account's requests per UTC day against its rate limit, as a
 * server-rendered SVG bar chart (no script, no CDN, no inline style: colours are SVG presentation
 * attributes) with the same numbers in an accessible table, and each key's share with its
 * sparkline. The period is a plain GET form (7, 30 or 90 days). Deleted keys are one row
 * together (routes/usage/recorder.ts `forAccount`), so the page grows with the live keys only. The numbers
 * are the API's (routes/usage/operations.ts `UsageReads`).
 */
import type { Hono } from "hono";
import type { AppEnv } from "../../auth/middleware.ts";
import type { Clock } from "../../lib/clock.ts";
import type { DayUsage } from "../../store/usage.ts";
import { accountTotals, type KeyUsage, type UsageReads } from "./operations.ts";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Layout } from "../dashboard/layout.tsx";
import { Sparkline } from "./sparkline.tsx";
import {
  DeletedKeyName,
  deletedKeyText,
  KeyName,
  type KeyNames,
  keyNames,
  keyNameText,
} from "../dashboard/key_names.tsx";

export const USAGE_PATH = "/settings/usage";
export const USAGE_PERIODS = [7, 30, 90] as const;

/** Outcome colours, legible on the light and the dark card. */
const SERIES: { field: "2xx" | "4xx" | "429" | "5xx"; label: string; color: string }[] = [
  { field: "2xx", label: "Succeeded (2xx)", color: "#4c6ef5" },
  { field: "4xx", label: "Refused (4xx)", color: "#8d96a8" },
  { field: "429", label: "Rate limited (429)", color: "#e8a317" },
  { field: "5xx", label: "Failed (5xx)", color: "#e03131" },
];

export type UsagePageProps = {
  email: string;
  days: number;
  /** The account's requests per day (every key summed), oldest first. */
  totals: DayUsage[];
  keys: KeyUsage[];
  /** The account's keys by id, to name each row "name (prefix…)". */
  names?: KeyNames;
  /** The account's rate limit. */
  rateLimit: { max: number; windowMs: number };
};

const fmt = (n: number) => n.toLocaleString("en-US");

/** The most requests the rate limit admits in a day. */
export function dailyLimit(rateLimit: { max: number; windowMs: number }): number {
  return Math.floor(rateLimit.max * 86_400_000 / rateLimit.windowMs);
}

function windowText(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * A bar chart of requests per day, stacked by outcome, with the daily limit when in range. The
 * SVG holds only shapes and stretches to its box (`preserveAspectRatio="none"`, strokes
 * non-scaling); the axis labels are HTML around it, so their size is the page's, not the SVG's
 * scale (text inside a viewBox grew to ≈23 px on a desktop and shrank to ≈6 px on a phone). The
 * labels are hidden from assistive technology: the SVG's title and the By day table say it all.
 */
export function UsageChart(props: { totals: DayUsage[]; limit: number }) {
  const { totals, limit } = props;
  const W = 720, H = 180, top = 4;
  const peak = Math.max(0, ...totals.map((d) => d.requests));
  // The limit line is drawn when it is near enough to the bars to be read against them.
  const showLimit = limit <= Math.max(peak, 1) * 1.25;
  const scaleMax = Math.max(1, showLimit ? limit : peak);
  const plotH = H - top;
  const slot = W / totals.length;
  const barW = Math.max(1, slot * 0.7);
  const y = (v: number) => top + plotH - (v / scaleMax) * plotH;
  const total = totals.reduce((s, d) => s + d.requests, 0);
  const title = `Requests per day, last ${totals.length} days: ${fmt(total)} in total, at most ${
    fmt(peak)
  } a day; the rate limit allows ${fmt(limit)} a day.`;
  const ticks = [0, scaleMax / 2, scaleMax];
  return (
    <div class="usage-figure">
      {showLimit
        ? <p class="axis-label usage-limit" aria-hidden="true">limit {fmt(limit)}/day</p>
        : null}
      <div class="usage-plot">
        <div class="usage-y" aria-hidden="true">
          <span class="axis-label t-top">{compact(scaleMax)}</span>
          <span class="axis-label t-mid">{compact(scaleMax / 2)}</span>
          <span class="axis-label t-bottom">0</span>
        </div>
        <svg
          class="usage-chart"
          xmlns="http://www.w3.org/2000/svg"
          role="img"
          aria-labelledby="usage-chart-title"
          viewBox={`0 0 ${W} ${H}`}
          preserveAspectRatio="none"
          focusable="false"
        >
          <title id="usage-chart-title">{title}</title>
          {ticks.map((t) => <Tick key={String(t)} y={y(t)} width={W} />)}
          {totals.map((d, i) => (
            <DayBar key={d.start} d={d} x={i * slot + (slot - barW) / 2} width={barW} y={y} />
          ))}
          {showLimit ? <LimitLine y={y(limit)} width={W} /> : null}
        </svg>
      </div>
      <DayLabels totals={totals} />
    </div>
  );
}

/**
 * The dates under the bars: one equal cell per day (so cell i sits under bar i at any width),
 * about six of them labelled; a label too close to the last one is left out so they never overlap.
 */
function DayLabels(props: { totals: DayUsage[] }) {
  const n = props.totals.length;
  const every = Math.ceil(n / 6);
  const shown = (i: number) => i === n - 1 || (i % every === 0 && n - 1 - i >= every);
  return (
    <div class="usage-x" aria-hidden="true">
      {props.totals.map((d, i) => (
        <span
          key={d.start}
          class={i === 0 ? "axis-label first" : i === n - 1 ? "axis-label last" : "axis-label"}
        >
          {shown(i) ? d.start.slice(5, 10) : ""}
        </span>
      ))}
    </div>
  );
}

function LimitLine(props: { y: number; width: number }) {
  return (
    <line
      x1="0"
      x2={props.width}
      y1={round(props.y)}
      y2={round(props.y)}
      stroke="#e03131"
      stroke-dasharray="6 4"
      stroke-width="1.5"
      vector-effect="non-scaling-stroke"
    />
  );
}

/** One day's bar: a segment per outcome, stacked from the axis, with its numbers as a title. */
function DayBar(props: { d: DayUsage; x: number; width: number; y: (v: number) => number }) {
  const { d, y } = props;
  let base = 0;
  const segments = SERIES.filter((s) => d[s.field] > 0).map((s) => {
    const v = d[s.field];
    const seg = { field: s.field, color: s.color, top: y(base + v), bottom: y(base) };
    base += v;
    return seg;
  });
  return (
    <g>
      <title>{`${d.start.slice(0, 10)}: ${fmt(d.requests)} requests`}</title>
      {segments.map((s) => (
        <Segment
          key={s.field}
          x={props.x}
          y={s.top}
          width={props.width}
          height={s.bottom - s.top}
          fill={s.color}
        />
      ))}
    </g>
  );
}

function Segment(props: { x: number; y: number; width: number; height: number; fill: string }) {
  return (
    <rect
      x={round(props.x)}
      y={round(props.y)}
      width={round(props.width)}
      height={round(props.height)}
      fill={props.fill}
    />
  );
}

function Tick(props: { y: number; width: number }) {
  return (
    <line
      x1="0"
      x2={props.width}
      y1={round(props.y)}
      y2={round(props.y)}
      stroke="currentColor"
      stroke-opacity="0.15"
      vector-effect="non-scaling-stroke"
    />
  );
}

function compact(n: number): string {
  if (n >= 1e6) return `${round(n / 1e6)}M`;
  if (n >= 1e4) return `${round(n / 1e3)}k`;
  return String(Math.round(n));
}

const round = (n: number) => Math.round(n * 10) / 10;

function Legend() {
  return (
    <p class="hint legend">
      {SERIES.map((s) => <Swatch key={s.field} label={s.label} color={s.color} />)}
    </p>
  );
}

function Swatch(props: { label: string; color: string }) {
  return (
    <span>
      <svg width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" focusable="false">
        <rect width="12" height="12" rx="2" fill={props.color} />
      </svg>{" "}
      {props.label}
      {"   "}
    </span>
  );
}

function DayRow(props: { d: DayUsage }) {
  const { d } = props;
  return (
    <tr>
      <td data-label="Day">
        <time datetime={d.start.slice(0, 10)}>{d.start.slice(0, 10)}</time>
      </td>
      <td data-label="Requests">{fmt(d.requests)}</td>
      <td data-label="2xx">{fmt(d["2xx"])}</td>
      <td data-label="4xx">{fmt(d["4xx"])}</td>
      <td data-label="429">{fmt(d["429"])}</td>
      <td data-label="5xx">{fmt(d["5xx"])}</td>
    </tr>
  );
}

/**
 * The row's label, as every page names a key (routes/dashboard/key_names.tsx): "ci key
 * (inb_xXaAEw…)"; one deleted key by its id, marked deleted; several as how many.
 */
function KeyLabel(props: { k: KeyUsage; names: KeyNames }) {
  const { k } = props;
  const live = k.name !== null ? props.names.get(k.keyId) : undefined;
  if (live) return <KeyName k={{ name: k.name ?? live.name, start: live.start }} />;
  if (k.name !== null) return <>{k.name}</>;
  const n = k.deletedKeys ?? 1;
  if (n === 1) return <DeletedKeyName id={k.keyId} />;
  return (
    <>
      {`Deleted keys `}
      <span class="muted">{`(${fmt(n)} keys)`}</span>
    </>
  );
}

/** KeyLabel as plain text (the sparkline's accessible name). */
function keyLabelText(k: KeyUsage, names: KeyNames): string {
  const live = k.name !== null ? names.get(k.keyId) : undefined;
  if (live) return keyNameText({ name: k.name ?? live.name, start: live.start });
  if (k.name !== null) return k.name;
  const n = k.deletedKeys ?? 1;
  return n === 1 ? deletedKeyText(k.keyId) : `${fmt(n)} deleted keys`;
}

function KeyRow(props: { k: KeyUsage; days: number; names: KeyNames }) {
  const { k } = props;
  const values = k.days.map((d) => d.requests);
  const total = values.reduce((a, b) => a + b, 0);
  const limited = k.days.reduce((s, d) => s + d["429"], 0);
  const label = keyLabelText(k, props.names);
  return (
    <tr>
      <td data-label="Key">
        <KeyLabel k={k} names={props.names} />
      </td>
      <td data-label="Requests">{fmt(total)}</td>
      <td data-label="Rate limited">{fmt(limited)}</td>
      <td data-label="Per day">
        <Sparkline
          values={values}
          starts={k.days.map((d) => d.start)}
          label={`Requests per day, last ${props.days} days, ${label}`}
        />
      </td>
    </tr>
  );
}

export function UsagePage(props: UsagePageProps) {
  const limit = dailyLimit(props.rateLimit);
  const total = props.totals.reduce((s, d) => s + d.requests, 0);
  return (
    <Layout title="Usage" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">Settings › Usage</nav>
      <h1>Usage</h1>
      <form method="get" action={USAGE_PATH} class="row">
        <div class="field">
          <label for="usage-days">Period</label>
          <select id="usage-days" name="days">
            {USAGE_PERIODS.map((p) => (
              <Period key={String(p)} value={p} selected={p === props.days} />
            ))}
          </select>
        </div>
        <div class="field">
          <button type="submit" class="secondary">Show</button>
        </div>
      </form>

      <section class="card" aria-labelledby="usage-chart-heading">
        <h2 id="usage-chart-heading">Requests per day</h2>
        <p class="hint">
          {fmt(total)} requests with API keys in the last {props.days}{" "}
          days (UTC). Your rate limit is {fmt(props.rateLimit.max)} requests per{" "}
          {windowText(props.rateLimit.windowMs)}, at most {fmt(limit)}{" "}
          a day. Counts trail requests by up to a minute.
        </p>
        <UsageChart totals={props.totals} limit={limit} />
        <Legend />
      </section>

      <section class="card" aria-labelledby="usage-keys-heading">
        <h2 id="usage-keys-heading">By key</h2>
        {props.keys.length === 0 ? <p class="empty">No API keys yet.</p> : (
          <table>
            <caption>Requests of each key in the last {props.days} days.</caption>
            <thead>
              <tr>
                <th scope="col">Key</th>
                <th scope="col">Requests</th>
                <th scope="col">Rate limited</th>
                <th scope="col">Per day</th>
              </tr>
            </thead>
            <tbody>
              {props.keys.map((k) => (
                <KeyRow key={k.keyId} k={k} days={props.days} names={props.names ?? new Map()} />
              ))}
            </tbody>
          </table>
        )}
      </section>

      <ByDay totals={props.totals} days={props.days} />
    </Layout>
  );
}

/**
 * The chart's numbers as a table, in a card like the other sections. Only days with traffic are
 * rows: thirty rows of zeros buried the few that mattered, and on a phone each row is a card.
 */
function ByDay(props: { totals: DayUsage[]; days: number }) {
  const busy = props.totals.filter((d) => d.requests > 0).reverse();
  return (
    <section class="card" aria-labelledby="usage-table-heading">
      <h2 id="usage-table-heading">By day</h2>
      {busy.length === 0 ? <p class="empty">No requests in the last {props.days} days.</p> : (
        <table>
          <caption>
            Requests on each day with traffic, newest first, by outcome (the chart's numbers).
          </caption>
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Requests</th>
              <th scope="col">2xx</th>
              <th scope="col">4xx</th>
              <th scope="col">429</th>
              <th scope="col">5xx</th>
            </tr>
          </thead>
          <tbody>
            {busy.map((d) => <DayRow key={d.start} d={d} />)}
          </tbody>
        </table>
      )}
    </section>
  );
}

function Period(props: { value: number; selected: boolean }) {
  return (
    <option value={String(props.value)} selected={props.selected}>Last {props.value} days</option>
  );
}

// --- Routes ----------------------------------------------------------------------------------

export type UsagePagesDeps = {
  kit: DashboardKit;
  clock: Clock;
  /** Per-key usage (routes/usage/operations.ts). */
  usage: UsageReads;
  /** The account rate limit, drawn against the daily requests. */
  rateLimit: { max: number; windowMs: number };
};

/** Registers Settings > Usage (after the session middleware); `?days=` picks the period. */
export function registerUsagePages(app: Hono<AppEnv>, deps: UsagePagesDeps): void {
  app.get(USAGE_PATH, async (c) => {
    const asked = Number(c.req.query("days") ?? "30");
    const days = (USAGE_PERIODS as readonly number[]).includes(asked) ? asked : 30;
    const store = c.get("store");
    const [user, keys, live] = await Promise.all([
      store.user(),
      deps.usage.forAccount(store, days),
      // The prefixes that name the keys (the usage series carry ids and names only).
      store.apiKeys.list(),
    ]);
    return deps.kit.page(
      <UsagePage
        email={user.email}
        days={days}
        totals={accountTotals(keys, days, deps.clock())}
        keys={keys}
        names={keyNames(live)}
        rateLimit={deps.rateLimit}
      />,
    );
  });
}
