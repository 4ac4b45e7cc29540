/**
 * Zod schemas of the endpoints resource: requests as the routes validate them, responses as the
 * official SDK (npm `inboundemail` 0.20.0, src/resources/endpoints.ts) declares them.
 *
 * Webhook headers: names are RFC 9110 tokens, values are tab and printable ASCII only (no CR, LF
 * or NUL: no header injection; and no byte the webhook client would refuse to send: the rule is
 * lib/webhooks/http1.ts isHeaderValue, used by both), at most MAX_HEADERS of them, and none may
 * override what the delivery itself sets or what routes the request: Host, Authorization,
 * Content-Length, Content-Type, Transfer-Encoding, the hop-by-hop headers, and the Standard
 * Webhooks `webhook-*` headers (the one rule: lib/webhooks/headers.ts headerNameProblem).
 */
import { z } from "zod";
import { idParams, offsetPageFields } from "../query.ts";
import { headerNameProblem } from "../../lib/webhooks/headers.ts";
import { isHeaderValue } from "../../lib/webhooks/http1.ts";

export const MAX_HEADERS = 20;
const MAX_HEADER_VALUE = 2048;

export const webhookHeaders = z.record(z.string(), z.string()).superRefine((h, ctx) => {
  const names = Object.keys(h);
  if (names.length > MAX_HEADERS) {
    ctx.addIssue({ code: "custom", message: `at most ${MAX_HEADERS} headers` });
  }
  const seen = new Set<string>();
  for (const name of names) {
    const problem = headerNameProblem(name);
    if (problem) ctx.addIssue({ code: "custom", path: [name], message: problem });
    if (seen.has(name.toLowerCase())) {
      ctx.addIssue({ code: "custom", path: [name], message: "is given twice" });
    }
    seen.add(name.toLowerCase());
    if (h[name].length > MAX_HEADER_VALUE || !isHeaderValue(h[name])) {
      ctx.addIssue({
        code: "custom",
        path: [name],
        message: `must be at most ${MAX_HEADER_VALUE} characters with no CR, LF, other ` +
          "control or non-ASCII character (tab and printable ASCII only)",
      });
    }
  }
}).describe("Extra headers sent with each delivery (name -> value).");

/** A mailbox `local@domain`, lower-cased; 254 characters at most. */
export const emailField = z.string().max(254, "must be at most 254 characters")
  .regex(
    /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}$/,
    "must be an email address",
  )
  .transform((s) => s.toLowerCase());

export const webhookConfig = z.strictObject({
  url: z.string().max(2048, "must be at most 2048 characters")
    .describe("https:// URL the deliveries are POSTed to."),
  headers: webhookHeaders.optional(),
  timeout: z.number().int("must be a whole number").min(1, "must be at least 1")
    .max(60, "must be at most 60").optional().describe("Seconds per delivery (default 30)."),
  retryAttempts: z.number().int("must be a whole number").min(0, "must be at least 0")
    .max(10, "must be at most 10").optional().describe("Retries of a failed delivery (default 3)."),
});

export const emailConfig = z.strictObject({
  forwardTo: emailField.describe("Where mail is forwarded."),
  preserveHeaders: z.boolean().optional(),
});

export const emailGroupConfig = z.strictObject({
  emails: z.array(emailField).min(1, "must name at least one address")
    .max(50, "must name at most 50 addresses")
    .refine((a) => new Set(a).size === a.length, "must not repeat an address"),
  preserveHeaders: z.boolean().optional(),
});

export const endpointType = z.enum(["webhook", "email", "email_group"]);
export const webhookFormat = z.enum(["inbound", "discord", "slack"]);

const name = z.string().trim().min(1, "must not be empty").max(
  100,
  "must be at most 100 characters",
);
const description = z.string().max(500, "must be at most 500 characters");

/** The config is checked against `type` by the handler (a 400 naming `config.<field>`). */
export const createEndpointBody = z.strictObject({
  name,
  type: endpointType,
  description: description.optional(),
  config: z.record(z.string(), z.unknown()).describe(
    "webhook: { url, headers?, timeout?, retryAttempts? }; email: { forwardTo, " +
      "preserveHeaders? }; email_group: { emails, preserveHeaders? }.",
  ),
});

export const updateEndpointBody = z.strictObject({
  name: name.optional(),
  description: description.optional(),
  isActive: z.boolean().optional(),
  webhookFormat: webhookFormat.optional(),
  config: z.record(z.string(), z.unknown()).optional()
    .describe("A whole new config of the endpoint's type (the type cannot change)."),
});

export const listEndpointsQuery = z.object({
  ...offsetPageFields(),
  type: endpointType.optional().describe("Only endpoints of this type."),
  active: z.enum(["true", "false"]).optional().describe("Only active (true) or inactive (false)."),
  search: z.string().max(100).optional().describe("Only endpoints whose name contains this."),
  sortBy: z.enum(["newest", "oldest"]).optional().describe("By creation time (default newest)."),
});

export const endpointIdParams = idParams("The endpoint's id (ep_…).");

export const testEndpointBody = z.strictObject({
  overrideUrl: z.string().max(2048).optional()
    .describe("Deliver the test here instead (the same URL rules)."),
  webhookFormat: webhookFormat.optional().describe("Payload shape (default the endpoint's)."),
});

const deliveryStats = z.object({
  failed: z.number(),
  lastDelivery: z.string().nullable(),
  successful: z.number(),
  total: z.number(),
});

const endpointBase = z.object({
  id: z.string(),
  config: z.unknown(),
  createdAt: z.string(),
  description: z.string().nullable(),
  groupEmails: z.array(z.string()).nullable(),
  isActive: z.boolean(),
  name: z.string(),
  type: endpointType,
  updatedAt: z.string(),
  userId: z.string(),
  webhookFormat: webhookFormat.optional(),
});

export const endpointCreateResponse = endpointBase.extend({
  deliveryStats,
  secret: z.string().optional().describe(
    "Webhooks only: the Standard Webhooks signing secret (whsec_…), shown this once.",
  ),
});

export const endpointListResponse = z.object({
  data: z.array(endpointBase.extend({ deliveryStats })),
  pagination: z.object({
    hasMore: z.boolean(),
    limit: z.number(),
    offset: z.number(),
    total: z.number(),
  }),
});

export const endpointRetrieveResponse = endpointBase.extend({
  associatedEmails: z.array(z.object({
    id: z.string(),
    address: z.string(),
    createdAt: z.string().nullable(),
    isActive: z.boolean(),
  })),
  catchAllDomains: z.array(z.object({ id: z.string(), domain: z.string(), status: z.string() })),
  deliveryStats,
  recentDeliveries: z.array(z.object({
    id: z.string(),
    attempts: z.number(),
    createdAt: z.string().nullable(),
    deliveryType: z.string(),
    emailId: z.string().nullable(),
    lastAttemptAt: z.string().nullable(),
    responseData: z.unknown(),
    status: z.string(),
  })),
});

export const endpointUpdateResponse = endpointBase;

export const endpointDeleteResponse = z.object({
  cleanup: z.object({
    deliveriesDeleted: z.number(),
    domains: z.array(z.string()),
    domainsUpdated: z.number(),
    emailAddresses: z.array(z.string()),
    emailAddressesUpdated: z.number(),
    groupEmailsDeleted: z.number(),
  }),
  message: z.string(),
});

export const endpointTestResponse = z.object({
  message: z.string(),
  responseTime: z.number(),
  success: z.boolean(),
  error: z.string().optional(),
  responseBody: z.string().optional(),
  statusCode: z.number().optional(),
  testPayload: z.unknown().optional(),
  urlTested: z.string().optional(),
  webhookFormat: webhookFormat.optional(),
});

export const endpointSecretResponse = z.object({
  id: z.string(),
  secret: z.string().describe("The new signing secret (whsec_…), shown this once."),
  message: z.string(),
});

export type EndpointView = z.output<typeof endpointBase>;
export type EndpointCreateResponse = z.output<typeof endpointCreateResponse>;
export type EndpointListResponse = z.output<typeof endpointListResponse>;
export type EndpointRetrieveResponse = z.output<typeof endpointRetrieveResponse>;
export type EndpointDeleteResponse = z.output<typeof endpointDeleteResponse>;
export type EndpointTestResponse = z.output<typeof endpointTestResponse>;
