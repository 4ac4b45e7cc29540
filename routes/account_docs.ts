/**
 * OpenAPI descriptions of the `/api/e2` routes mounted as plain Hono routers
 * (routes/api_keys.ts), using the request schemas those routes validate with. The openapi test
 * fails when a route under /api/e2 is served but not described here or in the registry, or
 * described but not served. The owners of those routes may move these into their modules.
 */
import { z } from "zod";
import { createKeyBody, rollKeyBody } from "./api_keys.ts";
import { describeAuthRoutes } from "./auth_docs.ts";
import type { RouteRegistry } from "./registry.ts";

const apiKeyView = z.object({
  id: z.string(),
  name: z.string(),
  start: z.string().describe("The first characters of the key, for recognising it."),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  expiresAt: z.string().nullable(),
});

const issuedKey = apiKeyView.extend({
  key: z.string().describe("The key itself. Shown once; store it now."),
});

const keyIdParams = z.object({ id: z.string().describe("The key's id (key_…).") });

const deleted = z.object({ success: z.boolean(), id: z.string(), message: z.string() });

export function describeAccountRoutes(registry: RouteRegistry): void {
  const tags = ["API keys"];
  const sessionOnly = "Session only: a Bearer key answers 403 `SESSION_REQUIRED`.";
  registry
    .describe({
      method: "get",
      path: "/api/e2/api-keys",
      operationId: "listApiKeys",
      summary: "List API keys",
      description: sessionOnly,
      tags,
      security: ["session"],
      responses: {
        200: {
          description: "The account's keys (never the keys themselves).",
          schema: z.object({ data: z.array(apiKeyView) }),
          name: "ApiKeyList",
        },
      },
      errors: [403],
    })
    .describe({
      method: "post",
      path: "/api/e2/api-keys",
      operationId: "createApiKey",
      summary: "Create an API key",
      description: sessionOnly,
      tags,
      security: ["session"],
      body: createKeyBody,
      bodyName: "ApiKeyCreateParams",
      responses: {
        201: { description: "The new key, shown once.", schema: issuedKey, name: "IssuedApiKey" },
      },
      errors: [400, 403, 409, 413, 415],
    })
    .describe({
      method: "delete",
      path: "/api/e2/api-keys/:id",
      operationId: "deleteApiKey",
      summary: "Delete an API key",
      description: sessionOnly,
      tags,
      security: ["session"],
      params: keyIdParams,
      responses: { 200: { description: "Deleted.", schema: deleted, name: "ApiKeyDeleted" } },
      errors: [403, 404],
    })
    .describe({
      method: "post",
      path: "/api/e2/api-keys/:id/roll",
      operationId: "rollApiKey",
      summary: "Roll an API key",
      description: "Issues a replacement; the old key keeps working for `expiresInHours` " +
        `(0 revokes it at once). ${sessionOnly}`,
      tags,
      security: ["session"],
      params: keyIdParams,
      body: rollKeyBody,
      bodyName: "ApiKeyRollParams",
      responses: {
        201: {
          description: "The replacement, shown once, and what happens to the old key.",
          schema: issuedKey.extend({
            previous: z.object({
              id: z.string(),
              expiresAt: z.string().nullable(),
              revoked: z.boolean(),
            }),
          }),
          name: "RolledApiKey",
        },
      },
      errors: [400, 403, 404, 409, 413, 415],
    })
    .describe({
      method: "post",
      path: "/api/e2/auth/revoke-key",
      operationId: "revokeKey",
      summary: "Revoke the calling key",
      description: "Deletes the API key that authenticated the request. Bearer only (400 " +
        "`BEARER_KEY_REQUIRED` from a session).",
      tags: ["Authentication"],
      security: ["bearer"],
      responses: { 200: { description: "Revoked.", schema: deleted, name: "ApiKeyRevoked" } },
      errors: [400, 404],
    });
  describeAuthRoutes(registry);
}
