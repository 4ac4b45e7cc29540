import type { Cidr } from "../lib/client.ts";
import { accountSuspended, type HttpError, unauthorized } from "../lib/errors.ts";
import type { KeyScope } from "../lib/scopes.ts";

/**
 * What a restricted API key may do, compiled once per cache fill from its pointer
 * (auth/api_keys/policy.ts `keyAccessOf`). Absent on a principal: a session (every scope), or a
 * key whose pointer carries no grant (stored before issue 23), which holds LEGACY_DEFAULT_SCOPES
 * (domains:read, domains:write) and no restriction.
 */
export type KeyAccess = {
  readonly scopes: readonly KeyScope[];
  /** The only domain ids the key sees; null: all of the account's. */
  readonly domainIds: ReadonlySet<string> | null;
  /** The ranges the key may be used from; null: anywhere. */
  readonly allowedIps: readonly Cidr[] | null;
  /** The key's own limit, enforced in addition to the account's; null: none. */
  readonly rateLimit: { readonly max: number; readonly windowMs: number } | null;
};

/** Who a request acts for, once a credential has been verified. */
export type Principal = {
  readonly userId: string;
  readonly method: "api_key" | "session";
  /** The API key that authenticated the request (method "api_key"). */
  readonly keyId?: string;
  /** The session that authenticated the request (method "session"). */
  readonly sessionId?: string;
  /** A key's grant (method "api_key"); absent: a grantless pointer's (`hasScope`). */
  readonly access?: KeyAccess;
};

/** The credential is valid but its account is suspended: answered with 403 ACCOUNT_SUSPENDED. */
export type SuspendedOutcome = { readonly kind: "suspended"; readonly userId: string };

/** No credential, or an unknown, expired, revoked or malformed one: answered with 401. */
export type InvalidOutcome = { readonly kind: "invalid" };

/**
 * What resolving a credential (a Bearer key or a session cookie) yields. Consumers switch on
 * `kind` and end with `assertNever`, so a new kind is a compile error wherever it is not handled.
 */
export type AuthOutcome =
  | { readonly kind: "ok"; readonly principal: Principal }
  | SuspendedOutcome
  | InvalidOutcome;

/** Any outcome: an `AuthOutcome`, a session's (auth/sessions/manager.ts), an account's (auth/accounts/service.ts). */
export type AnyOutcome = { readonly kind: "ok" } | SuspendedOutcome | InvalidOutcome;

/** The admitted case of an outcome type. */
export type Admitted<O extends AnyOutcome> = Extract<O, { readonly kind: "ok" }>;

/**
 * The one place a refused outcome becomes an answer: 403 ACCOUNT_SUSPENDED for a valid
 * credential of a suspended account (its owner learns why, nobody learns more), 401 for anything
 * else. Pages that answer with a page instead (routes/dashboard/) read its status and message.
 */
export function refusalOf(outcome: SuspendedOutcome | InvalidOutcome): HttpError {
  switch (outcome.kind) {
    case "suspended":
      return accountSuspended();
    case "invalid":
      return unauthorized();
    default:
      return assertNever(outcome);
  }
}

/** The admitted case of `outcome`, or its refusal thrown (`refusalOf`: 403 or 401). */
export function admitted<O extends AnyOutcome>(outcome: O): Admitted<O> {
  // TypeScript does not narrow a type parameter by its discriminant; the checks are the same.
  if (outcome.kind === "ok") return outcome as Admitted<O>;
  throw refusalOf(outcome as SuspendedOutcome | InvalidOutcome);
}

/**
 * For callers to whom no credential is no error (better-auth's `get-session` answers null): the
 * admitted case, null for `invalid`, and a suspended account still refused with 403.
 */
export function admittedOrNull<O extends AnyOutcome>(outcome: O): Admitted<O> | null {
  return outcome.kind === "invalid" ? null : admitted(outcome);
}

/** The one `invalid` outcome: answering it allocates nothing. */
export const INVALID: InvalidOutcome = Object.freeze({ kind: "invalid" });

/** Exhaustiveness check for a `switch` on an outcome's `kind`. */
export function assertNever(value: never): never {
  throw new Error(`unhandled outcome: ${JSON.stringify(value)}`);
}
