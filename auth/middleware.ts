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
import { checkClientIp, ipAllowed } from "./api_keys/policy.ts";
import type { PendingOutcome } from "./api_keys/verifier.ts";
import { clientOf } from "../lib/client.ts";

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
  /**
   * Throws an HttpError (429, 503) to refuse; may answer synchronously. `prepare`, if present,
   * starts the lease of a key being verified as soon as its account is known (RateLimitHook).
   */
  rateLimit?: ((c: Context<AppEnv>, principal: Principal) => void | Promise<void>) & {
    prepare?: (principal: Principal) => void;
  };
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

/**
 * A key read from KV: once its pointer names the account (before the account is read), the
 * limiter's lease starts, so the two overlap (issue 24). Not for an address the key refuses:
 * a refused address spends none of the key's quota, as below.
 */
function prepareWhenIdentified(
  c: Context<AppEnv>,
  identified: Promise<Principal | null>,
  prepare: (principal: Principal) => void,
): void {
  identified.then((principal) => {
    if (!principal) return;
    const allowed = principal.access?.allowedIps;
    if (allowed && !ipAllowed(allowed, clientOf(c.req.raw).address)) return;
    prepare(principal);
  }).catch(() => {/* the lease is retried by the rate-limit check itself */});
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
        if (verified instanceof Promise) {
          const prepare = opts.rateLimit?.prepare;
          const identified = (verified as PendingOutcome).identified;
          if (prepare && identified) prepareWhenIdentified(c, identified, prepare);
          outcome = await verified;
        } else outcome = verified;
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
