/**
 * Zod schemas of the domains resource: requests as the routes validate them, responses as the
 * official SDK (npm `inboundemail` 0.20.0, src/resources/domains.ts) declares them. Response
 * objects are built against these types, and the OpenAPI document is generated from them.
 *
 * Optional SDK fields whose type does not admit null (`parentDomain?: string` on create,
 * `mailFromDomain?: string`, …) are left out when this server has no value for them; every
 * field the SDK declares required, or nullable, is always present.
 */
import { z } from "zod";
import { idParams, offsetPageFields } from "../query.ts";

export const domainStatus = z.enum(["pending", "verified", "failed"]);

export const listDomainsQuery = z.object({
  ...offsetPageFields(),
  status: domainStatus.optional().describe("Only domains with this status."),
  canReceive: z.enum(["true", "false"]).transform((v) => v === "true").optional()
    .describe("Only domains that can (true) or cannot (false) receive email."),
  check: z.enum(["true", "false"]).optional()
    .describe("true: re-check the DNS records of every domain on the page first."),
});

export const retrieveDomainQuery = z.object({
  check: z.enum(["true", "false"]).optional()
    .describe("true: re-check the domain's DNS records before answering."),
});

export const domainIdParams = idParams("The domain's id (dom_…).");

/** Request bodies are strict: a field the route does not know is a 400 that names it. */
export const createDomainBody = z.strictObject({
  domain: z.string().max(1024, "must be at most 1024 characters")
    .describe("The domain name; internationalised names are converted to punycode."),
});

export const updateDomainBody = z.strictObject({
  isCatchAllEnabled: z.boolean().describe("Turn catch-all on or off."),
  catchAllEndpointId: z.string().min(1).max(200).nullable().optional()
    .describe("Endpoint that receives catch-all mail; required when enabling catch-all."),
}).superRefine((v, ctx) => {
  if (v.isCatchAllEnabled && !v.catchAllEndpointId) {
    ctx.addIssue({
      code: "custom",
      path: ["catchAllEndpointId"],
      message: "is required when isCatchAllEnabled is true",
    });
  }
});

const endpointRef = z.object({
  id: z.string(),
  isActive: z.boolean(),
  name: z.string(),
  type: z.string(),
});

const checkRecord = z.object({
  isVerified: z.boolean(),
  name: z.string(),
  type: z.string(),
  value: z.string(),
  error: z.string().optional(),
});

const listVerificationCheck = z.object({
  dnsRecords: z.array(checkRecord),
  isFullyVerified: z.boolean(),
  lastChecked: z.string(),
  sesStatus: z.string(),
});

const retrieveVerificationCheck = listVerificationCheck.extend({
  dkimStatus: z.string().optional(),
  dkimTokens: z.array(z.string()).optional(),
  dkimVerified: z.boolean().optional(),
  mailFromDomain: z.string().optional(),
  mailFromStatus: z.string().optional(),
  mailFromVerified: z.boolean().optional(),
});

/** Fields every full domain view shares (list items and retrieve). */
const domainBase = z.object({
  id: z.string(),
  canReceiveEmails: z.boolean(),
  catchAllEndpointId: z.string().nullable(),
  createdAt: z.string(),
  domain: z.string(),
  domainProvider: z.string().nullable(),
  hasMxRecords: z.boolean(),
  isCatchAllEnabled: z.boolean(),
  lastDnsCheck: z.string().nullable(),
  lastSesCheck: z.string().nullable(),
  mailFromDomain: z.string().nullable(),
  mailFromDomainStatus: z.string().nullable(),
  mailFromDomainVerifiedAt: z.string().nullable(),
  providerConfidence: z.string().nullable(),
  receiveDmarcEmails: z.boolean(),
  status: z.string(),
  updatedAt: z.string(),
  userId: z.string(),
  catchAllEndpoint: endpointRef.nullable().optional(),
});

export const domainListItem = domainBase.extend({
  stats: z.object({
    activeEmailAddresses: z.number(),
    hasCatchAll: z.boolean(),
    totalEmailAddresses: z.number(),
  }),
  verificationCheck: listVerificationCheck.optional(),
});

export const domainListResponse = z.object({
  data: z.array(domainListItem),
  pagination: z.object({
    hasMore: z.boolean(),
    limit: z.number(),
    offset: z.number(),
    total: z.number(),
  }),
});

const recommendation = z.object({ description: z.string(), name: z.string(), value: z.string() });

export const domainRetrieveResponse = domainBase.extend({
  dnsRecords: z.array(z.object({
    id: z.string(),
    createdAt: z.string(),
    domainId: z.string(),
    isRequired: z.boolean(),
    isVerified: z.boolean(),
    lastChecked: z.string().nullable(),
    name: z.string(),
    recordType: z.string(),
    value: z.string(),
  })),
  stats: z.object({
    activeEmailAddresses: z.number(),
    emailsLast24h: z.number(),
    emailsLast30d: z.number(),
    emailsLast7d: z.number(),
    totalEmailAddresses: z.number(),
  }),
  authRecommendations: z.object({
    dmarc: recommendation.optional(),
    spf: recommendation.optional(),
  }).optional(),
  inheritsFromParent: z.boolean().optional(),
  parentDomain: z.string().nullable().optional(),
  verificationCheck: retrieveVerificationCheck.optional(),
});

export const domainCreateResponse = z.object({
  id: z.string(),
  canReceiveEmails: z.boolean(),
  createdAt: z.string(),
  dnsRecords: z.array(z.object({
    isRequired: z.boolean(),
    name: z.string(),
    type: z.string(),
    value: z.string(),
    description: z.string().optional(),
  })),
  domain: z.string(),
  domainProvider: z.string().nullable(),
  hasMxRecords: z.boolean(),
  providerConfidence: z.string().nullable(),
  status: domainStatus,
  updatedAt: z.string(),
  dnsConflict: z.object({
    hasConflict: z.boolean(),
    message: z.string(),
    conflictType: z.enum(["mx", "cname", "both"]).optional(),
    existingRecords: z.array(z.object({ type: z.string(), value: z.string() })).optional(),
  }).optional(),
  mailFromDomain: z.string().optional(),
  mailFromDomainStatus: z.string().optional(),
  message: z.string().optional(),
  parentDomain: z.string().optional(),
});

export const domainUpdateResponse = z.object({
  id: z.string(),
  catchAllEndpointId: z.string().nullable(),
  domain: z.string(),
  isCatchAllEnabled: z.boolean(),
  status: z.string(),
  updatedAt: z.string(),
  catchAllEndpoint: endpointRef.nullable().optional(),
});

export const domainDeleteResponse = z.object({
  deletedResources: z.object({
    blockedEmails: z.number(),
    dnsRecords: z.number(),
    domain: z.string(),
    emailAddresses: z.number(),
    sesIdentity: z.boolean(),
    sesReceiptRules: z.boolean(),
  }),
  message: z.string(),
  success: z.boolean(),
});

export type DomainListItem = z.output<typeof domainListItem>;
export type DomainRetrieveResponse = z.output<typeof domainRetrieveResponse>;
export type DomainCreateResponse = z.output<typeof domainCreateResponse>;
export type DomainUpdateResponse = z.output<typeof domainUpdateResponse>;
export type DomainDeleteResponse = z.output<typeof domainDeleteResponse>;
export type DomainListResponse = z.output<typeof domainListResponse>;
