/**
 * The components of Settings › Endpoints (routes/endpoints/pages.tsx): the list with the create
 * form, and an endpoint's page (its secret once, the test and its result, edit, roll, delete).
 */
import type {
  EmailAddressRecord,
  EmailConfig,
  EmailGroupConfig,
  EndpointRecord,
  EndpointType,
  WebhookConfig,
} from "../../store/endpoints/record.ts";
import type { DomainRecord } from "../../store/domains/record.ts";
import { formatDate } from "../dashboard/format.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";
import {
  CheckField,
  ConfigFields,
  type EndpointFormError,
  type EndpointFormValues,
  FormatSelect,
  NameFields,
  TYPE_LABEL,
} from "./page_form.tsx";

export const ENDPOINTS_PATH = "/settings/endpoints";
const TYPES: EndpointType[] = ["webhook", "email", "email_group"];

/** A test's outcome as the page shows it (the API's EndpointTestResponse, what a page needs). */
export type TestShown = {
  success: boolean;
  message: string;
  responseTime: number;
  statusCode?: number;
  responseBody?: string;
  error?: string;
  urlTested?: string;
  webhookFormat?: string;
};

/** Where the endpoint delivers, in a few words. */
export function Target(props: { r: EndpointRecord }) {
  const { r } = props;
  if (r.type === "webhook") {
    return <code class="domain-name">{(r.config as WebhookConfig).url}</code>;
  }
  if (r.type === "email") {
    return <code class="domain-name">{(r.config as EmailConfig).forwardTo}</code>;
  }
  const emails = (r.config as EmailGroupConfig).emails;
  return (
    <span>
      {emails.length} address{emails.length === 1 ? "" : "es"}:{" "}
      <code class="domain-name">{emails.slice(0, 3).join(", ")}</code>
      {emails.length > 3 ? ` and ${emails.length - 3} more` : ""}
    </span>
  );
}

function ActiveFlag(props: { on: boolean }) {
  return props.on ? <span class="flag good">Active</span> : <span class="flag off">Inactive</span>;
}

function Stats(props: { r: EndpointRecord }) {
  const s = props.r.stats;
  if (s.total === 0) return <span class="muted">No deliveries yet</span>;
  return (
    <span>
      {s.total} ({s.successful} ok, {s.failed} failed)
      {s.lastDelivery
        ? (
          <>
            <br />
            <span class="muted">
              last <time datetime={s.lastDelivery}>{formatDate(s.lastDelivery)}</time>
            </span>
          </>
        )
        : null}
    </span>
  );
}

function EndpointRow(props: { r: EndpointRecord }) {
  const { r } = props;
  return (
    <tr data-endpoint-id={r.id}>
      <td data-label="Name">
        <a href={`${ENDPOINTS_PATH}/${r.id}`}>{r.name}</a>
      </td>
      <td data-label="Type">{TYPE_LABEL[r.type]}</td>
      <td data-label="Target">
        <Target r={r} />
      </td>
      <td data-label="State">
        <ActiveFlag on={r.isActive} />
      </td>
      <td data-label="Deliveries">
        <Stats r={r} />
      </td>
    </tr>
  );
}

/** The create form: the type is chosen by link (no script), its fields follow. */
function CreateSection(
  props: {
    type: EndpointType;
    values: EndpointFormValues;
    error?: EndpointFormError;
    full: boolean;
    max: number;
  },
) {
  const { type, values, error } = props;
  return (
    <section class="card" aria-labelledby="create-title" id="create">
      <h2 id="create-title">Create an endpoint</h2>
      <nav class="actions" aria-label="Endpoint type">
        {TYPES.map((t) => (
          <a
            href={`${ENDPOINTS_PATH}?type=${t}#create`}
            class={t === type ? "button" : "button secondary"}
            aria-current={t === type ? "true" : undefined}
          >
            {TYPE_LABEL[t]}
          </a>
        ))}
      </nav>
      {props.full
        ? (
          <p class="alert cap" role="status">
            This account has its {props.max} endpoints: delete one before creating another.
          </p>
        )
        : null}
      <form method="post" action={ENDPOINTS_PATH} class="key-form" novalidate>
        <input type="hidden" name="type" value={type} />
        <p class="hint">New {TYPE_LABEL[type].toLowerCase()} endpoint.</p>
        <NameFields form="create" v={values} error={error} placeholder="Support inbox webhook" />
        <ConfigFields form="create" type={type} v={values} error={error} />
        <div class="submit">
          <button type="submit" disabled={props.full}>Create endpoint</button>
        </div>
      </form>
    </section>
  );
}

export type EndpointsPageProps = {
  email: string;
  endpoints: EndpointRecord[];
  max: number;
  type: EndpointType;
  values: EndpointFormValues;
  error?: EndpointFormError;
  /** A refusal that names no field (quota, a missing endpoint). */
  banner?: string;
  notice?: string;
};

export function EndpointsPage(props: EndpointsPageProps) {
  const full = props.endpoints.length >= props.max;
  return (
    <Layout title="Endpoints" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">Settings › Endpoints</nav>
      <h1>Endpoints</h1>
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}
      {props.banner ?? props.error
        ? <Banner kind="error" id="form-error">{props.banner ?? props.error?.message}</Banner>
        : null}
      <p class="hint">
        Where mail received at your addresses is delivered: a webhook, a forward to one address, or
        a group of addresses. Route an address to an endpoint on its domain's page.
      </p>
      <CreateSection
        type={props.type}
        values={props.values}
        error={props.error}
        full={full}
        max={props.max}
      />
      <section class="card" aria-labelledby="list-title">
        <h2 id="list-title">Your endpoints</h2>
        {props.endpoints.length === 0
          ? <p class="empty">No endpoints yet. Create one above.</p>
          : (
            <table>
              <caption>
                {props.endpoints.length} of {props.max} endpoints, newest first.
              </caption>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Type</th>
                  <th scope="col">Target</th>
                  <th scope="col">State</th>
                  <th scope="col">Deliveries</th>
                </tr>
              </thead>
              <tbody>
                {props.endpoints.map((r) => <EndpointRow key={r.id} r={r} />)}
              </tbody>
            </table>
          )}
      </section>
    </Layout>
  );
}

// --- An endpoint's page ----------------------------------------------------------------------

/** The signing secret, shown once after create or roll. */
function SecretPanel(props: { secret: string; name: string }) {
  return (
    <section
      class="card newkey"
      aria-labelledby="secret-title"
      id="secret-panel"
      tabindex={-1}
      data-autofocus
    >
      <h2 id="secret-title">Signing secret of {props.name}</h2>
      <p class="visually-hidden" role="alert">
        Signing secret shown. Copy it now: it won't be shown again.
      </p>
      <label for="signing-secret">Signing secret</label>
      <div class="keyline">
        <input
          type="text"
          id="signing-secret"
          readonly
          value={props.secret}
          spellcheck={false}
          autocomplete="off"
          data-select-on-focus
          aria-describedby="secret-warning"
        />
        <button
          type="button"
          class="secondary"
          data-copy-target="signing-secret"
          data-copy-label="Signing secret"
          data-status="secret-copy-status"
          hidden
        >
          Copy
        </button>
      </div>
      <p id="secret-copy-status" class="hint" role="status" aria-live="polite"></p>
      <p class="warning" id="secret-warning">
        <strong>Store it now: it won't be shown again.</strong>{" "}
        Your receiver verifies each delivery's <code>webhook-signature</code>{" "}
        header with it (Standard Webhooks: an HMAC-SHA256 of{" "}
        <code>webhook-id.webhook-timestamp.body</code>).
      </p>
    </section>
  );
}

/** What the last test did: status, time, the body (cut) or the error. */
function TestResultPanel(props: { test: TestShown }) {
  const t = props.test;
  return (
    <div class={t.success ? "alert ok" : "alert error"} role="status" id="test-result">
      <p>
        <strong>{t.success ? "Test succeeded." : "Test failed."}</strong> {t.message}
      </p>
      <div class="record">
        <dl>
          {t.statusCode !== undefined
            ? (
              <>
                <dt>Status code</dt>
                <dd id="test-status">{t.statusCode}</dd>
              </>
            )
            : null}
          <dt>Response time</dt>
          <dd id="test-time">{t.responseTime} ms</dd>
          {t.urlTested
            ? (
              <>
                <dt>URL tested</dt>
                <dd>
                  <code class="domain-name">{t.urlTested}</code>
                </dd>
              </>
            )
            : null}
          {t.error
            ? (
              <>
                <dt>Error</dt>
                <dd id="test-error">{t.error}</dd>
              </>
            )
            : null}
        </dl>
      </div>
      {t.responseBody
        ? (
          <>
            <p class="hint">Response body (first 1,000 characters):</p>
            <pre id="test-body"><code>{t.responseBody}</code></pre>
          </>
        )
        : null}
    </div>
  );
}

function TestSection(props: { r: EndpointRecord; test?: TestShown; error?: string }) {
  const { r } = props;
  const webhook = r.type === "webhook";
  return (
    <section class="card" aria-labelledby="test-title" id="test">
      <h2 id="test-title">Test</h2>
      {props.test ? <TestResultPanel test={props.test} /> : null}
      {props.error ? <Banner kind="error" id="test-refused">{props.error}</Banner> : null}
      <p class="hint">
        {webhook
          ? "Sends a signed sample delivery to the webhook URL now and shows what it answered."
          : "Simulated only: this server sends no e-mail. Shows where a message would go."}
      </p>
      <form method="post" action={`${ENDPOINTS_PATH}/${r.id}/test`}>
        <div class="row">
          {webhook ? <FormatSelect id="test-format" selected={r.webhookFormat} /> : null}
          {webhook
            ? (
              <div class="field grow">
                <label for="test-url">Send to instead (optional)</label>
                <input
                  id="test-url"
                  name="overrideUrl"
                  type="text"
                  inputmode="url"
                  maxlength={2048}
                  placeholder="https://… (the same URL rules)"
                  aria-describedby="test-url-hint"
                />
                <p class="hint" id="test-url-hint">Empty: the endpoint's own URL.</p>
              </div>
            )
            : null}
          <div class="field">
            <button type="submit">Send test</button>
          </div>
        </div>
      </form>
    </section>
  );
}

function EditSection(
  props: { r: EndpointRecord; values: EndpointFormValues; error?: EndpointFormError },
) {
  const { r, values, error } = props;
  return (
    <section class="card" aria-labelledby="edit-title" id="edit">
      <h2 id="edit-title">Edit</h2>
      {error ? <Banner kind="error" id="form-error">{error.message}</Banner> : null}
      <form method="post" action={`${ENDPOINTS_PATH}/${r.id}/edit`} class="key-form" novalidate>
        <NameFields form="edit" v={values} error={error} />
        <CheckField
          form="edit"
          name="isActive"
          label="Active"
          checked={values.isActive}
          hint="An inactive endpoint receives nothing; its addresses stay routed to it."
        />
        {r.type === "webhook"
          ? <FormatSelect id="edit-webhookFormat" selected={values.webhookFormat} />
          : null}
        <ConfigFields form="edit" type={r.type} v={values} error={error} />
        <div class="submit">
          <button type="submit">Save changes</button>
        </div>
      </form>
    </section>
  );
}

export type EndpointUsers = {
  addresses: Pick<EmailAddressRecord, "id" | "address" | "domainId">[];
  domains: Pick<DomainRecord, "id" | "domain">[];
};

/** What deleting detaches, said before it is done. */
function DeleteSection(props: { r: EndpointRecord; users: EndpointUsers }) {
  const { r, users } = props;
  const a = users.addresses, d = users.domains;
  return (
    <section class="card" aria-labelledby="delete-title">
      <h2 id="delete-title">Delete this endpoint</h2>
      <p class="hint" id="delete-effect">
        {a.length === 0 && d.length === 0
          ? "Nothing is routed to it: deleting it changes no address or domain."
          : `Deleting it detaches what uses it, in the same step: ` +
            (a.length > 0
              ? `${a.length} address(es) become store-only (${
                a.slice(0, 5).map((x) => x.address).join(", ")
              }${a.length > 5 ? ", …" : ""})`
              : "no address") +
            (d.length > 0
              ? `; ${d.length} domain(s) lose their catch-all (${
                d.slice(0, 5).map((x) => x.domain).join(", ")
              }${d.length > 5 ? ", …" : ""}).`
              : "; no domain's catch-all uses it.")}
      </p>
      <details class="delete popover">
        <summary>Delete {r.name}…</summary>
        <form method="post" action={`${ENDPOINTS_PATH}/${r.id}/delete`} class="panel">
          <p>
            Delete <strong>{r.name}</strong>? This cannot be undone.
          </p>
          <button type="submit" class="danger" aria-describedby="delete-effect">
            Delete endpoint {r.name} now
          </button>
        </form>
      </details>
    </section>
  );
}

function RollSection(props: { r: EndpointRecord }) {
  const { r } = props;
  return (
    <section class="card" aria-labelledby="roll-title">
      <h2 id="roll-title">Signing secret</h2>
      <p class="hint" id="roll-effect">
        Shown once, when the endpoint was created. Rolling issues a new one (shown once); the old
        one stops signing at once, so update your receiver right after.
      </p>
      <details class="roll popover">
        <summary>Roll secret…</summary>
        <form method="post" action={`${ENDPOINTS_PATH}/${r.id}/roll`} class="panel">
          <p>
            Issue a new signing secret for <strong>{r.name}</strong>?
          </p>
          <button type="submit" aria-describedby="roll-effect">Roll secret now</button>
        </form>
      </details>
    </section>
  );
}

/** The first addresses and catch-all domains routed here, each linking to its domain's page. */
function UsedBy(props: { users: EndpointUsers }) {
  const links = [
    ...props.users.addresses.map((a) => ({ href: a.domainId, text: a.address })),
    ...props.users.domains.map((d) => ({ href: d.id, text: `${d.domain} (catch-all)` })),
  ];
  if (links.length === 0) return null;
  return (
    <ul class="used-by">
      {links.slice(0, USED_BY_SHOWN).map((l) => (
        <li>
          <a class="domain-name" href={`/settings/domains/${l.href}#addresses`}>{l.text}</a>
        </li>
      ))}
      {links.length > USED_BY_SHOWN ? <li>and {links.length - USED_BY_SHOWN} more</li> : null}
    </ul>
  );
}

const USED_BY_SHOWN = 10;

function Summary(props: { r: EndpointRecord; users: EndpointUsers }) {
  const { r, users } = props;
  return (
    <section class="card" aria-labelledby="summary-title">
      <h2 id="summary-title">Summary</h2>
      <div class="record">
        <dl>
          <dt>Type</dt>
          <dd>{TYPE_LABEL[r.type]}</dd>
          <dt>Target</dt>
          <dd class="domain-name">
            <Target r={r} />
          </dd>
          <dt>State</dt>
          <dd>
            <ActiveFlag on={r.isActive} />
          </dd>
          <dt>Deliveries</dt>
          <dd>
            <Stats r={r} />
          </dd>
          <dt>Used by</dt>
          <dd>
            {users.addresses.length} address(es), {users.domains.length} catch-all domain(s)
            <UsedBy users={users} />
          </dd>
          {r.description
            ? (
              <>
                <dt>Description</dt>
                <dd>{r.description}</dd>
              </>
            )
            : null}
        </dl>
      </div>
    </section>
  );
}

export type EndpointDetailProps = {
  email: string;
  r: EndpointRecord;
  users: EndpointUsers;
  values: EndpointFormValues;
  error?: EndpointFormError;
  notice?: string;
  secret?: string;
  test?: TestShown;
  /** A refused test (shown beside the test form). */
  testError?: string;
  /** A refused roll or delete. */
  actionError?: string;
};

export function EndpointDetailPage(props: EndpointDetailProps) {
  const { r } = props;
  return (
    <Layout title="Endpoints" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">
        Settings › <a href={ENDPOINTS_PATH}>Endpoints</a> › {r.name}
      </nav>
      <h1 class="domain-name">{r.name}</h1>
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}
      {props.actionError
        ? <Banner kind="error" id="action-error">{props.actionError}</Banner>
        : null}
      {props.secret ? <SecretPanel secret={props.secret} name={r.name} /> : null}
      <Summary r={r} users={props.users} />
      <TestSection r={r} test={props.test} error={props.testError} />
      <EditSection r={r} values={props.values} error={props.error} />
      {r.type === "webhook" ? <RollSection r={r} /> : null}
      <DeleteSection r={r} users={props.users} />
    </Layout>
  );
}
