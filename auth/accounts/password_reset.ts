/**
 * Password reset: asking for a link by e-mail, checking it, and setting a new password with it.
 * The token's records live in store/accounts/password_reset.ts; this is the flow and its rules.
 */
import { throttleSubject } from "../../lib/client.ts";
import { accountSuspended, HttpError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import {
  checkPasswordReset,
  consumePasswordReset,
  issuePasswordReset,
  PASSWORD_RESET_TTL_MS,
} from "../../store/accounts/password_reset.ts";
import { deleteAllSessions } from "../../store/sessions.ts";
import { findUserByEmail, normaliseEmail } from "../../store/accounts/users.ts";
import type { AccountKit } from "./kit.ts";
import { type PublicUser, publicUser } from "./user_view.ts";

/** The reset page a link opens when the request names none. */
export const DEFAULT_RESET_PATH = "/reset-password";

export const RESET_REQUESTED_MESSAGE =
  "If this email exists in our system, check your email for the reset link";

/**
 * The reset-mail rule: at most one reset mail per account per RESET_MAIL_INTERVAL_MS (5
 * minutes). A request within that time of the account's last link sends nothing and changes
 * nothing, so the link already mailed stays valid; a later one mails a new link beside it (both
 * work until one is used, their hour is up, or a credential change revokes them). Only the
 * token's digest is stored, so a live link cannot be sent again: within the interval the owner
 * uses the mail already sent. An anonymous client can thus neither flood an inbox nor kill the
 * link its owner is about to use. The rule is decided after the answer, which is the same either
 * way, and atomically with the new link (store/accounts/password_reset.ts `issuePasswordReset`).
 */
export const RESET_MAIL_INTERVAL_MS = 5 * 60 * 1000;

/**
 * `redirectTo` of a reset request as a same-site path: a path ("/…", not "//…"), or an absolute
 * URL on `origin` (the site's, PUBLIC_URL's when set). Anything else is refused (400), so a reset
 * link never sends its token elsewhere.
 */
export function resetRedirectPath(
  redirectTo: string | undefined,
  origin: string,
  field = "redirectTo",
): string {
  if (redirectTo === undefined || redirectTo === "") return DEFAULT_RESET_PATH;
  const bad = () =>
    new HttpError(400, `${field} must be a path on this site or a URL on its origin.`, {
      code: "INVALID_REDIRECT",
      field,
    });
  // deno-lint-ignore no-control-regex
  if (/[\\\u0000-\u001f\u007f]/.test(redirectTo)) throw bad();
  let url: URL;
  try {
    url = new URL(redirectTo, origin);
  } catch {
    throw bad();
  }
  if (url.origin !== origin || redirectTo.startsWith("//")) throw bad();
  if (
    !redirectTo.startsWith("/") && !redirectTo.startsWith(origin + "/") && redirectTo !== origin
  ) {
    throw bad();
  }
  // Checked on the result, not only the input: dot segments can turn "/.//evil.com" into the
  // path "//evil.com", which a URL parser reads as another host.
  const path = `${url.pathname}${url.search}`;
  if (path.startsWith("//")) throw bad();
  return path;
}

/**
 * The link a reset mail carries: the page, with the token as `token` in its query. Built on
 * `origin` and checked to stay there, whatever the path (a token must never leave the site).
 */
export function resetLink(origin: string, path: string, token: string): string {
  const url = new URL(origin + (path.startsWith("/") ? path : `/${path}`));
  if (url.origin !== origin) throw new Error("a reset link must stay on its origin");
  url.searchParams.set("token", token);
  return url.href;
}

function invalidResetToken(): HttpError {
  return new HttpError(400, "The reset link is invalid or has expired. Ask for a new one.", {
    code: "INVALID_TOKEN",
  });
}

export class PasswordResetFlow {
  readonly #kit: AccountKit;

  constructor(kit: AccountKit) {
    this.#kit = kit;
  }

  /**
   * A reset request: throttled per address and per email, then answered at once, the same
   * whether or not the email has an account. The lookup, the token and the mail happen after
   * the answer, so neither the store nor SMTP latency tells who has an account, and neither
   * does the reset-mail rule (RESET_MAIL_INTERVAL_MS), decided there too. `origin` is
   * where the link points (PUBLIC_URL's, or a loopback origin in development), or null: then
   * no link can be made safely and none is sent (a Host header is the client's to choose).
   */
  async request(
    input: { email: string; redirectTo?: string },
    origin: string | null,
    ip: string,
  ): Promise<void> {
    const kit = this.#kit;
    const email = normaliseEmail(input.email);
    const path = resetRedirectPath(input.redirectTo, origin ?? "http://localhost");
    await kit.throttle("password-reset:ip", throttleSubject(ip), "password reset");
    await kit.throttle("password-reset:email", sha256Hex(email), "password reset");
    if (origin === null) {
      kit.log({
        level: "warn",
        msg: "password reset link not sent: set PUBLIC_URL (links are made only for its " +
          "origin, or for a loopback origin in development)",
      });
      return;
    }
    kit.inBackground("password reset mail", () => this.#mailLink(email, origin, path, ip));
  }

  /** Whether a reset token is live now (the reset page checks before showing its form). */
  async tokenValid(token: string): Promise<boolean> {
    return (await checkPasswordReset(this.#kit.kv, token, this.#kit.clock())).ok;
  }

  /**
   * Sets a new password with a reset token: checked first (400 INVALID_TOKEN), hashed through
   * the bounded pool after a per-address throttle, then token and hash change in one checked
   * commit (the token works once), and every session of the account is deleted.
   */
  async reset(
    input: { token: string; newPassword: string },
    ip: string,
    req?: Request,
  ): Promise<{ user: PublicUser; revokedSessions: number }> {
    const kit = this.#kit;
    const subject = throttleSubject(ip);
    using admission = kit.hashing.admit(subject);
    await kit.throttle("reset-password:ip", subject, "password reset");
    const found = await checkPasswordReset(kit.kv, input.token, kit.clock());
    if (!found.ok) throw invalidResetToken();
    if (found.user.status !== "active") throw accountSuspended();
    const next = await admission.hash(input.newPassword);
    const nowMs = kit.clock();
    const updated = await consumePasswordReset(
      kit.kv,
      input.token,
      next,
      nowMs,
      kit.stamp(kit.anonymousContext("password-reset", ip, req)),
    );
    if (!updated) throw invalidResetToken();
    const revokedSessions = await deleteAllSessions(kit.kv, updated.id);
    kit.emit({ type: "password-reset", userId: updated.id, ip, revokedSessions }, nowMs);
    return { user: publicUser(updated), revokedSessions };
  }

  /**
   * Issues a token and mails the link; nothing for an unknown or suspended account, nor within
   * RESET_MAIL_INTERVAL_MS of the account's last link (the reset-mail rule, enforced here only).
   */
  async #mailLink(email: string, origin: string, path: string, ip: string): Promise<void> {
    const { kv, clock, mailer } = this.#kit;
    const user = await findUserByEmail(kv, email);
    if (!user || user.status !== "active" || !mailer) return;
    const issued = await issuePasswordReset(kv, user.id, clock(), {
      minIntervalMs: RESET_MAIL_INTERVAL_MS,
    });
    if (!issued) return;
    this.#kit.emit({ type: "password-reset-requested", userId: user.id, ip }, clock());
    const link = resetLink(origin, path, issued.token);
    await mailer.send({
      to: user.email,
      subject: "Reset your password",
      text:
        `Someone (hopefully you) asked to reset the password of your account ${user.email}.\n\n` +
        `Open this link within ${PASSWORD_RESET_TTL_MS / 60_000} minutes to choose a new one:\n\n` +
        `${link}\n\nIt works once. Resetting signs out every session of the account. ` +
        `Asking again within ${RESET_MAIL_INTERVAL_MS / 60_000} minutes sends no new mail: ` +
        `use this one. ` +
        `If you did not ask for this, ignore this mail: your password stays as it is.\n`,
    });
  }
}
