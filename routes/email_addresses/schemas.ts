/**
 * Zod schemas of the e-mail-addresses resource: requests as the routes validate them, responses
 * as the official SDK (npm `inboundemail` 0.20.0, src/resources/email-addresses.ts) declares them.
 */
import { z } from "zod";
import { idParams, offsetPageFields, resourceId } from "../query.ts";

/** RFC 5321 dot-atom local part (no quoted strings), at most 64 characters. */
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

/**
 * `local@domain` with the domain part lower-cased (the route then requires it to be the named
 * domain's name), or a problem to report on `address`.
 */
export function normaliseAddress(
  input: string,
): { ok: true; address: string; domain: string } | { ok: false; problem: string } {
  const at = input.lastIndexOf("@");
  if (at <= 0 || at === input.length - 1) return { ok: false, problem: "must be local@domain" };
  const local = input.slice(0, at), domain = input.slice(at + 1).toLowerCase();
  if (local.length > 64) return { ok: false, problem: "local part must be at most 64 characters" };
  if (!LOCAL_PART.test(local)) {
    return {
      ok: false,
      problem: "local part must be an RFC 5321 dot-atom (letters, digits, " +
        "!#$%&'*+/=?^_`{|}~- and single dots inside)",
    };
  }
  return { ok: true, address: `${local}@${domain}`, domain };
}

const id = resourceId();

export const createEmailAddressBody = z.strictObject({
  address: z.string().max(320, "must be at most 320 characters")
    .describe("The address; its domain part must be the name of the domain `domainId` names."),
  domainId: id.describe("A domain of this account (dom_…)."),
  endpointId: id.optional().describe("Route to this endpoint (ep_…)."),
  webhookId: id.optional().describe("Route to this webhook endpoint (ep_… of type webhook)."),
  isActive: z.boolean().optional().describe("Default true."),
});

export const updateEmailAddressBody = z.strictObject({
  endpointId: id.nullable().optional().describe("Route to this endpoint; null: store only."),
  webhookId: id.nullable().optional().describe("Route to this webhook endpoint; null: none."),
  isActive: z.boolean().optional(),
});

export const listEmailAddressesQuery = z.object({
  ...offsetPageFields(),
  domainId: id.optional().describe("Only the addresses of this domain."),
  isActive: z.enum(["true", "false"]).optional(),
  isReceiptRuleConfigured: z.enum(["true", "false"]).optional()
    .describe("true: active addresses on verified domains."),
});

export const emailAddressIdParams = idParams("The address's id (ea_…).");

export const emailAddressView = z.object({
  id: z.string(),
  address: z.string(),
  createdAt: z.string(),
  domain: z.object({ id: z.string(), name: z.string(), status: z.string() }),
  domainId: z.string(),
  endpointId: z.string().nullable(),
  isActive: z.boolean(),
  isReceiptRuleConfigured: z.boolean(),
  receiptRuleName: z.string().nullable(),
  routing: z.object({
    id: z.string().nullable(),
    isActive: z.boolean(),
    name: z.string().nullable(),
    type: z.enum(["webhook", "endpoint", "none"]),
    config: z.unknown().optional(),
  }),
  updatedAt: z.string(),
  userId: z.string(),
  webhookId: z.string().nullable(),
  warning: z.string().optional(),
});

export const emailAddressListResponse = z.object({
  data: z.array(emailAddressView),
  pagination: z.object({
    hasMore: z.boolean(),
    limit: z.number(),
    offset: z.number(),
    total: z.number(),
  }),
});

export const emailAddressDeleteResponse = z.object({
  cleanup: z.object({
    domain: z.string(),
    emailAddress: z.string(),
    sesRuleUpdated: z.boolean(),
    warning: z.string().optional(),
  }),
  message: z.string(),
});

export type EmailAddressView = z.output<typeof emailAddressView>;
