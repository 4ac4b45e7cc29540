/**
 * Settings > API Keys: the "Generate a new API key" form, and what it keeps across a refusal.
 *
 * A refused submission re-renders the form with every value as it was posted (name, expiry, each
 * scope checkbox, restrictions, whether the restrictions panel was open), because a form that
 * comes back with defaults re-checked silently widens the next key. The field at fault is marked
 * `aria-invalid`, described by a message beside it and focused (`autofocus`), so keyboard and
 * screen-reader users land on what to fix. Field order is tab order: name, expiry, permissions,
 * restrictions, then the button, so nothing that shapes the key sits after "Generate".
 */
import type { KeyScope, ScopeVocabulary } from "../../lib/scopes.ts";

export const EXPIRY_OPTIONS: { value: string; label: string }[] = [
  { value: "", label: "Never" },
  { value: "7", label: "In 7 days" },
  { value: "30", label: "In 30 days" },
  { value: "90", label: "In 90 days" },
  { value: "365", label: "In 1 year" },
  // The date field beside the select says when (expiresAt; issue 22 item 19).
  { value: "date", label: "On a date" },
];

/** The create form's scope checkboxes (distinct names: the form parser keeps one value a name). */
export const SCOPE_FIELDS: { scope: KeyScope; field: string; label: string; checked: boolean }[] = [
  { scope: "domains:read", field: "scope_domains_read", label: "Read domains", checked: true },
  {
    scope: "domains:write",
    field: "scope_domains_write",
    label: "Add, change and delete domains",
    checked: true,
  },
  // Issue 23: endpoints and e-mail addresses, ticked like the domains (the API's default).
  {
    scope: "endpoints:read",
    field: "scope_endpoints_read",
    label: "Read endpoints",
    checked: true,
  },
  {
    scope: "endpoints:write",
    field: "scope_endpoints_write",
    label: "Add, change, test and delete endpoints",
    checked: true,
  },
  {
    scope: "email-addresses:read",
    field: "scope_email_addresses_read",
    label: "Read email addresses",
    checked: true,
  },
  {
    scope: "email-addresses:write",
    field: "scope_email_addresses_write",
    label: "Add, change and delete email addresses",
    checked: true,
  },
  {
    scope: "audit:read",
    field: "scope_audit_read",
    label: "Read the security log",
    checked: false,
  },
];

/**
 * Every scope checkbox: the built-in ones, then the operator's scopes (FORWARD_AUTH_RULES,
 * docs/forward-auth.md), unticked by default: a key holds an operator scope only when granted it.
 */
export function scopeFields(vocab: ScopeVocabulary): typeof SCOPE_FIELDS {
  const operator = vocab.operator;
  if (operator.length === 0) return SCOPE_FIELDS;
  return [
    ...SCOPE_FIELDS,
    ...operator.map((scope) => ({
      scope,
      field: `scope_op_${scope}`,
      label: "Your API (forward auth)",
      checked: false,
    })),
  ];
}

/** A domain checkbox's field name: one name per domain, since the parser keeps one value a name. */
const DOMAIN_FIELD_PREFIX = "domain_";

const listOf = (text: string | undefined) =>
  (text ?? "").split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

/** The domain ids a form names: the picker's ticked boxes, then any typed into `domainIds`. */
function domainIdsOf(form: Record<string, string>): string[] {
  const picked = Object.keys(form).filter((k) => k.startsWith(DOMAIN_FIELD_PREFIX) && form[k])
    .map((k) => k.slice(DOMAIN_FIELD_PREFIX.length));
  return [...new Set([...picked, ...listOf(form.domainIds)])];
}

/**
 * The create form's scope and restriction fields as `createKeyBody` fields (routes/api_keys/operations.ts):
 * scopes from the checkboxes (only when the form carried them), and the optional allowlist,
 * domains and limit when filled in. Validation is createKeyBody's.
 */
export function grantFromForm(
  form: Record<string, string>,
  vocab: ScopeVocabulary,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (form.scopes_present) {
    out.scopes = scopeFields(vocab).filter((f) => form[f.field]).map((f) => f.scope);
  }
  const ips = listOf(form.allowedIps);
  if (ips.length) out.allowedIps = ips;
  const domains = domainIdsOf(form);
  if (domains.length) out.domainIds = domains;
  const max = (form.rateLimitMax ?? "").trim();
  if (max !== "") {
    const seconds = (form.rateLimitWindowSeconds ?? "").trim();
    out.rateLimit = { max: Number(max), windowMs: Number(seconds === "" ? "1" : seconds) * 1000 };
  }
  return out;
}

/** The fields of the form a refusal can point at. */
export type KeyFormField =
  | "name"
  | "expiresInDays"
  | "expiresAt"
  | "scopes"
  | "allowedIps"
  | "domainIds"
  | "rateLimitMax"
  | "rateLimitWindowSeconds";

/** What was posted, as the form shows it again. */
export type KeyFormValues = {
  name: string;
  expiresInDays: string;
  /** The date field (YYYY-MM-DD), used when `expiresInDays` is "date". */
  expiresAt?: string;
  /** Per scope checkbox field: ticked or not. */
  scopes: Record<string, boolean>;
  allowedIps: string;
  domainIds: string[];
  rateLimitMax: string;
  rateLimitWindowSeconds: string;
  restrictionsOpen: boolean;
};

/** The refused field and the sentence shown beside it. */
export type KeyFormError = { field: KeyFormField; message: string };

/** An account's domain as the picker offers it: chosen by name, posted by id. */
export type DomainChoice = { id: string; name: string };

/** The values a form posted. A form without `scopes_present` (an old form) keeps the defaults. */
export function keyFormValues(
  form: Record<string, string>,
  vocab: ScopeVocabulary,
): KeyFormValues {
  const scopes = Object.fromEntries(
    scopeFields(vocab).map((
      f,
    ) => [f.field, form.scopes_present ? Boolean(form[f.field]) : f.checked]),
  );
  const values: KeyFormValues = {
    name: form.name ?? "",
    expiresInDays: (form.expiresInDays ?? "").trim(),
    expiresAt: (form.expiresAt ?? "").trim(),
    scopes,
    allowedIps: form.allowedIps ?? "",
    domainIds: domainIdsOf(form),
    rateLimitMax: form.rateLimitMax ?? "",
    rateLimitWindowSeconds: form.rateLimitWindowSeconds ?? "",
    restrictionsOpen: Boolean(form.restrictions_open),
  };
  values.restrictionsOpen ||= values.allowedIps.trim() !== "" || values.domainIds.length > 0 ||
    values.rateLimitMax.trim() !== "" || values.rateLimitWindowSeconds.trim() !== "";
  return values;
}

/**
 * The form field a problem's path names: a zod path's first elements ("rateLimit", "windowMs")
 * or an API error's `field` ("domainIds.1", "rateLimit.max").
 */
export function fieldOfPath(path: readonly PropertyKey[] | string): KeyFormField {
  const [head, next] = typeof path === "string" ? path.split(".") : path.map(String);
  if (head === "rateLimit") return next === "windowMs" ? "rateLimitWindowSeconds" : "rateLimitMax";
  const known: KeyFormField[] = [
    "name",
    "expiresInDays",
    "expiresAt",
    "scopes",
    "allowedIps",
    "domainIds",
  ];
  return known.find((f) => f === head) ?? "name";
}

const ERROR_IDS: Record<KeyFormField, string> = {
  name: "key-name-error",
  expiresInDays: "key-expiry-error",
  expiresAt: "key-expiry-date-error",
  scopes: "key-scopes-error",
  allowedIps: "key-ips-error",
  domainIds: "key-domains-error",
  rateLimitMax: "key-rate-max-error",
  rateLimitWindowSeconds: "key-rate-window-error",
};

/** The attributes that mark a field as refused, described by its message and focused. */
export function marks(
  error: KeyFormError | undefined,
  field: KeyFormField,
  ...describedBy: string[]
) {
  const bad = error?.field === field;
  const ids = [...(bad ? [ERROR_IDS[field]] : []), ...describedBy].join(" ");
  return {
    "aria-invalid": bad ? "true" : undefined,
    "aria-describedby": ids || undefined,
    autofocus: bad || undefined,
  };
}

/** The message beside a refused field (nothing for the others). */
export function FieldError(props: { error?: KeyFormError; field: KeyFormField }) {
  if (props.error?.field !== props.field) return null;
  return <p class="field-error" id={ERROR_IDS[props.field]}>{props.error.message}</p>;
}

/** Components rather than bare elements in lists: hono/jsx would render `key` as an attribute. */
function Option(props: { value: string; label: string; selected?: boolean }) {
  return <option value={props.value} selected={props.selected}>{props.label}</option>;
}

export type FormProps = { values: KeyFormValues; error?: KeyFormError };

/**
 * The name, with a live note when it repeats another key's (`takenNames`). Shared by the create
 * form and the edit page (edit_page.tsx), which both supply the `key-name-hint` it points at.
 */
export function KeyNameField(props: FormProps & { takenNames: string[] }) {
  const { values, error } = props;
  return (
    <div class="field grow">
      <label for="key-name">Name</label>
      <input
        type="text"
        id="key-name"
        name="name"
        required
        maxlength={100}
        placeholder="e.g. production-server"
        value={values.name}
        data-taken-names={JSON.stringify(props.takenNames)}
        {...marks(error, "name", "key-name-hint", "key-name-taken")}
      />
      <FieldError error={error} field="name" />
      <p class="field-warning" id="key-name-taken" aria-live="polite"></p>
    </div>
  );
}

/** The name and the expiry (creation only: a key's expiry is not changed afterwards). */
function KeyNameRow(props: FormProps & { takenNames: string[] }) {
  const { values, error } = props;
  return (
    <div class="row">
      <KeyNameField values={values} error={error} takenNames={props.takenNames} />
      <div class="field">
        <label for="key-expiry">Expires</label>
        <select id="key-expiry" name="expiresInDays" {...marks(error, "expiresInDays")}>
          {EXPIRY_OPTIONS.map((o) => (
            <Option
              key={o.value}
              value={o.value}
              label={o.label}
              selected={o.value === values.expiresInDays}
            />
          ))}
        </select>
        <FieldError error={error} field="expiresInDays" />
      </div>
      <ExpiryDateField values={values} error={error} />
    </div>
  );
}

/** The expiry as a date, when Expires is "On a date" (no script: both fields are always there). */
function ExpiryDateField(props: FormProps) {
  const { values, error } = props;
  return (
    <div class="field">
      <label for="key-expiry-date">Expiry date</label>
      <input
        type="date"
        id="key-expiry-date"
        name="expiresAt"
        value={values.expiresAt ?? ""}
        {...marks(error, "expiresAt", "key-expiry-date-hint")}
      />
      <p class="hint" id="key-expiry-date-hint">
        Used when Expires is "On a date": the key stops at 00:00 UTC that day.
      </p>
      <FieldError error={error} field="expiresAt" />
    </div>
  );
}

function ScopeBox(props: FormProps & { f: (typeof SCOPE_FIELDS)[number]; first: boolean }) {
  const { f, error } = props;
  const m = marks(error, "scopes");
  return (
    <label class="check">
      <input
        type="checkbox"
        name={f.field}
        value="on"
        checked={props.values.scopes[f.field] ?? f.checked}
        aria-invalid={m["aria-invalid"]}
        aria-describedby={m["aria-describedby"]}
        autofocus={props.first ? m.autofocus : undefined}
      />{" "}
      {f.label} (<code>{f.scope}</code>)
    </label>
  );
}

/** The scope checkboxes (`scopes_present` says the form carried them: none checked is none). */
export function ScopeFields(props: FormProps & { vocab: ScopeVocabulary }) {
  return (
    <fieldset class="box scopes">
      <legend>Permissions</legend>
      <input type="hidden" name="scopes_present" value="1" />
      <FieldError error={props.error} field="scopes" />
      {scopeFields(props.vocab).map((f, i) => (
        <ScopeBox key={f.field} f={f} first={i === 0} values={props.values} error={props.error} />
      ))}
    </fieldset>
  );
}

function DomainBox(
  props: { d: DomainChoice; checked: boolean; unknown: boolean; error?: KeyFormError },
) {
  const m = marks(props.unknown ? props.error : undefined, "domainIds");
  return (
    <label class="check">
      <input
        type="checkbox"
        name={`${DOMAIN_FIELD_PREFIX}${props.d.id}`}
        value="on"
        checked={props.checked}
        {...m}
      />{" "}
      {props.d.name}
    </label>
  );
}

/**
 * "Only these domains": the account's domains by name (values are ids). A posted id that is not
 * one of them stays listed, ticked and marked, so the refusal names it and one click removes it.
 */
function DomainPicker(props: FormProps & { domains: DomainChoice[]; domainsTotal: number }) {
  const { values, error } = props;
  const known = new Set(props.domains.map((d) => d.id));
  const unknown = values.domainIds.filter((id) => !known.has(id));
  const domainError = error?.field === "domainIds" ? error : undefined;
  return (
    <fieldset class="box domains" aria-describedby="key-domains-hint">
      <legend>Only these domains</legend>
      <FieldError error={error} field="domainIds" />
      {props.domains.length === 0 && unknown.length === 0
        ? (
          <p class="hint">
            No domains yet: <a href="/settings/domains">add one</a> to restrict a key to it.
          </p>
        )
        : null}
      <div class="choices">
        {unknown.map((id, i) => (
          <DomainBox
            key={id}
            d={{ id, name: `${id} (not a domain of this account)` }}
            checked
            unknown={i === 0}
            error={domainError}
          />
        ))}
        {props.domains.map((d, i) => (
          <DomainBox
            key={d.id}
            d={d}
            checked={values.domainIds.includes(d.id)}
            unknown={unknown.length === 0 && i === 0}
            error={domainError}
          />
        ))}
      </div>
      <p class="hint" id="key-domains-hint">
        Tick none for every domain. A key limited to domains sees only those and cannot add domains.
        {props.domainsTotal > props.domains.length
          ? ` Showing ${props.domains.length} of ${props.domainsTotal}; the API takes any ids.`
          : ""}
      </p>
    </fieldset>
  );
}

/** The per-key limit: requests per window of seconds. */
function RateLimitFields(props: FormProps) {
  const { values, error } = props;
  return (
    <div class="row">
      <div class="field">
        <label for="key-rate-max">Rate limit (requests)</label>
        <input
          type="number"
          id="key-rate-max"
          name="rateLimitMax"
          min={1}
          value={values.rateLimitMax}
          {...marks(error, "rateLimitMax")}
        />
        <FieldError error={error} field="rateLimitMax" />
      </div>
      <div class="field">
        <label for="key-rate-window">per (seconds)</label>
        <input
          type="number"
          id="key-rate-window"
          name="rateLimitWindowSeconds"
          min={1}
          max={3600}
          placeholder="1"
          value={values.rateLimitWindowSeconds}
          {...marks(error, "rateLimitWindowSeconds")}
        />
        <FieldError error={error} field="rateLimitWindowSeconds" />
      </div>
    </div>
  );
}

export type RestrictionProps = FormProps & { domains: DomainChoice[]; domainsTotal: number };

/** The optional restrictions: allowed addresses, domains and a per-key rate limit. */
export function RestrictionFields(props: RestrictionProps) {
  const { values, error } = props;
  const restrictionError = error !== undefined &&
    ["allowedIps", "domainIds", "rateLimitMax", "rateLimitWindowSeconds"].includes(error.field);
  const open = values.restrictionsOpen || restrictionError;
  return (
    <details class="restrictions" {...(open ? { open: true } : {})}>
      <summary>Restrictions (optional)</summary>
      {/* Kept in step with the panel by the dashboard script, so a refusal reopens it. */}
      <input type="hidden" name="restrictions_open" value={open ? "1" : ""} />
      <div class="field">
        <label for="key-ips">Allowed addresses</label>
        <input
          type="text"
          id="key-ips"
          name="allowedIps"
          placeholder="e.g. 203.0.113.0/24, 2001:db8::/32"
          value={values.allowedIps}
          {...marks(error, "allowedIps", "key-ips-hint")}
        />
        <FieldError error={error} field="allowedIps" />
        <p class="hint" id="key-ips-hint">
          IPv4 or IPv6 addresses or CIDR ranges, separated by commas. Empty: anywhere.
        </p>
      </div>
      <DomainPicker {...props} />
      <RateLimitFields values={values} error={error} />
    </details>
  );
}

export type GenerateKeyProps = {
  full: boolean;
  maxKeys: number;
  /** The posted values after a refusal; absent: the defaults. */
  values?: KeyFormValues;
  error?: KeyFormError;
  domains: DomainChoice[];
  domainsTotal: number;
  /** The names of the account's keys: a repeated name is warned about, not refused. */
  takenNames: string[];
  /** The scopes offered (the built-in ones and the operator's). */
  vocab: ScopeVocabulary;
};

export function GenerateKeySection(props: GenerateKeyProps) {
  const values = props.values ?? keyFormValues({}, props.vocab);
  const { error } = props;
  return (
    <section class="card" aria-labelledby="generate-title">
      <h2 id="generate-title">Generate a new API key</h2>
      <form method="post" action="/settings/api-keys" class="key-form">
        <KeyNameRow values={values} error={error} takenNames={props.takenNames} />
        <ScopeFields values={values} error={error} vocab={props.vocab} />
        <RestrictionFields
          values={values}
          error={error}
          domains={props.domains}
          domainsTotal={props.domainsTotal}
        />
        <p class="hint" id="key-name-hint">
          Use a separate key for each application and environment (development, staging,
          production), each with its own name.
          {props.full
            ? ` You have reached the limit of ${props.maxKeys} keys: delete one first.`
            : ""}
        </p>
        <div class="submit">
          <button
            type="submit"
            disabled={props.full}
            aria-describedby={props.full ? "key-cap" : undefined}
          >
            Generate API key
          </button>
        </div>
      </form>
    </section>
  );
}
