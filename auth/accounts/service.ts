/**
 * Accounts: sign-up and sign-in, password reset, and what the signed-in account changes about
 * itself. `AccountService` is the one object routes hold; each concern lives in its own module
 * under auth/accounts/, sharing one `AccountKit` built from `AccountDeps`:
 * - sign_in.ts: sign-up, sign-in (its throttling rules are written there), sign-out, the
 *   session behind a request;
 * - password_reset.ts: reset links by e-mail and the reset itself (the reset-mail rule);
 * - settings.ts: name, password, sessions, deletion, and the password check of signed-in actions;
 * - events.ts: the account events every flow reports, to the sink passed in at construction;
 * - kit.ts: the store, clock, hashing pool, throttles, audit stamps and background work.
 */
import type { Context } from "hono";
import { boundClient } from "../../lib/client.ts";
import { summariseUserAgent } from "../../lib/user_agent.ts";
import type { EmailVerification } from "../email_verification.ts";
import type { AccountChecks } from "./checks.ts";
import type { AccountEvent } from "./events.ts";
import { type AccountDeps, AccountKit } from "./kit.ts";
import { PasswordResetFlow } from "./password_reset.ts";
import { AccountSettings } from "./settings.ts";
import { SignInFlow } from "./sign_in.ts";

export type { AccountChecks } from "./checks.ts";
export type { AccountEvent, AccountEventSink } from "./events.ts";
export type { AccountDeps, Caller } from "./kit.ts";
export {
  DEFAULT_RESET_PATH,
  RESET_MAIL_INTERVAL_MS,
  RESET_REQUESTED_MESSAGE,
  resetLink,
  resetRedirectPath,
} from "./password_reset.ts";
export type { AccountSession } from "./settings.ts";
export {
  type CurrentAccount,
  INVALID_CREDENTIALS_MESSAGE,
  type SecondStepRequired,
  type SignedIn,
  TRUSTED_ADDRESS_FACTOR,
} from "./sign_in.ts";
export { betterAuthUser, type PublicUser, publicUser } from "./user_view.ts";

/** Where a request comes from, as a session records it: address and a short agent summary. */
export function requestOrigin(c: Context): { ip: string; userAgent: string } {
  return { ip: clientAddress(c), userAgent: summariseUserAgent(c.req.header("User-Agent")) };
}

/**
 * The client's address as resolved once for the request (lib/client.ts): the connecting peer's,
 * unless it is a proxy TRUST_PROXY names, which then says whose request it forwards. Outside the
 * app's middleware (no client bound), the peer's as Deno.serve reports it.
 */
export function clientAddress(c: Context): string {
  const bound = boundClient(c.req.raw);
  if (bound) return bound.address;
  const env = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return env?.remoteAddr?.hostname ?? "unknown";
}

/**
 * The account operations, each delegated to the module of its concern (see the header); the
 * rules each one enforces are written on the method it delegates to.
 */
export class AccountService implements AccountChecks {
  /** E-mail verification and the sign-up policy (auth/email_verification.ts). */
  readonly emailVerification: EmailVerification;
  readonly #kit: AccountKit;
  readonly #signIn: SignInFlow;
  readonly #reset: PasswordResetFlow;
  readonly #settings: AccountSettings;

  constructor(deps: AccountDeps) {
    this.#kit = new AccountKit(deps);
    this.emailVerification = this.#kit.verifications;
    this.#signIn = new SignInFlow(this.#kit);
    this.#reset = new PasswordResetFlow(this.#kit);
    this.#settings = new AccountSettings(this.#kit);
  }

  /** Resolves once background work (reset and verification mail, audit events) has finished. */
  idle(): Promise<void> {
    return this.#kit.idle();
  }

  /**
   * Reports an account event made outside this service (a session opened by a second factor or
   * a passkey: auth/two_factor.ts, routes/passkeys/operations.ts) to the same sink as the service's own.
   */
  emitEvent(event: AccountEvent, nowMs?: number): void {
    this.#kit.emit(event, nowMs);
  }

  /** Password hashing jobs running and waiting now. */
  hashingLoad(): { running: number; queued: number } {
    const pool = this.#kit.hashing.pool;
    return { running: pool.running, queued: pool.queued };
  }

  // --- Sign-up, sign-in, sign-out (auth/accounts/sign_in.ts) ------------------------------

  /** SignInFlow.current: the account and session behind the request's cookie. */
  current(...args: Parameters<SignInFlow["current"]>) {
    return this.#signIn.current(...args);
  }

  /** SignInFlow.signUp: creates the account and signs it in. */
  signUp(...args: Parameters<SignInFlow["signUp"]>) {
    return this.#signIn.signUp(...args);
  }

  /** SignInFlow.signIn: checks the credentials, then a session or a pending second step. */
  signIn(...args: Parameters<SignInFlow["signIn"]>) {
    return this.#signIn.signIn(...args);
  }

  /** SignInFlow.signOut: ends the request's session, if any. */
  signOut(...args: Parameters<SignInFlow["signOut"]>) {
    return this.#signIn.signOut(...args);
  }

  // --- Password reset (auth/accounts/password_reset.ts) -----------------------------------

  /** PasswordResetFlow.request: answered at once; the link is mailed after the answer. */
  requestPasswordReset(...args: Parameters<PasswordResetFlow["request"]>) {
    return this.#reset.request(...args);
  }

  /** PasswordResetFlow.tokenValid: whether a reset token is live now. */
  resetTokenValid(...args: Parameters<PasswordResetFlow["tokenValid"]>) {
    return this.#reset.tokenValid(...args);
  }

  /** PasswordResetFlow.reset: sets a new password with a reset token. */
  resetPassword(...args: Parameters<PasswordResetFlow["reset"]>) {
    return this.#reset.reset(...args);
  }

  // --- The signed-in account's changes (auth/accounts/settings.ts) ------------------------

  /** AccountSettings.verifyPassword: the password check of a signed-in action. */
  verifyPassword(...args: Parameters<AccountSettings["verifyPassword"]>) {
    return this.#settings.verifyPassword(...args);
  }

  /** AccountSettings.updateName: sets the display name. */
  updateName(...args: Parameters<AccountSettings["updateName"]>) {
    return this.#settings.updateName(...args);
  }

  /** AccountSettings.changePassword: checks the current password, sets the new one. */
  changePassword(...args: Parameters<AccountSettings["changePassword"]>) {
    return this.#settings.changePassword(...args);
  }

  /** AccountSettings.listSessions: the account's live sessions, newest first. */
  listSessions(...args: Parameters<AccountSettings["listSessions"]>) {
    return this.#settings.listSessions(...args);
  }

  /** AccountSettings.currentSession: the caller's own session, or null once it is gone. */
  currentSession(...args: Parameters<AccountSettings["currentSession"]>) {
    return this.#settings.currentSession(...args);
  }

  /** AccountSettings.revokeSession: ends one of the account's sessions by id. */
  revokeSession(...args: Parameters<AccountSettings["revokeSession"]>) {
    return this.#settings.revokeSession(...args);
  }

  /** AccountSettings.revokeOtherSessions: ends every session but the caller's. */
  revokeOtherSessions(...args: Parameters<AccountSettings["revokeOtherSessions"]>) {
    return this.#settings.revokeOtherSessions(...args);
  }

  /** AccountSettings.deleteUser: deletes the caller's account after a password check. */
  deleteUser(...args: Parameters<AccountSettings["deleteUser"]>) {
    return this.#settings.deleteUser(...args);
  }
}

/** The account service for `deps` (app.ts builds one per app). */
export function accountService(deps: AccountDeps): AccountService {
  return new AccountService(deps);
}
