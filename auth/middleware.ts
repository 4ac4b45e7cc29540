/**
 * The authentication flow, in the seed's order: credential validation and user identification
 * (a valid session cookie first, else the Bearer key), the per-account rate-limit check, then the
 * handler, which receives a store bound to the resolved userId and nothing wider.
 */
import type { Context, MiddlewareHandler } from "hono";
import { unauthorized } from "../lib/errors.ts";
import type { TenantStore } from "../store/tenant.ts";
import type { Principal } from "./principal.ts";

export type AppEnv = {
  Variables: {
    requestId: string;
    principal: Principal;
    store: TenantStore;
  };
};

export type AuthOptions = {
  verifyApiKey: (token: string) => Promise<Principal | null>;
  /** Resolves a session cookie; null when there is none or it is not valid. */
  resolveSession?: (c: Context<AppEnv>) => Promise<Principal | null>;
  /** Throws an HttpError (429, 503) to refuse; sets rate-limit headers on `c`. */
  rateLimit?: (c: Context<AppEnv>, principal: Principal) => Promise<void>;
  storeFor: (userId: string) => TenantStore;
};

/** The token of `Authorization: Bearer <token>`; scheme case-insensitive, exactly one space. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer ([\x21-\x7e]+)$/i.exec(header);
  return match ? match[1] : null;
}

export function authenticate(opts: AuthOptions): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    let principal = opts.resolveSession ? await opts.resolveSession(c) : null;
    if (!principal) {
      const token = bearerToken(c.req.header("Authorization"));
      principal = token ? await opts.verifyApiKey(token) : null;
    }
    if (!principal) throw unauthorized();
    c.set("principal", principal);
    if (opts.rateLimit) await opts.rateLimit(c, principal);
    c.set("store", opts.storeFor(principal.userId));
    await next();
  };
}
