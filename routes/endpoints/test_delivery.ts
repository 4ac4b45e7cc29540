/**
 * `POST /api/e2/endpoints/{id}/test`: what a test sends and how its outcome is answered.
 *
 * A webhook test really delivers: a sample payload in the requested format, signed per Standard
 * Webhooks with the endpoint's secret, through lib/webhooks/deliver.ts (the SSRF guard resolves
 * the host once and connects to the address it checked; no redirect is followed; the response
 * body is truncated). The endpoint's timeout applies, capped at TEST_TIMEOUT_CAP_MS. An e-mail or
 * e-mail-group endpoint is only simulated: this server sends no e-mail, and says so.
 */
import { randomBase62 } from "../../lib/crypto.ts";
import {
  type AddressResolver,
  deliverWebhook,
  type DeliveryOutcome,
} from "../../lib/webhooks/deliver.ts";
import type {
  EmailConfig,
  EmailGroupConfig,
  EndpointRecord,
  WebhookConfig,
  WebhookFormat,
} from "../../store/endpoints/record.ts";
import type { EndpointTestResponse } from "./schemas.ts";

/** A test waits at most this long for the receiver, whatever the endpoint's timeout. */
export const TEST_TIMEOUT_CAP_MS = 10_000;
/** `responseBody` is cut to this many characters. */
export const RESPONSE_BODY_CHARS = 1000;

/** The sample e-mail a test describes (nothing was received: it is made up, and says so). */
export function samplePayload(
  endpoint: Pick<EndpointRecord, "id" | "name" | "type">,
  format: WebhookFormat,
  now: Date,
): Record<string, unknown> {
  const email = {
    id: "inbnd_test_" + randomBase62(12),
    messageId: `<test-${randomBase62(12)}@inbound.test>`,
    from: {
      text: "Test Sender <sender@example.com>",
      addresses: [{ name: "Test Sender", address: "sender@example.com" }],
    },
    to: { text: "you@example.com", addresses: [{ name: null, address: "you@example.com" }] },
    subject: "Test email from your endpoint's test",
    receivedAt: now.toISOString(),
    parsedData: { textBody: "This is a test webhook. No e-mail was received.", htmlBody: null },
  };
  if (format === "discord") {
    return {
      content: "Test webhook from inbound-auth-server",
      embeds: [{
        title: email.subject,
        description: email.parsedData.textBody,
        color: 0x5865f2,
        fields: [
          { name: "From", value: email.from.text, inline: true },
          { name: "To", value: email.to.text, inline: true },
        ],
        timestamp: email.receivedAt,
      }],
    };
  }
  if (format === "slack") {
    return {
      text: `Test webhook: ${email.subject}`,
      blocks: [
        { type: "header", text: { type: "plain_text", text: email.subject } },
        {
          type: "section",
          fields: [
            { type: "mrkdwn", text: `*From:*\n${email.from.text}` },
            { type: "mrkdwn", text: `*To:*\n${email.to.text}` },
          ],
        },
        { type: "section", text: { type: "mrkdwn", text: email.parsedData.textBody } },
      ],
    };
  }
  return {
    event: "email.received",
    timestamp: now.toISOString(),
    test: true,
    email,
    endpoint: { id: endpoint.id, name: endpoint.name, type: endpoint.type },
  };
}

export type WebhookTestRun = {
  outcome: DeliveryOutcome;
  url: string;
  format: WebhookFormat;
  payload: Record<string, unknown>;
};

/** Delivers one signed test to `url` (never throws: every problem is an outcome). */
export async function runWebhookTest(
  endpoint: EndpointRecord,
  url: string,
  format: WebhookFormat,
  opts: { resolve: AddressResolver; allowPrivate: boolean; now: Date; signal?: AbortSignal },
): Promise<WebhookTestRun> {
  const config = endpoint.config as WebhookConfig;
  const payload = samplePayload(endpoint, format, opts.now);
  const outcome = await deliverWebhook({
    url,
    headers: config.headers ?? {},
    secret: endpoint.signingSecret ?? "",
    messageId: "msg_" + randomBase62(24),
    timestamp: opts.now,
    body: JSON.stringify(payload),
    timeoutMs: Math.min((config.timeout ?? 30) * 1000, TEST_TIMEOUT_CAP_MS),
  }, { resolve: opts.resolve, allowPrivate: opts.allowPrivate, signal: opts.signal });
  return { outcome, url, format, payload };
}

/** The SDK's EndpointTestResponse for a delivered or failed webhook test. */
export function webhookTestResponse(run: WebhookTestRun): EndpointTestResponse {
  const base = { urlTested: run.url, webhookFormat: run.format, testPayload: run.payload };
  const o = run.outcome;
  if (o.kind === "delivered") {
    const success = o.statusCode >= 200 && o.statusCode < 300;
    return {
      success,
      statusCode: o.statusCode,
      responseTime: o.responseTimeMs,
      responseBody: o.responseBody.slice(0, RESPONSE_BODY_CHARS),
      ...(success ? {} : { error: `The endpoint answered HTTP ${o.statusCode}.` }),
      message: success
        ? `Test delivered: HTTP ${o.statusCode} in ${o.responseTimeMs} ms.`
        : `Test delivered, but the endpoint answered HTTP ${o.statusCode}.`,
      ...base,
    };
  }
  if (o.kind === "failed") {
    return {
      success: false,
      responseTime: o.responseTimeMs,
      error: o.error,
      message: `Test delivery failed: ${o.error}`,
      ...base,
    };
  }
  // Refusals are answered 400 by the route; never reached with one.
  return { success: false, responseTime: 0, error: o.reason, message: o.reason, ...base };
}

/** An e-mail endpoint's test: an honest simulation. */
export function emailTestResponse(endpoint: EndpointRecord): EndpointTestResponse {
  const to = endpoint.type === "email"
    ? [(endpoint.config as EmailConfig).forwardTo]
    : (endpoint.config as EmailGroupConfig).emails;
  return {
    success: true,
    responseTime: 0,
    message: "Simulated only: this server sends and receives no e-mail. A message to an " +
      `address routed here would be forwarded to ${to.join(", ")}.`,
    testPayload: {
      forwardTo: to,
      preserveHeaders: (endpoint.config as EmailConfig).preserveHeaders,
    },
  };
}
