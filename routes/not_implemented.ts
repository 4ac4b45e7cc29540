/**
 * The Inbound e2 routes this server does not serve. The official SDK (npm `inboundemail`) has
 * resources beyond authentication, domains, endpoints and e-mail addresses: e-mails (sending
 * and received mail), threads and attachments. This server handles no mail. Called here, they used to answer a bare 404, which reads like a wrong id; they
 * answer 501 Not Implemented instead, naming what is missing, under /api/e2 and /api/v2 (the
 * registry's alias) and with any method. A wrong id on a served resource stays 404.
 *
 * Declared once, in the registry (one operation per method, documented under the first path);
 * behind authentication like every /api/e2 route: without a valid key or session the answer is
 * the specified 401 (the rate limit applies too), with one the 501. Any key may ask (no scope).
 * `endpoints` and `email-addresses` are served since issue 23 (routes/endpoints/,
 * routes/email_addresses/).
 */
import { errorBody, jsonResponse } from "../lib/errors.ts";
import type { HttpMethod, RouteRegistry } from "./registry.ts";

/** The SDK's resources, under /api/e2, that this server does not provide: the mail itself. */
export const NOT_PROVIDED_RESOURCES = [
  "emails",
  "mail",
  "threads",
  "attachments",
] as const;

const METHODS: readonly HttpMethod[] = ["get", "post", "put", "patch", "delete"];

/** The 501 body's sentence, naming the path the caller asked for. */
export function notProvidedMessage(path: string): string {
  return `${path} is not provided by this server: it does not handle mail (it sends, ` +
    "receives and stores no e-mail). It serves the Inbound e2 API's authentication, API " +
    "keys, domains, endpoints and e-mail addresses. See /api/e2/docs for what it serves.";
}

/** Registers the 501 answer for every path under each resource of NOT_PROVIDED_RESOURCES. */
export function registerNotImplementedRoutes(registry: RouteRegistry): void {
  // `/x/*` also matches `/x` itself; the document shows the first resource's path.
  const [first, ...others] = NOT_PROVIDED_RESOURCES.map((r) => `/api/e2/${r}`);
  const alsoAt = [`${first}/*`, ...others.map((p) => `${p}/*`)];
  const list = NOT_PROVIDED_RESOURCES.map((r) => `\`/api/e2/${r}\``).join(", ");
  for (const method of METHODS) {
    registry.add({
      method,
      path: first,
      alsoAt,
      operationId: `notProvided${method[0].toUpperCase()}${method.slice(1)}`,
      summary: "Not provided by this server (501)",
      description: `Every path under ${list} (and \`/api/v2/…\`), with any method, answers ` +
        "501: these resources of the Inbound e2 API (sending and receiving e-mail, threads, " +
        "attachments) are not served here: this server does not handle mail.",
      tags: ["Not provided"],
      security: ["bearer", "session"],
      responses: {},
      errors: [501],
      examples: { responses: {} },
      handler: (c) =>
        // The path as the caller wrote it (/api/v2 is routed as /api/e2).
        jsonResponse(errorBody(501, notProvidedMessage(new URL(c.req.url).pathname)), 501),
    });
  }
}
