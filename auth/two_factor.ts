/**
 * Second factors: TOTP enrolment and verification, recovery codes, and the pending second step of
 * a password sign-in.
 *
 * A password sign-in of an account with a second factor starts no session: it answers
 * `{ twoFactorRedirect: true }` with a short-lived pending cookie (`inbound_two_factor`, the
 * session cookie's attributes, PENDING_SIGN_IN_TTL_MS). The cookie carries the account id and a
 * random token; KV keeps only the token's SHA-256 digest (store/two_factor.ts). It authenticates
 * nothing: `get-session` is null and every authenticated route answers 401 until the service's
 * `finishPending` (TOTP, a recovery code, or a passkey: routes/passkeys) turns it into a
 * session, exactly as a password-only sign-in would have, and clears it.
 *
 * Codes are throttled like passwords, per account ("two-factor:user") and per client
 * ("two-factor:ip"), every attempt counted. A TOTP code is accepted once (the accepted step is
 * stored by a checked commit; it and earlier steps are refused), a recovery code once ever; at
 * sign-in, in the commit that takes the pending sign-in, so a losing racer consumes nothing.
 *
 * The security log sees both steps: the pending sign-in's commit carries
 * `session.second_factor_required` (the password was right), and every wrong code the throttle
 * admitted records `session.second_factor_failed` (`secondStep`, the one path of the JSON routes
 * and the dashboard's form).
 *
 * The routes and the dashboard are handed the service at construction (app.ts).
 */
import { clientOf, throttleSubject } from "../lib/client.ts";
import type { Clock } from "../lib/clock.ts";
import type { Config } from "../lib/config.ts";
import { randomBase64Url } from "../lib/crypto.ts";
import { HttpError, jsonResponse, unauthorized } from "../lib/errors.ts";
import { sha256Hex } from "../lib/sha256.ts";
import { generateTotpSecret, matchTotp, totpUri } from "../lib/totp.ts";
import { summariseUserAgent } from "../lib/user_agent.ts";
import { listPasskeys } from "../store/passkeys.ts";
import { markSessionReauthenticated } from "../store/sessions.ts";
import { type AuditContext, type AuditStamp, recordAuditEvent } from "../store/audit_log/events.ts";
import { recordAttempt } from "../store/throttle.ts";
import {
  acceptTotpStep,
  beginEnrolment,
  createPendingSignIn,
  deleteTwoFactor,
  findPendingSignIn,
  getTwoFactor,
  isLivePending,
  type PendingSignIn,
  readSecondStep,
  redeemBackupCode,
  replaceBackupCodes,
  type SecondStepOutcome,
  takePendingSignIn,
  TwoFactorAlreadyEnabledError,
  type TwoFactorRecord,
} from "../store/two_factor.ts";
import { twoFactorKey } from "../store/keys.ts";
import { getUser } from "../store/accounts/users.ts";
import type { AccountChecks } from "./accounts/checks.ts";
import { betterAuthUser, publicUser } from "./accounts/user_view.ts";
import { auditContextOf } from "./audit_context.ts";
import { deviceCookieHeader, deviceCookies, readDeviceCookie } from "./sessions/device_cookie.ts";
import { isNewDevice } from "./sessions/new_device.ts";
import { isRecentlyAuthenticated, reauthenticationRequired } from "./sudo.ts";
import { sessionCookieHeader, type SessionManager } from "./sessions/manager.ts";
import { cookieHeader, PENDING_COOKIE, readCookie } from "./cookies.ts";

/** How long the second step of a sign-in may take (better-auth's default, 10 minutes). */
export const PENDING_SIGN_IN_TTL_MS = 10 * 60_000;
export const BACKUP_CODE_COUNT = 10;
/** The issuer authenticator apps show next to the account. */
export const TOTP_ISSUER = "Inbound";

const PENDING_VALUE = /^(usr_[0-9A-Za-z]{1,64})\.([A-Za-z0-9_-]{43})$/;
const BACKUP_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";

export type SecondFactorMethod = "totp" | "passkey";
export type CompletionMethod = "totp" | "backup_code" | "passkey";

/** A pending sign-in read from the request's cookie. */
export type PendingSignInRef = { userId: string; hash: string; expiresAtMs: number };

export type TwoFactorDeps = {
  kv: Deno.Kv;
  clock: Clock;
  config: Config;
  sessions: SessionManager;
  accounts: AccountChecks;
};

/** The second factors an account has set up: a completed TOTP enrolment, passkeys. */
export async function secondFactorMethods(
  kv: Deno.Kv,
  userId: string,
): Promise<SecondFactorMethod[]> {
  const [tf, passkeys] = await Promise.all([getTwoFactor(kv, userId), listPasskeys(kv, userId)]);
  const out: SecondFactorMethod[] = [];
  if (tf?.enabled) out.push("totp");
  if (passkeys.length > 0) out.push("passkey");
  return out;
}

/** A fresh recovery code: 10 characters, about 50 bits, shown as `xxxxx-xxxxx`. */
export function generateBackupCode(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(10));
  const chars = [...bytes].map((b) => BACKUP_ALPHABET[b & 31]).join("");
  return `${chars.slice(0, 5)}-${chars.slice(5)}`;
}

/** The digest stored for a recovery code: case, spaces and the dash do not matter. */
export function backupCodeDigest(code: string): string {
  return sha256Hex(code.toLowerCase().replace(/[\s-]/g, ""));
}

function newBackupCodes(): { codes: string[]; digests: string[] } {
  const codes = Array.from({ length: BACKUP_CODE_COUNT }, generateBackupCode);
  return { codes, digests: codes.map(backupCodeDigest) };
}

/** `Set-Cookie` carrying a pending sign-in (empty value and max-age 0 clear it). */
export function pendingCookieHeader(req: Request, value: string, maxAgeSeconds: number): string {
  return cookieHeader(PENDING_COOKIE, req, value, maxAgeSeconds);
}

export function clearPendingCookieHeader(req: Request): string {
  return pendingCookieHeader(req, "", 0);
}

function readPendingCookie(req: Request): { userId: string; token: string } | null {
  const m = PENDING_VALUE.exec(readCookie(req, PENDING_COOKIE) ?? "");
  return m ? { userId: m[1], token: m[2] } : null;
}

function tooMany(retryAfterSeconds: number): HttpError {
  return new HttpError(
    429,
    `Too many verification attempts. Retry after ${retryAfterSeconds} seconds.`,
    { code: "TOO_MANY_ATTEMPTS" },
    { "Retry-After": String(retryAfterSeconds) },
  );
}

export function invalidCode(): HttpError {
  return new HttpError(401, "Invalid code.", { code: "INVALID_CODE" });
}

/**
 * A right code whose time step was already accepted (a second sign-in in the same 30 seconds, a
 * code typed twice): said apart from a wrong code so its user waits for the next one instead of
 * doubting the app or the clock. Same status and code as `invalidCode` (better-auth's contract);
 * it tells a guesser nothing a wrong code does not, as only the current code can be "used".
 */
export function replayedCode(): HttpError {
  return new HttpError(401, "This code was already used. Wait for the next one.", {
    code: "INVALID_CODE",
  });
}

/** The error of a code `#verifyTotp` did not accept. */
function refusedCode(outcome: SecondStepOutcome): HttpError {
  return outcome === "replay" ? replayedCode() : invalidCode();
}

/** The pages and messages say "recovery code"; the error code stays better-auth's. */
export function invalidBackupCode(): HttpError {
  return new HttpError(401, "Invalid recovery code.", { code: "INVALID_BACKUP_CODE" });
}

export function invalidPendingSignIn(): HttpError {
  return new HttpError(
    401,
    "The sign-in has expired or was already completed. Sign in again.",
    { code: "INVALID_TWO_FACTOR_COOKIE" },
  );
}

/** What a completed second step gives the caller to answer with (JSON or a redirect). */
export type CompletedSignIn = {
  user: ReturnType<typeof publicUser>;
  sessionId: string;
  expiresAt: string;
  /** Set-Cookie lines: the session, the device cookie, and the pending cookie cleared. */
  cookies: string[];
};

/**
 * Second factors of the accounts: TOTP enrolment and its recovery codes, the second step of a
 * sign-in, re-authentication with a code. One per app (app.ts), handed to the routes and the
 * dashboard at construction.
 */
export class TwoFactorService {
  readonly #kv: Deno.Kv;
  readonly #clock: Clock;
  readonly #config: TwoFactorDeps["config"];
  readonly #sessions: TwoFactorDeps["sessions"];
  readonly #accounts: TwoFactorDeps["accounts"];
  readonly #devices: ReturnType<typeof deviceCookies>;

  constructor(deps: TwoFactorDeps) {
    this.#kv = deps.kv;
    this.#clock = deps.clock;
    this.#config = deps.config;
    this.#sessions = deps.sessions;
    this.#accounts = deps.accounts;
    this.#devices = deviceCookies(deps.kv);
  }

  async #throttle(userId: string, ip: string): Promise<void> {
    const limit = this.#config.signInThrottle;
    for (
      const [scope, subject] of [["two-factor:user", userId], [
        "two-factor:ip",
        throttleSubject(ip),
      ]]
    ) {
      const r = await recordAttempt(this.#kv, scope, subject, this.#clock(), limit);
      if (!r.allowed) throw tooMany(r.retryAfterSeconds);
    }
  }

  /** The request's audit context with AUDIT_RETENTION_DAYS (before sign-in, the user's). */
  #auditOf(
    req: Request,
    principal: { userId: string } | { userId: string; method: "session"; sessionId: string },
  ): AuditContext {
    return { ...auditContextOf(req, principal), retentionDays: this.#config.auditRetentionDays };
  }

  /** The two-factor record, and with `pendingHash` the live pending sign-in too (or "gone"). */
  async #readForCode(userId: string, pendingHash: string | undefined): Promise<
    [Deno.KvEntryMaybe<TwoFactorRecord>, Deno.KvEntry<PendingSignIn> | undefined] | "gone"
  > {
    if (pendingHash === undefined) {
      return [await this.#kv.get<TwoFactorRecord>(twoFactorKey(userId)), undefined];
    }
    const [entry, pending] = await readSecondStep(this.#kv, userId, pendingHash);
    return isLivePending(pending, this.#clock()) ? [entry, pending] : "gone";
  }

  /**
   * Verifies a TOTP code for the account and accepts its step (once): "invalid" when the code is
   * wrong, "replay" when it is right but its step was already used. Enrolment completes on the
   * first accepted code (`completed` says this call completed it; with `recoveryDigests` it
   * stores those recovery codes in that commit). With `pendingHash` (a sign-in's second step)
   * the step is accepted in the commit that takes that pending sign-in: "no_pending" when it is
   * gone, and then no step is used up.
   */
  async #verifyTotp(
    userId: string,
    code: string,
    ctx: AuditContext,
    opts: { enrolled: "completed" | "any"; pendingHash?: string; recoveryDigests?: string[] },
  ): Promise<{ outcome: SecondStepOutcome; completed: boolean }> {
    const refused = (outcome: SecondStepOutcome) => ({ outcome, completed: false });
    for (let i = 0; i < 8; i++) {
      const read = await this.#readForCode(userId, opts.pendingHash);
      if (read === "gone") return refused("no_pending");
      const [entry, pending] = read;
      if (!entry.value) return refused("invalid");
      // An unfinished enrolment proves nothing: only its owner's signed-in session completes it.
      if (opts.enrolled === "completed" && !entry.value.enabled) return refused("invalid");
      const step = matchTotp(entry.value.secret, code.trim(), this.#clock());
      if (step === null) return refused("invalid");
      const r = await acceptTotpStep(
        this.#kv,
        userId,
        entry,
        step,
        { ctx, nowMs: this.#clock() },
        pending,
        opts.recoveryDigests,
      );
      if (r === "ok") return { outcome: "ok", completed: !entry.value.enabled };
      if (r === "replay") return refused("replay");
    }
    return refused("invalid");
  }

  /** The live pending sign-in named by the request's cookie, or null. */
  async readPending(req: Request): Promise<PendingSignInRef | null> {
    const cookie = readPendingCookie(req);
    if (!cookie) return null;
    const hash = sha256Hex(cookie.token);
    const found = await findPendingSignIn(this.#kv, cookie.userId, hash, this.#clock());
    return found ? { userId: found.userId, hash, expiresAtMs: found.expiresAtMs } : null;
  }

  /** Turns the pending sign-in into a session (once: the pending record is taken first). */
  async finishPending(
    req: Request,
    pending: PendingSignInRef,
    method: CompletionMethod,
  ): Promise<CompletedSignIn> {
    if (!(await takePendingSignIn(this.#kv, pending.userId, pending.hash))) {
      throw invalidPendingSignIn();
    }
    void method; // Every method ends the same way; the audit event of the factor is its own.
    return await this.#openSession(req, pending.userId);
  }

  /**
   * `session.second_factor_failed` for a wrong code on a live pending sign-in (so the password
   * was right): no change goes with it, so it is a commit of its own, written only for an attempt
   * the throttle admitted (store/audit_log/events.ts `recordAuditEvent`). Never the code.
   */
  async #recordSecondFactorFailure(
    req: Request,
    userId: string,
    method: "totp" | "backup_code",
  ): Promise<void> {
    const user = await getUser(this.#kv, userId);
    if (!user) return;
    await recordAuditEvent(this.#kv, userId, this.#auditOf(req, { userId }), {
      action: "session.second_factor_failed",
      target: { type: "user", id: userId, name: user.email },
      outcome: "failure",
      details: { method },
    }, this.#clock());
  }

  /**
   * The second step of a sign-in with a code, the one path of the JSON routes and the dashboard's
   * form: the pending sign-in of the request's cookie; the attempt counted by the throttle (beyond
   * it 429, recording nothing); then `redeem` accepts the code in the commit that takes the
   * pending sign-in. A wrong code records `session.second_factor_failed`; an attempt whose pending
   * sign-in was taken meanwhile consumes and records nothing.
   */
  async #secondStep(
    req: Request,
    method: "totp" | "backup_code",
    redeem: (pending: PendingSignInRef) => Promise<SecondStepOutcome>,
  ): Promise<CompletedSignIn> {
    const pending = await this.readPending(req);
    if (!pending) throw invalidPendingSignIn();
    await this.#throttle(pending.userId, clientAddressOfReq(req));
    const outcome = await redeem(pending);
    if (outcome === "no_pending") throw invalidPendingSignIn();
    if (outcome === "invalid" || outcome === "replay") {
      await this.#recordSecondFactorFailure(req, pending.userId, method);
      throw method === "totp" ? refusedCode(outcome) : invalidBackupCode();
    }
    return await this.#openSession(req, pending.userId);
  }

  /** A session for the account whose pending sign-in was just taken, as a password sign-in. */
  async #openSession(req: Request, userId: string): Promise<CompletedSignIn> {
    const user = await getUser(this.#kv, userId);
    if (!user) throw invalidPendingSignIn();
    await this.#sessions.end(req);
    const ip = clientAddressOfReq(req);
    // Its `session.created` audit event is written in the session's commit (auth/sessions/manager.ts).
    const session = await this.#sessions.start(user.id, {
      ip,
      userAgent: summariseUserAgent(req.headers.get("User-Agent")),
      audit: auditContextOf(req, { userId: user.id }),
    });
    this.#accounts.emitEvent(
      {
        type: "sign-in",
        userId: user.id,
        ip,
        sessionId: session.sessionId,
        newDevice: await isNewDevice(this.#devices, req, user),
        userAgent: summariseUserAgent(req.headers.get("User-Agent")),
      },
      this.#clock(),
    );
    const device = await this.#devices.issue(user.id, user.email, readDeviceCookie(req));
    return {
      user: publicUser(user),
      sessionId: session.sessionId,
      expiresAt: session.expiresAt,
      cookies: [
        sessionCookieHeader(req, session.token, this.#sessions.cookieMaxAgeSeconds),
        deviceCookieHeader(req, device),
        clearPendingCookieHeader(req),
      ],
    };
  }

  /** The account's second factors: TOTP, passkeys. */
  secondFactorMethods(userId: string): Promise<SecondFactorMethod[]> {
    return secondFactorMethods(this.#kv, userId);
  }

  /** Second step with a TOTP code. */
  completeWithTotp(req: Request, code: string): Promise<CompletedSignIn> {
    return this.#secondStep(req, "totp", async (p) => {
      const ctx = this.#auditOf(req, { userId: p.userId });
      const opts = { enrolled: "completed" as const, pendingHash: p.hash };
      return (await this.#verifyTotp(p.userId, code, ctx, opts)).outcome;
    });
  }

  /** Second step with a recovery code (used up). */
  completeWithBackupCode(req: Request, code: string): Promise<CompletedSignIn> {
    return this.#secondStep(req, "backup_code", (p) => {
      return redeemBackupCode(this.#kv, p.userId, p.hash, backupCodeDigest(code), this.#clock());
    });
  }

  /**
   * Starts (or restarts) TOTP enrolment for a signed-in account after its password: the URI
   * and ten recovery codes, shown once. 400 when it is already enrolled.
   */
  async enable(
    userId: string,
    password: string,
    ip: string,
    issuer = TOTP_ISSUER,
  ): Promise<{ totpURI: string; backupCodes: string[] }> {
    // Before any password work: EMAIL_VERIFICATION=required (auth/email_verification.ts).
    await this.#accounts.emailVerification.requireVerified(userId, "set up two-factor sign-in");
    await this.#accounts.verifyPassword(userId, password, ip);
    const user = await getUser(this.#kv, userId);
    if (!user) throw unauthorized();
    const secret = generateTotpSecret();
    const { codes, digests } = newBackupCodes();
    try {
      await beginEnrolment(this.#kv, userId, {
        secret,
        backupCodeDigests: digests,
        nowMs: this.#clock(),
      });
    } catch (err) {
      if (err instanceof TwoFactorAlreadyEnabledError) {
        throw new HttpError(400, err.message + " Disable it first to enrol again.", {
          code: "TWO_FACTOR_ALREADY_ENABLED",
        });
      }
      if (err instanceof Deno.errors.NotFound) throw unauthorized();
      throw err;
    }
    return { totpURI: totpUri(secret, issuer, user.email), backupCodes: codes };
  }

  /**
   * The pending enrolment's URI (the dashboard's QR code); null when none is pending, or when
   * `sessionId` is given and that session is not in sudo mode (the URI carries the secret).
   */
  async pendingEnrolmentUri(userId: string, sessionId?: string): Promise<string | null> {
    const [tf, user] = await Promise.all([
      getTwoFactor(this.#kv, userId),
      getUser(this.#kv, userId),
    ]);
    if (!tf || tf.enabled || !user) return null;
    if (
      sessionId !== undefined &&
      !(await isRecentlyAuthenticated({ kv: this.#kv, clock: this.#clock }, userId, sessionId))
    ) {
      return null;
    }
    return totpUri(tf.secret, TOTP_ISSUER, user.email);
  }

  /**
   * A signed-in account verifies a code: completes a pending enrolment, or simply checks the
   * code. 400 without any enrolment. With `freshRecoveryCodes` (the dashboard) the enrolment this
   * call completes gets new recovery codes, stored in the completing commit and returned: they
   * are shown once the app is proven to work, never before (the ones `enable` made are
   * replaced). The JSON route keeps better-auth's contract: the codes of `enable` stay.
   */
  async verifySignedIn(
    req: Request,
    userId: string,
    sessionId: string,
    code: string,
    opts: { freshRecoveryCodes?: boolean } = {},
  ): Promise<{ completedEnrolment: boolean; recoveryCodes?: string[] }> {
    const tf = await getTwoFactor(this.#kv, userId);
    if (!tf) {
      throw new HttpError(400, "Two-factor authentication is not set up.", {
        code: "TOTP_NOT_ENABLED",
      });
    }
    // Completing an enrolment turns the second factor on: sudo mode, as `enable` needs. A stale
    // (perhaps stolen) session must not finish an enrolment someone else left pending.
    if (
      !tf.enabled &&
      !(await isRecentlyAuthenticated({ kv: this.#kv, clock: this.#clock }, userId, sessionId))
    ) {
      throw reauthenticationRequired();
    }
    // Completing one enrols a factor: a verified address first (auth/email_verification.ts),
    // also for an enrolment begun before EMAIL_VERIFICATION was required.
    if (!tf.enabled) {
      await this.#accounts.emailVerification.requireVerified(userId, "set up two-factor sign-in");
    }
    await this.#throttle(userId, clientAddressOfReq(req));
    const ctx = this.#auditOf(req, { userId, method: "session", sessionId });
    const fresh = opts.freshRecoveryCodes && !tf.enabled ? newBackupCodes() : undefined;
    const r = await this.#verifyTotp(userId, code, ctx, {
      enrolled: "any",
      recoveryDigests: fresh?.digests,
    });
    if (r.outcome !== "ok") throw refusedCode(r.outcome);
    // Only the call whose commit completed the enrolment stored `fresh` (a racing one did not).
    if (r.completed && fresh) return { completedEnrolment: true, recoveryCodes: fresh.codes };
    return { completedEnrolment: !tf.enabled };
  }

  /** Re-authentication of a session with a TOTP code (marks it, see auth/sudo.ts). */
  async reauthenticateWithCode(req: Request, userId: string, sessionId: string, code: string) {
    const tf = await getTwoFactor(this.#kv, userId);
    if (!tf?.enabled) {
      throw new HttpError(400, "Two-factor authentication is not enabled.", {
        code: "TOTP_NOT_ENABLED",
      });
    }
    await this.#throttle(userId, clientAddressOfReq(req));
    const ctx = this.#auditOf(req, { userId, method: "session", sessionId });
    const r = await this.#verifyTotp(userId, code, ctx, { enrolled: "completed" });
    if (r.outcome !== "ok") throw refusedCode(r.outcome);
    await markSessionReauthenticated(this.#kv, userId, sessionId, this.#clock());
  }

  /** Removes TOTP and the recovery codes after the password. */
  async disable(req: Request, userId: string, sessionId: string, password: string) {
    await this.#accounts.verifyPassword(userId, password, clientAddressOfReq(req));
    await deleteTwoFactor(this.#kv, userId, {
      ctx: this.#auditOf(req, { userId, method: "session", sessionId }),
      nowMs: this.#clock(),
      change: "disabled",
    });
  }

  /** New recovery codes, replacing the old set, after the password. */
  async generateBackupCodes(
    req: Request,
    userId: string,
    sessionId: string,
    password: string,
  ): Promise<string[]> {
    await this.#accounts.verifyPassword(userId, password, clientAddressOfReq(req));
    const { codes, digests } = newBackupCodes();
    const ok = await replaceBackupCodes(this.#kv, userId, digests, {
      ctx: this.#auditOf(req, { userId, method: "session", sessionId }),
      nowMs: this.#clock(),
    });
    if (!ok) {
      throw new HttpError(400, "Two-factor authentication is not enabled.", {
        code: "TOTP_NOT_ENABLED",
      });
    }
    return codes;
  }

  /** What the security page shows: enrolled or not, recovery codes left. Never the secret. */
  async status(userId: string) {
    const tf = await getTwoFactor(this.#kv, userId);
    return {
      enabled: tf?.enabled === true,
      pending: tf !== null && !tf.enabled,
      backupCodesLeft: tf?.enabled ? tf.backupCodes.length : 0,
    };
  }
}

export function twoFactorService(deps: TwoFactorDeps): TwoFactorService {
  return new TwoFactorService(deps);
}

/**
 * Starts a pending sign-in for `user` (its password was right; `methods` its second factors): the
 * returned cookie value (account id and token) goes into Set-Cookie and nowhere else; KV keeps the
 * token's digest. Its commit carries `session.second_factor_required` (`audit`: who, from where),
 * so the log shows a correct password even when no second step follows; it is bounded by the
 * sign-in throttle that admitted the password attempt.
 */
export async function startPendingSignIn(
  kv: Deno.Kv,
  user: { id: string; email: string },
  methods: SecondFactorMethod[],
  audit: AuditStamp,
): Promise<{ cookie: string; maxAgeSeconds: number }> {
  const token = generatePendingToken();
  const hash = sha256Hex(token);
  await createPendingSignIn(kv, user.id, hash, audit.nowMs, PENDING_SIGN_IN_TTL_MS, {
    ctx: audit.ctx,
    input: {
      action: "session.second_factor_required",
      target: { type: "user", id: user.id, name: user.email },
      details: { methods },
    },
  });
  return { cookie: `${user.id}.${token}`, maxAgeSeconds: PENDING_SIGN_IN_TTL_MS / 1000 };
}

/** 256 random bits, unpadded base64url (43 characters: PENDING_VALUE). */
function generatePendingToken(): string {
  return randomBase64Url(32);
}

function clientAddressOfReq(req: Request): string {
  return clientOf(req).address;
}

/** The JSON answer to a completed second step. */
export function completedSignInResponse(done: CompletedSignIn): Response {
  const headers: [string, string][] = done.cookies.map((v) => ["Set-Cookie", v]);
  headers.push(["Cache-Control", "no-store"]);
  return jsonResponse({ token: null, user: betterAuthUser(done.user) }, 200, headers);
}
