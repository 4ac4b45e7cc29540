/**
 * Accounts prove their e-mail address, and operators choose who may sign up.
 *
 * - EMAIL_VERIFICATION=required (the default with SMTP_URL): sign-up mails a link
 *   (`GET /api/auth/verify-email?token=…`); until it is opened (or a password reset completes,
 *   which proves the same mailbox) the account signs in and sees the dashboard, but may not
 *   create API keys, add domains or enrol second factors: 403 `EMAIL_NOT_VERIFIED`, from the one
 *   gate in store/email_verification.ts `requireVerifiedEmail`. `off` records the mark only.
 * - Mail: at most one verification mail per account per VERIFICATION_MAIL_INTERVAL_MS; a resend
 *   inside that time sends nothing and the live link keeps working. The answer to a resend is
 *   the same whether or not the address has an account, as for password resets.
 * - The real owner of an address wins: an account made under `required` that never verified
 *   holds its address only while its first link could still be opened (UNVERIFIED_HOLD_MS after
 *   sign-up). After that a new sign-up for the address deletes it, with everything it made, and
 *   takes the address. Inside that hour, or for accounts made while verification was off, the
 *   owner uses "forgot password": a completed reset verifies the address and signs every
 *   session out.
 * - SIGN_UP=closed: 403 `SIGN_UP_CLOSED` (accounts come from `admin user:create`, verified);
 *   SIGN_UP_EMAIL_DOMAINS: open sign-up only for those domains, else 403
 *   `SIGN_UP_DOMAIN_NOT_ALLOWED`.
 */
import type { Clock } from "../lib/clock.ts";
import type { Config } from "../lib/config.ts";
import { HttpError } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import type { Mailer } from "../lib/mailer.ts";
import { deleteAccount } from "../store/accounts/deletion.ts";
import type { AuditStamp } from "../store/audit_log/events.ts";
import {
  consumeEmailVerification,
  EMAIL_VERIFICATION_TTL_MS,
  EmailNotVerifiedError,
  issueEmailVerification,
  requireVerifiedEmail,
} from "../store/email_verification.ts";
import {
  findUserByEmail,
  getUser,
  normaliseEmail,
  type UserRecord,
} from "../store/accounts/users.ts";

/** At most one verification mail per account in this time: 5 minutes. */
export const VERIFICATION_MAIL_INTERVAL_MS = 5 * 60 * 1000;

/** How long an unverified account (made under `required`) holds its address: the link's life. */
export const UNVERIFIED_HOLD_MS = EMAIL_VERIFICATION_TTL_MS;

/** The page a verification link returns to when the request names none (the dashboard's). */
export const DEFAULT_VERIFIED_PATH = "/email-verified";

export const EMAIL_NOT_VERIFIED = "EMAIL_NOT_VERIFIED";

/** The 403 for EmailNotVerifiedError, on every surface (app.ts and the dashboard map it). */
export function emailNotVerified(err: EmailNotVerifiedError): HttpError {
  return new HttpError(403, err.message, { code: EMAIL_NOT_VERIFIED });
}

export type EmailVerificationDeps = {
  kv: Deno.Kv;
  clock: Clock;
  config: Pick<Config, "emailVerification" | "signUp">;
  mailer?: Mailer;
  log: Logger;
  /** Runs mail delivery off the request path (the account service's background set). */
  inBackground: (what: string, work: () => Promise<void>) => void;
};

/** The link a verification mail carries. */
export function verificationLink(origin: string, token: string, callbackPath: string): string {
  const url = new URL("/api/auth/verify-email", origin);
  url.searchParams.set("token", token);
  url.searchParams.set("callbackURL", callbackPath);
  return url.href;
}

export class EmailVerification {
  readonly #deps: EmailVerificationDeps;

  constructor(deps: EmailVerificationDeps) {
    this.#deps = deps;
  }

  /** EMAIL_VERIFICATION=required. */
  get required(): boolean {
    return this.#deps.config.emailVerification === "required";
  }

  /** The gate, when verification is required; `action` completes "verify … before you …". */
  async requireVerified(userId: string, action: string): Promise<void> {
    if (this.required) await requireVerifiedEmail(this.#deps.kv, userId, action);
  }

  /** SIGN_UP and SIGN_UP_EMAIL_DOMAINS, before any work is done for a sign-up. */
  assertSignUpAllowed(email: string): void {
    const policy = this.#deps.config.signUp;
    if (!policy.open) {
      throw new HttpError(
        403,
        "Sign-up is closed on this server. Ask its operator for an account.",
        { code: "SIGN_UP_CLOSED" },
      );
    }
    if (policy.emailDomains === null) return;
    const domain = normaliseEmail(email).split("@").pop() ?? "";
    if (!policy.emailDomains.includes(domain)) {
      throw new HttpError(
        403,
        `Sign-up on this server is open to addresses at ${policy.emailDomains.join(", ")} only.`,
        { code: "SIGN_UP_DOMAIN_NOT_ALLOWED", field: "email" },
      );
    }
  }

  /**
   * Frees `email` for a new sign-up when the account holding it was made under `required`, never
   * verified, and its hold has run out: deletes that account and all it made. True when freed.
   */
  async releaseUnverified(email: string): Promise<boolean> {
    if (!this.required) return false;
    const { kv, clock, log } = this.#deps;
    const holder = await findUserByEmail(kv, email);
    if (!holder || !releasable(holder, clock())) return false;
    const summary = await deleteAccount(kv, holder.id, {
      nowMs: clock(),
      // Re-checked on the record the deletion's commit checks: a link opened meanwhile wins.
      onlyIf: (u) => releasable(u, clock()),
    });
    if (summary) {
      log({
        level: "info",
        msg: "unverified account replaced by a new sign-up",
        userId: holder.id,
      });
    }
    return summary !== null;
  }

  /**
   * Mails a link to the account's address (off the request path), unless verification is off,
   * the account is verified, or a link went out less than VERIFICATION_MAIL_INTERVAL_MS ago.
   */
  send(user: Pick<UserRecord, "id">, origin: string, callbackPath: string): void {
    const { mailer, inBackground } = this.#deps;
    if (!this.required || !mailer) return;
    inBackground("verification mail", () => this.#mail(user.id, origin, callbackPath, mailer));
  }

  async #mail(userId: string, origin: string, callbackPath: string, mailer: Mailer) {
    const { kv, clock } = this.#deps;
    const issued = await issueEmailVerification(kv, userId, clock(), VERIFICATION_MAIL_INTERVAL_MS);
    if (!issued) return;
    const link = verificationLink(origin, issued.token, callbackPath);
    await mailer.send({
      to: issued.email,
      subject: "Verify your email address",
      text: `Someone (hopefully you) made an account with ${issued.email}.\n\n` +
        `Open this link within ${EMAIL_VERIFICATION_TTL_MS / 60_000} minutes to confirm the ` +
        `address is yours:\n\n${link}\n\nUntil then the account cannot create API keys, add ` +
        `domains or set up two-factor sign-in. If you did not make it, ignore this mail.\n`,
    });
  }

  /**
   * better-auth's `send-verification-email`: for a session, its own address only (400
   * EMAIL_MISMATCH, 400 EMAIL_ALREADY_VERIFIED); anonymously, the same answer for any address.
   */
  resend(
    email: string,
    session: Pick<UserRecord, "id" | "email" | "emailVerified"> | null,
    origin: string,
    callbackPath: string,
  ): void {
    if (!this.required) {
      throw new HttpError(400, "E-mail verification is off on this server.", {
        code: "VERIFICATION_EMAIL_NOT_ENABLED",
      });
    }
    if (session) {
      if (normaliseEmail(email) !== session.email) {
        throw new HttpError(400, "That is not this account's email address.", {
          code: "EMAIL_MISMATCH",
        });
      }
      if (session.emailVerified === true) {
        throw new HttpError(400, "This email address is verified already.", {
          code: "EMAIL_ALREADY_VERIFIED",
        });
      }
      this.send(session, origin, callbackPath);
      return;
    }
    // Anonymous: the lookup happens off the request path, so the answer tells nothing.
    this.#deps.inBackground("verification mail", async () => {
      const user = await findUserByEmail(this.#deps.kv, email);
      if (user && user.status === "active" && user.emailVerified !== true) {
        this.send(user, origin, callbackPath);
      }
    });
  }

  /** Opens a link: the account it verified, or null for a wrong, used or expired token. */
  async verify(token: string, audit: AuditStamp): Promise<UserRecord | null> {
    const out = await consumeEmailVerification(this.#deps.kv, token, this.#deps.clock(), audit);
    return out.ok ? out.user : null;
  }

  /** Whether the account is verified (for the dashboard's banner). */
  async isVerified(userId: string): Promise<boolean> {
    return (await getUser(this.#deps.kv, userId))?.emailVerified === true;
  }
}

/** An account a new sign-up may replace (the rule in this module's comment). */
export function releasable(user: UserRecord, nowMs: number): boolean {
  return user.emailVerified !== true && user.verificationRequired === true &&
    Date.parse(user.createdAt) + UNVERIFIED_HOLD_MS <= nowMs;
}

export { EmailNotVerifiedError };
