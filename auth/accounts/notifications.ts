/**
 * Security notifications by e-mail, as GitHub sends them: when an API key is created or rolled,
 * the password is changed or reset, two-factor is turned off, a passkey is added, or the account
 * is signed in to from a browser that had not signed in to it before, its owner gets one mail
 * saying what happened, when, from which address, and what to do if it was not them.
 *
 * Where the events come from: the committed audit events (auth/accounts/audit_observer.ts) for
 * the changes, since each is recorded exactly when it happens; the `sign-in` account event
 * (auth/accounts/events.ts) for the new device, since only the sign-in knows whether the browser
 * carried a valid device cookie for the account (auth/sessions/new_device.ts).
 *
 * Rules:
 *   - Only with a real mailer (`kind: "smtp"`, SMTP_URL set). The log mailer would write them to
 *     the server log, where they help nobody and tell the log's readers about the account.
 *   - Never a secret: names, times, addresses and the browser only; never a key, token,
 *     password or code (none reaches an audit event or account event in the first place).
 *   - At most MAX_PER_HOUR (10) per account per clock hour (store/throttle.ts, scope
 *     "security-mail"), so a burst of key creations cannot flood an inbox; the rest are dropped
 *     and logged by code.
 *   - Sent in the background, never on the request path; failures are logged by code only.
 */
import type { Clock } from "../../lib/clock.ts";
import type { Logger } from "../../lib/log.ts";
import { type Mailer, MailError } from "../../lib/mailer.ts";
import { getUser } from "../../store/accounts/users.ts";
import type { AuditEvent } from "../../store/audit_log/events.ts";
import { recordAttempt } from "../../store/throttle.ts";
import { observeAuditCommits } from "./audit_observer.ts";
import type { AccountEventSink } from "./events.ts";

/** Notifications one account may receive per clock hour; the rest are dropped. */
export const MAX_PER_HOUR = 10;
const HOUR_MS = 60 * 60 * 1000;

/** What happened, as the mail names it. */
export type SecurityNotice = {
  userId: string;
  /** Subject line, e.g. "A new API key was created". */
  what: string;
  /** One sentence of detail (the key's name, the method); no secret. */
  detail: string;
  at: string;
  ip: string | null;
  userAgent: string | null;
};

export type SecurityNotifierDeps = {
  kv: Deno.Kv;
  clock: Clock;
  mailer: Mailer;
  log: Logger;
  /** PUBLIC_URL, for the link to the dashboard's security pages; null: a relative hint. */
  publicUrl: string | null;
  maxPerHour?: number;
};

/** The notice an audit event calls for, or null (most events call for none). */
export function noticeOfAudit(userId: string, e: AuditEvent): SecurityNotice | null {
  if (e.outcome !== "success") return null;
  const base = { userId, at: e.time, ip: e.ip, userAgent: e.userAgent };
  const name = e.target.name ? `"${e.target.name}"` : "";
  const change = e.details?.change;
  switch (e.action) {
    case "api_key.created":
      return { ...base, what: "A new API key was created", detail: `API key ${name} was created.` };
    case "api_key.rolled":
      return { ...base, what: "An API key was rolled", detail: `API key ${name} was replaced.` };
    case "user.password_changed":
      return { ...base, what: "Your password was changed", detail: "The password was changed." };
    case "user.password_reset":
      return { ...base, what: "Your password was reset", detail: "The password was reset." };
    case "user.two_factor_changed":
      if (change === "disabled" || change === "disabled_by_admin") {
        return {
          ...base,
          what: "Two-factor authentication was turned off",
          detail: "The authenticator app was removed from the account.",
        };
      }
      if (e.details?.method === "passkey" && change === "added") {
        return { ...base, what: "A passkey was added", detail: "A new passkey can now sign in." };
      }
      return null;
    default:
      return null;
  }
}

/** The mail's text: what, when, from where, and how to react. */
export function noticeText(n: SecurityNotice, email: string, publicUrl: string | null): string {
  const site = publicUrl ? publicUrl.replace(/\/$/, "") : "";
  return [
    `Hello,`,
    ``,
    `${n.what} on your account ${email}.`,
    n.detail,
    ``,
    `When: ${n.at.replace("T", " ").replace(/\.\d+Z$/, " UTC")}`,
    `From address: ${n.ip ?? "unknown (an operator's command)"}`,
    ...(n.userAgent ? [`Browser or client: ${n.userAgent}`] : []),
    ``,
    `If this was you, there is nothing to do.`,
    `If it was not: sign in${site ? ` at ${site}/dashboard` : ""}, change your password, sign ` +
    `out other sessions, and review your API keys, passkeys and audit log. If you cannot sign in, ` +
    `reset your password.`,
  ].join("\n");
}

export class SecurityNotifier {
  readonly #deps: SecurityNotifierDeps;
  readonly #max: number;
  readonly #pending = new Set<Promise<void>>();

  constructor(deps: SecurityNotifierDeps) {
    this.#deps = deps;
    this.#max = deps.maxPerHour ?? MAX_PER_HOUR;
  }

  /** Off unless mail really goes out (SMTP): never into the log mailer's log lines. */
  get enabled(): boolean {
    return this.#deps.mailer.kind === "smtp";
  }

  /** `kv`, reporting its committed audit events here; `kv` itself when notifications are off. */
  observe(kv: Deno.Kv): Deno.Kv {
    if (!this.enabled) return kv;
    return observeAuditCommits(kv, (userId, event) => {
      const notice = noticeOfAudit(userId, event);
      if (notice) this.notify(notice);
    });
  }

  /** An account event sink: a sign-in from a device not seen before; passes all to `next`. */
  accountEvents(next?: AccountEventSink): AccountEventSink {
    return (event) => {
      next?.(event);
      if (!this.enabled || event.type !== "sign-in" || event.newDevice !== true) return;
      this.notify({
        userId: event.userId,
        what: "New sign-in from a device not seen before",
        detail: "A browser that had not signed in to this account before did so.",
        at: event.at,
        ip: event.ip,
        userAgent: event.userAgent ?? null,
      });
    };
  }

  /** Sends `notice` in the background, within the hourly limit. */
  notify(notice: SecurityNotice): void {
    if (!this.enabled) return;
    const p: Promise<void> = this.#send(notice).catch((err) => {
      this.#deps.log({
        level: "error",
        msg: "security notification failed",
        error: err instanceof MailError ? err.message : err instanceof Error ? err.name : "error",
      });
    }).finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  async #send(notice: SecurityNotice): Promise<void> {
    const { kv, clock, mailer, log, publicUrl } = this.#deps;
    const user = await getUser(kv, notice.userId);
    if (!user) return;
    const limit = { max: this.#max, windowMs: HOUR_MS };
    const r = await recordAttempt(kv, "security-mail", notice.userId, clock(), limit);
    if (!r.allowed) {
      log({ level: "warn", msg: "security notification dropped", error: "HOURLY_LIMIT" });
      return;
    }
    await mailer.send({
      to: user.email,
      subject: `[Inbound] ${notice.what}`,
      text: noticeText(notice, user.email, publicUrl),
    });
  }

  /** Resolves once every notification started so far has been sent or has failed. */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }
}
