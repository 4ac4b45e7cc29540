/**
 * `/api/e2/email-addresses`: the addresses that receive an account's mail and where each is
 * routed (issue 23), in the SDK's shapes (routes/email_addresses/schemas.ts), read and written
 * only through the tenant store (store/email_addresses/store.ts).
 *
 * References: `domainId`, `endpointId` and `webhookId` name objects of this account only. An id
 * of another account reads the same missing key under this account's prefix as an id that does
 * not exist, so both answer the same 400 naming the field (path ids: the same 404). A key
 * restricted to some domains (auth/api_keys/policy.ts) sees only the addresses of those: the
 * others answer 404 and are absent from lists and totals; naming another domain in a body is the
 * same 400 as naming none.
 *
 * `isReceiptRuleConfigured` is true exactly when the address is active and its domain verified
 * (this server has no SES receipt rules; `receiptRuleName` is always null).
 */
import type { Context } from "hono";
import { visibleDomainIds } from "../../auth/api_keys/policy.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { jsonResponse } from "../../lib/errors.ts";
import type { DomainRecord } from "../../store/domains/record.ts";
import type { EmailAddressRecord, EndpointRecord } from "../../store/endpoints/record.ts";
import type { TenantStore } from "../../store/tenant.ts";
import { emailAddressExamples } from "../endpoints/examples.ts";
import type { RouteRegistry } from "../registry.ts";
import { DEFAULT_PAGE_SIZE } from "../query.ts";
import { createAddress, deleteAddress, updateAddress, visibleAddress } from "./actions.ts";
import {
  createEmailAddressBody,
  emailAddressDeleteResponse,
  emailAddressIdParams,
  emailAddressListResponse,
  type EmailAddressView,
  emailAddressView,
  listEmailAddressesQuery,
  updateEmailAddressBody,
} from "./schemas.ts";

const store = (c: Context<AppEnv>): TenantStore => c.get("store");

/** Active on a verified domain: what `isReceiptRuleConfigured` means here. */
export const receiving = (a: EmailAddressRecord, d: DomainRecord | undefined) =>
  a.isActive && d?.status === "verified";

export function addressView(
  a: EmailAddressRecord,
  d: DomainRecord | undefined,
  e: EndpointRecord | undefined,
): EmailAddressView {
  const type = e ? (a.endpointId ? "endpoint" : "webhook") : "none";
  return {
    id: a.id,
    address: a.address,
    createdAt: a.createdAt,
    domain: {
      id: a.domainId,
      name: d?.domain ?? a.address.split("@").pop()!,
      status: d?.status ?? "unknown",
    },
    domainId: a.domainId,
    endpointId: a.endpointId,
    isActive: a.isActive,
    isReceiptRuleConfigured: receiving(a, d),
    receiptRuleName: null,
    routing: e
      ? { id: e.id, isActive: e.isActive, name: e.name, type }
      : { id: null, isActive: false, name: null, type: "none" },
    updatedAt: a.updatedAt,
    userId: a.userId,
    webhookId: a.webhookId,
  };
}

/** Views of `records`, with their domains and endpoints read in batches. */
async function views(
  tenant: TenantStore,
  records: EmailAddressRecord[],
): Promise<EmailAddressView[]> {
  const domains = await tenant.emailAddresses.domains(records.map((a) => a.domainId));
  const endpoints = await tenant.emailAddresses.endpoints(
    records.flatMap((a) => a.endpointId ?? a.webhookId ?? []),
  );
  return records.map((a) =>
    addressView(a, domains.get(a.domainId), endpoints.get(a.endpointId ?? a.webhookId ?? ""))
  );
}

function withWarning(v: EmailAddressView): EmailAddressView {
  if (v.domain.status === "verified") return v;
  return {
    ...v,
    warning: `The domain ${v.domain.name} is not verified yet: this address receives nothing ` +
      "until it is.",
  };
}

export function registerEmailAddressRoutes(registry: RouteRegistry): void {
  const tags = ["Email addresses"];
  registerList(registry, tags);
  registerCreate(registry, tags);
  registerRetrieveUpdateDelete(registry, tags);
}

function registerList(registry: RouteRegistry, tags: string[]): void {
  registry.add({
    method: "get",
    path: "/api/e2/email-addresses",
    operationId: "listEmailAddresses",
    scope: "email-addresses:read",
    summary: "List email addresses",
    description: "The account's addresses, newest first, optionally of one domain, active or " +
      "not, receiving or not (`isReceiptRuleConfigured`: active on a verified domain). A " +
      "`domainId` that names no domain of this account lists nothing.",
    tags,
    query: listEmailAddressesQuery,
    responses: {
      200: { description: "One page.", schema: emailAddressListResponse, name: "EmailAddressList" },
    },
    errors: [400],
    examples: emailAddressExamples.listEmailAddresses,
    handler: async (c, { query: q }) => {
      const limit = q.limit ?? DEFAULT_PAGE_SIZE, offset = q.offset ?? 0;
      const ids = visibleDomainIds(c.get("principal"));
      const hidden = q.domainId !== undefined && ids !== null && !ids.has(q.domainId);
      const all = hidden ? [] : await store(c).emailAddresses.all(q.domainId);
      const domains = await store(c).emailAddresses.domains(all.map((a) => a.domainId));
      const matching = all.filter((a) =>
        (!ids || ids.has(a.domainId)) &&
        (q.isActive === undefined || a.isActive === (q.isActive === "true")) &&
        (q.isReceiptRuleConfigured === undefined ||
          receiving(a, domains.get(a.domainId)) === (q.isReceiptRuleConfigured === "true"))
      ).sort((a, b) => b.createdAt.localeCompare(a.createdAt) || b.id.localeCompare(a.id));
      const page = matching.slice(offset, offset + limit);
      return jsonResponse({
        data: await views(store(c), page),
        pagination: {
          limit,
          offset,
          total: matching.length,
          hasMore: offset + page.length < matching.length,
        },
      });
    },
  });
}

function registerCreate(registry: RouteRegistry, tags: string[]): void {
  registry.add({
    method: "post",
    path: "/api/e2/email-addresses",
    operationId: "createEmailAddress",
    scope: "email-addresses:write",
    summary: "Add an email address",
    description: "Adds an address on one of the account's domains, optionally routed to an " +
      "endpoint (`endpointId`) or a webhook endpoint (`webhookId`), not both. The domain part " +
      "must be the domain's name (400 naming `address`); 409 `EMAIL_ADDRESS_EXISTS` when the " +
      "account has it; 403 `EMAIL_ADDRESS_LIMIT_REACHED` at MAX_EMAIL_ADDRESSES_PER_ACCOUNT. " +
      "`warning` says when the domain is not verified yet.",
    tags,
    body: createEmailAddressBody,
    bodyName: "EmailAddressCreateParams",
    responses: {
      201: { description: "The new address.", schema: emailAddressView, name: "EmailAddress" },
    },
    errors: [400, 403, 409, 413, 415],
    audit: ["email_address.created"],
    examples: emailAddressExamples.createEmailAddress,
    handler: async (c, { body }) => {
      const [view] = await views(store(c), [await createAddress(c, body)]);
      return jsonResponse(withWarning(view), 201);
    },
  });
}

function registerRetrieveUpdateDelete(registry: RouteRegistry, tags: string[]): void {
  registry.add({
    method: "get",
    path: "/api/e2/email-addresses/:id",
    operationId: "retrieveEmailAddress",
    scope: "email-addresses:read",
    summary: "Get an email address",
    description: "The address with its domain and routing.",
    tags,
    params: emailAddressIdParams,
    responses: {
      200: { description: "The address.", schema: emailAddressView, name: "EmailAddress" },
    },
    errors: [400, 404],
    examples: emailAddressExamples.retrieveEmailAddress,
    handler: async (c, { params }) => {
      const [view] = await views(store(c), [await visibleAddress(c, params.id)]);
      return jsonResponse(view);
    },
  });

  registry.add({
    method: "put",
    path: "/api/e2/email-addresses/:id",
    operationId: "updateEmailAddress",
    scope: "email-addresses:write",
    summary: "Update an email address",
    description: "Changes the routing (`endpointId` or `webhookId`, not both; null removes it: " +
      "the address is then store-only) or the active state. Absent fields stay.",
    tags,
    params: emailAddressIdParams,
    body: updateEmailAddressBody,
    bodyName: "EmailAddressUpdateParams",
    responses: {
      200: { description: "The address.", schema: emailAddressView, name: "EmailAddress" },
    },
    errors: [400, 404, 413, 415],
    audit: ["email_address.updated"],
    examples: emailAddressExamples.updateEmailAddress,
    handler: async (c, { params, body }) => {
      const [view] = await views(store(c), [await updateAddress(c, params.id, body)]);
      return jsonResponse(withWarning(view));
    },
  });

  registry.add({
    method: "delete",
    path: "/api/e2/email-addresses/:id",
    operationId: "deleteEmailAddress",
    scope: "email-addresses:write",
    summary: "Delete an email address",
    description: "Deletes the address (and its routing). This server keeps no receipt rules, " +
      "so `cleanup.sesRuleUpdated` is false.",
    tags,
    params: emailAddressIdParams,
    responses: {
      200: {
        description: "What was deleted.",
        schema: emailAddressDeleteResponse,
        name: "EmailAddressDelete",
      },
    },
    errors: [400, 404],
    audit: ["email_address.deleted"],
    examples: emailAddressExamples.deleteEmailAddress,
    handler: async (c, { params }) => {
      const r = await deleteAddress(c, params.id);
      return jsonResponse({
        message: `Email address ${r.address} deleted.`,
        cleanup: {
          domain: r.address.slice(r.address.lastIndexOf("@") + 1),
          emailAddress: r.address,
          sesRuleUpdated: false,
        },
      });
    },
  });
}
