/**
 * `/api/e2/endpoints`: where an account's received mail would be delivered (issue 23), in the
 * shapes of the official SDK (schemas: routes/endpoints/schemas.ts), read and written only
 * through the tenant store (store/endpoints/store.ts).
 *
 * Secrets: a webhook endpoint's signing secret is answered once, by create and by
 * `POST …/{id}/secret/roll`; no other answer carries it. Custom header values (often a
 * receiver's credential) are shown by create, retrieve and update, and masked in lists.
 * A key restricted to some domains (auth/api_keys/policy.ts) sees every endpoint, but in an
 * endpoint's `associatedEmails`, `catchAllDomains` and a delete's `cleanup` only the addresses
 * and domains of its domains; it may not delete, re-configure (config, isActive, webhookFormat)
 * or roll the secret of one that other domains' addresses or catch-alls use (409
 * ENDPOINT_IN_USE naming nothing: store/endpoints/record.ts EndpointUsedElsewhereError).
 */
import type { Context } from "hono";
import { visibleDomainIds } from "../../auth/api_keys/policy.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { jsonResponse } from "../../lib/errors.ts";
import type { EndpointRecord, EndpointType } from "../../store/endpoints/store.ts";
import type { TenantStore } from "../../store/tenant.ts";
import type { RouteRegistry } from "../registry.ts";
import { DEFAULT_PAGE_SIZE } from "../query.ts";
import {
  type EndpointActions,
  endpointActions,
  type EndpointRouteOptions,
  parseEndpointConfig,
} from "./actions.ts";
import { endpointExamples } from "./examples.ts";
import {
  createEndpointBody,
  type EndpointCreateResponse,
  endpointCreateResponse,
  endpointDeleteResponse,
  endpointIdParams,
  type EndpointListResponse,
  endpointListResponse,
  type EndpointRetrieveResponse,
  endpointRetrieveResponse,
  endpointSecretResponse,
  endpointUpdateResponse,
  type EndpointView,
  listEndpointsQuery,
  updateEndpointBody,
} from "./schemas.ts";
import { registerEndpointTest } from "./test_operation.ts";

export type { EndpointRouteOptions };
export { parseEndpointConfig };

const MASK = "********";
/** What a roll answers (and the dashboard says) beside the new secret. */
export const SECRET_ROLLED =
  "New signing secret issued; it is shown this once. The old one no longer signs.";

const store = (c: Context<AppEnv>): TenantStore => c.get("store");

/** The config as answered: webhook header values masked in lists. */
function configView(r: EndpointRecord, maskHeaders: boolean): unknown {
  if (r.type !== "webhook") return { ...r.config };
  const { url, headers, timeout, retryAttempts } = r.config as {
    url: string;
    headers: Record<string, string>;
    timeout: number;
    retryAttempts: number;
  };
  const shown = maskHeaders
    ? Object.fromEntries(Object.keys(headers).map((k) => [k, MASK]))
    : { ...headers };
  return { url, headers: shown, timeout, retryAttempts };
}

/** The fields every view shares, one by one (the secret is never among them). */
export function endpointView(r: EndpointRecord, maskHeaders = false): EndpointView {
  return {
    id: r.id,
    config: configView(r, maskHeaders),
    createdAt: r.createdAt,
    description: r.description,
    groupEmails: r.type === "email_group" ? [...(r.config as { emails: string[] }).emails] : null,
    isActive: r.isActive,
    name: r.name,
    type: r.type,
    updatedAt: r.updatedAt,
    userId: r.userId,
    webhookFormat: r.webhookFormat,
  };
}

const deliveryStats = (r: EndpointRecord) => ({ ...r.stats });

/** Registers the endpoint operations, in the order the document lists them. */
export function registerEndpointRoutes(registry: RouteRegistry, opts: EndpointRouteOptions): void {
  const tags = ["Endpoints"];
  const actions = endpointActions(opts);
  registerListAndCreate(registry, actions, tags);
  registerRetrieveAndUpdate(registry, actions, tags);
  registerDelete(registry, actions, tags);
  registerEndpointTest(registry, actions, tags);
  registerSecretRoll(registry, actions, tags);
}

function listed(
  all: EndpointRecord[],
  q: { type?: EndpointType; active?: "true" | "false"; search?: string; sortBy?: string },
): EndpointRecord[] {
  const search = q.search?.trim().toLowerCase();
  const matching = all.filter((r) =>
    (q.type === undefined || r.type === q.type) &&
    (q.active === undefined || r.isActive === (q.active === "true")) &&
    (!search || r.name.toLowerCase().includes(search))
  );
  const newest = (a: EndpointRecord, b: EndpointRecord) =>
    b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id);
  matching.sort(newest);
  if (q.sortBy === "oldest") matching.reverse();
  return matching;
}

function registerListAndCreate(
  registry: RouteRegistry,
  actions: EndpointActions,
  tags: string[],
): void {
  registry.add({
    method: "get",
    path: "/api/e2/endpoints",
    operationId: "listEndpoints",
    scope: "endpoints:read",
    summary: "List endpoints",
    description: "The account's endpoints (newest first unless `sortBy=oldest`), filtered by " +
      "type, active state and a case-insensitive name search. Webhook header values are " +
      "masked here; retrieve shows them. No answer but create and roll shows a signing secret.",
    tags,
    query: listEndpointsQuery,
    responses: {
      200: { description: "One page.", schema: endpointListResponse, name: "EndpointList" },
    },
    errors: [400],
    examples: endpointExamples.listEndpoints,
    handler: async (c, { query: q }) => {
      const limit = q.limit ?? DEFAULT_PAGE_SIZE, offset = q.offset ?? 0;
      const all = listed(await store(c).endpoints.all(), q);
      const page = all.slice(offset, offset + limit);
      const body: EndpointListResponse = {
        data: page.map((r) => ({ ...endpointView(r, true), deliveryStats: deliveryStats(r) })),
        pagination: {
          limit,
          offset,
          total: all.length,
          hasMore: offset + page.length < all.length,
        },
      };
      return jsonResponse(body);
    },
  });

  registry.add({
    method: "post",
    path: "/api/e2/endpoints",
    operationId: "createEndpoint",
    scope: "endpoints:write",
    summary: "Create an endpoint",
    description: "A webhook (`config.url` must be `https://`; header names and values are " +
      "checked, and none may override Host, Authorization, Content-Length, Content-Type, " +
      "Transfer-Encoding, hop-by-hop or `webhook-*` headers), an email forward or an email " +
      "group. A webhook's answer carries `secret`, its Standard Webhooks signing secret " +
      "(`whsec_…`): shown this once (roll it with `POST …/{id}/secret/roll`). 403 " +
      "`ENDPOINT_LIMIT_REACHED` at MAX_ENDPOINTS_PER_ACCOUNT.",
    tags,
    body: createEndpointBody,
    bodyName: "EndpointCreateParams",
    responses: {
      201: {
        description: "The new endpoint.",
        schema: endpointCreateResponse,
        name: "EndpointCreate",
      },
    },
    errors: [400, 403, 413, 415],
    audit: ["endpoint.created"],
    examples: endpointExamples.createEndpoint,
    handler: async (c, { body }) => {
      const { record: r, secret } = await actions.create(store(c), body);
      const view: EndpointCreateResponse = {
        ...endpointView(r),
        deliveryStats: deliveryStats(r),
        ...(secret ? { secret } : {}),
      };
      return jsonResponse(view, 201);
    },
  });
}

/** The endpoint's addresses and catch-all domains the principal may see. */
async function referencesOf(c: Context<AppEnv>, r: EndpointRecord) {
  const tenant = store(c);
  const refs = await tenant.endpoints.references(r.id);
  const ids = visibleDomainIds(c.get("principal"));
  const addresses = (await tenant.emailAddresses.getMany(refs.addressIds))
    .filter((a) => !ids || ids.has(a.domainId));
  const domains = [...(await tenant.emailAddresses.domains(refs.domainIds)).values()]
    .filter((d) => !ids || ids.has(d.id));
  return { addresses, domains };
}

function registerRetrieveAndUpdate(
  registry: RouteRegistry,
  actions: EndpointActions,
  tags: string[],
): void {
  registry.add({
    method: "get",
    path: "/api/e2/endpoints/:id",
    operationId: "retrieveEndpoint",
    scope: "endpoints:read",
    summary: "Get an endpoint",
    description: "The endpoint with the addresses routed to it, the domains whose catch-all " +
      "it is, its delivery counts and its last deliveries (tests: this server receives no mail).",
    tags,
    params: endpointIdParams,
    responses: {
      200: {
        description: "The endpoint.",
        schema: endpointRetrieveResponse,
        name: "EndpointRetrieve",
      },
    },
    errors: [400, 404],
    examples: endpointExamples.retrieveEndpoint,
    handler: async (c, { params }) => {
      const r = await store(c).endpoints.get(params.id);
      const { addresses, domains } = await referencesOf(c, r);
      const body: EndpointRetrieveResponse = {
        ...endpointView(r),
        associatedEmails: addresses.map((a) => ({
          id: a.id,
          address: a.address,
          createdAt: a.createdAt,
          isActive: a.isActive,
        })),
        catchAllDomains: domains.map((d) => ({ id: d.id, domain: d.domain, status: d.status })),
        deliveryStats: deliveryStats(r),
        recentDeliveries: r.recentDeliveries.map((d) => ({ ...d })),
      };
      return jsonResponse(body);
    },
  });

  registry.add({
    method: "put",
    path: "/api/e2/endpoints/:id",
    operationId: "updateEndpoint",
    scope: "endpoints:write",
    summary: "Update an endpoint",
    description: "Changes the name, description, active state, webhook format or config (a " +
      "whole config of the endpoint's own type, checked as on create). Absent fields stay. " +
      "A key restricted to some domains may change the config, active state or format only " +
      "of an endpoint that no address or catch-all of another domain uses: else 409 " +
      "`ENDPOINT_IN_USE`, naming nothing (it would redirect mail the key cannot see); the " +
      "name and description stay free.",
    tags,
    params: endpointIdParams,
    body: updateEndpointBody,
    bodyName: "EndpointUpdateParams",
    responses: {
      200: { description: "The endpoint.", schema: endpointUpdateResponse, name: "EndpointUpdate" },
    },
    errors: [400, 404, 409, 413, 415],
    audit: ["endpoint.updated"],
    examples: endpointExamples.updateEndpoint,
    handler: async (c, { params, body }) => {
      const ids = visibleDomainIds(c.get("principal"));
      return jsonResponse(endpointView(await actions.update(store(c), params.id, body, ids)));
    },
  });
}

function registerDelete(registry: RouteRegistry, actions: EndpointActions, tags: string[]): void {
  registry.add({
    method: "delete",
    path: "/api/e2/endpoints/:id",
    operationId: "deleteEndpoint",
    scope: "endpoints:write",
    summary: "Delete an endpoint",
    description: "Deletes the endpoint and, in the same commit, detaches what uses it: its " +
      "addresses become store-only (`endpointId` and `webhookId` null), its domains lose " +
      "catch-all. `cleanup` lists them. 409 `ENDPOINT_IN_USE` when that is more than 400 " +
      "addresses or 8 domains (one commit's limits): re-route some first. A key restricted " +
      "to some domains gets the same 409 when an address or catch-all of another domain uses " +
      "the endpoint (it would change what the key cannot see), and counts only its domains'.",
    tags,
    params: endpointIdParams,
    responses: {
      200: {
        description: "What was changed.",
        schema: endpointDeleteResponse,
        name: "EndpointDelete",
      },
    },
    errors: [400, 404, 409],
    audit: ["endpoint.deleted"],
    examples: endpointExamples.deleteEndpoint,
    handler: async (c, { params }) => {
      const ids = visibleDomainIds(c.get("principal"));
      const out = await actions.remove(store(c), params.id, ids);
      const addresses = out.addresses.filter((a) => !ids || ids.has(a.domainId));
      const domains = out.domains.filter((d) => !ids || ids.has(d.id));
      return jsonResponse({
        message: `Endpoint ${out.record.name} deleted.`,
        cleanup: {
          deliveriesDeleted: out.record.recentDeliveries.length,
          domains: domains.map((d) => d.domain),
          domainsUpdated: domains.length,
          emailAddresses: addresses.map((a) => a.address),
          emailAddressesUpdated: addresses.length,
          groupEmailsDeleted: out.record.type === "email_group"
            ? (out.record.config as { emails: string[] }).emails.length
            : 0,
        },
      });
    },
  });
}

function registerSecretRoll(
  registry: RouteRegistry,
  actions: EndpointActions,
  tags: string[],
): void {
  registry.add({
    method: "post",
    path: "/api/e2/endpoints/:id/secret/roll",
    operationId: "rollEndpointSecret",
    scope: "endpoints:write",
    sudo: true,
    summary: "Roll a webhook's signing secret",
    description: "Issues a new Standard Webhooks signing secret for a webhook endpoint and " +
      "answers it once; the old one stops signing at once. A dashboard session must be in " +
      "sudo mode (like other secret-issuing operations); a key needs `endpoints:write`. 400 " +
      "`NOT_A_WEBHOOK` for other types. 409 `ENDPOINT_IN_USE` for a key restricted to some " +
      "domains when an address or catch-all of another domain uses the endpoint.",
    tags,
    params: endpointIdParams,
    responses: {
      200: {
        description: "The new secret.",
        schema: endpointSecretResponse,
        name: "EndpointSecret",
      },
    },
    errors: [400, 403, 404, 409],
    audit: ["endpoint.secret_rolled"],
    examples: endpointExamples.rollEndpointSecret,
    handler: async (c, { params }) => {
      const ids = visibleDomainIds(c.get("principal"));
      const { record, secret } = await actions.rollSecret(store(c), params.id, ids);
      return jsonResponse({ id: record.id, secret, message: SECRET_ROLLED });
    },
  });
}
