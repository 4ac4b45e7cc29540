/**
 * The authentication flow, in the specified order: credential validation and user identification
 * (a valid session cookie first, else the Bearer key), the per-account rate-limit check, then the
 * handler, which receives a store bound to the resolved userId and nothing wider.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AuditSource } from "../store/audit_log/events.ts";
import type { TenantStore } from "../store/tenant.ts";
import { auditContextOf } from "./audit_context.ts";
import { admitted, type AuthOutcome, INVALID, type Principal } from "./principal.ts";
import { checkClientIp } from "./api_keys/policy.ts";

/** Hono's environment of this app: the variables a request carries (auth/app_env.ts). */
export type { AppEnv } from "./app_env.ts";
import type { AppEnv } from "./app_env.ts";

export type AuthOptions = {
  /**
   * May answer synchronously (a cached key): the hot path then awaits nothing. `req`: for the
   * key's last-used address, resolved by the verifier only when it records a use.
   */
  verifyApiKey: (token: string, req: Request) => AuthOutcome | Promise<AuthOutcome>;
  /**
   * Resolves a session cookie; `invalid` falls through to the Bearer key. Called only when a
   * Cookie is sent.
   */
  resolveSession?: (c: Context<AppEnv>) => Promise<AuthOutcome>;
  /** Throws an HttpError (429, 503) to refuse; may answer synchronously. */
  rateLimit?: (c: Context<AppEnv>, principal: Principal) => void | Promise<void>;
  /**
   * `audit`: who acts and from where, for the audit events the store's commits add; a function,
   * so that a request that writes nothing never builds it.
   */
  storeFor: (userId: string, audit?: AuditSource) => TenantStore;
};

/** The token of `Authorization: Bearer <token>`; scheme case-insensitive, exactly one space. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer ([\x21-\x7e]+)$/i.exec(header);
  return match ? match[1] : null;
}

/** The principal an outcome admits; else its refusal (auth/principal.ts `refusalOf`: 403 / 401). */
export function admit(outcome: AuthOutcome): Principal {
  return admitted(outcome).principal;
}

export function authenticate(opts: AuthOptions): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    let outcome: AuthOutcome = opts.resolveSession && c.req.raw.headers.has("Cookie")
      ? await opts.resolveSession(c)
      : INVALID;
    if (outcome.kind === "invalid") {
      const token = bearerToken(c.req.header("Authorization"));
      if (token) {
        const verified = opts.verifyApiKey(token, c.req.raw);
        outcome = verified instanceof Promise ? await verified : verified;
      }
    }
    const principal = admit(outcome);
    c.set("principal", principal);
    // A key restricted to some addresses (auth/api_keys/policy.ts); before the rate limit, so a
    // refused address spends none of the key's quota.
    if (principal.access?.allowedIps) checkClientIp(c, principal, opts.storeFor);
    const limited = opts.rateLimit?.(c, principal);
    if (limited instanceof Promise) await limited;
    const req = c.req.raw;
    c.set("store", opts.storeFor(principal.userId, () => auditContextOf(req, principal)));
    await next();
  };
}
