/**
 * `/api/e2/domains`: the account's domains, read and written only through the tenant store, in
 * the shapes of the official SDK (schemas: routes/domains/schemas.ts).
 */
import type { Context } from "hono";
import { assertSameOrigin } from "../../auth/csrf.ts";
import {
  domainRestricted,
  requireScope,
  visibleDomainIds,
  visibleDomainNames,
} from "../../auth/api_keys/policy.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { parseDomainName } from "../../lib/domain_name.ts";
import {
  DEFAULT_MAIL_SETTINGS,
  DnsChecker,
  type DnsCheckerOptions,
  type DnsCheckScope,
  dnsPlan,
  type DnsResolver,
  type MailSettings,
  type RecordCheck,
} from "../../lib/dns.ts";
import { HttpError, jsonResponse, validationError } from "../../lib/errors.ts";
import { NO_RETRY, quotaReached } from "../refusals.ts";
import {
  DomainExistsError,
  DomainHasSubdomainsError,
  DomainLimitError,
  type DomainRecord,
  filterName,
  filterNamesOf,
  SUBDOMAINS_NAMED,
} from "../../store/domains/store.ts";
import type { TenantStore } from "../../store/tenant.ts";
import { DomainHasAddressesError } from "../../store/endpoints/record.ts";
import { setCatchAll } from "../email_addresses/actions.ts";
import { type DomainAddressFacts, domainAddressFacts } from "../email_addresses/domain_stats.ts";
import {
  createDomainBody,
  type DomainCreateResponse,
  domainCreateResponse,
  type DomainDeleteResponse,
  domainDeleteResponse,
  domainIdParams,
  type DomainListItem,
  type DomainListResponse,
  domainListResponse,
  type DomainRetrieveResponse,
  domainRetrieveResponse,
  type DomainUpdateResponse,
  domainUpdateResponse,
  listDomainsQuery,
  retrieveDomainQuery,
  updateDomainBody,
} from "./schemas.ts";
import type { RouteRegistry } from "../registry.ts";
import { DEFAULT_PAGE_SIZE } from "../query.ts";

export type DomainRouteOptions = {
  resolver: DnsResolver;
  mail?: MailSettings;
  /** The app's clock (ms since the epoch): timestamps and the DNS answer cache. */
  clock?: () => number;
  /** Bounds and cache of the DNS checks (lib/dns.ts DNS_CHECK_LIMITS by default). */
  dnsLimits?: Omit<DnsCheckerOptions, "resolver" | "clock">;
};

/** At most this many domains are checked at once for `GET /domains?check=true`. */
const LIST_CHECK_CONCURRENCY = 10;

/**
 * The share of the request's remaining time that a check's DNS lookups may use: when it is
 * spent, lookups still running are cancelled and reported on their records, and the rest of the
 * time is left for writing the results, so a slow resolver yields a 200, not the deadline's 500.
 */
const CHECK_BUDGET_SHARE = 0.6;

/**
 * The scope `check=true` needs: a check writes (status, `lastDnsCheck`, a verified name's claim),
 * so a `domains:read` key may read a domain but not check it (issue 20).
 */
const CHECK_SCOPE = "domains:write";

/** The SDK retries 409s unless told not to; a name conflict does not resolve by retrying. */

const stats = (r: DomainRecord, x: DomainAddressFacts) => ({
  activeEmailAddresses: x.activeEmailAddresses,
  hasCatchAll: r.isCatchAllEnabled,
  totalEmailAddresses: x.totalEmailAddresses,
});

/**
 * The fields list items and retrieve share, taken one by one (no internal field leaks); `x`:
 * the address counts and catch-all endpoint (routes/email_addresses/domain_stats.ts).
 */
function baseView(r: DomainRecord, x: DomainAddressFacts) {
  return {
    id: r.id,
    canReceiveEmails: r.canReceiveEmails,
    catchAllEndpointId: r.catchAllEndpointId,
    createdAt: r.createdAt,
    domain: r.domain,
    domainProvider: r.domainProvider,
    hasMxRecords: r.hasMxRecords,
    isCatchAllEnabled: r.isCatchAllEnabled,
    lastDnsCheck: r.lastDnsCheck,
    lastSesCheck: r.lastSesCheck,
    mailFromDomain: r.mailFromDomain,
    mailFromDomainStatus: r.mailFromDomainStatus,
    mailFromDomainVerifiedAt: r.mailFromDomainVerifiedAt,
    providerConfidence: r.providerConfidence,
    receiveDmarcEmails: r.receiveDmarcEmails,
    status: r.status,
    updatedAt: r.updatedAt,
    userId: r.userId,
    catchAllEndpoint: x.catchAllEndpoint,
  };
}

/** SES-style identity status for `sesStatus`: this server's TXT verification plays SES's part. */
const SES_STATUS = { pending: "Pending", verified: "Success", failed: "Failed" } as const;

type Check = { record: DomainRecord; results: RecordCheck[]; checkedAt: string };

function checkView(check: Check) {
  const byKind = new Map(check.results.map((r) => [r.kind, r]));
  const required = check.record.dnsRecords.filter((d) => d.isRequired);
  return {
    dnsRecords: check.record.dnsRecords.map((d) => {
      const r = byKind.get(d.kind);
      return {
        isVerified: r?.isVerified ?? false,
        name: d.name,
        type: d.type,
        value: d.value,
        ...(r?.error ? { error: r.error } : {}),
      };
    }),
    isFullyVerified: check.record.status === "verified" &&
      required.every((d) => byKind.get(d.kind)?.isVerified === true),
    lastChecked: check.checkedAt,
    sesStatus: SES_STATUS[check.record.status],
  };
}

function listItem(r: DomainRecord, x: DomainAddressFacts, check?: Check): DomainListItem {
  return {
    ...baseView(r, x),
    stats: stats(r, x),
    ...(check ? { verificationCheck: checkView(check) } : {}),
  };
}

function retrieveView(
  r: DomainRecord,
  x: DomainAddressFacts,
  check?: Check,
): DomainRetrieveResponse {
  const spf = r.dnsRecords.find((d) => d.kind === "spf");
  const dmarc = r.dnsRecords.find((d) => d.kind === "dmarc");
  return {
    ...baseView(r, x),
    dnsRecords: r.dnsRecords.map((d) => ({
      id: d.id,
      createdAt: d.createdAt,
      domainId: r.id,
      isRequired: d.isRequired,
      isVerified: d.isVerified,
      lastChecked: d.lastChecked,
      name: d.name,
      recordType: d.type,
      value: d.value,
    })),
    stats: {
      activeEmailAddresses: x.activeEmailAddresses,
      emailsLast24h: 0,
      emailsLast30d: 0,
      emailsLast7d: 0,
      totalEmailAddresses: x.totalEmailAddresses,
    },
    authRecommendations: {
      ...(spf ? { spf: { name: spf.name, value: spf.value, description: spf.description } } : {}),
      ...(dmarc
        ? { dmarc: { name: dmarc.name, value: dmarc.value, description: dmarc.description } }
        : {}),
    },
    inheritsFromParent: r.inheritsFromParent,
    parentDomain: r.parentDomain,
    ...(check
      ? {
        verificationCheck: {
          ...checkView(check),
          // No DKIM or custom MAIL FROM in this server: reported as not set up.
          dkimStatus: "NotStarted",
          dkimTokens: [],
          dkimVerified: false,
          mailFromVerified: false,
        },
      }
      : {}),
  };
}

function createView(r: DomainRecord): DomainCreateResponse {
  return {
    id: r.id,
    canReceiveEmails: r.canReceiveEmails,
    createdAt: r.createdAt,
    dnsRecords: r.dnsRecords.map((d) => ({
      isRequired: d.isRequired,
      name: d.name,
      type: d.type,
      value: d.value,
      description: d.description,
    })),
    domain: r.domain,
    domainProvider: r.domainProvider,
    hasMxRecords: r.hasMxRecords,
    providerConfidence: r.providerConfidence,
    status: r.status,
    updatedAt: r.updatedAt,
    message: r.inheritsFromParent
      ? `Domain added and verified through its parent ${r.parentDomain}. ` +
        "Publish the MX record to receive email."
      : "Domain added. Publish the DNS records, then check them with " +
        `GET /api/e2/domains/${r.id}?check=true.`,
    ...(r.parentDomain ? { parentDomain: r.parentDomain } : {}),
  };
}

/**
 * Checks one domain's records through the request's scope and stores the outcome. When no
 * lookup could finish (the check ran out of time or room), nothing is written: the record is
 * reported as it stands, each record with its error.
 */
async function runCheck(
  store: TenantStore,
  scope: DnsCheckScope,
  r: DomainRecord,
  now: () => number,
): Promise<Check> {
  const results = await scope.check(r.dnsRecords);
  if (results.every((x) => x.cancelled)) {
    return { record: r, results, checkedAt: new Date(now()).toISOString() };
  }
  return await store.domains.applyCheck(r.id, results);
}

/**
 * Maps `f` over `items` with at most `limit` calls in flight; keeps the order. Once `signal`
 * aborts no further call starts, and it rejects with the signal's reason.
 */
async function mapLimited<T, U>(
  items: T[],
  limit: number,
  f: (t: T) => Promise<U>,
  signal?: AbortSignal,
) {
  const out: U[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      signal?.throwIfAborted();
      const i = next++;
      out[i] = await f(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * Runs `work` with a DNS check scope for this request: its lookups stop when the request ends,
 * its deadline passes or its client goes away, and by `CHECK_BUDGET_SHARE` of the remaining time
 * at the latest. `work` gets the deadline's signal too, to start no further writes once the
 * request's answer has been given.
 *
 * `check=true` is state-changing (it writes the results and starts lookups): a key needs
 * CHECK_SCOPE (403 INSUFFICIENT_SCOPE otherwise, before any lookup), and a request
 * authenticated by a session cookie must come from this site: 403 CROSS_SITE_REQUEST otherwise,
 * as for a cross-site POST. Every check (the list's, the retrieve's, the dashboard's through
 * `DomainActions.check`) starts here, so this is where that rule is enforced.
 */
async function withCheckScope<T>(
  c: Context<AppEnv>,
  checker: DnsChecker,
  work: (scope: DnsCheckScope, deadlineSignal: AbortSignal | undefined) => Promise<T>,
): Promise<T> {
  requireScope(c, CHECK_SCOPE);
  if (c.get("principal").method === "session") {
    assertSameOrigin(c.req.raw, { stateChanging: true });
  }
  const deadline = c.get("deadline") as AppEnv["Variables"]["deadline"] | undefined;
  const budgetMs = Math.floor((deadline?.remainingMs() ?? 10_000) * CHECK_BUDGET_SHARE);
  const budget = new AbortController();
  const timer = setTimeout(
    () => budget.abort(new DOMException("The check's time budget is spent.", "TimeoutError")),
    budgetMs,
  );
  try {
    // Not c.req.raw.signal: reading it makes Deno.serve print a (non-JSON) warning line, and the
    // deadline's signal already fires when the request has its answer.
    const signal = AbortSignal.any([budget.signal, ...(deadline ? [deadline.signal] : [])]);
    return await work(checker.scope(signal), deadline?.signal);
  } finally {
    clearTimeout(timer);
  }
}

const store = (c: Context<AppEnv>) => c.get("store");

/**
 * A key restricted to some domains (auth/api_keys/policy.ts) sees only those: any other id answers
 * exactly like a nonexistent one (the same NotFound the store throws).
 */
function visible(c: Context<AppEnv>, id: string): string {
  const ids = visibleDomainIds(c.get("principal"));
  if (ids && !ids.has(id)) throw new Deno.errors.NotFound("No such domain");
  return id;
}

/** The list for a key restricted to `ids`: those domains matching the filter, newest first. */
async function restrictedList(
  tenant: TenantStore,
  ids: ReadonlySet<string>,
  filter: Parameters<TenantStore["domains"]["list"]>[0],
  page: { limit: number; offset: number },
): Promise<{ data: DomainRecord[]; total: number }> {
  const wanted = filterName(filter);
  const found = await mapLimited([...ids], 10, async (id) => {
    try {
      return [await tenant.domains.get(id)];
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw err;
    }
  });
  const matching = found.flat()
    .filter((r) => filterNamesOf(r).includes(wanted))
    .sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
  return {
    data: matching.slice(page.offset, page.offset + page.limit),
    total: matching.length,
  };
}

/**
 * Adding, checking and deleting a domain with the API's rules and messages: the API handlers
 * below and the dashboard (routes/domains/pages.tsx) both call these, so there is one
 * copy of the logic. Failures are the API's HttpErrors.
 */
export type DomainActions = {
  /** Validates the name and adds it (400/403/409 as `POST /api/e2/domains`). */
  add(store: TenantStore, input: string): Promise<DomainRecord>;
  /** Looks the domain's records up and stores the outcome (as `GET …/:id?check=true`). */
  check(c: Context<AppEnv>, id: string): Promise<Check>;
  /**
   * Deletes it (409 while it has subdomains in this account, as `DELETE …/:id`, naming only
   * those the request's principal may see).
   */
  remove(c: Context<AppEnv>, id: string): Promise<DomainRecord>;
};

/**
 * " (a.example, b.example and 3 others)": the subdomains in the way that the principal may see
 * (auth/api_keys/policy.ts), the rest only counted; "" when it may see none of them.
 */
function subdomainList(c: Context<AppEnv>, err: DomainHasSubdomainsError): string {
  const { names, others } = visibleDomainNames(c.get("principal"), err.below, SUBDOMAINS_NAMED);
  if (names.length === 0) return "";
  return ` (${names.join(", ")}${others > 0 ? ` and ${others} other(s)` : ""})`;
}

function domainActions(checker: DnsChecker, mail: MailSettings, clock: () => number) {
  const actions: DomainActions = {
    async add(tenant, input) {
      const parsed = parseDomainName(input);
      if (!parsed.ok) throw validationError([{ path: "domain", message: parsed.problem }]);
      const { name, ancestors } = parsed.value;
      try {
        return await tenant.domains.create({
          domain: name,
          ancestors,
          plan: ({ domain, token, inherited }) => dnsPlan(domain, token, inherited, mail),
        });
      } catch (err) {
        if (err instanceof DomainExistsError) {
          throw err.owner === "own"
            ? new HttpError(409, `The domain ${name} is already in your account.`, {
              code: "DOMAIN_EXISTS",
            }, NO_RETRY)
            : new HttpError(409, `The domain ${name} is already registered.`, {
              code: "DOMAIN_ALREADY_REGISTERED",
            }, NO_RETRY);
        }
        if (err instanceof DomainLimitError) {
          throw quotaReached("domains", err.max);
        }
        throw err;
      }
    },
    check: (c, id) =>
      withCheckScope(c, checker, async (scope) => {
        const record = await store(c).domains.get(id);
        return await runCheck(store(c), scope, record, clock);
      }),
    async remove(c, id) {
      try {
        return await store(c).domains.delete(id);
      } catch (err) {
        if (err instanceof DomainHasSubdomainsError) {
          throw new HttpError(
            409,
            `The domain still has ${err.total} subdomain(s)${
              subdomainList(c, err)
            }; delete them first.`,
            { code: "DOMAIN_HAS_SUBDOMAINS" },
            NO_RETRY,
          );
        }
        if (err instanceof DomainHasAddressesError) {
          throw new HttpError(
            409,
            `The domain still has ${err.count} email address(es); delete them first.`,
            { code: "DOMAIN_HAS_EMAIL_ADDRESSES", emailAddresses: err.count },
            NO_RETRY,
          );
        }
        throw err;
      }
    },
  };
  return actions;
}

/** What the route registrations share. */
type RouteDeps = {
  checker: DnsChecker;
  clock: () => number;
  actions: DomainActions;
  tags: string[];
};

/** Registers the five domain operations; returns the actions they share with the dashboard. */
export function registerDomainRoutes(
  registry: RouteRegistry,
  opts: DomainRouteOptions,
): DomainActions {
  const clock = opts.clock ?? Date.now;
  const checker = new DnsChecker({ ...opts.dnsLimits, resolver: opts.resolver, clock });
  const mail = opts.mail ?? DEFAULT_MAIL_SETTINGS;
  const actions = domainActions(checker, mail, clock);
  const deps: RouteDeps = { checker, clock, actions, tags: ["Domains"] };
  // In this order: the OpenAPI document lists the operations as they are registered.
  registerListAndCreate(registry, deps);
  registerRetrieve(registry, deps);
  registerUpdateAndDelete(registry, deps);
  return actions;
}

/** `GET` and `POST /api/e2/domains`. */
function registerListAndCreate(
  registry: RouteRegistry,
  { checker, clock, actions, tags }: RouteDeps,
): void {
  registry.add({
    method: "get",
    path: "/api/e2/domains",
    operationId: "listDomains",
    scope: "domains:read",
    summary: "List domains",
    description: "The account's domains, newest first, with optional filters. " +
      "`pagination.hasMore` is `offset + data.length < total`. `check=true` re-checks the DNS " +
      "records of the page's domains and stores the results, so it needs the `domains:write` " +
      "scope: a key without it gets 403 `INSUFFICIENT_SCOPE` before any lookup (a plain list " +
      "needs only `domains:read`).",
    tags,
    query: listDomainsQuery,
    responses: {
      200: { description: "One page of domains.", schema: domainListResponse, name: "DomainList" },
    },
    // 403: `check=true` by a key without domains:write, or with a session cookie from another
    // site.
    errors: [400, 403],
    handler: async (c, { query: q }) => {
      const limit = q.limit ?? DEFAULT_PAGE_SIZE;
      const offset = q.offset ?? 0;
      const filter = { status: q.status, canReceive: q.canReceive };
      const restrictedTo = visibleDomainIds(c.get("principal"));
      const read = () =>
        restrictedTo
          ? restrictedList(store(c), restrictedTo, filter, { limit, offset })
          : store(c).domains.list(filter, { limit, offset });
      const page = (items: DomainListItem[], pageLength: number, total: number) => {
        const body: DomainListResponse = {
          data: items,
          pagination: { limit, offset, total, hasMore: offset + pageLength < total },
        };
        return jsonResponse(body);
      };
      if (q.check !== "true") {
        const { data, total } = await read();
        const facts = await domainAddressFacts(store(c), data);
        return page(data.map((r) => listItem(r, facts(r))), data.length, total);
      }
      // The page is read inside the check's scope: its access rules come before any read.
      return await withCheckScope(c, checker, async (scope, deadlineSignal) => {
        const { data, total } = await read();
        const facts = await domainAddressFacts(store(c), data);
        const items = (await mapLimited(data, LIST_CHECK_CONCURRENCY, async (r) => {
          try {
            const check = await runCheck(store(c), scope, r, clock);
            return [listItem(check.record, facts(r), check)];
          } catch (err) {
            // Deleted by another request since the page was read: it is no longer listed.
            if (err instanceof Deno.errors.NotFound) return [];
            throw err;
          }
        }, deadlineSignal)).flat();
        return page(items, data.length, total);
      });
    },
  });

  registry.add({
    method: "post",
    path: "/api/e2/domains",
    operationId: "createDomain",
    scope: "domains:write",
    summary: "Add a domain",
    description: "Adds a domain and returns the DNS records to publish. A subdomain of a " +
      "domain this account has verified is verified at once. 409 when the domain is already " +
      "in this account, and with code `DOMAIN_ALREADY_REGISTERED` when another account has " +
      "verified it or a domain above it (a name only pending elsewhere can be added: the " +
      "first account to verify it owns it).",
    tags,
    body: createDomainBody,
    bodyName: "DomainCreateParams",
    responses: {
      201: { description: "The new domain.", schema: domainCreateResponse, name: "DomainCreate" },
    },
    errors: [400, 403, 409, 413, 415],
    handler: async (c, { body }) => {
      if (visibleDomainIds(c.get("principal"))) throw domainRestricted();
      return jsonResponse(createView(await actions.add(store(c), body.domain)), 201);
    },
  });
}

/** `GET /api/e2/domains/{id}`, with `check=true`. */
function registerRetrieve(registry: RouteRegistry, { actions, tags }: RouteDeps): void {
  registry.add({
    method: "get",
    path: "/api/e2/domains/:id",
    operationId: "retrieveDomain",
    scope: "domains:read",
    summary: "Get a domain",
    description: "The domain with its DNS records. `?check=true` looks the records up first and " +
      "updates the status (pending -> verified | failed); each record's result is in " +
      "`verificationCheck`, a failed lookup included. DNS answers are cached for 30 s; a " +
      "lookup that cannot finish within the request's time is reported on its record. " +
      "`check=true` stores the results, so it needs the `domains:write` scope: a key without " +
      "it gets 403 `INSUFFICIENT_SCOPE` before any lookup (a plain get needs only " +
      "`domains:read`).",
    tags,
    params: domainIdParams,
    query: retrieveDomainQuery,
    responses: {
      200: { description: "The domain.", schema: domainRetrieveResponse, name: "DomainRetrieve" },
    },
    // 403: `check=true` by a key without domains:write, or with a session cookie from another
    // site.
    errors: [400, 403, 404],
    handler: async (c, { params, query }) => {
      visible(c, params.id);
      if (query.check !== "true") {
        const r = await store(c).domains.get(params.id);
        return jsonResponse(retrieveView(r, (await domainAddressFacts(store(c), [r]))(r)));
      }
      const check = await actions.check(c, params.id);
      const facts = await domainAddressFacts(store(c), [check.record]);
      return jsonResponse(retrieveView(check.record, facts(check.record), check));
    },
  });
}

/** `PATCH` and `DELETE /api/e2/domains/{id}`. */
/** The SDK's DomainUpdateResponse, with the catch-all endpoint described (issue 23). */
async function updateView(tenant: TenantStore, r: DomainRecord): Promise<DomainUpdateResponse> {
  const { catchAllEndpoint } = (await domainAddressFacts(tenant, [r]))(r);
  return {
    id: r.id,
    catchAllEndpointId: r.catchAllEndpointId,
    domain: r.domain,
    isCatchAllEnabled: r.isCatchAllEnabled,
    status: r.status,
    updatedAt: r.updatedAt,
    catchAllEndpoint,
  };
}

function registerUpdateAndDelete(registry: RouteRegistry, { actions, tags }: RouteDeps): void {
  registry.add({
    method: "patch",
    path: "/api/e2/domains/:id",
    operationId: "updateDomain",
    scope: "domains:write",
    summary: "Update catch-all settings",
    description: "Turns catch-all on (with the endpoint that receives it) or off. The domain " +
      "must be verified (400 otherwise). `catchAllEndpointId` must be an endpoint of this " +
      "account (400 naming it otherwise, the same for another account's id as for none).",
    tags,
    params: domainIdParams,
    body: updateDomainBody,
    bodyName: "DomainUpdateParams",
    responses: {
      200: {
        description: "The updated settings.",
        schema: domainUpdateResponse,
        name: "DomainUpdate",
      },
    },
    errors: [400, 404, 413, 415],
    audit: ["domain.updated"],
    handler: async (c, { params, body }) => {
      visible(c, params.id);
      // The same action as the domain page's catch-all form (routes/email_addresses/actions.ts).
      const r = await setCatchAll(c, params.id, body);
      return jsonResponse(await updateView(store(c), r));
    },
  });

  registry.add({
    method: "delete",
    path: "/api/e2/domains/:id",
    operationId: "deleteDomain",
    scope: "domains:write",
    summary: "Delete a domain",
    description: "Deletes the domain and its DNS record list. 409 while it has subdomains in " +
      "this account: delete those first. The message names those the key may see (a key " +
      "restricted to some domains learns only how many others there are). 409 " +
      "`DOMAIN_HAS_EMAIL_ADDRESSES` (naming their number) while it has email addresses: " +
      "delete them first.",
    tags,
    params: domainIdParams,
    responses: {
      200: { description: "What was deleted.", schema: domainDeleteResponse, name: "DomainDelete" },
    },
    errors: [400, 404, 409],
    handler: async (c, { params }) => {
      visible(c, params.id);
      const r = await actions.remove(c, params.id);
      const body: DomainDeleteResponse = {
        success: true,
        message: `Domain ${r.domain} deleted.`,
        deletedResources: {
          blockedEmails: 0,
          dnsRecords: r.dnsRecords.length,
          domain: r.domain,
          emailAddresses: 0,
          sesIdentity: false,
          sesReceiptRules: false,
        },
      };
      return jsonResponse(body);
    },
  });
}
