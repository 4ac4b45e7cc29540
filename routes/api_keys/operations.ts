/**
 * Key management, registered in the route table (routes/registry.ts) like every API route:
 * `/api/e2/api-keys` (session only: a Bearer key cannot list, create, change, roll or delete
 * keys, so a leaked key cannot mint more or widen itself) and `/api/e2/auth/revoke-key` (Bearer:
 * revokes the key that authenticated the request). Handlers reach KV only through `c.get("store")`;
 * every change writes its audit event in its own commit (store/api_keys.ts).
 */
import { z } from "zod";
import { auditContextOf } from "../../auth/audit_context.ts";
import {
  expiresAtProblem,
  issueApiKey,
  MAX_EXPIRES_IN_DAYS,
  MAX_KEY_NAME_LENGTH,
  parseExpiresAt,
  rollApiKey,
} from "../../auth/api_keys/issue.ts";
import { SESSION_REQUIRED_MESSAGE, sessionRequired } from "../../auth/api_keys/policy.ts";
import type { AppEnv } from "../../auth/middleware.ts";
import { parseCidr } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import { HttpError, jsonResponse, validationError } from "../../lib/errors.ts";
import { API_SCOPES, type KeyScope, type ScopeVocabulary } from "../../lib/scopes.ts";
import {
  ApiKeyLimitError,
  ApiKeyNotRollableError,
  type ApiKeyRecord,
  apiKeyView,
  type KeyRateLimit,
} from "../../store/api_keys.ts";
import type { Context, MiddlewareHandler } from "hono";
import type { RouteRegistry } from "../registry.ts";

export { SESSION_REQUIRED_MESSAGE };

export const MAX_ROLL_GRACE_HOURS = 168;
const HOUR_MS = 3_600_000;

/**
 * Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional
 * overrides and isolates that can make a name display as something else.
 */
const CONTROL_CHARACTERS = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/**
 * A key's name: trimmed, then 1 to MAX_KEY_NAME_LENGTH characters with no control character
 * anywhere. Shared by the API, the dashboard form and the admin CLI.
 */
export const keyNameSchema = z.string().trim().min(1, "is required").max(
  MAX_KEY_NAME_LENGTH,
  `must be at most ${MAX_KEY_NAME_LENGTH} characters`,
).refine((s) => !CONTROL_CHARACTERS.test(s), "must not contain control characters");

/** A key's lifetime in days (1..MAX_EXPIRES_IN_DAYS), null for never; for create and roll. */
export const expiresInDaysSchema = z.number().int("must be a whole number").min(
  1,
  "must be at least 1",
).max(
  MAX_EXPIRES_IN_DAYS,
  `must be at most ${MAX_EXPIRES_IN_DAYS}`,
).nullable().optional();

export const MAX_KEY_DOMAINS = 100;
export const MAX_KEY_ALLOWED_IPS = 50;
export const MAX_KEY_WINDOW_MS = 3_600_000;

/**
 * Scopes: at least one, each one of the app's vocabulary (API_SCOPES and the operator's scopes of
 * FORWARD_AUTH_RULES, lib/scopes.ts `ScopeVocabulary`); an unknown one is a 400 naming `scopes.N`.
 */
export const scopesSchema = (vocab: ScopeVocabulary) =>
  z.array(
    z.string().refine(vocab.has, { error: () => `must be one of ${vocab.all.join(", ")}` }),
  ).min(1, "must name at least one scope").describe(
    `What the key may do: ${API_SCOPES.join(", ")}, and the operator's own scopes declared in ` +
      "FORWARD_AUTH_RULES (docs/forward-auth.md). Default: domains:read and domains:write " +
      "(audit:read and operator scopes are granted only explicitly).",
  );

export const domainIdsSchema = z.array(z.string().min(1).max(64)).min(
  1,
  "must name at least one domain (null: every domain)",
).max(MAX_KEY_DOMAINS, `must name at most ${MAX_KEY_DOMAINS} domains`).nullable().describe(
  "The only domains the key sees (other ids answer 404; it cannot add domains). null: all.",
);

export const allowedIpsSchema = z.array(
  z.string().trim().refine(
    (s) => parseCidr(s) !== null,
    "must be an IPv4 or IPv6 address or CIDR range (203.0.113.0/24, 2001:db8::/32)",
  ),
).min(1, "must name at least one range (null: anywhere)").max(
  MAX_KEY_ALLOWED_IPS,
  `must name at most ${MAX_KEY_ALLOWED_IPS} ranges`,
).nullable().describe(
  "CIDR ranges the key may be used from (the client address, proxy-aware); null: anywhere.",
);

export const keyRateLimitSchema = z.strictObject({
  max: z.number().int("must be a whole number").min(1, "must be at least 1"),
  windowMs: z.number().int("must be a whole number").min(1000, "must be at least 1000").max(
    MAX_KEY_WINDOW_MS,
    `must be at most ${MAX_KEY_WINDOW_MS}`,
  ),
}).nullable().describe(
  "The key's own limit, enforced in addition to the account's and never looser; null: none.",
);

/**
 * Request bodies are strict: a field the route does not know is a 400 that names it. Built per
 * scope vocabulary (`keyBodies`): the scopes a key may be granted are the app's.
 */
const createKeyBodyOf = (vocab: ScopeVocabulary) =>
  z.strictObject({
    name: keyNameSchema.describe(
      `A label for the key: 1 to ${MAX_KEY_NAME_LENGTH} characters after trimming, without control characters.`,
    ),
    expiresInDays: expiresInDaysSchema,
    expiresAt: z.string().refine(
      (v) => !Number.isNaN(parseExpiresAt(v)),
      "must be an ISO 8601 date (2027-01-31) or date-time (2027-01-31T12:00:00Z)",
    ).optional().describe(
      "When the key stops working, instead of `expiresInDays`: a date-time with an offset or a " +
        `date alone (00:00 UTC that day); in the future and at most ${MAX_EXPIRES_IN_DAYS} days ahead.`,
    ),
    scopes: scopesSchema(vocab).optional(),
    domainIds: domainIdsSchema.optional(),
    allowedIps: allowedIpsSchema.optional(),
    rateLimit: keyRateLimitSchema.optional(),
  }).refine((b) => b.expiresAt === undefined || b.expiresInDays === undefined, {
    path: ["expiresAt"],
    message: "give expiresAt or expiresInDays, not both",
  });

/**
 * A create body's expiry as an instant: `expiresAt` checked against now (400 naming it when in
 * the past or beyond the longest lifetime), undefined when the body gives `expiresInDays`.
 */
export function expiresAtOf(body: { expiresAt?: string }, nowMs: number): number | undefined {
  if (body.expiresAt === undefined) return undefined;
  const ms = parseExpiresAt(body.expiresAt);
  const problem = expiresAtProblem(ms, nowMs);
  if (problem) throw validationError([{ path: "expiresAt", message: problem }]);
  return ms;
}

/** PATCH: every field optional, at least one given. */
const updateKeyBodyOf = (vocab: ScopeVocabulary) =>
  z.strictObject({
    name: keyNameSchema.optional(),
    scopes: scopesSchema(vocab).optional(),
    domainIds: domainIdsSchema.optional(),
    allowedIps: allowedIpsSchema.optional(),
    rateLimit: keyRateLimitSchema.optional(),
    disabled: z.boolean().optional().describe("true: the key answers 401 until set false again."),
  }).refine((b) => Object.values(b).some((v) => v !== undefined), "must change at least one field");

/** The create and patch bodies of one scope vocabulary (the API and the dashboard's forms). */
export type KeyBodies = {
  create: ReturnType<typeof createKeyBodyOf>;
  update: ReturnType<typeof updateKeyBodyOf>;
};

const bodiesByVocabulary = new WeakMap<ScopeVocabulary, KeyBodies>();

/** The key bodies validating `vocab`'s scopes, built once per vocabulary. */
export function keyBodies(vocab: ScopeVocabulary): KeyBodies {
  let bodies = bodiesByVocabulary.get(vocab);
  if (!bodies) {
    bodies = { create: createKeyBodyOf(vocab), update: updateKeyBodyOf(vocab) };
    bodiesByVocabulary.set(vocab, bodies);
  }
  return bodies;
}

export const rollKeyBody = z.strictObject({
  expiresInHours: z.number().int("must be a whole number").min(0, "must be at least 0").max(
    MAX_ROLL_GRACE_HOURS,
    `must be at most ${MAX_ROLL_GRACE_HOURS} (7 days)`,
  ),
  /** The replacement's lifetime; absent: the old key's own lifetime, counted from the roll. */
  expiresInDays: expiresInDaysSchema,
});

const NO_STORE = { "Cache-Control": "no-store" };

/** 403 unless the request was authenticated by a session cookie (kept for other routers). */
export const requireSession: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.get("principal").method !== "session") throw sessionRequired();
  await next();
};

export function keyNotFound(): HttpError {
  return new HttpError(404, "No API key with that id.");
}

export function keyLimitError(err: ApiKeyLimitError): HttpError {
  return new HttpError(409, err.message, { code: "API_KEY_LIMIT_REACHED", max: err.max }, {
    "x-should-retry": "false",
  });
}

/** 409: an expired key, or one already in its grace period, cannot be rolled. */
export function keyNotRollableError(err: ApiKeyNotRollableError): HttpError {
  return new HttpError(409, err.message, { code: "API_KEY_NOT_ROLLABLE" }, {
    "x-should-retry": "false",
  });
}

/** Maps the store's NotFound, limit and not-rollable errors to their HTTP answers. */
export async function keyErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw keyNotFound();
    if (err instanceof ApiKeyLimitError) throw keyLimitError(err);
    if (err instanceof ApiKeyNotRollableError) throw keyNotRollableError(err);
    throw err;
  }
}

/** Ids are `key_` + 22 base62 characters; anything else cannot exist. */
const KEY_ID = /^key_[0-9A-Za-z]{22}$/;

export function keyIdParam(id: string): string {
  if (!KEY_ID.test(id)) throw keyNotFound();
  return id;
}

export type ApiKeyRouteDeps = {
  clock: Clock;
  /** The account's limit: a key's own limit may not be looser. */
  accountRateLimit: KeyRateLimit;
  /** The scopes keys may be granted (built-in and FORWARD_AUTH_RULES's; lib/scopes.ts). */
  scopes: ScopeVocabulary;
};

const NO_STORE_JSON = (body: unknown, status = 200) => jsonResponse(body, status, NO_STORE);

/** The key's id (key_…); a malformed id answers 404 like an unknown one. */
const keyIdParams = z.object({ id: z.string().describe("The key's id (key_…).") });

/** The non-secret view of a key, grant included. */
export const apiKeyViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  start: z.string().describe("The first characters of the key, for recognising it."),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable().describe(
    "When the key was last used; recorded at most about once a minute per key, so it may lag.",
  ),
  lastUsedIp: z.string().nullable().describe(
    "The client address of that use (behind a trusted proxy, the forwarded one); null: never " +
      "used, or used before addresses were recorded.",
  ),
  expiresAt: z.string().nullable(),
  scopes: z.array(z.string()).describe(
    `Built-in scopes (${API_SCOPES.join(", ")}) and operator scopes (FORWARD_AUTH_RULES).`,
  ),
  domainIds: z.array(z.string()).nullable().describe("The only domains the key sees; null: all."),
  allowedIps: z.array(z.string()).nullable().describe("CIDRs the key may be used from; null: any."),
  rateLimit: z.object({ max: z.number().int(), windowMs: z.number().int() }).nullable(),
  disabled: z.boolean(),
});

const issuedKey = apiKeyViewSchema.extend({
  key: z.string().describe("The key itself. Shown once; store it now."),
});

const deletedSchema = z.object({ success: z.boolean(), id: z.string(), message: z.string() });

const SESSION_ONLY = "Session only: a Bearer key answers 403 `SESSION_REQUIRED`.";

const tags = ["API keys"];
const session = { tags, security: ["session" as const] };
const ctxOf = (c: Context<AppEnv>) => auditContextOf(c.req.raw, c.get("principal"));

/** Registers the key-management routes and `POST /api/e2/auth/revoke-key` in the route table. */
export function registerApiKeyRoutes(registry: RouteRegistry, deps: ApiKeyRouteDeps): void {
  registerListApiKeys(registry, deps);
  registerCreateApiKey(registry, deps);
  registerUpdateApiKey(registry, deps);
  registerDeleteApiKey(registry, deps);
  registerRollApiKey(registry, deps);
  registerRevokeKey(registry, deps);
}

function registerListApiKeys(registry: RouteRegistry, _deps: ApiKeyRouteDeps): void {
  registry.add({
    ...session,
    method: "get",
    path: "/api/e2/api-keys",
    operationId: "listApiKeys",
    summary: "List API keys",
    description: SESSION_ONLY,
    responses: {
      200: {
        description: "The account's keys with their scopes and restrictions (never the keys).",
        schema: z.object({ data: z.array(apiKeyViewSchema) }),
        name: "ApiKeyList",
      },
    },
    errors: [403],
    handler: async (c) => {
      const keys = await c.get("store").apiKeys.list();
      return NO_STORE_JSON({ data: keys.map(apiKeyView) });
    },
  });
}

function registerCreateApiKey(registry: RouteRegistry, deps: ApiKeyRouteDeps): void {
  const { clock } = deps;
  registry.add({
    ...session,
    method: "post",
    path: "/api/e2/api-keys",
    operationId: "createApiKey",
    // Key changes need a session in sudo mode (auth/sudo.ts); Bearer keys pass.
    sudo: true,
    summary: "Create an API key",
    description: "Without `scopes` a key gets every built-in scope but `audit:read` " +
      "(`domains:*`, `endpoints:*`, `email-addresses:*`); `audit:read` is granted only " +
      "explicitly. `domainIds`, `allowedIps` and `rateLimit` restrict it " +
      "further; an id that is not one of the account's domains is a 400 naming it. Names need " +
      "not be unique (a roll's replacement keeps its predecessor's name); the dashboard warns " +
      `when a name repeats. ${SESSION_ONLY}`,
    body: keyBodies(deps.scopes).create,
    bodyName: "ApiKeyCreateParams",
    responses: {
      201: { description: "The new key, shown once.", schema: issuedKey, name: "IssuedApiKey" },
    },
    errors: [400, 403, 409, 413, 415],
    handler: async (c, { body }) => {
      const nowMs = clock();
      const expiresAtMs = expiresAtOf(body, nowMs);
      const grant = await checkKeyGrant(c, body, deps.accountRateLimit);
      const { key, record } = await keyErrors(() =>
        issueApiKey(c.get("store").apiKeys, {
          name: body.name,
          expiresInDays: body.expiresInDays ?? null,
          expiresAtMs,
          nowMs,
          grant,
          audit: ctxOf(c),
        })
      );
      return NO_STORE_JSON({ ...apiKeyView(record), key }, 201);
    },
  });
}

function registerUpdateApiKey(registry: RouteRegistry, deps: ApiKeyRouteDeps): void {
  registry.add({
    ...session,
    method: "patch",
    path: "/api/e2/api-keys/:id",
    operationId: "updateApiKey",
    // Key changes need a session in sudo mode (auth/sudo.ts); Bearer keys pass.
    sudo: true,
    summary: "Change an API key",
    description: "Changes the name, scopes, restrictions or limit of a key, or disables (and " +
      "re-enables) it: a disabled key answers 401 like an unknown one. Every process applies " +
      "the change within 1 second. Needs a recent sign-in or re-authentication (403 " +
      `\`REAUTHENTICATION_REQUIRED\`). ${SESSION_ONLY}`,
    params: keyIdParams,
    body: keyBodies(deps.scopes).update,
    bodyName: "ApiKeyUpdateParams",
    responses: {
      200: { description: "The key as changed.", schema: apiKeyViewSchema, name: "ApiKey" },
    },
    errors: [400, 403, 404, 413, 415],
    handler: async (c, { params, body }) => {
      const id = keyIdParam(params.id);
      const grant = await checkKeyGrant(c, body, deps.accountRateLimit);
      const updated = await keyErrors(() =>
        c.get("store").apiKeys.update(id, {
          ...grant,
          ...(body.name !== undefined ? { name: body.name } : {}),
          ...(body.disabled !== undefined ? { disabled: body.disabled } : {}),
        }, ctxOf(c))
      );
      return NO_STORE_JSON(apiKeyView(updated));
    },
  });
}

function registerDeleteApiKey(registry: RouteRegistry, _deps: ApiKeyRouteDeps): void {
  registry.add({
    ...session,
    method: "delete",
    path: "/api/e2/api-keys/:id",
    operationId: "deleteApiKey",
    // Key changes need a session in sudo mode (auth/sudo.ts); Bearer keys pass.
    sudo: true,
    summary: "Delete an API key",
    description: SESSION_ONLY,
    params: keyIdParams,
    responses: {
      200: { description: "Deleted.", schema: deletedSchema, name: "ApiKeyDeleted" },
    },
    errors: [403, 404],
    handler: async (c, { params }) => {
      const id = keyIdParam(params.id);
      const deleted = await keyErrors(() => c.get("store").apiKeys.delete(id, ctxOf(c)));
      return NO_STORE_JSON({
        success: true,
        id: deleted.id,
        message: "API key deleted. It no longer authenticates.",
      });
    },
  });
}

function registerRollApiKey(registry: RouteRegistry, _deps: ApiKeyRouteDeps): void {
  registry.add({
    ...session,
    method: "post",
    path: "/api/e2/api-keys/:id/roll",
    operationId: "rollApiKey",
    // Key changes need a session in sudo mode (auth/sudo.ts); Bearer keys pass.
    sudo: true,
    summary: "Roll an API key",
    description: "Issues a replacement with the same scopes and restrictions; the old key " +
      "keeps working for `expiresInHours` (0 revokes it at once). " + SESSION_ONLY,
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
    handler: async (c, { params, body }) => {
      const id = keyIdParam(params.id);
      const { key, record, old } = await keyErrors(() =>
        rollApiKey(c.get("store").apiKeys, id, body.expiresInHours * HOUR_MS, {
          expiresInDays: body.expiresInDays,
          audit: ctxOf(c),
        })
      );
      return NO_STORE_JSON(
        { ...apiKeyView(record), key, previous: rolledView(old, body.expiresInHours) },
        201,
      );
    },
  });
}

function registerRevokeKey(registry: RouteRegistry, _deps: ApiKeyRouteDeps): void {
  registry.add({
    method: "post",
    path: "/api/e2/auth/revoke-key",
    operationId: "revokeKey",
    summary: "Revoke the calling key",
    description: "Deletes the API key that authenticated the request; any key may revoke " +
      "itself, whatever its scopes. Bearer only (400 `BEARER_KEY_REQUIRED` from a session).",
    tags: ["Authentication"],
    security: ["bearer"],
    responses: { 200: { description: "Revoked.", schema: deletedSchema, name: "ApiKeyRevoked" } },
    errors: [400, 404],
    handler: async (c) => {
      const principal = c.get("principal");
      if (principal.method !== "api_key" || !principal.keyId) {
        throw new HttpError(
          400,
          "This endpoint revokes the API key that authenticated the request: call it with " +
            "Authorization: Bearer <key> and no session cookie. Use DELETE /api/e2/api-keys/{id} " +
            "from a session.",
          { code: "BEARER_KEY_REQUIRED" },
        );
      }
      const keyId = principal.keyId;
      const deleted = await keyErrors(() =>
        c.get("store").apiKeys.delete(keyId, ctxOf(c), "api_key.revoked")
      );
      return NO_STORE_JSON({
        success: true,
        id: deleted.id,
        message: "API key revoked. It no longer authenticates.",
      });
    },
  });
}

type GrantFields = {
  scopes?: KeyScope[];
  domainIds?: string[] | null;
  allowedIps?: string[] | null;
  rateLimit?: KeyRateLimit | null;
};

/**
 * The grant fields of a create or patch body, checked against the account: every domain id must
 * be one of its domains (400 naming `domainIds.N`), and the key's limit may not be looser than
 * the account's (400 naming `rateLimit.max`). Absent fields stay absent. The dashboard's create
 * form uses it too (routes/api_keys/pages.tsx grantFromForm).
 */
export async function checkKeyGrant(
  c: Context<AppEnv>,
  body: GrantFields,
  account: KeyRateLimit,
): Promise<GrantFields> {
  const out: GrantFields = {};
  if (body.scopes !== undefined) out.scopes = [...new Set(body.scopes)];
  if (body.allowedIps !== undefined) out.allowedIps = body.allowedIps;
  if (body.domainIds !== undefined) {
    const ids = body.domainIds === null ? null : [...new Set(body.domainIds)];
    if (ids) await checkDomainIds(c, ids);
    out.domainIds = ids;
  }
  if (body.rateLimit !== undefined) {
    const r = body.rateLimit;
    if (r && (r.max > account.max || r.max * account.windowMs > account.max * r.windowMs)) {
      throw validationError([{
        path: "rateLimit.max",
        message: `must allow at most the account's limit (${account.max} requests per ` +
          `${account.windowMs} ms)`,
      }]);
    }
    out.rateLimit = r;
  }
  return out;
}

/**
 * 400 unless every id is one of the account's domains. The message names the ids, since "Validation
 * failed" leaves a person guessing which of their ids is wrong; `field` and `details` keep the
 * shape of every other validation error (`domainIds.N`, in the order given).
 */
async function checkDomainIds(c: Context<AppEnv>, ids: string[]): Promise<void> {
  const found = await Promise.all(ids.map(async (id) => {
    try {
      await c.get("store").domains.get(id);
      return true;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      return false;
    }
  }));
  const unknown = ids.flatMap((id, i) => found[i] ? [] : [{ id, i }]);
  if (unknown.length === 0) return;
  const details = unknown.map(({ id, i }) => ({
    path: `domainIds.${i}`,
    message: `${id} is not a domain of this account`,
  }));
  const names = unknown.map((u) => u.id).join(", ");
  const message = unknown.length === 1
    ? `Domain ${names} is not a domain of this account.`
    : `Domains ${names} are not domains of this account.`;
  throw new HttpError(400, message, { field: details[0].path, details });
}

function rolledView(old: ApiKeyRecord, graceHours: number) {
  return { id: old.id, expiresAt: old.expiresAt, revoked: graceHours === 0 };
}
