/**
 * `POST /api/e2/endpoints/{id}/test` (routes/endpoints/test_delivery.ts says what a test sends).
 * Per account at most `testsPerMinute` tests (429 with Retry-After past it, counted in the
 * account's own KV prefix); each test that ran is recorded in the audit log (`endpoint.tested`)
 * and, for a webhook, in the endpoint's `deliveryStats` and `recentDeliveries`, in one commit.
 * A target the SSRF guard refuses (by its URL, or by what its name resolves to) is a 400
 * `WEBHOOK_TARGET_NOT_ALLOWED`, and nothing was sent. The steps are `EndpointActions.test`
 * (routes/endpoints/actions.ts), which the dashboard's test form runs too.
 */
import { jsonResponse } from "../../lib/errors.ts";
import type { RouteRegistry } from "../registry.ts";
import type { EndpointActions } from "./actions.ts";
import { endpointExamples } from "./examples.ts";
import { endpointIdParams, endpointTestResponse, testEndpointBody } from "./schemas.ts";

export { DEFAULT_TESTS_PER_MINUTE, type EndpointRouteOptions } from "./actions.ts";

export function registerEndpointTest(
  registry: RouteRegistry,
  actions: EndpointActions,
  tags: string[],
): void {
  registry.add({
    method: "post",
    path: "/api/e2/endpoints/:id/test",
    operationId: "testEndpoint",
    scope: "endpoints:write",
    summary: "Test an endpoint",
    description: "A webhook gets a real, signed delivery (Standard Webhooks: `webhook-id`, " +
      "`webhook-timestamp`, `webhook-signature`) of a sample payload in the `inbound`, " +
      "`discord` or `slack` shape, to its URL or `overrideUrl` (the same URL rules), with its " +
      "timeout capped at 10 s; redirects are not followed and the response body is cut to " +
      "1,000 characters. The host is resolved once and every address checked: loopback, " +
      "private, link-local, CGNAT, multicast, unspecified and metadata targets answer 400 " +
      "`WEBHOOK_TARGET_NOT_ALLOWED` (unless the operator set ALLOW_PRIVATE_WEBHOOK_TARGETS). " +
      "An email endpoint's test is simulated: this server sends no e-mail. At most 10 tests " +
      "a minute per account (429 with `Retry-After`).",
    tags,
    params: endpointIdParams,
    body: testEndpointBody,
    bodyName: "EndpointTestParams",
    responses: {
      200: {
        description: "The test's outcome.",
        schema: endpointTestResponse,
        name: "EndpointTest",
      },
    },
    errors: [400, 404, 413, 415],
    throttle: ["endpoint-test:user"],
    audit: ["endpoint.tested"],
    examples: endpointExamples.testEndpoint,
    handler: async (c, { params, body }) => {
      const r = await c.get("store").endpoints.get(params.id);
      return jsonResponse(await actions.test(c, r, body));
    },
  });
}
