/**
 * The shapes of endpoint and e-mail-address records (issue 23), and the errors their stores
 * throw. A module of its own so that the endpoint store, the address store and the domain store
 * (a domain's catch-all names an endpoint) read them without importing one another.
 */

export type EndpointType = "webhook" | "email" | "email_group";
export const ENDPOINT_TYPES: readonly EndpointType[] = ["webhook", "email", "email_group"];
export type WebhookFormat = "inbound" | "discord" | "slack";

export type WebhookConfig = {
  url: string;
  /** Extra request headers (validated names and values: routes/endpoints/schemas.ts). */
  headers: Record<string, string>;
  /** Seconds a delivery may take (a test is capped lower: routes/endpoints/test_delivery.ts). */
  timeout: number;
  retryAttempts: number;
};
export type EmailConfig = { forwardTo: string; preserveHeaders: boolean };
export type EmailGroupConfig = { emails: string[]; preserveHeaders: boolean };
export type EndpointConfig = WebhookConfig | EmailConfig | EmailGroupConfig;

/** One delivery (today only tests) as `recentDeliveries` shows it. */
export type DeliveryRecord = {
  id: string;
  attempts: number;
  createdAt: string;
  deliveryType: string;
  emailId: string | null;
  lastAttemptAt: string | null;
  responseData: Record<string, string | number | boolean | null>;
  status: "success" | "failed";
};

export type DeliveryStats = {
  total: number;
  successful: number;
  failed: number;
  lastDelivery: string | null;
};

export type EndpointRecord = {
  id: string;
  userId: string;
  name: string;
  type: EndpointType;
  description: string | null;
  isActive: boolean;
  config: EndpointConfig;
  webhookFormat: WebhookFormat;
  /**
   * The Standard Webhooks signing secret (`whsec_…`) of a webhook endpoint, null for the others.
   * Readable because it must be (to sign), like the TOTP secret; no view, list or log shows it:
   * only the create and roll answers, once.
   */
  signingSecret: string | null;
  createdAt: string;
  updatedAt: string;
  stats: DeliveryStats;
  /** Newest first, at most RECENT_DELIVERIES. */
  recentDeliveries: DeliveryRecord[];
};

/** `recentDeliveries` keeps this many. */
export const RECENT_DELIVERIES = 10;

export type EmailAddressRecord = {
  id: string;
  userId: string;
  /** Normalised: the domain part lower-case, the local part as given. */
  address: string;
  domainId: string;
  /** At most one of these two is set; `webhookId` names a webhook endpoint. */
  endpointId: string | null;
  webhookId: string | null;
  isActive: boolean;
  createdAt: string;
  updatedAt: string;
};

/** The endpoint an address is routed to, whichever field names it. */
export const routedEndpointId = (r: Pick<EmailAddressRecord, "endpointId" | "webhookId">) =>
  r.endpointId ?? r.webhookId;

/** MAX_ENDPOINTS_PER_ACCOUNT and MAX_EMAIL_ADDRESSES_PER_ACCOUNT defaults. */
export const DEFAULT_MAX_ENDPOINTS = 50;
export const DEFAULT_MAX_EMAIL_ADDRESSES = 500;

/**
 * A reference in a request body (`domainId`, `endpointId`, `webhookId`, `catchAllEndpointId`)
 * names no object of this account: another account's id and an id that does not exist are the
 * same miss of the same key under the account's prefix, and answer the same.
 */
export class ReferenceNotFoundError extends Error {
  constructor(readonly field: string, readonly kind: "domain" | "endpoint") {
    super(`No such ${kind}`);
    this.name = "ReferenceNotFoundError";
  }
}

/** `webhookId` names an endpoint of this account that is not a webhook. */
export class NotAWebhookError extends Error {
  constructor(readonly field: string) {
    super("The endpoint is not a webhook");
    this.name = "NotAWebhookError";
  }
}

export class QuotaError extends Error {
  constructor(readonly kind: "endpoints" | "email addresses", readonly max: number) {
    super(`An account can hold at most ${max} ${kind}.`);
    this.name = "QuotaError";
  }
}

/** Deleting an endpoint whose cleanup would not fit in one commit (see the endpoint store). */
export class EndpointInUseError extends Error {
  constructor(readonly addresses: number, readonly domains: number) {
    super("Endpoint has too many references to detach in one commit");
    this.name = "EndpointInUseError";
  }
}

/**
 * Deleting an endpoint, changing where or how it delivers (config, isActive, webhookFormat) or
 * rolling its secret, for a caller restricted to some domains, when addresses or catch-alls of
 * other domains use it: that would change the mail of domains the caller may not see, so it
 * changes nothing.
 */
export class EndpointUsedElsewhereError extends Error {
  constructor() {
    super("Endpoint is used outside the caller's domains");
    this.name = "EndpointUsedElsewhereError";
  }
}

export class EmailAddressExistsError extends Error {
  constructor(readonly address: string) {
    super("Address already in this account");
    this.name = "EmailAddressExistsError";
  }
}

/** The address's domain part is not the name of the domain `domainId` names. */
export class AddressDomainMismatchError extends Error {
  constructor(readonly domain: string) {
    super("Address is not on the named domain");
    this.name = "AddressDomainMismatchError";
  }
}

/** Deleting a domain that still has addresses (store/domains/store.ts). */
export class DomainHasAddressesError extends Error {
  constructor(readonly count: number) {
    super("Domain still has email addresses");
    this.name = "DomainHasAddressesError";
  }
}
