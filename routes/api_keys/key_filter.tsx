/**
 * Settings > API Keys: search, filter and sort the key table (issue 22, item 18). A plain GET
 * form whose choices live in the query string (`q`, `state`, `sort`), applied on the server, so
 * it works without JavaScript, a filtered view can be bookmarked or shared, and Back restores it.
 * Unknown values fall back to the defaults rather than erroring: a stale link still shows keys.
 */
import type { ApiKeyView } from "../../store/api_keys.ts";

const DAY_MS = 86_400_000;
/** "Expiring": still working, and expiring within this many days. */
export const EXPIRING_DAYS = 7;

export const KEY_STATES = [
  { value: "", label: "All states" },
  { value: "active", label: "Active" },
  { value: "expiring", label: `Expiring (within ${EXPIRING_DAYS} days)` },
  { value: "expired", label: "Expired" },
  { value: "disabled", label: "Disabled" },
  { value: "unused", label: "Never used" },
] as const;

export const KEY_SORTS = [
  { value: "newest", label: "Newest first" },
  { value: "name", label: "Name" },
  { value: "last-used", label: "Last used" },
] as const;

export type KeyState = (typeof KEY_STATES)[number]["value"];
export type KeySort = (typeof KEY_SORTS)[number]["value"];
export type KeyFilter = { q: string; state: KeyState; sort: KeySort };

/** The filter a query string names; anything unknown is the default (all keys, newest first). */
export function keyFilterOf(query: Record<string, string | undefined>): KeyFilter {
  const state = KEY_STATES.find((s) => s.value === query.state)?.value ?? "";
  const sort = KEY_SORTS.find((s) => s.value === query.sort)?.value ?? "newest";
  return { q: (query.q ?? "").trim().slice(0, 100), state, sort };
}

export const isFiltered = (f: KeyFilter) => f.q !== "" || f.state !== "";

const expiredAt = (k: ApiKeyView, nowMs: number) =>
  k.expiresAt !== null && Date.parse(k.expiresAt) <= nowMs;

/** Whether key `k` is in `state` at `nowMs` (a disabled key is only "disabled" or "unused"). */
export function inState(k: ApiKeyView, state: KeyState, nowMs: number): boolean {
  switch (state) {
    case "":
      return true;
    case "active":
      return !k.disabled && !expiredAt(k, nowMs);
    case "expiring":
      return !k.disabled && !expiredAt(k, nowMs) && k.expiresAt !== null &&
        Date.parse(k.expiresAt) - nowMs <= EXPIRING_DAYS * DAY_MS;
    case "expired":
      return expiredAt(k, nowMs);
    case "disabled":
      return k.disabled;
    case "unused":
      return k.lastUsedAt === null;
  }
}

/**
 * A search matches a name containing it (any case) or a key starting with it: people paste the
 * first characters the table shows ("inb_ab12…"), so a trailing ellipsis is ignored.
 */
export function matchesSearch(k: ApiKeyView, q: string): boolean {
  if (q === "") return true;
  const needle = q.replace(/(…|\.\.\.)$/, "");
  return k.name.toLowerCase().includes(needle.toLowerCase()) ||
    (needle.length >= 3 && k.start.startsWith(needle));
}

const newestFirst = (a: ApiKeyView, b: ApiKeyView) => b.createdAt.localeCompare(a.createdAt);

/** The keys the filter keeps, in its order (ties: newest first). */
export function filterKeys(keys: ApiKeyView[], f: KeyFilter, nowMs: number): ApiKeyView[] {
  const kept = keys.filter((k) => inState(k, f.state, nowMs) && matchesSearch(k, f.q));
  const order = f.sort === "name"
    ? (a: ApiKeyView, b: ApiKeyView) =>
      a.name.localeCompare(b.name, undefined, { sensitivity: "base" }) || newestFirst(a, b)
    : f.sort === "last-used"
    // Never used sorts last: "last used" answers "which keys are in use".
    ? (a: ApiKeyView, b: ApiKeyView) =>
      (b.lastUsedAt ?? "").localeCompare(a.lastUsedAt ?? "") || newestFirst(a, b)
    : newestFirst;
  return kept.sort(order);
}

/** Components rather than bare elements in lists: hono/jsx would render `key` as an attribute. */
function Option(props: { value: string; label: string; selected: boolean }) {
  return <option value={props.value} selected={props.selected}>{props.label}</option>;
}

/** The search box, state filter and sort, above the table; "Clear" appears once filtered. */
export function KeyFilterForm(props: { filter: KeyFilter; action: string }) {
  const f = props.filter;
  return (
    <form method="get" action={props.action} class="key-filter" role="search" aria-label="Keys">
      <div class="row">
        <div class="field grow">
          <label for="key-search">Search</label>
          <input
            type="search"
            id="key-search"
            name="q"
            value={f.q}
            maxlength={100}
            placeholder="Name or first characters"
          />
        </div>
        <div class="field">
          <label for="key-state">State</label>
          <select id="key-state" name="state">
            {KEY_STATES.map((s) => (
              <Option
                key={s.value}
                value={s.value}
                label={s.label}
                selected={s.value === f.state}
              />
            ))}
          </select>
        </div>
        <div class="field">
          <label for="key-sort">Sort by</label>
          <select id="key-sort" name="sort">
            {KEY_SORTS.map((s) => (
              <Option key={s.value} value={s.value} label={s.label} selected={s.value === f.sort} />
            ))}
          </select>
        </div>
        <div class="field actions">
          <button type="submit" class="secondary">Apply</button>
          {isFiltered(f) ? <a href={props.action} class="button secondary">Clear</a> : null}
        </div>
      </div>
    </form>
  );
}
