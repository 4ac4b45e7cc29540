/**
 * What a restricted API key may do, and the answers when it tries more (issue 13):
 * - scope: each authenticated route declares the scope a Bearer key needs (routes/registry.ts);
 *   `guardRoute` refuses with 403 INSUFFICIENT_SCOPE and RFC 6750's `WWW-Authenticate`, through
 *   `requireScope`, which an operation needing more for some input also calls (`check=true`);
 * - addresses: `checkClientIp` (auth/middleware.ts) refuses a key used outside its `allowedIps`
 *   with 403 IP_NOT_ALLOWED, against the proxy-aware client address (lib/client.ts);
 * - domains: `visibleDomainIds` is the set a key restricted to some domains sees
 *   (routes/domains/operations.ts answers the others 404, exactly like nonexistent ids), and
 *   `visibleDomainNames` the names of them a message may list (the others only counted).
 * Everything a check needs rides on the principal, built once per verified-key cache fill from
 * the pointer (`keyAccessOf`): the hot path reads nothing from KV.
 *
 * Refusals are recorded as `api_key.denied`, at most one per key per minute per process: a
 * refusal changes nothing, so the event is a commit of its own, written off the request path
 * (an in-memory gate decides; the write is not awaited).
 */
import type { Context } from "hono";
import { clientOf, inCidr, parseCidr, parseIp } from "../../lib/client.ts";
import { HttpError } from "../../lib/errors.ts";
import { type ApiScope, type KeyScope, LEGACY_DEFAULT_SCOPES } from "../../lib/scopes.ts";
import type { KeyGrant } from "../../store/api_keys.ts";
import type { TenantStore } from "../../store/tenant.ts";
import { auditContextOf } from "../audit_context.ts";
import type { AppEnv } from "../app_env.ts";
import type { KeyAccess, Principal } from "../principal.ts";

export const SESSION_REQUIRED_MESSAGE =
  "API keys can be managed only from a signed-in dashboard session; a Bearer key cannot list, " +
  "create, roll or delete keys.";

/** 403 SESSION_REQUIRED: a session-only route called with a Bearer key. */
export function sessionRequired(): HttpError {
  return new HttpError(403, SESSION_REQUIRED_MESSAGE, { code: "SESSION_REQUIRED" });
}

/** 403 INSUFFICIENT_SCOPE, with RFC 6750 section 3.1's challenge. */
export function insufficientScope(scope: KeyScope): HttpError {
  return new HttpError(
    403,
    `This API key lacks the ${scope} scope.`,
    { code: "INSUFFICIENT_SCOPE", requiredScope: scope },
    {
      "WWW-Authenticate": `Bearer realm="API", error="insufficient_scope", scope="${scope}"`,
    },
  );
}

export function ipNotAllowed(): HttpError {
  return new HttpError(
    403,
    "This API key cannot be used from this address. Its allowed addresses are set on the key.",
    { code: "IP_NOT_ALLOWED" },
  );
}

/** A key restricted to some domains cannot add one: what it adds it could not see. */
export function domainRestricted(): HttpError {
  return new HttpError(
    403,
    "This API key is restricted to some domains and cannot add domains.",
    { code: "DOMAIN_RESTRICTED_KEY" },
  );
}

/**
 * The principal's access, compiled from a pointer's grant; undefined for a pointer without one
 * (written before issue 23: LEGACY_DEFAULT_SCOPES, no restriction; `hasScope`). CIDRs that no
 * longer parse (never written so) allow nothing.
 */
export function keyAccessOf(grant: KeyGrant | undefined): KeyAccess | undefined {
  if (!grant) return undefined;
  return Object.freeze({
    scopes: Object.freeze([...grant.scopes]),
    domainIds: grant.domainIds === null ? null : new Set(grant.domainIds),
    allowedIps: grant.allowedIps === null ? null : Object.freeze(
      grant.allowedIps.map(parseCidr).filter((c) => c !== null),
    ),
    rateLimit: grant.rateLimit === null ? null : Object.freeze({ ...grant.rateLimit }),
  });
}

/**
 * Sessions hold every scope; a key its grant's. A key whose pointer carries no grant (written
 * before issue 23) holds LEGACY_DEFAULT_SCOPES, what it could do then: a later DEFAULT_SCOPES
 * (a new key's, written out in its pointer) never widens it (store/api_keys.ts `grantOf`).
 */
export function hasScope(principal: Principal, scope: KeyScope): boolean {
  if (principal.method !== "api_key") return true;
  const access = principal.access;
  return access
    ? access.scopes.includes(scope)
    : (LEGACY_DEFAULT_SCOPES as readonly string[]).includes(scope);
}

/** The domain ids the principal may see; null: all of the account's. */
export function visibleDomainIds(principal: Principal): ReadonlySet<string> | null {
  return principal.access?.domainIds ?? null;
}

/**
 * What a message listing `domains` may say to the principal: the names (at most `max`, in the
 * given order) of those it may see, and how many others there are, unnamed. A key restricted to
 * some domains answers 404 for the others, so no message names them either (issue 20): their
 * number is all it learns.
 */
export function visibleDomainNames(
  principal: Principal,
  domains: readonly { id: string; domain: string }[],
  max: number,
): { names: string[]; others: number } {
  const ids = visibleDomainIds(principal);
  const names = domains.filter((d) => !ids || ids.has(d.id)).slice(0, max).map((d) => d.domain);
  return { names, others: domains.length - names.length };
}

/**
 * Parsed client addresses: a restricted key is used from few addresses, and parsing one costs
 * ~1.3 us (a split, four regular expressions, a typed array), measured; the lookup ~0.1 us.
 * Cleared when full, so a flood of distinct addresses costs a parse each, as without it.
 */
const parsedAddresses = new Map<string, ReturnType<typeof parseIp>>();
const MAX_PARSED_ADDRESSES = 4096;

function parsedAddress(address: string): ReturnType<typeof parseIp> {
  let bytes = parsedAddresses.get(address);
  if (bytes === undefined) {
    bytes = parseIp(address);
    if (parsedAddresses.size >= MAX_PARSED_ADDRESSES) parsedAddresses.clear();
    parsedAddresses.set(address, bytes);
  }
  return bytes;
}

/** Whether `address` is inside the allowlist (an unparsable address is outside). */
export function ipAllowed(allowed: KeyAccess["allowedIps"], address: string): boolean {
  if (allowed === null) return true;
  const bytes = parsedAddress(address);
  if (bytes === null) return false;
  for (let i = 0; i < allowed.length; i++) if (inCidr(bytes, allowed[i])) return true;
  return false;
}

/**
 * Refuses (403 IP_NOT_ALLOWED) a key used from outside its allowlist. Called by the
 * authentication middleware before the rate limit, so a refused address spends no quota.
 */
export function checkClientIp(
  c: Context<AppEnv>,
  principal: Principal,
  storeFor: (userId: string) => TenantStore,
): void {
  const allowed = principal.access?.allowedIps;
  if (!allowed) return;
  const address = clientOf(c.req.raw).address;
  if (ipAllowed(allowed, address)) return;
  noteDenial(c, principal, { reason: "ip_not_allowed" }, () => storeFor(principal.userId));
  throw ipNotAllowed();
}

/** The declaration routes/registry.ts checks a request against. */
export type RouteAccess = { scope?: ApiScope; security?: readonly ("bearer" | "session")[] };

/**
 * Runs a route's declared access check: session-only routes refuse keys; a key lacking the
 * route's scope is refused. Synchronous: nothing to await on the hot path.
 */
export function guardRoute(c: Context<AppEnv>, route: RouteAccess): void {
  const principal = c.get("principal");
  if (principal.method === "session") return;
  if (route.security && !route.security.includes("bearer")) throw sessionRequired();
  if (route.scope) requireScope(c, route.scope);
}

/**
 * Refuses (403 INSUFFICIENT_SCOPE, recorded as `api_key.denied`) a key without `scope`; a
 * session passes. `guardRoute` runs it for a route's declared scope; an operation that needs
 * more than its route's scope for some input (`GET …/domains?check=true` writes, so it needs
 * domains:write: routes/domains/operations.ts `withCheckScope`) runs it itself, before doing anything.
 */
export function requireScope(c: Context<AppEnv>, scope: KeyScope): void {
  const principal = c.get("principal");
  if (hasScope(principal, scope)) return;
  noteDenial(c, principal, { reason: "insufficient_scope", scope }, () => c.get("store"));
  throw insufficientScope(scope);
}

const DENIAL_INTERVAL_MS = 60_000;
const MAX_GATED_KEYS = 100_000;

/** keyId -> when this process last recorded a denial for it. */
const lastDenial = new Map<string, number>();

/**
 * At most one `api_key.denied` per key per minute per process; the write is not awaited and its
 * failure only loses the event (a refusal changes nothing to record atomically with).
 */
export function noteDenial(
  c: Context<AppEnv>,
  principal: Principal,
  details: Record<string, string>,
  store: () => TenantStore | undefined,
  nowMs = Date.now(),
): void {
  const keyId = principal.keyId;
  if (!keyId) return;
  const last = lastDenial.get(keyId);
  if (last !== undefined && nowMs - last < DENIAL_INTERVAL_MS) return;
  if (lastDenial.size >= MAX_GATED_KEYS) lastDenial.clear();
  lastDenial.set(keyId, nowMs);
  const target = store();
  if (!target) return;
  target.apiKeys.recordDenied(keyId, undefined, auditContextOf(c.req.raw, principal), details)
    .catch(() => {/* the event is lost; the refusal itself stands */});
}

/** Forgets the denial gate (tests). */
export function resetDenialGate(): void {
  lastDenial.clear();
}
