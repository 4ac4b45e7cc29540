/**
 * What every account flow (sign_in.ts, password_reset.ts, settings.ts) works with, built once per
 * account service from its dependencies: the store, the clock, the bounded password hashing, the
 * throttles, the audit stamps, background work and the account-event sink.
 */
import type { Clock } from "../../lib/clock.ts";
import type { Config } from "../../lib/config.ts";
import { HttpError } from "../../lib/errors.ts";
import type { Logger } from "../../lib/log.ts";
import { type Mailer, MailError } from "../../lib/mailer.ts";
import type { AuditContext, AuditStamp } from "../../store/audit_log/events.ts";
import { recordAttempt } from "../../store/throttle.ts";
import { EmailVerification } from "../email_verification.ts";
import type { Kdf } from "../passwords/hash.ts";
import { PasswordHasher } from "../passwords/pool.ts";
import type { SessionManager } from "../sessions/manager.ts";
import { type AccountEvent, type AccountEventSink, emitAccountEvent } from "./events.ts";

export type AccountDeps = {
  kv: Deno.Kv;
  clock: Clock;
  config: Config;
  sessions: SessionManager;
  /** The key derivation; tests inject one that counts or holds the work. */
  kdf?: Kdf;
  /** Where password-reset mail goes (lib/mailer.ts); without one, requests send nothing. */
  mailer?: Mailer;
  /** For background failures (mail delivery): codes only, never a secret. */
  log?: Logger;
  /** Where account events go (auth/accounts/events.ts); without one, nowhere. */
  events?: AccountEventSink;
};

/**
 * The signed-in caller of an account operation: the account and the session it came with, and
 * the request's audit context (auth/audit_context.ts) for the events its changes record.
 */
export type Caller = { userId: string; sessionId: string; audit?: AuditContext };

export class AccountKit {
  readonly kv: Deno.Kv;
  readonly clock: Clock;
  readonly config: Config;
  readonly sessions: SessionManager;
  readonly mailer: Mailer | undefined;
  readonly log: Logger;
  readonly hashing: PasswordHasher;
  /** E-mail verification and the sign-up policy (auth/email_verification.ts). */
  readonly verifications: EmailVerification;
  readonly #events: AccountEventSink | undefined;
  readonly #background = new Set<Promise<void>>();

  constructor(deps: AccountDeps) {
    this.kv = deps.kv;
    this.clock = deps.clock;
    this.config = deps.config;
    this.sessions = deps.sessions;
    this.mailer = deps.mailer;
    this.log = deps.log ?? (() => {});
    this.#events = deps.events;
    this.hashing = new PasswordHasher(deps.config, deps.kdf);
    this.verifications = new EmailVerification({
      kv: deps.kv,
      clock: deps.clock,
      config: deps.config,
      mailer: deps.mailer,
      log: this.log,
      inBackground: (what, work) => this.inBackground(what, work),
    });
  }

  /** Runs `work` off the request path; `idle()` waits for it. Failures are logged, by code. */
  inBackground(what: string, work: () => Promise<void>): void {
    const p: Promise<void> = Promise.resolve().then(work).catch((err) => {
      this.log({
        level: "error",
        msg: `${what} failed`,
        error: err instanceof MailError ? err.message : err instanceof Error ? err.name : "error",
      });
    }).finally(() => this.#background.delete(p));
    this.#background.add(p);
  }

  /** Resolves once background work (reset and verification mail, audit events) has finished. */
  async idle(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  /** The one place account events are emitted: to the sink the service was built with. */
  emit(event: AccountEvent, nowMs: number = this.clock()): void {
    emitAccountEvent(this.#events, event, nowMs);
  }

  /** An audit stamp for a change made now, with AUDIT_RETENTION_DAYS. */
  stamp(ctx: AuditContext): AuditStamp {
    return { ctx: { ...ctx, retentionDays: this.config.auditRetentionDays }, nowMs: this.clock() };
  }

  /** The caller's audit context (its session as actor); ip and agent when the route gave them. */
  callerContext(caller: Caller): AuditContext {
    return caller.audit ??
      { actor: { type: "session", id: caller.sessionId }, ip: null, userAgent: null };
  }

  /** Before sign-in: who tries, from where (the session, once made, becomes the actor). */
  anonymousContext(what: string, ip: string, req?: Request): AuditContext {
    return {
      actor: { type: "session", id: what },
      ip,
      userAgent: req?.headers.get("User-Agent") ?? null,
    };
  }

  /**
   * Counts an attempt against `subject` in `scope` (store/throttle.ts), at most `max` per
   * SIGN_IN_THROTTLE window; beyond it 429 TOO_MANY_ATTEMPTS with Retry-After.
   */
  async throttle(
    scope: string,
    subject: string,
    what: string,
    max = this.config.signInThrottle.max,
  ): Promise<void> {
    const limit = this.config.signInThrottle;
    const r = await recordAttempt(this.kv, scope, subject, this.clock(), { ...limit, max });
    if (r.allowed) return;
    throw new HttpError(
      429,
      `Too many ${what} attempts. Retry after ${r.retryAfterSeconds} seconds.`,
      { code: "TOO_MANY_ATTEMPTS" },
      { "Retry-After": String(r.retryAfterSeconds) },
    );
  }
}
