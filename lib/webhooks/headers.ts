/**
 * The one rule for the custom headers of a webhook endpoint: which names a user may not set.
 * The endpoint schema (routes/endpoints/schemas.ts webhookHeaders) refuses them at create and
 * update; a delivery (deliver.ts) drops any it finds anyway and sends its own.
 */
import { isHeaderName } from "./http1.ts";

/** Longest custom header name the schema accepts. */
export const MAX_HEADER_NAME = 100;

/** Set by the delivery itself, or changing the framing or the hop (lower case). */
const DELIVERY_HEADERS = new Set([
  "host",
  "content-length",
  "content-type",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "upgrade",
  "expect",
  "user-agent",
]);
/** Standard Webhooks' own headers and the proxy ones, by prefix. */
const RESERVED_PREFIXES = ["webhook-", "proxy-"];
/** What routes or authenticates the request in front of the receiver: refused at create only. */
const ROUTING_HEADERS = new Set(["authorization", "cookie"]);

/** Whether a delivery drops a stored custom header of this name (it sets or frames it). */
export function isDeliveryHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return DELIVERY_HEADERS.has(lower) || RESERVED_PREFIXES.some((p) => lower.startsWith(p));
}

/** Why a custom header name may not be set, or null. */
export function headerNameProblem(name: string): string | null {
  if (name.length > MAX_HEADER_NAME || !isHeaderName(name)) {
    return "is not a valid header name (RFC 9110 token characters)";
  }
  if (isDeliveryHeader(name) || ROUTING_HEADERS.has(name.toLowerCase())) {
    return "may not be set: the delivery sets it (or it is hop-by-hop)";
  }
  return null;
}
