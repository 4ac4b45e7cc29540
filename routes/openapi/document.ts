/**
 * The OpenAPI 3.1 document, generated from the route registry (routes/registry.ts) and the zod
 * schemas its routes validate with and answer in, plus a readable HTML rendering of it. Both are
 * served without authentication: `GET /api/e2/openapi.json` and `GET /api/e2/docs`.
 */
import { DOCS_CONTENT_SECURITY_POLICY, renderApiDocsPage } from "./docs_page.ts";
import { z } from "zod";
import { SESSION_COOKIE_BASE } from "../../auth/sessions/manager.ts";
import type { Site } from "../../lib/client.ts";
import { JSON_CONTENT_TYPE, jsonResponse, reasonPhrase } from "../../lib/errors.ts";
import { ERROR_EXAMPLES, EXAMPLES, type OperationExamples } from "./examples.ts";
import { AUTH_ERRORS, type RouteDoc, type RouteRegistry } from "../registry.ts";
import { type OpenApiDocument, renderReference } from "./reference.ts";

export const OPENAPI_PATH = "/api/e2/openapi.json";
export const DOCS_PATH = "/api/e2/docs";

/** The session cookie's name (`__Host-` prefixed over HTTPS). */
const SESSION_COOKIE = SESSION_COOKIE_BASE;

type Json = Record<string, unknown>;

/** The one error body (lib/errors.ts), as a schema; extra fields are allowed. */
export const errorBodySchema = z.object({
  error: z.string().describe("The HTTP reason phrase."),
  message: z.string().describe("A sentence saying what went wrong."),
  statusCode: z.number().int(),
  code: z.string().optional().describe("A stable machine-readable code, when there is one."),
}).catchall(z.unknown());

/** 400: a validation failure names the parameter in `field` and lists every problem. */
export const validationErrorSchema = errorBodySchema.extend({
  field: z.string().nullable().optional().describe("The first offending parameter."),
  details: z.array(z.object({ path: z.string(), message: z.string() })).optional()
    .describe("Every problem found, one per parameter."),
});

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "The request is invalid; `field` and `details` name the offending parameter.",
  401: "Missing, malformed, unknown, expired or revoked credential (always the same body).",
  403: "Authenticated, but not allowed to do this.",
  404: "No such resource in this account (another account's ids answer the same).",
  405: "The path exists, but not with this method; `Allow` lists the methods.",
  409: "Conflicts with the current state; `code` says which conflict.",
  413: "The request body is larger than 1 MiB.",
  415: "The request body is not `application/json`.",
  429: "Rate limit exceeded; wait `Retry-After` seconds.",
  500: "An unexpected error; the body quotes the request id.",
  501: "A resource of the Inbound e2 API that this server does not provide (it sends and " +
    "receives no e-mail); the message names the path.",
  503:
    "Try again after `Retry-After` seconds: the rate-limit store is unavailable (Inbound's body, " +
    "60 s), a write lost to concurrent changes of the same records and was not applied " +
    "(`code: WRITE_CONFLICT`), or the server is too busy (`code: SERVER_BUSY`).",
};

const ERROR_HEADERS: Record<number, Json> = {
  401: {
    "WWW-Authenticate": {
      description: 'Always `Bearer realm="API", charset="UTF-8"`.',
      schema: { type: "string" },
    },
  },
  405: { Allow: { description: "The methods the path accepts.", schema: { type: "string" } } },
  429: { "Retry-After": { description: "Seconds to wait.", schema: { type: "integer" } } },
  503: { "Retry-After": { description: "Seconds to wait.", schema: { type: "integer" } } },
};

/** Converts a zod schema to an embeddable JSON Schema (2020-12, as OpenAPI 3.1 uses). */
export function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io,
    unrepresentable: "any",
  }) as Json;
  return rest;
}

/** "/api/e2/domains/:id" -> "/api/e2/domains/{id}" (a `{regex}` after a param is dropped). */
export function openApiPath(honoPath: string): string {
  return honoPath.replace(/:([A-Za-z0-9_]+)(\{[^}]*\})?\??/g, "{$1}");
}

/** What each tag groups, for the document's `tags`. */
const TAG_DESCRIPTIONS: Record<string, string> = {
  Domains: "Domains that receive email: add one, publish its DNS records, verify, delete.",
  "API keys": "Keys for `Authorization: Bearer`; managed from a signed-in dashboard session.",
  Authentication: "Operations on the credential that authenticated the request.",
  Accounts: "Sign-up, sign-in, sessions and passwords (`/api/auth`, better-auth compatible). " +
    "They set and read the session cookie; Bearer keys play no part here.",
  Documentation: "This document and its readable rendering.",
  Operations: "Health of the server, for load balancers and monitoring.",
  "Audit log": "The account's security events, append-only, written with the changes they record.",
  Endpoints: "Where received mail would be delivered: webhooks (signed, testable), email " +
    "forwards and groups.",
  "Email addresses": "The addresses of the account's domains, and the endpoint each is routed to.",
  "Not provided": "The Inbound e2 API's other resources: answered 501, not served here.",
  "Forward auth": "This server as the key check in front of your own API: a reverse proxy asks " +
    "before forwarding, or a service verifies a key (docs/forward-auth.md).",
};

function parameters(
  schema: z.ZodType | undefined,
  where: "query" | "path",
  examples: Record<string, unknown> = {},
): Json[] {
  if (!schema) return [];
  const s = jsonSchema(schema, "input");
  const props = (s.properties ?? {}) as Record<string, Json>;
  const required = new Set((s.required ?? []) as string[]);
  return Object.entries(props).map(([name, prop]) => {
    const { description, ...propSchema } = prop;
    // Whole numbers travel as query strings but are documented as integers (the schema's
    // `meta`); the string pattern that validates them on the wire does not apply to a number.
    if (propSchema.type === "integer") delete propSchema.pattern;
    const isRequired = where === "path" || required.has(name);
    const sample = examples[name];
    // An optional filter's example goes in its schema's `examples`, not the parameter's
    // `example`: Swagger UI's try-it pre-fills and sends a parameter `example` as if the user
    // had typed it (a new user saw `status=verified&canReceive=true` filter out their domains).
    if (!isRequired && sample !== undefined) propSchema.examples = [sample];
    return {
      name,
      in: where,
      required: isRequired,
      ...(description ? { description } : {}),
      schema: propSchema,
      ...(isRequired && sample !== undefined ? { example: sample } : {}),
    };
  });
}

export type OpenApiInfo = { title?: string; version?: string; description?: string };

/** Public operations that can still answer an error of their own: another method is a 405. */
const OPEN_ERRORS = [405];

/** The document's shared components, filled as operations name schemas and error responses. */
class Components {
  readonly schemas: Record<string, Json> = {
    Error: jsonSchema(errorBodySchema, "output"),
    ValidationError: jsonSchema(validationErrorSchema, "output"),
  };
  readonly responses: Record<string, Json> = {};

  /** A reference to the shared response for an error status. */
  errorResponse(status: number): Json {
    const name = `Error${status}`;
    this.responses[name] ??= {
      description: ERROR_DESCRIPTIONS[status] ?? reasonPhrase(status),
      ...(ERROR_HEADERS[status] ? { headers: ERROR_HEADERS[status] } : {}),
      content: {
        "application/json": {
          schema: { $ref: `#/components/schemas/${status === 400 ? "ValidationError" : "Error"}` },
          ...(ERROR_EXAMPLES[status] ? { example: ERROR_EXAMPLES[status] } : {}),
        },
      },
    };
    return { $ref: `#/components/responses/${name}` };
  }

  /** The schema inline, or under `name` in components with a reference to it. */
  named(name: string | undefined, schema: z.ZodType, io: "input" | "output"): Json {
    const s = jsonSchema(schema, io);
    if (!name) return s;
    this.schemas[name] = s;
    return { $ref: `#/components/schemas/${name}` };
  }
}

const example = (value: unknown) => value === undefined ? {} : { example: value };

/** The operation's responses: its successes with their examples, then every error it can answer. */
function operationResponses(r: RouteDoc, c: Components, examples?: OperationExamples): Json {
  const out: Record<string, Json> = {};
  for (const [status, res] of Object.entries(r.responses)) {
    const sample = example(examples?.responses[Number(status)]);
    out[status] = {
      description: res.description,
      ...(res.schema
        ? {
          content: {
            "application/json": { schema: c.named(res.name, res.schema, "output"), ...sample },
          },
        }
        : res.html
        ? { content: { "text/html": { schema: { type: "string" }, ...sample } } }
        : {}),
    };
  }
  const auth = r.auth ?? true;
  const errors = new Set<number>([...(r.errors ?? []), ...(auth ? AUTH_ERRORS : OPEN_ERRORS), 500]);
  for (const status of [...errors].sort((a, b) => a - b)) {
    out[String(status)] = c.errorResponse(status);
  }
  // An operation that never succeeds (routes/not_implemented.ts) says so: any answer is an error.
  if (!Object.keys(r.responses).length) {
    out.default = c.errorResponse(r.errors?.[0] ?? 500);
  }
  return out;
}

/** The scheme of each credential a route checking its callers itself (`selfAuth`) takes. */
const SELF_AUTH_SCHEMES = {
  bearer: "bearerAuth",
  session: "sessionCookie",
  serviceToken: "serviceToken",
} as const;

/** One operation of the document, from the route's one declaration (routes/registry.ts). */
function operationOf(r: RouteDoc, c: Components): Json {
  // The declaration's own examples (a feature's examples file), else the shared table's.
  const examples = r.examples ?? EXAMPLES[r.operationId];
  // The scope a Bearer key needs, and whether a session may call it.
  const security = r.selfAuth
    ? r.selfAuth.map((s) => ({ [SELF_AUTH_SCHEMES[s]]: [] }))
    : (r.auth ?? true)
    ? (r.security ?? ["bearer", "session"]).map((s) =>
      s === "bearer" ? { bearerAuth: r.scope ? [r.scope] : [] } : { sessionCookie: [] }
    )
    : [];
  return {
    operationId: r.operationId,
    summary: r.summary,
    ...(r.description ? { description: r.description } : {}),
    ...(r.tags ? { tags: r.tags } : {}),
    security,
    ...policyExtensions(r),
    parameters: [
      ...parameters(r.params, "path", examples?.params),
      ...parameters(r.query, "query", examples?.params),
    ],
    ...(r.body
      ? {
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: c.named(r.bodyName, r.body, "input"),
              ...example(examples?.request),
            },
          },
        },
      }
      : {}),
    responses: operationResponses(r, c, examples),
  };
}

/** Builds the document from every route the registry declares. */
export function buildOpenApi(registry: RouteRegistry, info: OpenApiInfo = {}): Json {
  const components = new Components();
  const paths: Record<string, Record<string, Json>> = {};
  const tags = new Set<string>();
  for (const r of registry.routes) {
    for (const t of r.tags ?? []) tags.add(t);
    (paths[openApiPath(r.path)] ??= {})[r.method] = operationOf(r, components);
  }
  const { schemas, responses } = components;
  return {
    openapi: "3.1.0",
    info: {
      title: info.title ?? "Inbound e2 API (self-hosted)",
      version: info.version ?? "0.20.0",
      description: info.description ??
        "Authentication, API keys and domains of the Inbound e2 API, wire-compatible with the " +
          "official SDK (npm `inboundemail` 0.20.0). Every path is also served under `/api/v2`. " +
          "Errors are JSON `{ error, message, statusCode }` (+ `code`), " +
          `\`Content-Type: ${JSON_CONTENT_TYPE}\`.`,
    },
    jsonSchemaDialect: "https://json-schema.org/draft/2020-12/schema",
    servers: [{ url: "/" }],
    tags: [...tags].map((name) => ({
      name,
      ...(TAG_DESCRIPTIONS[name] ? { description: TAG_DESCRIPTIONS[name] } : {}),
    })),
    paths,
    components: {
      schemas,
      responses,
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "An API key: `Authorization: Bearer <key>`.",
        },
        sessionCookie: {
          type: "apiKey",
          in: "cookie",
          name: SESSION_COOKIE,
          description: "The dashboard's session cookie (named `__Host-" + SESSION_COOKIE +
            "` over HTTPS). A valid session takes precedence over a Bearer key.",
        },
        serviceToken: {
          type: "http",
          scheme: "bearer",
          description:
            "A service token (`inbsvc_…`, from `deno task admin service-token:create`): " +
            "`Authorization: Bearer <token>`, accepted by `POST /api/e2/keys/verify` only.",
        },
      },
    },
  };
}

/**
 * `servers`: PUBLIC_URL when set; otherwise "/", which a reader resolves against the URL it
 * fetched the document from (the public one, whatever proxies stand in between).
 */
function withServers(doc: Json, site: Site): Json {
  return site.configured ? { ...doc, servers: [{ url: site.origin }] } : doc;
}

const DOCS_PAGE_URLS = { openApiUrl: OPENAPI_PATH, plainUrl: `${DOCS_PATH}?view=plain` };

/** Registers `GET /api/e2/openapi.json` and `GET /api/e2/docs` (no authentication). */
export function registerOpenApiRoutes(registry: RouteRegistry, info: OpenApiInfo = {}): void {
  // Built on first request, when every route has been registered.
  let doc: Json | null = null;
  let plain: string | null = null;
  // The page for visitors without a session; a signed-in one carries their bar, made per request.
  let anonymous: string | null = null;
  const document = () => (doc ??= buildOpenApi(registry, info));
  registry.add({
    method: "get",
    path: OPENAPI_PATH,
    operationId: "getOpenApiDocument",
    summary: "This OpenAPI document",
    tags: ["Documentation"],
    auth: false,
    responses: { 200: { description: "The OpenAPI 3.1 document.", schema: z.looseObject({}) } },
    handler: (c) => jsonResponse(withServers(document(), c.get("client").site)),
  });
  registry.add({
    method: "get",
    path: DOCS_PATH,
    operationId: "getDocs",
    summary: "Readable API documentation",
    description: "The interactive reference (Swagger UI served from this server, with try-it). " +
      "`?view=plain` gives the endpoint reference as plain text (Markdown) without scripts.",
    tags: ["Documentation"],
    auth: false,
    // Signed in, the page shows the dashboard's bar (settings, Sign out); nobody needs to be.
    session: "optional",
    responses: { 200: { description: "The document rendered as HTML.", html: true } },
    handler: (c, { session }) =>
      c.req.query("view") === "plain"
        ? new Response(plain ??= renderReference(document() as unknown as OpenApiDocument), {
          headers: {
            // The endpoint reference as Markdown, read as plain text: nothing runs, nothing loads.
            "Content-Type": "text/plain; charset=utf-8",
            "Content-Security-Policy": "default-src 'none'",
            "X-Content-Type-Options": "nosniff",
          },
        })
        : new Response(
          session
            ? renderApiDocsPage({ ...DOCS_PAGE_URLS, email: session.user.email })
            : (anonymous ??= renderApiDocsPage(DOCS_PAGE_URLS)),
          {
            headers: {
              "Content-Type": "text/html; charset=utf-8",
              "Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY,
              "X-Content-Type-Options": "nosniff",
              "Referrer-Policy": "same-origin",
              "X-Frame-Options": "DENY",
            },
          },
        ),
  });
}

/**
 * The operation's declared policies (routes/registry.ts), for readers and generated references:
 * `x-same-origin`, `x-sudo` ("always" or "with-session"), `x-throttle` (the throttle classes it
 * counts against) and `x-audit` (the audit actions it records).
 */
function policyExtensions(r: RouteDoc): Record<string, unknown> {
  return {
    ...(r.sameOrigin ? { "x-same-origin": true } : {}),
    ...(r.sudo ? { "x-sudo": r.sudo === true ? "always" : "with-session" } : {}),
    ...(r.throttle?.length ? { "x-throttle": [...r.throttle] } : {}),
    ...(r.audit?.length ? { "x-audit": [...r.audit] } : {}),
  };
}
