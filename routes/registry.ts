/**
 * The route registry: one description per API route, used both to mount the handler (its query,
 * path and body are parsed with the schemas it declares) and to write the OpenAPI document
 * (routes/openapi.ts), so the document cannot drift from what the server does.
 *
 * Two ways in:
 *   registry.add({ method, path, summary, query?, params?, body?, responses, errors?, handler })
 *     describes a route AND mounts it (`mount(app)`); the handler gets the parsed input.
 *   registry.describe({ method, path, summary, ..., responses, errors? })
 *     describes a route mounted elsewhere (e.g. a plain Hono router in app.ts); pass the same
 *     zod schemas that route validates with.
 * `path` uses Hono's syntax ("/api/e2/domains/:id"). `responses` maps success statuses to a
 * zod schema of the JSON body (or `html`/`none`); `errors` lists the error statuses the route
 * itself can answer. Authenticated routes (`auth` defaults to true) get 401, 429, 503 and 500
 * added; every error uses the one error body of lib/errors.ts.
 *
 * Every authenticated route declares who may call it, here and nowhere else:
 *   `scope: "domains:read"`   a Bearer key needs that scope (lib/scopes.ts); a session has all;
 *   `security: ["session"]`   session only: a Bearer key answers 403 SESSION_REQUIRED;
 *   `security: ["bearer"]`    Bearer only, no scope needed (the key acts on itself).
 * A route declaring neither is refused when registered. `mount` runs the check from the
 * declaration before the body is parsed, and routes/openapi.ts writes the operation's `security`
 * (`[{ bearerAuth: [scope] }, { sessionCookie: [] }]`) from the same fields.
 *
 * Why not `@hono/zod-openapi`: this table already gives one declaration per route for the
 * handler's input, the OpenAPI document and now the scope check, with the exact wire behaviour the
 * tests pin (the error bodies of lib/errors.ts, strict bodies naming unknown fields, 404 for
 * malformed key ids); adopting it would mean re-mapping its validation hook onto those answers
 * for no gain, and one more dependency on the hot path.
 */
import type { Context, Hono } from "hono";
import { getPath } from "hono/utils/url";
import type { z } from "zod";
import { guardRoute } from "../auth/key_policy.ts";
import type { AppEnv } from "../auth/middleware.ts";
import { needsSudo, requireRecentAuth } from "../auth/sudo.ts";
import { validationError } from "../lib/errors.ts";
import type { ApiScope } from "../lib/scopes.ts";
import { parseJsonBody, parseQuery } from "./validation.ts";

export type HttpMethod = "get" | "post" | "put" | "patch" | "delete";

export type SuccessResponse = {
  description: string;
  /** Zod schema of the JSON body; `html` for a text/html page; omitted for no body. */
  schema?: z.ZodType;
  html?: boolean;
  /** Name under components.schemas. */
  name?: string;
};

export type RouteDoc = {
  method: HttpMethod;
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  /** Default true: the route is behind the authentication middleware. */
  auth?: boolean;
  /**
   * The scope a Bearer key needs for this route (sessions hold every scope). An authenticated
   * route declares `scope`, or `security`, or both.
   */
  scope?: ApiScope;
  /** Credentials an authenticated route accepts (default both). */
  security?: ("bearer" | "session")[];
  params?: z.ZodType;
  query?: z.ZodType;
  body?: z.ZodType;
  /** Name of the request body under components.schemas. */
  bodyName?: string;
  responses: Record<number, SuccessResponse>;
  /** Error statuses the route itself answers (400, 404, 409, 413, 415, …). */
  errors?: number[];
};

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export type RouteInput<Q, B, P> = { query: Out<Q>; body: Out<B>; params: Out<P> };

export type RouteDef<Q, B, P> = RouteDoc & {
  query?: Q;
  body?: B;
  params?: P;
  handler: (c: Context<AppEnv>, input: RouteInput<Q, B, P>) => Response | Promise<Response>;
};

type Mountable = RouteDoc & { handler?: (c: Context<AppEnv>) => Promise<Response> };

/** Error statuses every authenticated route can answer, whatever it does. */
export const AUTH_ERRORS = [401, 429, 503] as const;

export class RouteRegistry {
  readonly #routes: Mountable[] = [];

  /** Every described route, in registration order. */
  get routes(): readonly RouteDoc[] {
    return this.#routes;
  }

  /** Describes and (on `mount`) serves a route. */
  add<
    Q extends z.ZodType | undefined = undefined,
    B extends z.ZodType | undefined = undefined,
    P extends z.ZodType | undefined = undefined,
  >(def: RouteDef<Q, B, P>): this {
    this.#check(def);
    const { handler, ...doc } = def;
    this.#routes.push({
      ...doc,
      handler: async (c) => {
        const input = {
          params: def.params ? parseParams(c, def.params) : undefined,
          query: def.query ? parseQuery(c, def.query) : undefined,
          body: def.body ? await parseJsonBody(c, def.body) : undefined,
        } as RouteInput<Q, B, P>;
        return await handler(c, input);
      },
    });
    return this;
  }

  /** Describes a route that is mounted by other means. */
  describe(doc: RouteDoc): this {
    this.#check(doc);
    this.#routes.push(doc);
    return this;
  }

  /**
   * Mounts every route added with a handler whose `auth` matches, at its path and at the same
   * path under each alias prefix ("/api/v2" for "/api/e2/…").
   */
  mount(app: Hono<AppEnv>, opts: { auth: boolean; aliases?: Record<string, string> }): void {
    for (const r of this.#routes) {
      if (!r.handler || (r.auth ?? true) !== opts.auth) continue;
      const paths = [r.path];
      for (const [from, to] of Object.entries(opts.aliases ?? {})) {
        if (r.path.startsWith(from)) paths.push(to + r.path.slice(from.length));
      }
      const handler = r.handler;
      // The declared access is checked before the body is parsed (a key without the scope
      // learns nothing about the body's shape), and so is sudo mode for the operations that need
      // it (auth/sudo.ts `SUDO_OPERATIONS`, the list the dashboard's forms use too).
      const sudo = needsSudo(r.operationId);
      const guarded = opts.auth
        ? async (c: Context<AppEnv>) => {
          guardRoute(c, r);
          if (sudo) await requireRecentAuth(c);
          return await handler(c);
        }
        : handler;
      app.on(r.method.toUpperCase(), paths, guarded);
    }
  }

  #check(doc: RouteDoc): void {
    if (this.#routes.some((r) => r.method === doc.method && r.path === doc.path)) {
      throw new Error(`route ${doc.method.toUpperCase()} ${doc.path} registered twice`);
    }
    if (this.#routes.some((r) => r.operationId === doc.operationId)) {
      throw new Error(`operationId ${doc.operationId} registered twice`);
    }
    if ((doc.auth ?? true) && !declaresAccess(doc)) {
      throw new Error(
        `authenticated route ${doc.method.toUpperCase()} ${doc.path} declares neither a scope ` +
          `nor security: add \`scope: "domains:read"\` (or another ApiScope) for a route a ` +
          `Bearer key may call, or \`security: ["session"]\` for a session-only route`,
      );
    }
  }
}

/** Whether an authenticated route says who may call it (see the module comment). */
export function declaresAccess(doc: Pick<RouteDoc, "scope" | "security">): boolean {
  return doc.scope !== undefined || (doc.security !== undefined && doc.security.length > 0);
}

function parseParams<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const result = schema.safeParse(c.req.param());
  if (!result.success) {
    throw validationError(result.error.issues.map((i) => ({
      path: i.path.map(String).join(".") || "(path)",
      message: i.message,
    })));
  }
  return result.data;
}

/**
 * The routing path of a request (Hono's `getPath` option): `/api/v2/…` is routed as
 * `/api/e2/…`, the alias the public service rewrites, so every API route, its authentication
 * and its rate limiting answer under both prefixes.
 */
export function apiAliasPath(req: Request): string {
  const path = getPath(req);
  return path === "/api/v2" || path.startsWith("/api/v2/") ? "/api/e2" + path.slice(7) : path;
}
