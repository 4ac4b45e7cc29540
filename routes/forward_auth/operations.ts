/**
 * The server as the authentication and rate-limit layer in front of any HTTP API
 * (docs/forward-auth.md):
 *
 * - `GET|HEAD /api/auth/forward[?rule=NAME][&compat=nginx]`: a reverse proxy (nginx
 *   `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`) asks before forwarding. It runs the
 *   steps of `/api/e2/*` (auth/middleware.ts `authenticate`: the Bearer key, or the session cookie
 *   when the rule says `cookie`; the key's addresses; the account's and the key's limit) and then
 *   the rule's scope (auth/forward_auth/rules.ts), and answers 200 with the identity headers, or
 *   the refusal. Outside `/api/e2`, so the API's own middleware does not run on it.
 * - `POST /api/e2/keys/verify`: a service checks a key itself, authenticated by a service token
 *   (auth/service_tokens.ts; `serviceTokenGate`, mounted by app.ts before the route), and gets
 *   the outcome in a 200 body: never a 401 for the verified key's problems.
 */
import type { Context, MiddlewareHandler } from "hono";
import { z } from "zod";
import { forbiddenCrossSite } from "../../auth/csrf.ts";
import { hasScope, insufficientScope, ipAllowed, noteDenial } from "../../auth/api_keys/policy.ts";
import {
  headerSafeName,
  type KeyNames,
  NO_RULE_MESSAGES,
  noMatchingRule,
  type RefusedKeyCode,
  scopesOf,
  selectRule,
} from "../../auth/forward_auth/decision.ts";
import type { ForwardAuthRule, ForwardAuthRules } from "../../auth/forward_auth/rules.ts";
import { type AppEnv, authenticate, bearerToken } from "../../auth/middleware.ts";
import type { AuthOutcome, Principal } from "../../auth/principal.ts";
import type { RateLimitDecision } from "../../auth/rate_limit.ts";
import { retryAfterSeconds } from "../../auth/rate_limit.ts";
import type { ServiceTokenRecord } from "../../auth/service_tokens.ts";
import { bindClient, DEFAULT_POLICY, parseIp, RequestClient } from "../../lib/client.ts";
import {
  HttpError,
  jsonResponse,
  rateLimitUnavailable,
  unauthorized,
  validationError,
} from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import type { ScopeVocabulary } from "../../lib/scopes.ts";
import type { TenantStore } from "../../store/tenant.ts";
import type { RouteRegistry } from "../registry.ts";

export type ForwardAuthRouteDeps = {
  rules: ForwardAuthRules;
  /** The scopes keys may hold: the built-in ones and the rules file's (lib/scopes.ts). */
  scopes: ScopeVocabulary;
  verifyApiKey: (token: string, req?: Request) => AuthOutcome | Promise<AuthOutcome>;
  resolveSession: (c: Context<AppEnv>) => Promise<AuthOutcome>;
  /** The limiter's hook (auth/rate_limit.ts `RateLimiter.hook`): 429/503 thrown. */
  rateLimit: (c: Context<AppEnv>, principal: Principal) => void | Promise<void>;
  /** The limiter's decision without a context (`RateLimiter.decide`), for the verify call. */
  decideRateLimit: (principal: Principal) => RateLimitDecision | Promise<RateLimitDecision>;
  storeFor: (userId: string) => TenantStore;
  keyNames: KeyNames;
  /** Why a key the verifier refused was refused (auth/forward_auth/decision.ts). */
  refusedKeyCode: (key: string) => Promise<RefusedKeyCode>;
  /** The usage count of a verified key (routes/usage/recorder.ts `UsageRecorder.record`). */
  recordUsage: (userId: string, keyId: string, status: number) => void;
  /** The same by the rule's name (`UsageRecorder.recordRule`): the key's usage per rule. */
  recordRuleUsage: (userId: string, keyId: string, rule: string, status: number) => void;
  log: Logger;
};

export const FORWARD_AUTH_PATH = "/api/auth/forward";
export const VERIFY_PATH = "/api/e2/keys/verify";

const NO_STORE = "no-store";
/** The identity headers: set on every allowed answer (empty when there is no such value). */
const IDENTITY_HEADERS = [
  "X-Auth-User-Id",
  "X-Auth-Key-Id",
  "X-Auth-Key-Name",
  "X-Auth-Scopes",
] as const;

export function registerForwardAuthRoutes(
  registry: RouteRegistry,
  deps: ForwardAuthRouteDeps,
): void {
  registerForward(registry, deps);
  registerVerify(registry, deps);
}

function registerForward(registry: RouteRegistry, deps: ForwardAuthRouteDeps): void {
  const check = {
    bearer: authenticate({
      verifyApiKey: deps.verifyApiKey,
      rateLimit: deps.rateLimit,
      storeFor: deps.storeFor,
    }),
    cookie: authenticate({
      verifyApiKey: deps.verifyApiKey,
      resolveSession: deps.resolveSession,
      rateLimit: deps.rateLimit,
      storeFor: deps.storeFor,
    }),
  };
  registry.add({
    method: "get",
    path: FORWARD_AUTH_PATH,
    operationId: "forwardAuth",
    summary: "Forward auth for a reverse proxy",
    description: "Asked by a reverse proxy before it forwards a request to your API (HEAD too). " +
      "The original request comes in `X-Forwarded-Method` + `X-Forwarded-Uri` (Traefik, Caddy) " +
      "or `X-Original-Method` + `X-Original-URI` (nginx), or `?rule=NAME` names the rule; " +
      "the rules file (FORWARD_AUTH_RULES) says what each needs. Allowed: 200, empty, with " +
      "`X-Auth-User-Id`, `X-Auth-Key-Id`, `X-Auth-Key-Name`, `X-Auth-Scopes`, `X-Auth-Rule` " +
      "and the rate-limit headers. Refused: the API's 401, 403 (`INSUFFICIENT_SCOPE`, " +
      "`IP_NOT_ALLOWED`, `NO_MATCHING_RULE`), 429 or 503; `X-Auth-Status` carries the status, " +
      "and with `?compat=nginx` a 429 or 503 is answered as 403 (docs/forward-auth.md).",
    tags: ["Forward auth"],
    auth: false,
    selfAuth: ["bearer", "session"],
    responses: { 200: { description: "Allowed: the identity in the X-Auth-* headers." } },
    errors: [401, 403, 429, 503],
    handler: async (c) => {
      const compat = c.req.query("compat") === "nginx";
      const selected: { rule?: ForwardAuthRule } = {};
      let res: Response;
      try {
        res = await forward(c, deps, check, selected);
      } catch (err) {
        res = refusal(err, deps.log);
      }
      countRuleUsage(c, deps, selected.rule, res.status);
      // nginx is answered 403 for a 429 or 503; the key's usage counts what it was.
      if (compat && (res.status === 429 || res.status === 503)) c.set("usageStatus", res.status);
      return finish(res, compat);
    },
  });
}

/** The decision for one forwarded request: 200 with the identity, or a thrown refusal. */
async function forward(
  c: Context<AppEnv>,
  deps: ForwardAuthRouteDeps,
  check: { bearer: MiddlewareHandler<AppEnv>; cookie: MiddlewareHandler<AppEnv> },
  selected: { rule?: ForwardAuthRule },
): Promise<Response> {
  const rule = selectRule(deps.rules, {
    rule: c.req.query("rule") ?? null,
    method: forwardedHeader(c, "X-Forwarded-Method", "X-Original-Method"),
    uri: forwardedHeader(c, "X-Forwarded-Uri", "X-Original-URI"),
  });
  selected.rule = rule;
  const headers = new Headers({ "Cache-Control": NO_STORE, "X-Auth-Rule": rule.name });
  for (const h of IDENTITY_HEADERS) headers.set(h, "");
  if (rule.public) return new Response(null, { status: 200, headers });
  // The API's own steps: key (or session), addresses, limits; then the rule's scope.
  await (rule.cookie ? check.cookie : check.bearer)(c, () => {
    if (rule.scope) requireRuleScope(c, rule);
    return Promise.resolve();
  });
  const principal = c.get("principal");
  if (principal.method === "session") refuseCrossSite(c);
  headers.set("X-Auth-User-Id", principal.userId);
  headers.set("X-Auth-Scopes", scopesOf(principal, deps.scopes).join(" "));
  if (principal.method === "api_key" && principal.keyId) {
    headers.set("X-Auth-Key-Id", principal.keyId);
    const name = deps.keyNames.nameOf(principal.userId, principal.keyId);
    headers.set("X-Auth-Key-Name", headerSafeName(name instanceof Promise ? await name : name));
  }
  return new Response(null, { status: 200, headers });
}

/**
 * One fact of the original request, from either header family. A proxy sets its own family and
 * passes the client's other headers on, so a client can send the other family itself: when both
 * are present and differ, the request is refused (403 NO_MATCHING_RULE) rather than guessed.
 */
function forwardedHeader(c: Context<AppEnv>, traefik: string, nginx: string): string | null {
  const a = c.req.header(traefik);
  const b = c.req.header(nginx);
  if (a !== undefined && b !== undefined && a !== b) {
    throw noMatchingRule(NO_RULE_MESSAGES.conflict);
  }
  return a ?? b ?? null;
}

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * A `cookie` rule's session on a state-changing original request: refused (403
 * CROSS_SITE_REQUEST) when the browser labels it as coming from another site (`Sec-Fetch-Site`,
 * which a page cannot change; the proxy passes the client's headers on). Without the label (a
 * non-browser client, an old browser) it passes: the upstream's own CSRF defence is the rest.
 */
function refuseCrossSite(c: Context<AppEnv>): void {
  const method = (c.req.header("X-Forwarded-Method") ?? c.req.header("X-Original-Method") ?? "")
    .toUpperCase();
  if (SAFE_METHODS.has(method)) return;
  const site = c.req.header("Sec-Fetch-Site");
  if (site === undefined || site === "same-origin" || site === "none") return;
  throw forbiddenCrossSite();
}

/** The rule's scope, refused like a route's (403 INSUFFICIENT_SCOPE, `api_key.denied`). */
function requireRuleScope(c: Context<AppEnv>, rule: ForwardAuthRule): void {
  const principal = c.get("principal");
  const scope = rule.scope!;
  if (hasScope(principal, scope)) return;
  noteDenial(
    c,
    principal,
    { reason: "insufficient_scope", scope, rule: rule.name },
    () => c.get("store"),
  );
  throw insufficientScope(scope);
}

/**
 * A refusal as an answer: an HttpError's own, its `code` (INSUFFICIENT_SCOPE, IP_NOT_ALLOWED,
 * NO_MATCHING_RULE, …) also in `X-Auth-Code` for a proxy that cannot pass the body on (nginx);
 * anything else (the store failing) the 503.
 */
function refusal(err: unknown, log: Logger): Response {
  if (err instanceof HttpError) {
    const res = err.toResponse();
    const code = err.extra.code;
    if (typeof code === "string") res.headers.set("X-Auth-Code", code);
    return res;
  }
  log({
    level: "error",
    msg: "forward auth failed closed",
    error: err instanceof Error ? err.name : "non-error thrown",
  });
  return rateLimitUnavailable().toResponse();
}

/**
 * The answer counted under its rule in the key's usage (the real status, before nginx's
 * mapping): only when a rule was selected and a key identified (a 401 identifies none).
 */
function countRuleUsage(
  c: Context<AppEnv>,
  deps: ForwardAuthRouteDeps,
  rule: ForwardAuthRule | undefined,
  status: number,
): void {
  const principal = c.get("principal");
  if (!rule || principal?.method !== "api_key" || !principal.keyId) return;
  deps.recordRuleUsage(principal.userId, principal.keyId, rule.name, status);
}

/**
 * `X-Auth-Status` on every answer; with `compat=nginx` a 429 or 503 becomes a 403 (nginx's
 * auth_request turns any other status into a 500 and drops its headers).
 */
function finish(res: Response, compat: boolean): Response {
  const status = res.status;
  res.headers.set("X-Auth-Status", String(status));
  res.headers.set("Cache-Control", NO_STORE);
  if (compat && (status === 429 || status === 503)) {
    return new Response(res.body, { status: 403, headers: res.headers });
  }
  return res;
}

// ---------------------------------------------------------------------------------------------
// The verify call.

/** The service token that authenticated each verify request (set by `serviceTokenGate`). */
const callers = new WeakMap<Request, ServiceTokenRecord>();

/**
 * Authenticates the verify call by its service token before anything else (the body is read
 * after): missing, unknown, revoked, or an API key: the seed's 401; the store failing: 503.
 */
export function serviceTokenGate(
  authenticateServiceToken: (token: string) => Promise<ServiceTokenRecord | null>,
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const token = bearerToken(c.req.header("Authorization"));
    let record: ServiceTokenRecord | null = null;
    if (token) {
      try {
        record = await authenticateServiceToken(token);
      } catch {
        throw rateLimitUnavailable();
      }
    }
    if (!record) throw unauthorized();
    callers.set(c.req.raw, record);
    await next();
  };
}

const verifyBody = z.strictObject({
  key: z.string().min(1).max(512).describe("The API key to check (inb_…)."),
  scope: z.string().max(64).optional().describe(
    "A scope the key must hold: built-in or the operator's (FORWARD_AUTH_RULES).",
  ),
  rule: z.string().max(64).optional().describe(
    "A forward-auth rule by name: the key must satisfy it (its scope).",
  ),
  method: z.string().max(20).optional().describe("With `path`: the rule matching this request."),
  path: z.string().max(8192).optional().describe(
    "With `method`: the rule matching this request (query ignored).",
  ),
  ip: z.string().max(64).optional().describe(
    "The client's address, checked against the key's allowed addresses. Only for service tokens " +
      "created with --may-assert-ip (else 403 IP_ASSERTION_NOT_ALLOWED).",
  ),
});

const ratelimitSchema = z.object({
  limit: z.number().int(),
  remaining: z.number().int(),
  reset: z.number().int().describe("When the window ends, epoch milliseconds."),
});

const verifyResponse = z.union([
  z.object({
    valid: z.literal(true),
    userId: z.string(),
    keyId: z.string(),
    name: z.string(),
    scopes: z.array(z.string()),
    ratelimit: ratelimitSchema,
  }),
  z.object({
    valid: z.literal(false),
    code: z.enum([
      "NOT_FOUND",
      "EXPIRED",
      "DISABLED",
      "ACCOUNT_SUSPENDED",
      "INSUFFICIENT_SCOPE",
      "RATE_LIMITED",
      "IP_NOT_ALLOWED",
      "NO_MATCHING_RULE",
    ]),
    message: z.string(),
    requiredScope: z.string().optional(),
    retryAfter: z.number().int().optional().describe("RATE_LIMITED: seconds to wait."),
    ratelimit: ratelimitSchema.optional(),
  }),
]);

type VerifyBody = z.output<typeof verifyBody>;
type VerifyOutcome = z.output<typeof verifyResponse>;

function registerVerify(registry: RouteRegistry, deps: ForwardAuthRouteDeps): void {
  registry.add({
    method: "post",
    path: VERIFY_PATH,
    operationId: "verifyApiKey",
    summary: "Verify an API key (for services)",
    description: "For a service that cannot sit behind a proxy: checks a key as the API would " +
      "(the key, its addresses, its account's and its own limit, then a scope or rule) and " +
      "answers the outcome with 200, `valid: true` with the key's identity or `valid: false` " +
      "with a `code`. Authenticated by a **service token** only (`Authorization: Bearer " +
      "inbsvc_…`, made by `deno task admin service-token:create`); an API key here is a 401. " +
      "A valid check spends one request of the key's rate limit and counts in its usage.",
    tags: ["Forward auth"],
    auth: false,
    selfAuth: ["serviceToken"],
    body: verifyBody,
    bodyName: "VerifyKeyRequest",
    responses: {
      200: { description: "The outcome.", schema: verifyResponse, name: "VerifyKeyResponse" },
    },
    errors: [400, 401, 403, 413, 415, 503],
    examples: {
      request: { key: "inb_4fK9mQ2xT7vL1pR8wN3cZ6hJ5bY0dS4gA7eU2kM9nP", scope: "orders:read" },
      responses: {
        200: {
          valid: true,
          userId: "usr_5Qx8kP2mVt7nLr4WcZa9Hd",
          keyId: "key_7Tn2Wq5Ry8Kx3Ma6Lc9Pd4",
          name: "orders service",
          scopes: ["domains:read", "domains:write", "orders:read"],
          ratelimit: { limit: 100, remaining: 99, reset: 1773480414000 },
        },
      },
    },
    handler: async (c, { body }) => {
      const caller = callers.get(c.req.raw);
      if (!caller) throw unauthorized(); // the gate did not run: never answer unauthenticated
      checkVerifyInput(body, caller, deps.scopes);
      let outcome: VerifyOutcome;
      try {
        outcome = await verifyKey(c, deps, body);
      } catch (err) {
        if (err instanceof HttpError) throw err;
        deps.log({ level: "error", msg: "verify call failed closed", error: String(err) });
        throw rateLimitUnavailable();
      }
      return jsonResponse(outcome, 200, { "Cache-Control": NO_STORE });
    },
  });
}

/** The call's own mistakes: 400 for an unknown scope or a bad address, 403 for an `ip` not allowed. */
function checkVerifyInput(
  body: VerifyBody,
  caller: ServiceTokenRecord,
  scopes: ScopeVocabulary,
): void {
  if (body.scope !== undefined && !scopes.has(body.scope)) {
    throw validationError([{ path: "scope", message: "is not a known scope" }]);
  }
  if (body.ip === undefined) return;
  if (!caller.mayAssertIp) {
    throw new HttpError(
      403,
      "This service token may not assert client addresses; create one with --may-assert-ip.",
      { code: "IP_ASSERTION_NOT_ALLOWED" },
    );
  }
  if (parseIp(body.ip) === null) {
    throw validationError([{ path: "ip", message: "must be an IPv4 or IPv6 address" }]);
  }
}

/** The checks of the API, in its order, on the key of a verify call. */
async function verifyKey(
  c: Context<AppEnv>,
  deps: ForwardAuthRouteDeps,
  body: VerifyBody,
): Promise<VerifyOutcome> {
  let rule: ForwardAuthRule | null = null;
  if (body.rule !== undefined || body.path !== undefined || body.method !== undefined) {
    try {
      rule = selectRule(deps.rules, { rule: body.rule, method: body.method, uri: body.path });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      return refused("NO_MATCHING_RULE", err.message);
    }
  }
  const verified = await deps.verifyApiKey(body.key, assertedClient(body.ip));
  if (verified.kind === "invalid") {
    const code = await deps.refusedKeyCode(body.key);
    return refused(code, REFUSED_MESSAGES[code]);
  }
  if (verified.kind === "suspended") {
    return refused("ACCOUNT_SUSPENDED", "The key's account is suspended.");
  }
  const principal = verified.principal;
  const outcome = await checkPrincipal(c, deps, principal, body, rule);
  if (principal.keyId) {
    const status = outcome.valid ? 200 : outcome.code === "RATE_LIMITED" ? 429 : 403;
    deps.recordUsage(principal.userId, principal.keyId, status);
    if (rule) deps.recordRuleUsage(principal.userId, principal.keyId, rule.name, status);
  }
  return outcome;
}

/**
 * The request the verifier records as the key's use (lastUsedAt, lastUsedIp): the client address
 * the service asserted, else none (the verify call's own peer is the service, not the client).
 */
function assertedClient(ip: string | undefined): Request | undefined {
  if (ip === undefined) return undefined;
  const req = new Request("http://verify.invalid/");
  const peer = { remoteAddr: { hostname: ip, port: 0, transport: "tcp" } };
  bindClient(req, new RequestClient(req, peer, DEFAULT_POLICY));
  return req;
}

const REFUSED_MESSAGES: Record<RefusedKeyCode, string> = {
  NOT_FOUND: "No such key (or it was deleted).",
  EXPIRED: "The key has expired.",
  DISABLED: "The key is disabled.",
};

function refused(code: Extract<VerifyOutcome, { valid: false }>["code"], message: string) {
  return { valid: false as const, code, message };
}

/** Addresses, then the limits, then the scopes: the API's order. */
async function checkPrincipal(
  c: Context<AppEnv>,
  deps: ForwardAuthRouteDeps,
  principal: Principal,
  body: VerifyBody,
  rule: ForwardAuthRule | null,
): Promise<VerifyOutcome> {
  const store = () => deps.storeFor(principal.userId);
  const allowed = principal.access?.allowedIps ?? null;
  // A key restricted to some addresses needs the client's, which only an allowed token vouches for.
  if (allowed !== null && (body.ip === undefined || !ipAllowed(allowed, body.ip))) {
    noteDenial(c, principal, { reason: "ip_not_allowed" }, store);
    return refused(
      "IP_NOT_ALLOWED",
      body.ip === undefined
        ? "The key is restricted to some addresses and the call asserted none (ip)."
        : "This API key cannot be used from this address.",
    );
  }
  const d = await deps.decideRateLimit(principal);
  const ratelimit = {
    limit: d.info.limit,
    remaining: d.info.remaining ?? 0,
    reset: d.info.resetMs ?? d.info.now + d.info.windowMs,
  };
  if (!d.allowed) {
    return {
      ...refused("RATE_LIMITED", "The key's rate limit is spent for this window."),
      retryAfter: retryAfterSeconds(d.info),
      ratelimit,
    };
  }
  for (const scope of [rule?.scope, body.scope]) {
    if (!scope || hasScope(principal, scope)) continue;
    noteDenial(c, principal, { reason: "insufficient_scope", scope }, store);
    return {
      ...refused("INSUFFICIENT_SCOPE", `This API key lacks the ${scope} scope.`),
      requiredScope: scope,
    };
  }
  const name = principal.keyId ? await deps.keyNames.nameOf(principal.userId, principal.keyId) : "";
  return {
    valid: true,
    userId: principal.userId,
    keyId: principal.keyId ?? "",
    name,
    scopes: scopesOf(principal, deps.scopes),
    ratelimit,
  };
}

export { NO_RULE_MESSAGES, noMatchingRule };
