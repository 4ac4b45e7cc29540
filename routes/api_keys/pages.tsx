/**
 * Settings > API Keys: generate (name, optional expiry, scopes and restrictions), the new key
 * shown once, the key table with the best practices made visible, and delete / roll actions.
 * The forms validate with the API's schemas and grant checks (routes/api_keys/operations.ts) and call the
 * same issue / roll / delete operations. Every form is Post/Redirect/Get: a new key reaches the
 * page through the one-time flash (store/flash.ts), never in a URL. Confirmation steps use
 * `<details>`, so everything works from the keyboard and without JavaScript; the static script
 * adds only the copy button, the open-panel memo and the repeated-name note. The generate form
 * and what it keeps across a refusal are in key_form.tsx.
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../../auth/middleware.ts";
import {
  expiresAtProblem,
  issueApiKey,
  parseExpiresAt,
  rollApiKey,
} from "../../auth/api_keys/issue.ts";
import type { Clock } from "../../lib/clock.ts";
import type { ScopeVocabulary } from "../../lib/scopes.ts";
import { HttpError } from "../../lib/errors.ts";
import { type ApiKeyRecord, type ApiKeyView, apiKeyView } from "../../store/api_keys.ts";
import {
  checkKeyGrant,
  expiresAtOf,
  keyBodies,
  keyErrors,
  keyIdParam,
  rollKeyBody,
} from "./operations.ts";
import type { UsageReads } from "../usage/operations.ts";
import { formatDate, relative } from "../dashboard/format.ts";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";
import { Sparkline } from "../usage/sparkline.tsx";
import {
  type DomainChoice,
  fieldOfPath,
  GenerateKeySection,
  grantFromForm,
  type KeyFormError,
  type KeyFormValues,
  keyFormValues,
} from "./key_form.tsx";
import { editPath, registerKeyEditPage } from "./edit_page.tsx";
import {
  filterKeys,
  isFiltered,
  type KeyFilter,
  KeyFilterForm,
  keyFilterOf,
} from "./key_filter.tsx";

export { EXPIRY_OPTIONS, SCOPE_FIELDS } from "./key_form.tsx";
export { grantFromForm };

export const KEYS_PATH = "/settings/api-keys";

/** The banner after a key's deletion (`?notice=`); a roll's notice comes with its flash. */
export const KEY_NOTICES: Record<string, string> = {
  deleted: "API key deleted. It no longer authenticates.",
  updated: "API key updated. Every server applies the change within a second.",
};

const DAY_MS = 86_400_000;
export const UNUSED_DAYS = 30;
export const ROTATE_DAYS = 90;
/** A key never used is flagged only once it is this old: a fresh key has not had its chance. */
export const NEVER_USED_DAYS = 7;

export const GRACE_OPTIONS: { value: string; label: string }[] = [
  { value: "0", label: "Revoke the old key now" },
  { value: "1", label: "Keep the old key for 1 hour" },
  { value: "24", label: "Keep the old key for 24 hours" },
  { value: "72", label: "Keep the old key for 3 days" },
  { value: "168", label: "Keep the old key for 7 days" },
];

/** The key's scopes and restrictions in a few words, for the table. */
function GrantNote(props: { k: ApiKeyView }) {
  const { k } = props;
  return (
    <div class="grant hint">
      {k.disabled ? <span class="flag expired">Disabled</span> : null}
      <span>
        Scopes: {k.scopes.map((s, i) => (
          <>
            {i ? ", " : ""}
            <code>{s}</code>
          </>
        ))}
      </span>
      {k.domainIds ? <span>; domains: {k.domainIds.length}</span> : null}
      {k.allowedIps ? <span>; from {k.allowedIps.join(", ")}</span> : null}
      {k.rateLimit
        ? (
          <span>
            ; at most {k.rateLimit.max} requests per {k.rateLimit.windowMs / 1000} s
          </span>
        )
        : null}
    </div>
  );
}

export type KeyFlag = { kind: "unused" | "old" | "expired"; label: string; advice: string };

/** The best-practice flags for a key at `nowMs`, and the action that fixes them. */
export function keyFlags(
  k: ApiKeyView,
  nowMs: number,
): { flags: KeyFlag[]; suggest: "delete" | "roll" | null } {
  const flags: KeyFlag[] = [];
  const created = Date.parse(k.createdAt);
  if (k.expiresAt !== null && Date.parse(k.expiresAt) <= nowMs) {
    flags.push({ kind: "expired", label: "Expired", advice: "It no longer works: delete it." });
  }
  const ageDays = Math.floor((nowMs - created) / DAY_MS);
  if (k.lastUsedAt === null) {
    if (ageDays >= NEVER_USED_DAYS) {
      flags.push({
        kind: "unused",
        label: "Never used",
        advice: "Delete unused keys: if nothing needs this key, delete it.",
      });
    }
  } else {
    const idleDays = Math.floor((nowMs - Date.parse(k.lastUsedAt)) / DAY_MS);
    if (idleDays >= UNUSED_DAYS) {
      flags.push({
        kind: "unused",
        label: `Unused for ${idleDays} days`,
        advice: "Delete unused keys: if nothing needs this key any more, delete it.",
      });
    }
  }
  if (ageDays >= ROTATE_DAYS) {
    flags.push({
      kind: "old",
      label: `${ageDays} days old`,
      advice: "Rotate keys periodically: roll it to get a replacement.",
    });
  }
  const suggest = flags.some((f) => f.kind === "expired" || f.kind === "unused")
    ? "delete"
    : flags.some((f) => f.kind === "old")
    ? "roll"
    : null;
  return { flags, suggest };
}

/** Components rather than bare elements in lists: hono/jsx would render `key` as an attribute. */
function Option(props: { value: string; label: string; selected?: boolean }) {
  return <option value={props.value} selected={props.selected}>{props.label}</option>;
}

function FlagNote(props: { flag: KeyFlag }) {
  return (
    <div>
      <span class={`flag ${props.flag.kind}`}>{props.flag.label}</span>
      <p class="advice">{props.flag.advice}</p>
    </div>
  );
}

function When(props: { iso: string | null; nowMs: number; none: string }) {
  if (props.iso === null) return <span class="muted">{props.none}</span>;
  return (
    <time datetime={props.iso} title={formatDate(props.iso)}>
      {formatDate(props.iso).slice(0, 10)}
      <br />
      <span class="muted">{relative(props.iso, props.nowMs)}</span>
    </time>
  );
}

export type NewKeyShown = {
  key: string;
  id: string;
  name: string;
  expiresAt: string | null;
  /** How many other keys already had this name when it was created (warned about, allowed). */
  sameName?: number;
};

type KeyRef = { name: string; start: string };
/** Per key id: the key that replaced it (grace period running) or the key it replaces. */
export type RollLinks = Record<string, { replacedBy?: KeyRef; replaces?: KeyRef }>;

/** A key's requests per day over the last 30 days, oldest first (routes/usage/operations.ts). */
export type KeySeries = { values: number[]; starts: string[] };

export type ApiKeysPageProps = {
  /** The scopes the create form offers (the built-in ones and the operator's). */
  vocab: ScopeVocabulary;
  /** Per key id: its 30-day series, drawn as a sparkline under its name. */
  usage?: Record<string, KeySeries>;
  email: string;
  origin: string;
  keys: ApiKeyView[];
  /** Rolled keys in their grace period and their replacements. */
  rolls?: RollLinks;
  nowMs: number;
  maxKeys: number;
  newKey?: NewKeyShown;
  notice?: string;
  error?: string;
  /** Re-filled into the form after a refused submission, with the field at fault. */
  form?: { values: KeyFormValues; error?: KeyFormError };
  /** A refused roll: that key's panel re-opens with the choice made and the reason. */
  rollError?: RollError;
  /** The account's domains, for the "Only these domains" picker. */
  domains?: DomainChoice[];
  domainsTotal?: number;
  /** The table's search, state filter and sort (key_filter.tsx), from the query string. */
  filter?: KeyFilter;
};

function NewKeyPanel(props: { newKey: NewKeyShown; origin: string }) {
  const { newKey } = props;
  return (
    <section
      class="card newkey"
      aria-labelledby="newkey-title"
      id="new-key-panel"
      tabindex={-1}
      autofocus
      data-autofocus
    >
      <h2 id="newkey-title">Your new API key: {newKey.name}</h2>
      <p class="visually-hidden" role="alert">
        New API key {newKey.name} created. Copy it now: it won't be shown again.
      </p>
      <label for="new-key">API key</label>
      <div class="keyline">
        <input
          type="text"
          id="new-key"
          readonly
          value={newKey.key}
          spellcheck={false}
          autocomplete="off"
          data-select-on-focus
          aria-describedby="newkey-warning"
        />
        <button
          type="button"
          class="secondary"
          data-copy-target="new-key"
          data-status="copy-status"
          hidden
        >
          Copy
        </button>
      </div>
      <p id="copy-status" class="hint" role="status" aria-live="polite"></p>
      <p class="warning" id="newkey-warning">
        <strong>Store it securely now: it won't be shown again.</strong>{" "}
        Put it in an environment variable or a secret manager, never in client-side code or version
        control.
        {newKey.expiresAt ? ` It expires ${formatDate(newKey.expiresAt)}.` : ""}
      </p>
      {newKey.sameName
        ? (
          <p class="warning" id="newkey-same-name">
            {newKey.sameName === 1 ? "Another key is" : `${newKey.sameName} other keys are`}{" "}
            also named “{newKey.name}”. Names need not be unique, but a distinct name per
            application tells keys apart in Usage and the Security log.
          </p>
        )
        : null}
      <TryIt origin={props.origin} />
    </section>
  );
}

/**
 * The snippets point at THIS server: the SDK defaults to the hosted Inbound service, so a
 * self-hosted key pasted without a base URL would be sent there (issue 22, item 1). The option
 * names are the `inboundemail` client's (`apiKey`, `baseURL`; `INBOUND_API_KEY`, `INBOUND_BASE_URL`).
 */
function TryIt(props: { origin: string }) {
  return (
    <>
      <p class="hint">Try it with curl:</p>
      <pre><code>{`export INBOUND_API_KEY='…'   # paste the key
export INBOUND_BASE_URL=${props.origin}   # this server
curl ${props.origin}/api/e2/domains \\
  -H "Authorization: Bearer $INBOUND_API_KEY"`}</code></pre>
      <p class="hint">
        Or with the SDK (npm <code>inboundemail</code>):
      </p>
      <pre><code>{`import Inbound from "inboundemail";

const inbound = new Inbound({
  apiKey: process.env.INBOUND_API_KEY,
  baseURL: process.env.INBOUND_BASE_URL, // ${props.origin}
});
const domains = await inbound.domains.list();`}</code></pre>
      <p class="warning" id="newkey-base-url">
        <strong>Set the base URL:</strong> without <code>baseURL</code> or{" "}
        <code>INBOUND_BASE_URL</code>{" "}
        the SDK sends your key to the hosted Inbound service, not to this server.
      </p>
    </>
  );
}

function RollNote(props: { link?: { replacedBy?: KeyRef; replaces?: KeyRef } }) {
  const l = props.link;
  if (!l) return null;
  return (
    <>
      {l.replacedBy
        ? (
          <span class="flag rolled">
            Replaced by {l.replacedBy.name} ({l.replacedBy.start}…)
          </span>
        )
        : null}
      {l.replaces
        ? <span class="flag rolled">Replaces {l.replaces.name} ({l.replaces.start}…)</span>
        : null}
    </>
  );
}

type RollLink = { replacedBy?: KeyRef; replaces?: KeyRef };

/** The key's name with its roll marks, grant and 30-day sparkline. */
function KeyNameCell(props: { k: ApiKeyView; link?: RollLink; usage?: KeySeries }) {
  const { k } = props;
  return (
    <td>
      <strong>
        <a href={`${KEYS_PATH}/${k.id}`}>{k.name}</a>
      </strong>
      <RollNote link={props.link} />
      <GrantNote k={k} />
      {props.usage
        ? (
          <div>
            <a href="/settings/usage" class="spark">
              <Sparkline
                values={props.usage.values}
                starts={props.usage.starts}
                label={`Requests per day, last 30 days, key ${k.name}`}
              />
            </a>
          </div>
        )
        : null}
    </td>
  );
}

/** A refused roll, re-shown in that key's open panel with the grace period that was chosen. */
export type RollError = { keyId: string; hours: string; message: string };

/** "Roll…": a replacement key, the old one kept for a grace period chosen here. */
function RollAction(
  props: { k: ApiKeyView; suggested: boolean; adviceId: string; error?: RollError },
) {
  const { k, error } = props;
  const chosen = error?.hours ?? "24";
  const errorId = `grace-${k.id}-error`;
  return (
    <details class="roll popover" {...(error ? { open: true } : {})}>
      <summary
        class={props.suggested ? "suggested" : undefined}
        aria-label={`Roll key ${k.name}`}
        aria-describedby={props.suggested ? props.adviceId : undefined}
      >
        Roll…
      </summary>
      <form method="post" action={`/settings/api-keys/${k.id}/roll`} class="panel">
        <p>
          Issue a replacement for <strong>{k.name}</strong>.
        </p>
        <label for={`grace-${k.id}`}>Old key</label>
        <select
          id={`grace-${k.id}`}
          name="expiresInHours"
          aria-invalid={error ? "true" : undefined}
          aria-describedby={error ? errorId : undefined}
          autofocus={error ? true : undefined}
        >
          {GRACE_OPTIONS.map((o) => (
            <Option
              key={o.value}
              value={o.value}
              label={o.label}
              selected={o.value === chosen}
            />
          ))}
        </select>
        {error ? <p class="field-error" id={errorId}>{error.message}</p> : null}
        <button type="submit" aria-label={`Roll key ${k.name} now`}>Roll key</button>
      </form>
    </details>
  );
}

/**
 * Why a key offers no "Roll…": the store refuses to roll a key already replaced (its grace period
 * is running: roll the replacement) or expired (dead: create a new one), so the page does not
 * offer an action that can only fail.
 */
export function noRollReason(k: ApiKeyView, link: RollLink | undefined, nowMs: number) {
  if (link?.replacedBy) {
    return `Already rolled: roll its replacement (${link.replacedBy.start}…) instead.`;
  }
  if (k.expiresAt !== null && Date.parse(k.expiresAt) <= nowMs) {
    return "Expired: it cannot be rolled. Generate a new key.";
  }
  return null;
}

/** "Delete…", confirmed in its own panel. */
function DeleteAction(props: { k: ApiKeyView; suggested: boolean; adviceId: string }) {
  const { k } = props;
  return (
    <details class="delete popover">
      <summary
        class={props.suggested ? "suggested" : undefined}
        aria-label={`Delete key ${k.name}`}
        aria-describedby={props.suggested ? props.adviceId : undefined}
      >
        Delete…
      </summary>
      <form method="post" action={`/settings/api-keys/${k.id}/delete`} class="panel">
        <p>
          Delete{" "}
          <strong>{k.name}</strong>? Anything using it stops working at once. This cannot be undone.
        </p>
        <button type="submit" class="danger" aria-label={`Delete key ${k.name} now`}>
          Delete key
        </button>
      </form>
    </details>
  );
}

type KeyRowProps = {
  k: ApiKeyView;
  nowMs: number;
  link?: RollLink;
  usage?: KeySeries;
  rollError?: RollError;
};

function KeyRow(props: KeyRowProps) {
  const { k, nowMs } = props;
  const noRoll = noRollReason(k, props.link, nowMs);
  const { flags, suggest } = keyFlags(k, nowMs);
  const adviceId = `advice-${k.id}`;
  return (
    <tr data-key-id={k.id}>
      <KeyNameCell k={k} link={props.link} usage={props.usage} />
      <td>
        <code>{k.start}…</code>
      </td>
      <td>
        <When iso={k.createdAt} nowMs={nowMs} none="" />
      </td>
      <td>
        <When iso={k.lastUsedAt} nowMs={nowMs} none="Never" />
      </td>
      <td>
        <When iso={k.expiresAt} nowMs={nowMs} none="Never" />
      </td>
      <td id={adviceId} class="advice-cell">
        {flags.length === 0 ? <span class="muted">OK</span> : null}
        {flags.map((f) => <FlagNote key={f.kind} flag={f} />)}
      </td>
      <td>
        <div class="actions">
          {noRoll ? <p class="hint no-roll">{noRoll}</p> : (
            <RollAction
              k={k}
              suggested={suggest === "roll"}
              adviceId={adviceId}
              error={props.rollError?.keyId === k.id ? props.rollError : undefined}
            />
          )}
          <a href={editPath(k.id)} class="button secondary edit" aria-label={`Edit key ${k.name}`}>
            Edit…
          </a>
          <DeleteAction k={k} suggested={suggest === "delete"} adviceId={adviceId} />
        </div>
      </td>
    </tr>
  );
}

/** The table's caption: how many keys the account holds, and how many the filter shows. */
function KeysCaption(props: { shown: number; held: number; max: number; filtered: boolean }) {
  return (
    <caption>
      {props.filtered ? `Showing ${props.shown} of ` : ""}
      {props.held} of {props.max} keys. Keys are shown by their first characters only.
    </caption>
  );
}

function KeysSection(props: ApiKeysPageProps) {
  const filter = props.filter ?? keyFilterOf({});
  const shown = filterKeys(props.keys, filter, props.nowMs);
  const filtered = isFiltered(filter);
  return (
    <section class="card" aria-labelledby="keys-title">
      <h2 id="keys-title">Your keys</h2>
      {props.keys.length > 1 ? <KeyFilterForm filter={filter} action={KEYS_PATH} /> : null}
      {props.keys.length === 0 ? <p class="empty">No API keys yet. Generate one above.</p> : null}
      {props.keys.length > 0 && shown.length === 0
        ? (
          <p class="empty" id="no-match" role="status">
            No keys match this search. <a href={KEYS_PATH}>Show all keys</a>
          </p>
        )
        : null}
      {shown.length === 0 ? null : (
        <table>
          <KeysCaption
            shown={shown.length}
            held={props.keys.length}
            max={props.maxKeys}
            filtered={filtered}
          />
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Key</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">Expires</th>
              <th scope="col">Best practice</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((k) => (
              <KeyRow
                key={k.id}
                k={k}
                nowMs={props.nowMs}
                link={props.rolls?.[k.id]}
                usage={props.usage?.[k.id]}
                rollError={props.rollError}
              />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function ApiKeysPage(props: ApiKeysPageProps) {
  const full = props.keys.length >= props.maxKeys;
  return (
    <Layout title="API Keys" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">Settings › API Keys</nav>
      <h1>API Keys</h1>
      {props.error ? <Banner kind="error" id="form-error">{props.error}</Banner> : null}
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}
      {props.newKey ? <NewKeyPanel newKey={props.newKey} origin={props.origin} /> : null}
      {full
        ? (
          <div class="alert cap" id="key-cap" role="status">
            <strong>Key limit reached:</strong> you have {props.keys.length} of {props.maxKeys}{" "}
            keys. Delete a key you no longer use before generating another.
          </div>
        )
        : null}

      <GenerateKeySection
        full={full}
        maxKeys={props.maxKeys}
        values={props.form?.values}
        error={props.form?.error}
        domains={props.domains ?? []}
        domainsTotal={props.domainsTotal ?? 0}
        takenNames={[...new Set(props.keys.map((k) => k.name))]}
        vocab={props.vocab}
      />
      <KeysSection {...props} />
    </Layout>
  );
}

// --- Routes ----------------------------------------------------------------------------------

export type KeyPagesDeps = {
  kit: DashboardKit;
  /** The scopes keys may be granted (the built-in ones and FORWARD_AUTH_RULES's; lib/scopes.ts). */
  scopes: ScopeVocabulary;
  clock: Clock;
  maxKeys: number;
  /** Per-key usage (routes/usage/operations.ts): each key's 30-day sparkline. */
  usage: UsageReads;
  /** The account rate limit: a key's own limit may not exceed it (`checkKeyGrant`). */
  rateLimit: { max: number; windowMs: number };
};

/** What a key POST hands to the page after its redirect, through the one-time flash. */
type KeyFlash = { newKey: NewKeyShown; notice?: string };

/** Registers Settings > API Keys (after the session and sudo middleware). */
export function registerKeyPages(app: Hono<AppEnv>, deps: KeyPagesDeps): void {
  const { kit } = deps;
  app.get(KEYS_PATH, async (c) => {
    const flashId = c.req.query("flash");
    const flash = flashId ? await c.get("store").flash.take<KeyFlash>(flashId) : null;
    const notice = flash?.notice ?? kit.notice(c.req.query("notice") ?? "");
    return keysPage(c, deps, { notice, ...(flash ? { newKey: flash.newKey } : {}) });
  });
  app.post(KEYS_PATH, kit.sameOrigin, kit.formLimit, (c) => createKey(c, deps));
  app.post(`${KEYS_PATH}/:id/delete`, kit.sameOrigin, kit.formLimit, async (c) => {
    try {
      const id = keyIdParam(c.req.param("id"));
      await keyErrors(() => c.get("store").apiKeys.delete(id));
      return kit.redirect(`${KEYS_PATH}?notice=deleted`);
    } catch (err) {
      const e = kit.errorInfo(err);
      return keysPage(c, deps, { error: e.message }, e.status, e.headers);
    }
  });
  app.post(
    `${KEYS_PATH}/:id/roll`,
    kit.sameOrigin,
    kit.formLimit,
    (c) => rollKey(c, deps, c.req.param("id")),
  );
  registerKeyEditPage(app, {
    kit,
    rateLimit: deps.rateLimit,
    pickerDomains: PICKER_DOMAINS,
    scopes: deps.scopes,
  });
}

/** "replaced by" / "replaces" marks for keys rolled with a grace period that has not ended. */
function rollLinks(records: ApiKeyRecord[], nowMs: number): RollLinks {
  const byId = new Map(records.map((r) => [r.id, r]));
  const links: RollLinks = {};
  for (const old of records) {
    if (old.replacedBy === undefined) continue;
    if (old.expiresAt !== null && Date.parse(old.expiresAt) <= nowMs) continue;
    const created = byId.get(old.replacedBy);
    if (!created) continue;
    links[old.id] = { ...links[old.id], replacedBy: { name: created.name, start: created.start } };
    links[created.id] = { ...links[created.id], replaces: { name: old.name, start: old.start } };
  }
  return links;
}

/** The picker lists the newest this many domains (a key may name at most MAX_KEY_DOMAINS). */
const PICKER_DOMAINS = 200;

/** The keys page for the signed-in account, with `extra` (a notice, an error, the new key). */
async function keysPage(
  c: Context<AppEnv>,
  deps: KeyPagesDeps,
  extra: Partial<ApiKeysPageProps>,
  status = 200,
  headers: HeadersInit = {},
): Promise<Response> {
  const store = c.get("store");
  const [user, keys, used, domains] = await Promise.all([
    store.user(),
    store.apiKeys.list(),
    deps.usage.forAccount(store, 30, { deleted: false }),
    store.domains.list({}, { limit: PICKER_DOMAINS, offset: 0 }),
  ]);
  const nowMs = deps.clock();
  const usage = Object.fromEntries(used.map((u) => [u.keyId, {
    values: u.days.map((d) => d.requests),
    starts: u.days.map((d) => d.start),
  }]));
  return deps.kit.page(
    <ApiKeysPage
      vocab={deps.scopes}
      usage={usage}
      email={user.email}
      origin={c.get("client").site.origin}
      keys={keys.map(apiKeyView)}
      rolls={rollLinks(keys, nowMs)}
      nowMs={nowMs}
      maxKeys={deps.maxKeys}
      domains={domains.data.map((d) => ({ id: d.id, name: d.domain }))
        .sort((a, b) => a.name.localeCompare(b.name))}
      domainsTotal={domains.total}
      filter={keyFilterOf(c.req.query())}
      {...extra}
    />,
    status,
    headers,
  );
}

/** Post/Redirect/Get: the new key waits in a one-time server-side flash named by an opaque id. */
async function redirectWithKey(
  c: Context<AppEnv>,
  kit: DashboardKit,
  flash: KeyFlash,
): Promise<Response> {
  const id = await c.get("store").flash.put(flash);
  return kit.redirect(`${KEYS_PATH}?flash=${id}`);
}

/** The create form's field labels, for the sentence a refusal shows. */
const CREATE_LABELS = {
  name: "Name",
  expiresInDays: "Expiry",
  expiresAt: "Expiry date",
  scopes: "Scopes",
  domainIds: "Domains",
  allowedIps: "Allowed addresses",
  rateLimit: "Rate limit",
};

/**
 * The refused create form as the page shows it: every posted value, the field at fault (a zod
 * issue's path, or an HttpError's `field` such as "domainIds.1") marked with the message.
 */
function refusedForm(
  form: Record<string, string>,
  vocab: ScopeVocabulary,
  message: string,
  path: readonly PropertyKey[] | string | undefined,
): ApiKeysPageProps["form"] {
  const values = keyFormValues(form, vocab);
  return { values, error: path === undefined ? undefined : { field: fieldOfPath(path), message } };
}

/**
 * Names are not unique (a roll's replacement keeps its predecessor's name, and Stripe allows
 * repeats too): a repeated name is created, and the new-key panel says how many others share it.
 */
async function othersNamed(c: Context<AppEnv>, record: ApiKeyRecord): Promise<number> {
  const keys = await c.get("store").apiKeys.list();
  return keys.filter((k) => k.name === record.name && k.id !== record.id).length;
}

async function createKey(c: Context<AppEnv>, deps: KeyPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const days = (form.expiresInDays ?? "").trim();
  // The same schema and grant checks as POST /api/e2/api-keys (routes/api_keys/operations.ts).
  const parsed = keyBodies(deps.scopes).create.safeParse({
    name: form.name ?? "",
    // "On a date" sends the date field as expiresAt instead (issue 22 item 19).
    ...(days === "date"
      ? { expiresAt: (form.expiresAt ?? "").trim() }
      : { expiresInDays: days === "" ? null : Number(days) }),
    ...grantFromForm(form, deps.scopes),
  });
  if (!parsed.success) {
    const error = kit.firstProblem(parsed.error, CREATE_LABELS);
    const path = parsed.error.issues[0]?.path ?? [];
    return keysPage(c, deps, { error, form: refusedForm(form, deps.scopes, error, path) }, 400);
  }
  const nowMs = deps.clock();
  const when = parsed.data.expiresAt;
  const dateProblem = when === undefined ? null : expiresAtProblem(parseExpiresAt(when), nowMs);
  if (dateProblem) {
    const error = `Expiry date ${dateProblem}.`;
    return keysPage(
      c,
      deps,
      { error, form: refusedForm(form, deps.scopes, error, "expiresAt") },
      400,
    );
  }
  try {
    const expiresAtMs = expiresAtOf(parsed.data, nowMs);
    const grant = await checkKeyGrant(c, parsed.data, deps.rateLimit);
    const { key, record } = await keyErrors(() =>
      issueApiKey(c.get("store").apiKeys, {
        name: parsed.data.name,
        expiresInDays: parsed.data.expiresInDays ?? null,
        expiresAtMs,
        nowMs,
        grant,
      })
    );
    const sameName = await othersNamed(c, record);
    return await redirectWithKey(c, kit, {
      newKey: { key, id: record.id, name: record.name, expiresAt: record.expiresAt, sameName },
    });
  } catch (err) {
    const e = kit.errorInfo(err);
    const field = err instanceof HttpError && typeof err.extra.field === "string"
      ? err.extra.field
      : undefined;
    const shown = refusedForm(form, deps.scopes, e.message, field);
    return keysPage(c, deps, { error: e.message, form: shown }, e.status, e.headers);
  }
}

/**
 * Rolls key `rawId` (validated inside, so a bad id is the page's 404 like any refusal). A refusal
 * re-opens that key's Roll panel with the grace period chosen, marked and focused.
 */
async function rollKey(c: Context<AppEnv>, deps: KeyPagesDeps, rawId: string): Promise<Response> {
  const { kit } = deps;
  let rollError: RollError | undefined;
  try {
    const id = keyIdParam(rawId);
    const form = await kit.formFields(c);
    rollError = { keyId: id, hours: form.expiresInHours ?? "", message: "" };
    const parsed = rollKeyBody.safeParse({ expiresInHours: Number(form.expiresInHours ?? "") });
    if (!parsed.success) {
      throw new HttpError(400, kit.firstProblem(parsed.error, { expiresInHours: "Grace period" }));
    }
    const hours = parsed.data.expiresInHours;
    const { key, record, old } = await keyErrors(() =>
      rollApiKey(c.get("store").apiKeys, id, hours * 3_600_000)
    );
    const notice = hours === 0 || old.expiresAt === null
      ? `Rolled “${old.name}”: the old key was revoked.`
      : `Rolled “${old.name}”: the old key keeps working until ${
        formatDate(old.expiresAt)
      }. Update your applications before then.`;
    return await redirectWithKey(c, kit, {
      notice,
      newKey: { key, id: record.id, name: record.name, expiresAt: record.expiresAt },
    });
  } catch (err) {
    const e = kit.errorInfo(err);
    const shown = rollError ? { ...rollError, message: e.message } : undefined;
    return keysPage(c, deps, { error: e.message, rollError: shown }, e.status, e.headers);
  }
}
