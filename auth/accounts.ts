/**
 * Sign-up and sign-in: the only unauthenticated operations that touch accounts. Both take their
 * address's place in the bounded hashing pool first (auth/password_pool.ts: one per address, 429
 * at once beyond it), are throttled (store/throttle.ts) before any password work, and sign-in
 * answers an unknown email exactly like a wrong password, after the same amount of scrypt work.
 *
 * Sign-in throttling follows OWASP's device-cookie pattern (auth/device_cookie.ts). An attempt
 * carrying a valid device cookie for the email counts only against that device ("sign-in:device",
 * `signInThrottle` per window), so guesses from anywhere else at the email cannot lock its owner's
 * browsers out. Any other attempt, and a device's attempts beyond its limit (it is untrusted for
 * the rest of that window), count per client address ("sign-in:ip") and per email
 * ("sign-in:email"), so distributed guessing at one email stays at `signInThrottle` per window.
 * Both answers to a wrong password are the same 401 after the same work.
 */
import type { Context } from "hono";
import { boundClient, clientOf, throttleSubject } from "../lib/client.ts";
import type { Clock } from "../lib/clock.ts";
import type { Config } from "../lib/config.ts";
import { sha256Hex } from "../lib/sha256.ts";
import { accountSuspended, HttpError, unauthorized, writeConflict } from "../lib/errors.ts";
import { summariseUserAgent } from "../lib/user_agent.ts";
import type { Logger } from "../lib/log.ts";
import { type Mailer, MailError } from "../lib/mailer.ts";
import {
  checkPasswordReset,
  consumePasswordReset,
  issuePasswordReset,
  PASSWORD_RESET_TTL_MS,
} from "../store/password_reset.ts";
import {
  deleteAllSessions,
  deleteOtherSessions,
  deleteSession,
  getSessionRecord,
  listSessions,
  type SessionView,
  sessionView,
} from "../store/sessions.ts";
import { deleteAccount } from "../store/account_deletion.ts";
import {
  type AuditContext,
  type AuditInput,
  type AuditStamp,
  recordAuditEvent,
} from "../store/audit.ts";
import { actorOf } from "./audit_context.ts";
import { recordAttempt } from "../store/throttle.ts";
import {
  createUser,
  findUserByEmail,
  getUser,
  normaliseEmail,
  updatePasswordHash,
  updateUserName,
  type UserRecord,
} from "../store/users.ts";
import { deviceCookies, readDeviceCookie } from "./device_cookie.ts";
import { EmailVerification } from "./email_verification.ts";
import type { Kdf } from "./password.ts";
import { PasswordHasher } from "./password_pool.ts";
import type { IssuedSession, SessionManager } from "./session.ts";
import { type SecondFactorMethod, secondFactorMethods, startPendingSignIn } from "./two_factor.ts";

/** Trusted-device sign-ins one address may make per window: this many times the sign-in limit. */
export const TRUSTED_ADDRESS_FACTOR = 5;

export const INVALID_CREDENTIALS_MESSAGE = "Invalid email or password.";

export type PublicUser = {
  id: string;
  email: string;
  /** Display name; null for accounts made before names existed. */
  name: string | null;
  createdAt: string;
  updatedAt: string;
  /** Whether the owner proved the address (auth/email_verification.ts). */
  emailVerified: boolean;
};

export function publicUser(u: UserRecord): PublicUser {
  return {
    id: u.id,
    email: u.email,
    name: u.name ?? null,
    emailVerified: u.emailVerified === true,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt ?? u.createdAt,
  };
}

/** better-auth's user object, as its client expects it (routes/auth.ts, two-factor, passkeys). */
export function betterAuthUser(u: PublicUser) {
  return {
    id: u.id,
    email: u.email,
    name: u.name ?? "",
    emailVerified: u.emailVerified,
    image: null,
    createdAt: u.createdAt,
    updatedAt: u.updatedAt,
  };
}

/**
 * Account events: every account flow reports here, and only here, what it did (never a secret:
 * ids, counts and the client address only). A no-op for now; the audit log hooks in with
 * `setAccountEventSink`.
 */
export type AccountEvent =
  | { type: "sign-up"; userId: string; ip: string; sessionId: string }
  | { type: "sign-in"; userId: string; ip: string; sessionId: string }
  | { type: "sign-out"; userId: string; sessionId: string }
  | { type: "name-changed"; userId: string }
  | { type: "password-changed"; userId: string; ip: string; revokedSessions: number }
  | { type: "session-revoked"; userId: string; sessionId: string; bySessionId: string }
  | { type: "other-sessions-revoked"; userId: string; bySessionId: string; count: number }
  | {
    type: "account-deleted";
    userId: string;
    ip: string;
    apiKeys: number;
    sessions: number;
    domains: number;
  }
  | { type: "password-reset-requested"; userId: string; ip: string }
  | { type: "password-reset"; userId: string; ip: string; revokedSessions: number };

export type AccountEventSink = (event: AccountEvent & { at: string }) => void;

let accountEventSink: AccountEventSink = () => {};

/** Replaces where account events go; returns the previous sink (tests restore it). */
export function setAccountEventSink(sink: AccountEventSink): AccountEventSink {
  const previous = accountEventSink;
  accountEventSink = sink;
  return previous;
}

/** The one place account events are emitted. A failing sink never fails the flow. */
export function emitAccountEvent(event: AccountEvent, nowMs = Date.now()): void {
  try {
    accountEventSink({ ...event, at: new Date(nowMs).toISOString() });
  } catch {
    // An audit sink's failure is its own to report.
  }
}

/** Where a request comes from, as a session records it: address and a short agent summary. */
export function requestOrigin(c: Context): { ip: string; userAgent: string } {
  return { ip: clientAddress(c), userAgent: summariseUserAgent(c.req.header("User-Agent")) };
}

/** A live session of the account, as the session list shows it; `current` marks this device. */
export type AccountSession = SessionView & { current: boolean };

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
};

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
 * way, and atomically with the new link (store/password_reset.ts `issuePasswordReset`).
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
  return `${url.pathname}${url.search}`;
}

/** The link a reset mail carries: the page, with the token as `token` in its query. */
export function resetLink(origin: string, path: string, token: string): string {
  const url = new URL(path, origin);
  url.searchParams.set("token", token);
  return url.href;
}

/** `deviceCookie`: the new device cookie's value, for `Set-Cookie` only (never logged). */
export type SignedIn = { user: PublicUser; session: IssuedSession; deviceCookie: string };

/**
 * The password was right but the account has a second factor: no session yet, a pending sign-in
 * (auth/two_factor.ts) whose cookie value is `pendingCookie` (for `Set-Cookie` only).
 */
export type SecondStepRequired = {
  twoFactorRedirect: true;
  twoFactorMethods: SecondFactorMethod[];
  pendingCookie: string;
  pendingMaxAgeSeconds: number;
};

export function accountService(deps: AccountDeps) {
  const { kv, clock, config, sessions } = deps;
  const limit = config.signInThrottle;
  const hashing = new PasswordHasher(config, deps.kdf);
  const devices = deviceCookies(kv);
  const background = new Set<Promise<void>>();
  const log = deps.log ?? (() => {});
  const verifications = new EmailVerification({
    kv,
    clock,
    config,
    mailer: deps.mailer,
    log,
    inBackground: (what, work) => inBackground(what, work),
  });

  /** Runs `work` off the request path; `idle()` waits for it. Failures are logged, by code. */
  function inBackground(what: string, work: () => Promise<void>): void {
    const p: Promise<void> = Promise.resolve().then(work).catch((err) => {
      log({
        level: "error",
        msg: `${what} failed`,
        error: err instanceof MailError ? err.message : err instanceof Error ? err.name : "error",
      });
    }).finally(() => background.delete(p));
    background.add(p);
  }

  /** An audit stamp for a change made now, with AUDIT_RETENTION_DAYS. */
  function stamp(ctx: AuditContext): AuditStamp {
    return { ctx: { ...ctx, retentionDays: config.auditRetentionDays }, nowMs: clock() };
  }

  /** The caller's audit context (its session as actor); ip and agent when the route gave them. */
  function callerContext(caller: Caller): AuditContext {
    return caller.audit ??
      { actor: { type: "session", id: caller.sessionId }, ip: null, userAgent: null };
  }

  /** Before sign-in: who tries, from where (the session, once made, becomes the actor). */
  function anonymousContext(what: string, ip: string, req?: Request): AuditContext {
    return {
      actor: { type: "session", id: what },
      ip,
      userAgent: req?.headers.get("User-Agent") ?? null,
    };
  }

  /**
   * `session.sign_in_failed` for an existing account. No change goes with it (the throttle's
   * counting commit happens before the password is checked), so it is its own commit, written
   * off the request path: an unknown email and a wrong password stay equally fast.
   */
  function recordFailedSignIn(user: UserRecord, ctx: AuditContext, extra: Partial<AuditInput>) {
    inBackground("audit event", async () => {
      await recordAuditEvent(kv, user.id, stamp(ctx).ctx, {
        action: "session.sign_in_failed",
        target: { type: "user", id: user.id, name: user.email },
        outcome: "failure",
        ...extra,
      }, clock());
    });
  }

  /**
   * Issues a token and mails the link; nothing for an unknown or suspended account, nor within
   * RESET_MAIL_INTERVAL_MS of the account's last link (the reset-mail rule, enforced here only).
   */
  async function mailResetLink(email: string, origin: string, path: string, ip: string) {
    const user = await findUserByEmail(kv, email);
    if (!user || user.status !== "active" || !deps.mailer) return;
    const issued = await issuePasswordReset(kv, user.id, clock(), {
      minIntervalMs: RESET_MAIL_INTERVAL_MS,
    });
    if (!issued) return;
    emitAccountEvent({ type: "password-reset-requested", userId: user.id, ip }, clock());
    const link = resetLink(origin, path, issued.token);
    await deps.mailer.send({
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

  /** createUser, once more after a replaceable unverified holder of the address is deleted. */
  async function createAccount(
    input: { email: string; passwordHash: string; name?: string },
  ): Promise<UserRecord> {
    const make = () =>
      createUser(kv, {
        email: input.email,
        passwordHash: input.passwordHash,
        nowMs: clock(),
        verificationRequired: verifications.required,
        ...(input.name !== undefined ? { name: input.name } : {}),
      });
    try {
      return await make();
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      if (await verifications.releaseUnverified(input.email)) {
        try {
          return await make();
        } catch (again) {
          if (!(again instanceof Deno.errors.AlreadyExists)) throw again;
        }
      }
      throw new HttpError(409, "An account with that email already exists. Sign in instead.", {
        code: "EMAIL_TAKEN",
      }, { "x-should-retry": "false" });
    }
  }

  async function throttle(
    scope: string,
    subject: string,
    what: string,
    max = limit.max,
  ): Promise<void> {
    const r = await recordAttempt(kv, scope, subject, clock(), { ...limit, max });
    if (r.allowed) return;
    throw new HttpError(
      429,
      `Too many ${what} attempts. Retry after ${r.retryAfterSeconds} seconds.`,
      { code: "TOO_MANY_ATTEMPTS" },
      { "Retry-After": String(r.retryAfterSeconds) },
    );
  }

  return {
    /** E-mail verification and the sign-up policy (auth/email_verification.ts). */
    emailVerification: verifications,

    /** Resolves once background work (reset mail) has finished. */
    async idle(): Promise<void> {
      while (background.size > 0) await Promise.allSettled([...background]);
    },

    /**
     * A reset request: throttled per address and per email, then answered at once, the same
     * whether or not the email has an account. The lookup, the token and the mail happen after
     * the answer, so neither the store nor SMTP latency tells who has an account, and neither
     * does the reset-mail rule (RESET_MAIL_INTERVAL_MS), decided there too. `origin` is
     * where the link points (PUBLIC_URL's, or a loopback origin in development), or null: then
     * no link can be made safely and none is sent (a Host header is the client's to choose).
     */
    async requestPasswordReset(
      input: { email: string; redirectTo?: string },
      origin: string | null,
      ip: string,
    ): Promise<void> {
      const email = normaliseEmail(input.email);
      const path = resetRedirectPath(input.redirectTo, origin ?? "http://localhost");
      await throttle("password-reset:ip", throttleSubject(ip), "password reset");
      await throttle("password-reset:email", sha256Hex(email), "password reset");
      if (origin === null) {
        log({
          level: "warn",
          msg: "password reset link not sent: set PUBLIC_URL (links are made only for its " +
            "origin, or for a loopback origin in development)",
        });
        return;
      }
      inBackground("password reset mail", () => mailResetLink(email, origin, path, ip));
    },

    /** Whether a reset token is live now (the reset page checks before showing its form). */
    async resetTokenValid(token: string): Promise<boolean> {
      return (await checkPasswordReset(kv, token, clock())).ok;
    },

    /**
     * Sets a new password with a reset token: checked first (400 INVALID_TOKEN), hashed through
     * the bounded pool after a per-address throttle, then token and hash change in one checked
     * commit (the token works once), and every session of the account is deleted.
     */
    async resetPassword(
      input: { token: string; newPassword: string },
      ip: string,
      req?: Request,
    ): Promise<{ user: PublicUser; revokedSessions: number }> {
      const invalid = () =>
        new HttpError(400, "The reset link is invalid or has expired. Ask for a new one.", {
          code: "INVALID_TOKEN",
        });
      const subject = throttleSubject(ip);
      using admission = hashing.admit(subject);
      await throttle("reset-password:ip", subject, "password reset");
      const found = await checkPasswordReset(kv, input.token, clock());
      if (!found.ok) throw invalid();
      if (found.user.status !== "active") throw accountSuspended();
      const next = await admission.hash(input.newPassword);
      const nowMs = clock();
      const updated = await consumePasswordReset(
        kv,
        input.token,
        next,
        nowMs,
        stamp(anonymousContext("password-reset", ip, req)),
      );
      if (!updated) throw invalid();
      const revokedSessions = await deleteAllSessions(kv, updated.id);
      emitAccountEvent({ type: "password-reset", userId: updated.id, ip, revokedSessions }, nowMs);
      return { user: publicUser(updated), revokedSessions };
    },

    /** Password hashing jobs running and waiting now. */
    hashingLoad(): { running: number; queued: number } {
      return { running: hashing.pool.running, queued: hashing.pool.queued };
    },

    /** The account and session behind the request's cookie, or null. */
    async current(req: Request): Promise<
      | { kind: "ok"; user: PublicUser; session: { id: string; expiresAt: string } }
      | { kind: "suspended"; userId: string }
      | { kind: "invalid" }
    > {
      const outcome = await sessions.resolve(req);
      switch (outcome.kind) {
        case "ok": {
          const { user, session } = outcome;
          return {
            kind: "ok",
            user: publicUser(user),
            session: {
              id: session.sessionId,
              expiresAt: new Date(session.expiresAt).toISOString(),
            },
          };
        }
        case "suspended":
        case "invalid":
          return outcome;
        default: {
          const unhandled: never = outcome;
          return unhandled;
        }
      }
    },

    /**
     * Creates the account and signs it in. 403 when SIGN_UP or SIGN_UP_EMAIL_DOMAINS refuse the
     * address, 409 when it is taken (unless its holder may be replaced: auth/email_verification.ts).
     * With EMAIL_VERIFICATION=required a link is mailed, returning to `verification.callbackPath`.
     */
    async signUp(
      input: { email: string; password: string; name?: string },
      ip: string,
      userAgent?: string,
      req?: Request,
      verification?: { origin: string | null; callbackPath: string },
    ): Promise<SignedIn> {
      verifications.assertSignUpAllowed(input.email);
      // Per-address limits count an IPv6 client by its /64 (lib/client.ts throttleSubject).
      const subject = throttleSubject(ip);
      using admission = hashing.admit(subject);
      await throttle("sign-up:ip", subject, "sign-up");
      const passwordHash = await admission.hash(input.password);
      const user = await createAccount({ ...input, passwordHash });
      if (verification?.origin) {
        verifications.send(user, verification.origin, verification.callbackPath);
      }
      const session = await sessions.start(user.id, {
        ip,
        userAgent,
        audit: anonymousContext("sign-up", ip, req),
      });
      emitAccountEvent(
        { type: "sign-up", userId: user.id, ip, sessionId: session.sessionId },
        clock(),
      );
      return {
        user: publicUser(user),
        session,
        // The browser's other accounts stay in its device cookie (auth/device_cookie.ts).
        deviceCookie: await devices.issue(user.id, user.email, req ? readDeviceCookie(req) : null),
      };
    },

    /**
     * Verifies the credentials and issues a fresh session. Any session the request already carried
     * is deleted first, so a planted cookie cannot survive a sign-in. A stored hash made with other
     * parameters is replaced by one at the current cost, unless it changed meanwhile.
     */
    async signIn(
      input: { email: string; password: string },
      req: Request,
      ip: string,
    ): Promise<SignedIn | SecondStepRequired> {
      const subject = throttleSubject(ip);
      using admission = hashing.admit(subject);
      const email = normaliseEmail(input.email);
      const untrusted = async () => {
        await throttle("sign-in:ip", subject, "sign-in");
        await throttle("sign-in:email", sha256Hex(email), "sign-in");
      };
      const current = readDeviceCookie(req);
      const device = await devices.verify(current, email);
      const trusted = device !== null &&
        (await recordAttempt(kv, "sign-in:device", device.deviceId, clock(), limit)).allowed;
      if (!trusted) await untrusted();
      // Devices are exempt from the per-email and per-address counters, not from every bound:
      // an address's trusted attempts (each a full password hash) get a generous cap of their
      // own, so device cookies for one's own accounts cannot make sign-in work unlimited.
      else {
        await throttle("sign-in:ip-device", subject, "sign-in", limit.max * TRUSTED_ADDRESS_FACTOR);
      }
      const user = await findUserByEmail(kv, email);
      // Issued to an account since deleted, whose email someone has signed up again.
      if (trusted && user && user.id !== device.userId) await untrusted();
      // Not req.signal: touching it makes Deno.serve print a warning line. A waiter leaves the
      // queue after passwordHashQueue.waitMs anyway, and no hash starts in the second half of the
      // request's time, so none outlives its request's answer.
      const check = await admission.check(input.password, user?.passwordHash ?? null);
      if (!user) throw new HttpError(401, INVALID_CREDENTIALS_MESSAGE);
      if (!check.ok) {
        recordFailedSignIn(user, anonymousContext("sign-in", ip, req), {});
        throw new HttpError(401, INVALID_CREDENTIALS_MESSAGE);
      }
      if (user.status !== "active") {
        recordFailedSignIn(user, anonymousContext("sign-in", ip, req), {
          outcome: "denied",
          details: { reason: "account_suspended" },
        });
        throw accountSuspended();
      }
      if (check.rehash) {
        try {
          await updatePasswordHash(kv, user.id, user.passwordHash, check.rehash);
        } catch {
          // The old hash still works; the next sign-in tries again.
        }
      }
      await sessions.end(req);
      // A second factor set up: no session until it is verified (auth/two_factor.ts).
      const methods = await secondFactorMethods(kv, user.id);
      if (methods.length > 0) {
        const audit = stamp(anonymousContext("sign-in", ip, req));
        const pending = await startPendingSignIn(kv, user, methods, audit);
        return {
          twoFactorRedirect: true,
          twoFactorMethods: methods,
          pendingCookie: pending.cookie,
          pendingMaxAgeSeconds: pending.maxAgeSeconds,
        };
      }
      const session = await sessions.start(user.id, {
        ip,
        userAgent: summariseUserAgent(req.headers.get("User-Agent")),
        audit: anonymousContext("sign-in", ip, req),
      });
      emitAccountEvent(
        { type: "sign-in", userId: user.id, ip, sessionId: session.sessionId },
        clock(),
      );
      // The same device id (its count is not reset by succeeding), the browser's other accounts
      // kept beside this one.
      return {
        user: publicUser(user),
        session,
        deviceCookie: await devices.issue(user.id, user.email, current),
      };
    },

    /**
     * Checks the account's password for a signed-in action (two-factor settings,
     * re-authentication): through the bounded pool after a per-account throttle
     * ("change-password:user"); 400 INVALID_PASSWORD when wrong.
     */
    async verifyPassword(userId: string, password: string, ip: string): Promise<void> {
      using admission = hashing.admit(throttleSubject(ip));
      await throttle("change-password:user", userId, "password");
      const user = await getUser(kv, userId);
      if (!user) throw unauthorized();
      if (user.status !== "active") throw accountSuspended();
      const check = await admission.check(password, user.passwordHash);
      if (!check.ok) {
        throw new HttpError(400, "The password is not correct.", { code: "INVALID_PASSWORD" });
      }
    },

    /** Ends the request's session, if any; reports who signed out. */
    async signOut(req: Request): Promise<boolean> {
      const outcome = await sessions.resolve(req);
      const ended = await sessions.end(
        req,
        outcome.kind === "ok"
          ? stamp({
            actor: actorOf(outcome.principal),
            ip: clientOf(req).address,
            userAgent: req.headers.get("User-Agent"),
          })
          : undefined,
      );
      if (ended && outcome.kind === "ok") {
        emitAccountEvent({
          type: "sign-out",
          userId: outcome.principal.userId,
          sessionId: outcome.session.sessionId,
        }, clock());
      }
      return ended;
    },

    /** Sets the display name (validated by the caller: 1-100 characters, trimmed). */
    async updateName(caller: Caller, name: string): Promise<PublicUser> {
      try {
        const user = await updateUserName(kv, caller.userId, name, clock());
        emitAccountEvent({ type: "name-changed", userId: caller.userId }, clock());
        return publicUser(user);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) throw unauthorized();
        throw err;
      }
    },

    /**
     * Changes the password: the current one is checked and the new one hashed through the
     * bounded pool (the caller's address takes its place first, as for sign-in), after a
     * per-account throttle. The new hash replaces the old in a checked commit (a concurrent
     * change wins, this one gets 409). Unless `revokeOtherSessions` is false, every other
     * session of the account is deleted; the caller's stays. 400 INVALID_PASSWORD for a wrong
     * current password.
     */
    async changePassword(
      caller: Caller,
      input: { currentPassword: string; newPassword: string; revokeOtherSessions?: boolean },
      ip: string,
    ): Promise<{ user: PublicUser; revokedSessions: number }> {
      using admission = hashing.admit(throttleSubject(ip));
      await throttle("change-password:user", caller.userId, "password change");
      const user = await getUser(kv, caller.userId);
      if (!user) throw unauthorized();
      if (user.status !== "active") throw accountSuspended();
      const check = await admission.check(input.currentPassword, user.passwordHash);
      if (!check.ok) {
        throw new HttpError(400, "The current password is not correct.", {
          code: "INVALID_PASSWORD",
        });
      }
      const next = await admission.hash(input.newPassword);
      const nowMs = clock();
      const audit = { ...stamp(callerContext(caller)), nowMs };
      if (!(await updatePasswordHash(kv, user.id, user.passwordHash, next, nowMs, audit))) {
        throw writeConflict();
      }
      const revokedSessions = input.revokeOtherSessions === false
        ? 0
        : await deleteOtherSessions(kv, user.id, caller.sessionId);
      emitAccountEvent({ type: "password-changed", userId: user.id, ip, revokedSessions }, nowMs);
      const updated = await getUser(kv, user.id);
      return { user: publicUser(updated ?? user), revokedSessions };
    },

    /** The account's live sessions, newest first, the caller's marked `current`. */
    async listSessions(caller: Caller): Promise<AccountSession[]> {
      const records = await listSessions(kv, caller.userId, clock());
      return records.map((r) => ({ ...sessionView(r), current: r.id === caller.sessionId }));
    },

    /** The caller's own session as the session list shows it, or null once it is gone. */
    async currentSession(caller: Caller): Promise<AccountSession | null> {
      const r = await getSessionRecord(kv, caller.userId, caller.sessionId);
      return r ? { ...sessionView(r), current: true } : null;
    },

    /** Ends one of the account's sessions by id; false when it has none by that id. */
    async revokeSession(caller: Caller, sessionId: string): Promise<boolean> {
      const done = await deleteSession(kv, caller.userId, sessionId, stamp(callerContext(caller)));
      if (done) {
        emitAccountEvent({
          type: "session-revoked",
          userId: caller.userId,
          sessionId,
          bySessionId: caller.sessionId,
        }, clock());
      }
      return done;
    },

    /** Ends every session of the account but the caller's; returns how many. */
    async revokeOtherSessions(caller: Caller): Promise<number> {
      const count = await deleteOtherSessions(
        kv,
        caller.userId,
        caller.sessionId,
        stamp(callerContext(caller)),
      );
      emitAccountEvent({
        type: "other-sessions-revoked",
        userId: caller.userId,
        bySessionId: caller.sessionId,
        count,
      }, clock());
      return count;
    },

    /**
     * Deletes the caller's account (store/account_deletion.ts): the password is checked through
     * the bounded pool after a per-account throttle ("delete-user:user", the sign-in limit);
     * 400 INVALID_PASSWORD when wrong, and nothing is deleted. From the first commit on, the
     * account's keys and sessions are refused (401) and its email is free; the rest follows in
     * bounded batches before this returns. A crash midway leaves a tombstone that
     * `admin verify` reports and `admin user:delete --id` finishes.
     */
    async deleteUser(caller: Caller, input: { password: string }, ip: string): Promise<void> {
      using admission = hashing.admit(throttleSubject(ip));
      await throttle("delete-user:user", caller.userId, "account deletion");
      const user = await getUser(kv, caller.userId);
      if (!user) throw unauthorized();
      if (user.status !== "active") throw accountSuspended();
      const check = await admission.check(input.password, user.passwordHash);
      if (!check.ok) {
        throw new HttpError(400, "The password is not correct.", { code: "INVALID_PASSWORD" });
      }
      const nowMs = clock();
      const summary = await deleteAccount(kv, user.id, { nowMs, passwordHash: user.passwordHash });
      if (!summary) throw unauthorized();
      emitAccountEvent({
        type: "account-deleted",
        userId: user.id,
        ip,
        apiKeys: summary.apiKeys,
        sessions: summary.sessions,
        domains: summary.domains,
      }, nowMs);
    },
  };
}

export type AccountService = ReturnType<typeof accountService>;

/**
 * The signed-in caller of an account operation: the account and the session it came with, and
 * the request's audit context (auth/audit_context.ts) for the events its changes record.
 */
export type Caller = { userId: string; sessionId: string; audit?: AuditContext };
