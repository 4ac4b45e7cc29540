/**
 * What the second-factor flows (auth/two_factor.ts) ask of the account service: the e-mail
 * verification rule, the password check of a signed-in action, and the account-event sink. A type
 * of its own, so that auth/two_factor.ts, which sign-in calls into, need not import the service
 * back (no import circle); `AccountService` implements it.
 */
import type { EmailVerification } from "../email_verification.ts";
import type { AccountEvent } from "./events.ts";

export interface AccountChecks {
  readonly emailVerification: Pick<EmailVerification, "requireVerified">;
  /** 400 INVALID_PASSWORD when wrong, after a per-account throttle (auth/accounts/settings.ts). */
  verifyPassword(userId: string, password: string, ip: string): Promise<void>;
  /** Reports an account event to the sink the service was built with (auth/accounts/events.ts). */
  emitEvent(event: AccountEvent, nowMs?: number): void;
}
