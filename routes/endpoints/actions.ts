/**
 * What the endpoint operations do, once: the JSON API (routes/endpoints/operations.ts,
 * test_operation.ts) and the dashboard's forms (routes/endpoints/pages.tsx) both call these, so
 * a rule (the URL rules, the quota, the test throttle, the refused target, what a test records,
 * the in-use refusal) has one copy. Refusals are the API's HttpErrors (with its codes); the
 * dashboard shows them on the field they name (routes/endpoints/page_form.tsx `fieldRefusal`)
 * or as the form's message.
 */
import type { Context } from "hono";
import type { AppEnv } from "../../auth/middleware.ts";
import { HttpError, validationError } from "../../lib/errors.ts";
import { NO_RETRY, quotaReached } from "../refusals.ts";
import type { AddressResolver } from "../../lib/webhooks/deliver.ts";
import { newWebhookSecret } from "../../lib/webhooks/signature.ts";
import { validateWebhookUrl } from "../../lib/webhooks/target.ts";
import {
  type EndpointConfig,
  EndpointInUseError,
  type EndpointRecord,
  type EndpointType,
  EndpointUsedElsewhereError,
  QuotaError,
  type WebhookConfig,
  type WebhookFormat,
} from "../../store/endpoints/record.ts";
import type { EndpointCleanup } from "../../store/endpoints/store.ts";
import type { TenantStore } from "../../store/tenant.ts";
import {
  emailConfig,
  emailGroupConfig,
  type EndpointTestResponse,
  webhookConfig,
} from "./schemas.ts";
import { emailTestResponse, runWebhookTest, webhookTestResponse } from "./test_delivery.ts";

export type EndpointRouteOptions = {
  /** ALLOW_PRIVATE_WEBHOOK_TARGETS. */
  allowPrivate: boolean;
  /** Resolves webhook hosts for tests (lib/webhooks/deliver.ts systemAddressResolver). */
  resolver: AddressResolver;
  clock: () => number;
  /** Tests per account per minute (429 past it; DEFAULT_TESTS_PER_MINUTE). */
  testsPerMinute?: number;
};

/** Tests one account may run per minute by default. */
export const DEFAULT_TESTS_PER_MINUTE = 10;

/** The SDK retries 409s (and 403s of a limit) unless told not to. */

/** A create body (createEndpointBody), config not yet checked against its type. */
export type EndpointInput = {
  name: string;
  type: EndpointType;
  description?: string | null;
  config: unknown;
};

/** An update body (updateEndpointBody). */
export type EndpointChanges = {
  name?: string;
  description?: string | null;
  isActive?: boolean;
  webhookFormat?: WebhookFormat;
  config?: unknown;
};

export type EndpointActions = {
  /** 400 naming `config.<field>`, 403 ENDPOINT_LIMIT_REACHED; the secret of a webhook, once. */
  create(tenant: TenantStore, body: EndpointInput): Promise<CreatedEndpoint>;
  /**
   * The config checked against the endpoint's own type, as on create. 409 ENDPOINT_IN_USE when
   * `onlyDomains` (a restricted key) is given, the change is to config, isActive or
   * webhookFormat, and others' addresses or catch-alls use the endpoint.
   */
  update(
    tenant: TenantStore,
    id: string,
    body: EndpointChanges,
    onlyDomains?: ReadonlySet<string> | null,
  ): Promise<EndpointRecord>;
  /**
   * What was detached. 409 ENDPOINT_IN_USE past one commit's limits, or when `onlyDomains` (a
   * key restricted to some domains) is given and others' addresses or catch-alls use it.
   */
  remove(
    tenant: TenantStore,
    id: string,
    onlyDomains?: ReadonlySet<string> | null,
  ): Promise<EndpointCleanup>;
  /** 400 NOT_A_WEBHOOK for other types; the new secret, once. 409 as for `update`. */
  rollSecret(
    tenant: TenantStore,
    id: string,
    onlyDomains?: ReadonlySet<string> | null,
  ): Promise<{ record: EndpointRecord; secret: string }>;
  /**
   * One test: the URL rules (400 WEBHOOK_TARGET_NOT_ALLOWED), the account's throttle (429
   * ENDPOINT_TEST_THROTTLED), the delivery (a refused address: the same 400), then its record
   * and audit event in one commit (`recordTest`).
   */
  test(c: Context<AppEnv>, r: EndpointRecord, body: TestInput): Promise<EndpointTestResponse>;
};

export type CreatedEndpoint = { record: EndpointRecord; secret: string | null };
export type TestInput = { overrideUrl?: string; webhookFormat?: WebhookFormat };

/**
 * The body's `config` checked against `type`: a 400 naming `config.<field>` for a bad one, the
 * webhook URL checked by the SSRF guard's URL rules (lib/webhooks/target.ts).
 */
export function parseEndpointConfig(
  type: EndpointType,
  raw: unknown,
  allowPrivate: boolean,
): EndpointConfig {
  const schema = type === "webhook"
    ? webhookConfig
    : type === "email"
    ? emailConfig
    : emailGroupConfig;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw validationError(parsed.error.issues.map((i) => ({
      path: ["config", ...i.path.map(String)].join("."),
      message: i.message,
    })));
  }
  if (type === "webhook") {
    const w = parsed.data as {
      url: string;
      headers?: Record<string, string>;
      timeout?: number;
      retryAttempts?: number;
    };
    const problem = validateWebhookUrl(w.url, { allowPrivate });
    if (problem) throw validationError([{ path: "config.url", message: problem }]);
    return {
      url: w.url,
      headers: w.headers ?? {},
      timeout: w.timeout ?? 30,
      retryAttempts: w.retryAttempts ?? 3,
    };
  }
  const e = parsed.data as { preserveHeaders?: boolean };
  return { ...parsed.data, preserveHeaders: e.preserveHeaders ?? false } as EndpointConfig;
}

/** The store's refusals as the API answers them (the dashboard shows the same message). */
export function endpointRefusal(err: unknown): unknown {
  if (err instanceof QuotaError) {
    return quotaReached("endpoints", err.max);
  }
  if (err instanceof EndpointInUseError) {
    return new HttpError(
      409,
      `The endpoint is used by ${err.addresses} address(es) and ${err.domains} catch-all ` +
        "domain(s): more than one delete can detach (400 addresses, 8 domains). Route some of " +
        "them elsewhere first.",
      { code: "ENDPOINT_IN_USE", addresses: err.addresses, domains: err.domains },
      NO_RETRY,
    );
  }
  if (err instanceof EndpointUsedElsewhereError) {
    return new HttpError(
      409,
      "The endpoint is also used by addresses or catch-all domains this API key cannot see; " +
        "a key that sees every domain (or the dashboard) can delete it, change its config or " +
        "active state, or roll its secret.",
      { code: "ENDPOINT_IN_USE" },
      NO_RETRY,
    );
  }
  return err;
}

function targetNotAllowed(reason: string): HttpError {
  return new HttpError(400, `The webhook target is not allowed: ${reason}.`, {
    code: "WEBHOOK_TARGET_NOT_ALLOWED",
  });
}

async function admit(tenant: TenantStore, perMinute: number): Promise<void> {
  const { ok, retryAfter } = await tenant.endpoints.admitTest(perMinute);
  if (!ok) {
    throw new HttpError(
      429,
      `At most ${perMinute} endpoint tests a minute per account. Retry in ${retryAfter} s.`,
      { code: "ENDPOINT_TEST_THROTTLED" },
      { "Retry-After": String(retryAfter) },
    );
  }
}

async function testWebhook(
  tenant: TenantStore,
  r: EndpointRecord,
  body: TestInput,
  opts: EndpointRouteOptions,
): Promise<EndpointTestResponse> {
  const url = body.overrideUrl ?? (r.config as WebhookConfig).url;
  const problem = validateWebhookUrl(url, { allowPrivate: opts.allowPrivate });
  if (problem) throw targetNotAllowed(problem);
  await admit(tenant, opts.testsPerMinute ?? DEFAULT_TESTS_PER_MINUTE);
  const format = body.webhookFormat ?? r.webhookFormat;
  const now = new Date(opts.clock());
  const run = await runWebhookTest(r, url, format, {
    resolve: opts.resolver,
    allowPrivate: opts.allowPrivate,
    now,
  });
  if (run.outcome.kind === "refused") throw targetNotAllowed(run.outcome.reason);
  const answer = webhookTestResponse(run);
  const o = run.outcome;
  const statusCode = o.kind === "delivered" ? o.statusCode : null;
  await tenant.endpoints.recordTest(r.id, {
    attempts: 1,
    deliveryType: "webhook",
    emailId: null,
    lastAttemptAt: now.toISOString(),
    status: answer.success ? "success" : "failed",
    responseData: {
      test: true,
      statusCode,
      responseTime: o.responseTimeMs,
      error: answer.error ?? null,
    },
  }, { url: new URL(url).origin, webhookFormat: format, success: answer.success, statusCode });
  return answer;
}

/** The actions, bound to the options the endpoint operations run with (app.ts). */
export function endpointActions(opts: EndpointRouteOptions): EndpointActions {
  return {
    async create(tenant, body) {
      const config = parseEndpointConfig(body.type, body.config, opts.allowPrivate);
      const secret = body.type === "webhook" ? newWebhookSecret() : null;
      const record = await tenant.endpoints.create({
        name: body.name,
        type: body.type,
        description: body.description ?? null,
        config,
        signingSecret: secret,
      }).catch((err) => {
        throw endpointRefusal(err);
      });
      return { record, secret };
    },
    async update(tenant, id, body, onlyDomains) {
      const current = await tenant.endpoints.get(id);
      const config = body.config === undefined
        ? undefined
        : parseEndpointConfig(current.type, body.config, opts.allowPrivate);
      return await tenant.endpoints.update(current.id, {
        name: body.name,
        description: body.description,
        isActive: body.isActive,
        webhookFormat: body.webhookFormat,
        config,
      }, onlyDomains).catch((err) => {
        throw endpointRefusal(err);
      });
    },
    remove: (tenant, id, onlyDomains) =>
      tenant.endpoints.delete(id, onlyDomains).catch((err) => {
        throw endpointRefusal(err);
      }),
    async rollSecret(tenant, id, onlyDomains) {
      const record = await tenant.endpoints.get(id);
      if (record.type !== "webhook") {
        throw new HttpError(400, "Only webhook endpoints have a signing secret.", {
          code: "NOT_A_WEBHOOK",
        });
      }
      const secret = newWebhookSecret();
      await tenant.endpoints.rollSecret(record.id, secret, onlyDomains).catch((err) => {
        throw endpointRefusal(err);
      });
      return { record, secret };
    },
    async test(c, r, body) {
      const tenant: TenantStore = c.get("store");
      if (r.type === "webhook") return await testWebhook(tenant, r, body, opts);
      await admit(tenant, opts.testsPerMinute ?? DEFAULT_TESTS_PER_MINUTE);
      const answer = emailTestResponse(r);
      await tenant.endpoints.recordTest(r.id, null, { simulated: true });
      return answer;
    },
  };
}
