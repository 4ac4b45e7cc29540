/**
 * The authentication flow, in the seed's order: credential validation and user identification
 * (a valid session cookie first, else the Bearer key), the per-account rate-limit check, then the
 * handler, which receives a store bound to the resolved userId and nothing wider.
 */
import type { Context, MiddlewareHandler } from "hono";
import { accountSuspended, unauthorized } from "../lib/errors.ts";
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
  /** May answer synchronously (a cached key): the hot path then awaits nothing. */
  verifyApiKey: (token: string) => Principal | null | Promise<Principal | null>;
  /** Resolves a session cookie; null when it is not valid. Called only when a Cookie is sent. */
  resolveSession?: (c: Context<AppEnv>) => Promise<Principal | null>;
  /** Throws an HttpError (429, 503) to refuse; may answer synchronously. */
  rateLimit?: (c: Context<AppEnv>, principal: Principal) => void | Promise<void>;
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
    let principal = opts.resolveSession && c.req.raw.headers.has("Cookie")
      ? await opts.resolveSession(c)
      : null;
    if (!principal) {
      const token = bearerToken(c.req.header("Authorization"));
      const verified = token ? opts.verifyApiKey(token) : null;
      principal = verified instanceof Promise ? await verified : verified;
    }
    if (!principal) throw unauthorized();
    if (principal.suspended) throw accountSuspended();
    c.set("principal", principal);
    const limited = opts.rateLimit?.(c, principal);
    if (limited instanceof Promise) await limited;
    c.set("store", opts.storeFor(principal.userId));
    await next();
  };
}
