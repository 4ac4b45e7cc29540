/**
 * The route registry: one declaration per operation, for every route the server answers outside
 * the dashboard's pages, used to mount the handler (its query, path and body are parsed with the
 * schemas it declares), to run the operation's policies, and to write the OpenAPI document and
 * the endpoint reference (routes/openapi/document.ts), so neither can drift from what the server does:
 *
 *   registry.add({ method, path, operationId, summary, access and policies, query?, params?,
 *                  body?, responses, errors?, examples?, handler })
 *
 * `path` uses Hono's syntax ("/api/e2/domains/:id"). `responses` maps success statuses to a
 * zod schema of the JSON body (or `html`/`none`); `errors` lists the error statuses the route
 * itself can answer. Authenticated routes (`auth` defaults to true) get 401, 429, 503 and 500
 * added; every error uses the one error body of lib/errors.ts.
 *
 * Every route declares who may call it, here and nowhere else:
 *   `scope: "domains:read"`   (under /api/e2) a Bearer key needs that scope (lib/scopes.ts); a
 *                             session has all;
 *   `security: ["session"]`   (under /api/e2) session only: a key answers 403 SESSION_REQUIRED;
 *   `security: ["bearer"]`    (under /api/e2) Bearer only, no scope needed (the key acts on itself);
 *   `session: "required"`     (outside /api/e2, e.g. /api/auth) the browser session behind the
 *                             cookie, resolved before the body is read (401, or 403 for a
 *                             suspended account) and handed to the handler as `input.session`;
 *   `session: "optional"`     the same when there is one; none is no error;
 *   `auth: false`             public.
 * An authenticated /api/e2 route declaring neither scope nor security is refused when
 * registered. The operation's policies sit beside it:
 *   `sameOrigin: true`        refused from another origin (403, auth/csrf.ts) before anything else;
 *   `sudo: true`              a session must be in sudo mode (auth/sudo.ts), checked before the
 *                             body is read; `"session"`: only when the caller has a session;
 *   `throttle`, `audit`       the throttle classes it counts against and the audit actions it
 *                             records (enforced by the service the handler calls, where the
 *                             dashboard's forms go too), written into the document.
 * `mount` runs access, same-origin and sudo from the declaration, in that order, before the body is
 * parsed, and routes/openapi/document.ts writes the operation's `security`
 * (`[{ bearerAuth: [scope] }, { sessionCookie: [] }]`) from the same fields. The dashboard's forms
 * name the operation each performs and take its sudo policy from here (`sudoOperations`).
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
import { type PublicUser, publicUser } from "../auth/accounts/service.ts";
import { assertSameOrigin } from "../auth/csrf.ts";
import { guardRoute } from "../auth/api_keys/policy.ts";
import type { AppEnv } from "../auth/middleware.ts";
import { admitted, admittedOrNull, type Principal } from "../auth/principal.ts";
import type { SessionOutcome } from "../auth/sessions/manager.ts";
import type { SudoMode } from "../auth/sudo.ts";
import { validationError } from "../lib/errors.ts";
import type { AuditAction } from "../store/audit_log/events.ts";
import type { OperationExamples } from "./openapi/examples.ts";
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
   * A route outside that middleware (`auth: false`) that checks its callers itself
   * (routes/forward_auth/): the credentials the document lists for it. Documented, not enforced.
   */
  selfAuth?: readonly ("bearer" | "session" | "serviceToken")[];
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
  /** Outside /api/e2: the browser session the route needs (see the module comment). */
  session?: "required" | "optional";
  /** Refused from another origin before anything else (auth/csrf.ts). */
  sameOrigin?: boolean;
  /** Sudo mode (auth/sudo.ts): always, or only when the caller has a session. */
  sudo?: true | "session";
  /** The throttle classes the operation counts against (store/throttle.ts scopes). */
  throttle?: readonly string[];
  /** The audit actions the operation records (store/audit_log/events.ts). */
  audit?: readonly AuditAction[];
  /** Request and response examples (else routes/openapi/examples.ts's, by operationId). */
  examples?: OperationExamples;
  /**
   * More Hono paths the same operation answers, documented under `path` only (the routes of
   * resources this server does not serve: routes/not_implemented.ts).
   */
  alsoAt?: readonly string[];
};

/** The signed-in browser session of a `session` route. */
export type SignedInSession = {
  principal: Principal & { method: "session"; sessionId: string };
  user: PublicUser;
  /** The session's id and when it ends (ISO 8601). */
  session: { id: string; expiresAt: string };
};

/** What `mount` needs to run the declared policies; given at construction. */
export type RoutePolicies = {
  sudo: SudoMode;
  /** Resolves the session behind the request's cookie (auth/sessions/manager.ts). */
  session(req: Request): Promise<SessionOutcome>;
};

type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export type RouteInput<Q, B, P> = {
  query: Out<Q>;
  body: Out<B>;
  params: Out<P>;
  /** The caller's session (routes declaring `session`). */
  session: SignedInSession | undefined;
};

export type RouteDef<Q, B, P> = RouteDoc & {
  query?: Q;
  body?: B;
  params?: P;
  handler: (c: Context<AppEnv>, input: RouteInput<Q, B, P>) => Response | Promise<Response>;
};

type Mountable = RouteDoc & {
  handler: (c: Context<AppEnv>, session: SignedInSession | undefined) => Promise<Response>;
};

/** Error statuses every authenticated route can answer, whatever it does. */
export const AUTH_ERRORS = [401, 429, 503] as const;

export class RouteRegistry {
  readonly #routes: Mountable[] = [];
  readonly #policies: RoutePolicies | undefined;

  /** `policies`: what sudo mode and session routes need (a registry without them has neither). */
  constructor(policies?: RoutePolicies) {
    this.#policies = policies;
  }

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
    const { handler, ...declared } = def;
    // A route that needs the browser session is documented as a session-only operation.
    const doc: RouteDoc = declared.session === "required"
      ? { ...declared, auth: true, security: ["session"] }
      : declared;
    this.#check(doc);
    this.#routes.push({
      ...doc,
      handler: async (c, session) => {
        const input = {
          params: def.params ? parseParams(c, def.params) : undefined,
          query: def.query ? parseQuery(c, def.query) : undefined,
          body: def.body ? await parseJsonBody(c, def.body) : undefined,
          session,
        } as RouteInput<Q, B, P>;
        return await handler(c, input);
      },
    });
    return this;
  }

  /** The operations whose declaration asks for sudo mode (the dashboard's forms use it too). */
  sudoOperations(): ReadonlyMap<string, true | "session"> {
    return new Map(this.#routes.flatMap((r) => r.sudo ? [[r.operationId, r.sudo] as const] : []));
  }

  /**
   * Mounts the routes behind the /api/e2 authentication middleware (`auth: true`: after it) or
   * not (`auth: false`: the public ones and the session routes outside /api/e2), at each path
   * and at the same path under each alias prefix ("/api/v2" for "/api/e2/…").
   */
  mount(app: Hono<AppEnv>, opts: { auth: boolean; aliases?: Record<string, string> }): void {
    for (const r of this.#routes) {
      if (((r.auth ?? true) && r.session === undefined) !== opts.auth) continue;
      const paths = [r.path, ...(r.alsoAt ?? [])];
      for (const [from, to] of Object.entries(opts.aliases ?? {})) {
        if (r.path.startsWith(from)) paths.push(to + r.path.slice(from.length));
      }
      app.on(r.method.toUpperCase(), paths, this.#guarded(r, opts.auth));
    }
  }

  /**
   * The handler behind the declared policies, all before the body is parsed (a key without the
   * scope, or a stale session, learns nothing about the body's shape): same-origin, then who
   * may call (the /api/e2 principal, or the cookie's session), then sudo mode.
   */
  #guarded(r: Mountable, behindAuth: boolean): (c: Context<AppEnv>) => Promise<Response> {
    const policies = this.#policies;
    if (!policies && (r.session || r.sudo)) {
      throw new Error(
        `${r.operationId} declares a session or sudo: give the registry its policies`,
      );
    }
    if (behindAuth && !r.sameOrigin && !r.sudo) {
      // The hot path (an /api/e2 read with a key): synchronous, no extra promise per request.
      return (c) => {
        guardRoute(c, r);
        return r.handler(c, undefined);
      };
    }
    return async (c) => {
      if (r.sameOrigin) assertSameOrigin(c.req.raw);
      let session: SignedInSession | undefined;
      if (behindAuth) guardRoute(c, r);
      else if (r.session) session = await signedIn(policies!, c.req.raw, r.session);
      if (r.sudo === true || (r.sudo === "session" && session)) {
        await policies!.sudo.require(session?.principal ?? c.get("principal"));
      }
      return await r.handler(c, session);
    };
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

/**
 * The session a `session` route gets: refused as every credential is (auth/principal.ts: 401, or
 * 403 for a suspended account), except that an optional one may be absent.
 */
async function signedIn(
  policies: RoutePolicies,
  req: Request,
  need: "required" | "optional",
): Promise<SignedInSession | undefined> {
  const outcome = await policies.session(req);
  const ok = need === "required" ? admitted(outcome) : admittedOrNull(outcome);
  if (!ok) return undefined;
  return {
    principal: { ...ok.principal, method: "session", sessionId: ok.session.sessionId },
    user: publicUser(ok.user),
    session: { id: ok.session.sessionId, expiresAt: new Date(ok.session.expiresAt).toISOString() },
  };
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
