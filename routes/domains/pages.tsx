/**
 * Settings > Domains: the account's domains with their status and receiving badges, adding one,
 * its DNS records (each value selectable, with a copy button when JavaScript runs), a DNS check
 * with each record's result, and deleting it. Every rule and message is the API's: the handlers
 * call the same DomainActions (routes/domains/operations.ts) as `POST/GET/DELETE /api/e2/domains`. Every form
 * is Post/Redirect/Get; a check's results reach the page after the redirect through the one-time
 * flash (store/flash.ts).
 */
import type { Context, Hono } from "hono";
import type { AppEnv } from "../../auth/middleware.ts";
import type { Clock } from "../../lib/clock.ts";
import { HttpError } from "../../lib/errors.ts";
import type { RecordCheck } from "../../lib/dns.ts";
import type { DomainRecord, DomainStatus, StoredDnsRecord } from "../../store/domains/store.ts";
import type { DomainActions } from "./operations.ts";
import { formatDate } from "../dashboard/format.ts";
import type { DashboardKit } from "../dashboard/kit.ts";
import { Banner, Layout } from "../dashboard/layout.tsx";
import {
  AddressesSection,
  type AddressFormState,
  type AddressSectionProps,
  type DomainPageRenderer,
  loadAddressSection,
} from "../email_addresses/pages.tsx";

export const DOMAINS_PATH = "/settings/domains";
export const DOMAINS_PAGE_SIZE = 20;

const DOMAIN_ID = /^dom_[0-9A-Za-z_-]{1,64}$/;

/** What a domain POST hands to the page after its redirect. */
type DomainFlash = { notice?: string; check?: { results: RecordCheck[]; checkedAt: string } };

const STATUS_LABEL: Record<DomainStatus, string> = {
  pending: "Pending verification",
  verified: "Verified",
  failed: "Verification failed",
};

const SUBDOMAIN_RULE = "A domain that still has subdomains in this account cannot be deleted: " +
  "delete its subdomains first. Subdomains of a verified domain are verified at once. Nor can " +
  "one that still has email addresses: delete them first.";

function When(props: { iso: string | null; none: string }) {
  if (props.iso === null) return <span class="muted">{props.none}</span>;
  return <time datetime={props.iso} title={formatDate(props.iso)}>{formatDate(props.iso)}</time>;
}

function StatusBadge(props: { status: DomainStatus }) {
  return <span class={`flag ${props.status}`}>{STATUS_LABEL[props.status]}</span>;
}

function ReceivingBadge(props: { on: boolean }) {
  return props.on
    ? <span class="flag good">Receiving email</span>
    : <span class="flag off">Not receiving</span>;
}

function AddDomainForm(props: { value?: string }) {
  return (
    <section class="card" aria-labelledby="add-title">
      <h2 id="add-title">Add a domain</h2>
      <form method="post" action={DOMAINS_PATH}>
        <div class="row">
          <div class="field grow">
            <label for="domain">Domain name</label>
            <input
              type="text"
              id="domain"
              name="domain"
              required
              maxlength={253}
              autocomplete="off"
              spellcheck={false}
              placeholder="mail.example.com"
              aria-describedby="domain-hint"
              value={props.value ?? ""}
            />
          </div>
          <div class="field">
            <button type="submit">Add domain</button>
          </div>
        </div>
        <p class="hint" id="domain-hint">
          You get the DNS records to publish. A subdomain of a domain you have verified is verified
          at once.
        </p>
      </form>
    </section>
  );
}

export type DomainsListProps = {
  email: string;
  domains: DomainRecord[];
  total: number;
  page: number;
  notice?: string;
  error?: string;
  formValue?: string;
};

function DomainRow(props: { d: DomainRecord }) {
  const d = props.d;
  return (
    <tr data-domain-id={d.id}>
      <td data-label="Domain">
        <a class="domain-name" href={`${DOMAINS_PATH}/${d.id}`}>{d.domain}</a>
        {d.parentDomain ? <p class="advice">Subdomain of {d.parentDomain}</p> : null}
      </td>
      <td data-label="Status">
        <StatusBadge status={d.status} />
      </td>
      <td data-label="Receiving">
        <ReceivingBadge on={d.canReceiveEmails} />
      </td>
      <td data-label="Last check">
        <When iso={d.lastDnsCheck} none="Not checked yet" />
      </td>
      <td data-label="Added">
        <When iso={d.createdAt} none="" />
      </td>
    </tr>
  );
}

export function DomainsPage(props: DomainsListProps) {
  const pages = Math.max(1, Math.ceil(props.total / DOMAINS_PAGE_SIZE));
  const first = (props.page - 1) * DOMAINS_PAGE_SIZE;
  return (
    <Layout title="Domains" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">Settings › Domains</nav>
      <h1>Domains</h1>
      {props.notice ? <Banner kind="ok">{props.notice}</Banner> : null}
      {props.error ? <Banner kind="error">{props.error}</Banner> : null}
      <AddDomainForm value={props.formValue} />
      <section class="card" aria-labelledby="domains-title">
        <h2 id="domains-title">Your domains</h2>
        {props.total === 0 ? <p class="empty">No domains yet. Add one above.</p> : (
          <>
            <table>
              <caption>
                {props.domains.length === 0
                  ? `${props.total} domains; this page is past the last one.`
                  : `Domains ${first + 1}–${first + props.domains.length} of ${props.total}, ` +
                    "newest first."}
              </caption>
              <thead>
                <tr>
                  <th scope="col">Domain</th>
                  <th scope="col">Status</th>
                  <th scope="col">Receiving</th>
                  <th scope="col">Last check</th>
                  <th scope="col">Added</th>
                </tr>
              </thead>
              <tbody>
                {props.domains.map((d) => <DomainRow key={d.id} d={d} />)}
              </tbody>
            </table>
            {pages > 1
              ? (
                <nav class="pager" aria-label="Pages">
                  {props.page > 1
                    ? (
                      <a href={`${DOMAINS_PATH}?page=${Math.min(props.page - 1, pages)}`}>
                        ← Previous page
                      </a>
                    )
                    : <span></span>}
                  <span>Page {props.page} of {pages}</span>
                  {props.page < pages
                    ? <a href={`${DOMAINS_PATH}?page=${props.page + 1}`}>Next page →</a>
                    : <span></span>}
                </nav>
              )
              : null}
          </>
        )}
      </section>
    </Layout>
  );
}

/** One DNS record: its name and value each selectable and copyable, and its last result. */
function RecordCard(props: { r: StoredDnsRecord; i: number; result?: RecordCheck }) {
  const { r, i } = props;
  const verified = props.result ? props.result.isVerified : r.isVerified;
  const error = props.result ? props.result.error : r.lastError;
  const checked = props.result !== undefined || r.lastChecked !== null;
  return (
    <li class="record" data-record={r.kind}>
      <h3 class="visually-hidden">{r.type} record {r.name}</h3>
      <dl>
        <dt>Type</dt>
        <dd>
          <code>{r.type}</code> {r.isRequired ? null : <span class="muted">(optional)</span>}
        </dd>
        <dt>Name</dt>
        <dd>
          <CopyLine id={`rec-${i}-name`} text={r.name} label={`${r.type} record name`} />
        </dd>
        <dt>Value</dt>
        <dd>
          <CopyLine id={`rec-${i}-value`} text={r.value} label={`${r.type} record value`} />
        </dd>
        <dt>Result</dt>
        <dd class="result">
          {!checked
            ? <span class="flag off">Not checked yet</span>
            : verified
            ? <span class="flag good">Found</span>
            : <span class="flag bad">Not found</span>}
          {checked && !verified && error ? <span class="advice">{error}</span> : null}
        </dd>
      </dl>
      <p class="advice">{r.description}</p>
    </li>
  );
}

function CopyLine(props: { id: string; text: string; label: string }) {
  return (
    <span class="copyline">
      <code id={props.id}>{props.text}</code>
      <button
        type="button"
        class="secondary"
        hidden
        data-copy-target={props.id}
        data-copy-label={props.label}
        data-status="copy-status"
        aria-label={`Copy ${props.label}`}
      >
        Copy
      </button>
    </span>
  );
}

export type DomainDetailProps = {
  email: string;
  domain: DomainRecord;
  check?: { results: RecordCheck[]; checkedAt: string };
  notice?: string;
  error?: string;
  /** Its email addresses and catch-all (routes/email_addresses/pages.tsx). */
  addresses?: AddressSectionProps;
  /** A refused address or catch-all form, re-shown in that section. */
  addressForm?: AddressFormState;
};

/**
 * The detail page's notice. After a DNS check it is green only when every record was found:
 * "0 of 4 records found" is a warning (issue 22), shown in the warning colours and announced
 * politely, since missing records right after adding a domain are expected, not a failure.
 */
function NoticeBanner(props: { notice: string; check?: DomainFlash["check"] }) {
  const missing = props.check?.results.some((r) => !r.isVerified) ?? false;
  if (!missing) return <Banner kind="ok">{props.notice}</Banner>;
  return <div class="alert warn" role="status">{props.notice}</div>;
}

export function DomainDetailPage(props: DomainDetailProps) {
  const d = props.domain;
  const byKind = new Map((props.check?.results ?? []).map((r) => [r.kind, r]));
  return (
    <Layout title="Domains" email={props.email}>
      <nav class="crumbs" aria-label="Breadcrumb">
        Settings › <a href={DOMAINS_PATH}>Domains</a> › {d.domain}
      </nav>
      <h1 class="domain-name">{d.domain}</h1>
      {props.notice ? <NoticeBanner notice={props.notice} check={props.check} /> : null}
      {props.error ? <Banner kind="error">{props.error}</Banner> : null}
      <section class="card" aria-labelledby="state-title">
        <h2 id="state-title">Status</h2>
        <p>
          <StatusBadge status={d.status} /> <ReceivingBadge on={d.canReceiveEmails} />
        </p>
        {d.inheritsFromParent && d.parentDomain
          ? <p class="hint">Verified through its parent domain {d.parentDomain}.</p>
          : null}
        <p class="hint">
          Last check: <When iso={d.lastDnsCheck} none="never" />
        </p>
        <form method="post" action={`${DOMAINS_PATH}/${d.id}/check`}>
          <button type="submit">Check DNS records now</button>
        </form>
      </section>
      <section class="card" aria-labelledby="records-title">
        <h2 id="records-title">DNS records to publish</h2>
        <p class="hint">
          Add these at your DNS provider, then run a check. Changes can take a while to be visible.
        </p>
        <p id="copy-status" class="hint" role="status" aria-live="polite"></p>
        <ul class="records" role="list">
          {d.dnsRecords.map((r, i) => (
            <RecordCard key={r.id} r={r} i={i} result={byKind.get(r.kind)} />
          ))}
        </ul>
      </section>
      {props.addresses ? <AddressesSection {...props.addresses} /> : null}
      <section class="card" aria-labelledby="delete-title">
        <h2 id="delete-title">Delete this domain</h2>
        <p class="hint" id="delete-rule">{SUBDOMAIN_RULE}</p>
        <details class="delete popover">
          <summary>Delete {d.domain}…</summary>
          <form method="post" action={`${DOMAINS_PATH}/${d.id}/delete`} class="panel">
            <p>
              Delete <strong>{d.domain}</strong>{" "}
              and its DNS record list? Its name becomes free for other accounts.
            </p>
            <button type="submit" class="danger" aria-describedby="delete-rule">
              Delete domain {d.domain} now
            </button>
          </form>
        </details>
      </section>
    </Layout>
  );
}

/** `?page=` as a whole page number from 1 (anything else is page 1). */
function pageNumber(raw: string | undefined): number {
  const n = Number(raw ?? "1");
  return Number.isSafeInteger(n) && n >= 1 && n <= 1_000_000 ? n : 1;
}

/** The API's 400 names its problem in `details`: "Domain name <problem>." for a person. */
function problemOf(err: unknown): string | null {
  if (!(err instanceof HttpError) || err.status !== 400) return null;
  const details = err.extra.details;
  if (!Array.isArray(details) || details.length === 0) return null;
  const first: unknown = details[0];
  if (typeof first !== "object" || first === null || !("message" in first)) return null;
  const message = String(first.message);
  return `Domain name: ${message.charAt(0).toLowerCase()}${message.slice(1)}`.replace(/\.?$/, ".");
}

function domainId(raw: string): string {
  if (!DOMAIN_ID.test(raw)) throw new HttpError(404, "No such domain.");
  return raw;
}

export type DomainPagesDeps = {
  /** The domain rules the API uses (routes/domains/operations.ts): the pages call the same ones. */
  actions: DomainActions;
  clock: Clock;
  kit: DashboardKit;
};

/**
 * Registers the Domains pages on the dashboard app (after its session middleware); returns the
 * domain page's renderer, for the address forms on it (routes/email_addresses/pages.tsx).
 */
export function registerDomainPages(
  app: Hono<AppEnv>,
  deps: DomainPagesDeps,
): DomainPageRenderer {
  const { kit } = deps;
  app.get(DOMAINS_PATH, async (c) => {
    const flash = await takeFlash(c);
    return listPage(c, deps, { notice: flash?.notice });
  });
  app.post(DOMAINS_PATH, kit.sameOrigin, kit.formLimit, (c) => addDomain(c, deps));
  app.get(`${DOMAINS_PATH}/:id`, async (c) => {
    const id = domainId(c.req.param("id"));
    const flash = await takeFlash(c);
    return detailPage(c, deps, id, {
      notice: flash?.notice,
      ...(flash?.check ? { check: flash.check } : {}),
    });
  });
  app.post(`${DOMAINS_PATH}/:id/check`, kit.sameOrigin, kit.formLimit, (c) => {
    return checkDomain(c, deps, domainId(c.req.param("id")));
  });
  app.post(`${DOMAINS_PATH}/:id/delete`, kit.sameOrigin, kit.formLimit, (c) => {
    return deleteDomain(c, deps, domainId(c.req.param("id")));
  });
  return (c, id, extra, status, headers) => detailPage(c, deps, id, extra, status, headers);
}

/** The list page at `?page=`, with `extra` (a notice, an error, the refused name). */
async function listPage(
  c: Context<AppEnv>,
  deps: DomainPagesDeps,
  extra: Partial<DomainsListProps>,
  status = 200,
  headers: HeadersInit = {},
): Promise<Response> {
  const page = pageNumber(c.req.query("page"));
  const store = c.get("store");
  const [user, { data, total }] = await Promise.all([
    store.user(),
    store.domains.list({}, {
      limit: DOMAINS_PAGE_SIZE,
      offset: (page - 1) * DOMAINS_PAGE_SIZE,
    }),
  ]);
  return deps.kit.page(
    <DomainsPage email={user.email} domains={data} total={total} page={page} {...extra} />,
    status,
    headers,
  );
}

/** The domain's page; the list with a 404 when the account has no such domain. */
async function detailPage(
  c: Context<AppEnv>,
  deps: DomainPagesDeps,
  id: string,
  extra: Partial<DomainDetailProps>,
  status = 200,
  headers: HeadersInit = {},
): Promise<Response> {
  const store = c.get("store");
  let domain: DomainRecord;
  try {
    domain = await store.domains.get(id);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      return listPage(c, deps, { error: "No such domain in this account." }, 404);
    }
    throw err;
  }
  const [user, addresses] = await Promise.all([
    store.user(),
    loadAddressSection(store, domain, extra.addressForm),
  ]);
  return deps.kit.page(
    <DomainDetailPage email={user.email} domain={domain} addresses={addresses} {...extra} />,
    status,
    headers,
  );
}

async function takeFlash(c: Context<AppEnv>): Promise<DomainFlash | null> {
  const id = c.req.query("flash");
  return id ? await c.get("store").flash.take<DomainFlash>(id) : null;
}

async function redirectWithFlash(
  c: Context<AppEnv>,
  kit: DashboardKit,
  to: string,
  flash: DomainFlash,
): Promise<Response> {
  const id = await c.get("store").flash.put(flash);
  return kit.redirect(`${to}?flash=${id}`);
}

async function addDomain(c: Context<AppEnv>, deps: DomainPagesDeps): Promise<Response> {
  const { kit } = deps;
  const form = await kit.formFields(c);
  const input = (form.domain ?? "").trim();
  try {
    const record = await deps.actions.add(c.get("store"), input);
    const notice = record.inheritsFromParent
      ? `Added ${record.domain}: verified through ${record.parentDomain}. ` +
        "Publish the MX record to receive email."
      : `Added ${record.domain}. Publish the DNS records below, then run a check.`;
    return await redirectWithFlash(c, kit, `${DOMAINS_PATH}/${record.id}`, { notice });
  } catch (err) {
    const e = kit.errorInfo(err);
    return listPage(
      c,
      deps,
      { error: problemOf(err) ?? e.message, formValue: input },
      e.status,
      e.headers,
    );
  }
}

/** A DNS check: its summary and each record's result reach the page through the flash. */
async function checkDomain(
  c: Context<AppEnv>,
  deps: DomainPagesDeps,
  id: string,
): Promise<Response> {
  try {
    const check = await deps.actions.check(c, id);
    const required = check.record.dnsRecords.filter((r) => r.isRequired);
    const found = check.results.filter((r) => r.isVerified).length;
    const missing = required.filter((r) =>
      !check.results.some((x) => x.kind === r.kind && x.isVerified)
    ).length;
    const notice = `Checked ${check.record.domain}: ${found} of ${check.results.length} ` +
      `records found. Status: ${STATUS_LABEL[check.record.status].toLowerCase()}.` +
      (missing > 0 ? ` ${missing} required record(s) still missing.` : "");
    return await redirectWithFlash(c, deps.kit, `${DOMAINS_PATH}/${id}`, {
      notice,
      check: {
        results: check.results.map((r) => ({
          kind: r.kind,
          isVerified: r.isVerified,
          ...(r.error ? { error: r.error } : {}),
        })),
        checkedAt: check.checkedAt,
      },
    });
  } catch (err) {
    return await refused(c, deps, id, err);
  }
}

async function deleteDomain(
  c: Context<AppEnv>,
  deps: DomainPagesDeps,
  id: string,
): Promise<Response> {
  try {
    const r = await deps.actions.remove(c, id);
    return await redirectWithFlash(c, deps.kit, DOMAINS_PATH, {
      notice: `Domain ${r.domain} deleted.`,
    });
  } catch (err) {
    return await refused(c, deps, id, err);
  }
}

/** A check or delete refused: the list (404) for a domain gone, else its page with the error. */
function refused(
  c: Context<AppEnv>,
  deps: DomainPagesDeps,
  id: string,
  err: unknown,
): Promise<Response> {
  if (err instanceof Deno.errors.NotFound) {
    return listPage(c, deps, { error: "No such domain in this account." }, 404);
  }
  const e = deps.kit.errorInfo(err);
  return detailPage(c, deps, id, { error: e.message }, e.status, e.headers);
}
