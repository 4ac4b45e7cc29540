/**
 * Refusals that the resource routes (domains, endpoints, e-mail addresses) answer alike: one
 * definition of "not worth retrying" and of the 403 at an account's quota.
 */
import { HttpError } from "../lib/errors.ts";

/** The SDK's hint that retrying the same request cannot succeed. */
export const NO_RETRY = { "x-should-retry": "false" };

/** Each quota: what to delete instead, the setting that raises it, the error's code. */
const QUOTAS = {
  domains: { unused: "domains", setting: "MAX_DOMAINS_PER_ACCOUNT", code: "DOMAIN_LIMIT_REACHED" },
  endpoints: {
    unused: "endpoints",
    setting: "MAX_ENDPOINTS_PER_ACCOUNT",
    code: "ENDPOINT_LIMIT_REACHED",
  },
  "email addresses": {
    unused: "addresses",
    setting: "MAX_EMAIL_ADDRESSES_PER_ACCOUNT",
    code: "EMAIL_ADDRESS_LIMIT_REACHED",
  },
};

/** 403 at the account's quota of `max` `items`, naming what to delete or the setting to raise. */
export function quotaReached(items: keyof typeof QUOTAS, max: number): HttpError {
  const q = QUOTAS[items];
  return new HttpError(
    403,
    `This account has reached its limit of ${max} ${items}. Delete unused ${q.unused} first, ` +
      `or ask the operator to raise ${q.setting}.`,
    { code: q.code, max },
    NO_RETRY,
  );
}
