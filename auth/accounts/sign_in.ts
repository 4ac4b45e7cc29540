/**
 * Sign-up and sign-in: the only unauthenticated operations that touch accounts. Both take their
 * address's place in the bounded hashing pool first (auth/passwords/pool.ts: one per address, 429
 * at once beyond it), are throttled (store/throttle.ts) before any password work, and sign-in
 * answers an unknown email exactly like a wrong password, after the same amount of scrypt work.
 *
 * Sign-in throttling follows OWASP's device-cookie pattern (auth/sessions/device_cookie.ts). An attempt
 * carrying a valid device cookie for the email counts only against that device ("sign-in:device",
 * `signInThrottle` per window), so guesses from anywhere else at the email cannot lock its owner's
 * browsers out. Any other attempt, and a device's attempts beyond its limit (it is untrusted for
 * the rest of that window), count per client address ("sign-in:ip") and per email
 * ("sign-in:email"), so distributed guessing at one email stays at `signInThrottle` per window.
 * Both answers to a wrong password are the same 401 after the same work.
 */
import { clientOf, throttleSubject } from "../../lib/client.ts";
import { accountSuspended, HttpError } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { summariseUserAgent } from "../../lib/user_agent.ts";
import {
  type AuditContext,
  type AuditInput,
  recordAuditEvent,
} from "../../store/audit_log/events.ts";
import { recordAttempt } from "../../store/throttle.ts";
import {
  createUser,
  findUserByEmail,
  normaliseEmail,
  updatePasswordHash,
  type UserRecord,
} from "../../store/accounts/users.ts";
import { actorOf } from "../audit_context.ts";
import { deviceCookies, readDeviceCookie } from "../sessions/device_cookie.ts";
import type { PasswordCheck } from "../passwords/hash.ts";
import type { IssuedSession } from "../sessions/manager.ts";
import { type SecondFactorMethod, secondFactorMethods, startPendingSignIn } from "../two_factor.ts";
import { isNewDevice } from "../sessions/new_device.ts";
import type { AccountKit } from "./kit.ts";
import { type PublicUser, publicUser } from "./user_view.ts";

/** Trusted-device sign-ins one address may make per window: this many times the sign-in limit. */
export const TRUSTED_ADDRESS_FACTOR = 5;

export const INVALID_CREDENTIALS_MESSAGE = "Invalid email or password.";

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

/** What the request's session cookie stands for, as `/api/auth/session` shows it. */
export type CurrentAccount =
  | { kind: "ok"; user: PublicUser; session: { id: string; expiresAt: string } }
  | { kind: "suspended"; userId: string }
  | { kind: "invalid" };

export class SignInFlow {
  readonly #kit: AccountKit;
  readonly #devices: ReturnType<typeof deviceCookies>;

  constructor(kit: AccountKit) {
    this.#kit = kit;
    this.#devices = deviceCookies(kit.kv);
  }

  /** The account and session behind the request's cookie; refusals pass through unchanged. */
  async current(req: Request): Promise<CurrentAccount> {
    const outcome = await this.#kit.sessions.resolve(req);
    if (outcome.kind !== "ok") return outcome;
    const { user, session } = outcome;
    return {
      kind: "ok",
      user: publicUser(user),
      session: { id: session.sessionId, expiresAt: new Date(session.expiresAt).toISOString() },
    };
  }

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
    const kit = this.#kit;
    kit.verifications.assertSignUpAllowed(input.email);
    // Per-address limits count an IPv6 client by its /64 (lib/client.ts throttleSubject).
    const subject = throttleSubject(ip);
    using admission = kit.hashing.admit(subject);
    await kit.throttle("sign-up:ip", subject, "sign-up");
    const passwordHash = await admission.hash(input.password);
    const user = await this.#createAccount({ ...input, passwordHash });
    if (verification?.origin) {
      kit.verifications.send(user, verification.origin, verification.callbackPath);
    }
    const session = await kit.sessions.start(user.id, {
      ip,
      userAgent,
      audit: kit.anonymousContext("sign-up", ip, req),
    });
    kit.emit({ type: "sign-up", userId: user.id, ip, sessionId: session.sessionId });
    return {
      user: publicUser(user),
      session,
      // The browser's other accounts stay in its device cookie (auth/sessions/device_cookie.ts).
      deviceCookie: await this.#devices.issue(
        user.id,
        user.email,
        req ? readDeviceCookie(req) : null,
      ),
    };
  }

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
    using admission = this.#kit.hashing.admit(subject);
    const email = normaliseEmail(input.email);
    const deviceCookie = readDeviceCookie(req);
    const user = await this.#throttledLookup(email, subject, deviceCookie);
    // Not req.signal: touching it makes Deno.serve print a warning line. A waiter leaves the
    // queue after passwordHashQueue.waitMs anyway, and no hash starts in the second half of the
    // request's time, so none outlives its request's answer.
    const check = await admission.check(input.password, user?.passwordHash ?? null);
    if (!user) throw new HttpError(401, INVALID_CREDENTIALS_MESSAGE);
    this.#refuseUnlessAdmitted(user, check, ip, req);
    if (check.rehash) {
      try {
        await updatePasswordHash(this.#kit.kv, user.id, user.passwordHash, check.rehash);
      } catch {
        // The old hash still works; the next sign-in tries again.
      }
    }
    await this.#kit.sessions.end(req);
    return await this.#open(user, req, ip, deviceCookie);
  }

  /** Ends the request's session, if any; reports who signed out. */
  async signOut(req: Request): Promise<boolean> {
    const kit = this.#kit;
    const outcome = await kit.sessions.resolve(req);
    const ended = await kit.sessions.end(
      req,
      outcome.kind === "ok"
        ? kit.stamp({
          actor: actorOf(outcome.principal),
          ip: clientOf(req).address,
          userAgent: req.headers.get("User-Agent"),
        })
        : undefined,
    );
    if (ended && outcome.kind === "ok") {
      kit.emit({
        type: "sign-out",
        userId: outcome.principal.userId,
        sessionId: outcome.session.sessionId,
      });
    }
    return ended;
  }

  /**
   * Counts the attempt as the module's header describes (by device when its cookie is valid for
   * the email, else by address and email) and finds the account, or null.
   */
  async #throttledLookup(
    email: string,
    subject: string,
    deviceCookie: string | null,
  ): Promise<UserRecord | null> {
    const kit = this.#kit;
    const limit = kit.config.signInThrottle;
    const untrusted = async () => {
      await kit.throttle("sign-in:ip", subject, "sign-in");
      await kit.throttle("sign-in:email", sha256Hex(email), "sign-in");
    };
    const device = await this.#devices.verify(deviceCookie, email);
    const trusted = device !== null &&
      (await recordAttempt(kit.kv, "sign-in:device", device.deviceId, kit.clock(), limit)).allowed;
    if (!trusted) await untrusted();
    // Devices are exempt from the per-email and per-address counters, not from every bound:
    // an address's trusted attempts (each a full password hash) get a generous cap of their
    // own, so device cookies for one's own accounts cannot make sign-in work unlimited.
    else {
      await kit.throttle(
        "sign-in:ip-device",
        subject,
        "sign-in",
        limit.max * TRUSTED_ADDRESS_FACTOR,
      );
    }
    const user = await findUserByEmail(kit.kv, email);
    // Issued to an account since deleted, whose email someone has signed up again.
    if (trusted && user && user.id !== device.userId) await untrusted();
    return user;
  }

  /** 401 for a wrong password, 403 for a suspended account; both recorded in the audit log. */
  #refuseUnlessAdmitted(user: UserRecord, check: PasswordCheck, ip: string, req: Request): void {
    const ctx = this.#kit.anonymousContext("sign-in", ip, req);
    if (!check.ok) {
      this.#recordFailedSignIn(user, ctx, {});
      throw new HttpError(401, INVALID_CREDENTIALS_MESSAGE);
    }
    if (user.status !== "active") {
      this.#recordFailedSignIn(user, ctx, {
        outcome: "denied",
        details: { reason: "account_suspended" },
      });
      throw accountSuspended();
    }
  }

  /**
   * After the password: with a second factor set up, a pending sign-in and no session until it
   * is verified (auth/two_factor.ts); else the session, and the same device id (its count is not
   * reset by succeeding) with the browser's other accounts kept beside this one.
   */
  async #open(
    user: UserRecord,
    req: Request,
    ip: string,
    deviceCookie: string | null,
  ): Promise<SignedIn | SecondStepRequired> {
    const kit = this.#kit;
    const methods = await secondFactorMethods(kit.kv, user.id);
    if (methods.length > 0) {
      const audit = kit.stamp(kit.anonymousContext("sign-in", ip, req));
      const pending = await startPendingSignIn(kit.kv, user, methods, audit);
      return {
        twoFactorRedirect: true,
        twoFactorMethods: methods,
        pendingCookie: pending.cookie,
        pendingMaxAgeSeconds: pending.maxAgeSeconds,
      };
    }
    const session = await kit.sessions.start(user.id, {
      ip,
      userAgent: summariseUserAgent(req.headers.get("User-Agent")),
      audit: kit.anonymousContext("sign-in", ip, req),
    });
    kit.emit({
      type: "sign-in",
      userId: user.id,
      ip,
      sessionId: session.sessionId,
      newDevice: await isNewDevice(this.#devices, req, user),
      userAgent: summariseUserAgent(req.headers.get("User-Agent")),
    });
    return {
      user: publicUser(user),
      session,
      deviceCookie: await this.#devices.issue(user.id, user.email, deviceCookie),
    };
  }

  /**
   * `session.sign_in_failed` for an existing account. No change goes with it (the throttle's
   * counting commit happens before the password is checked), so it is its own commit, written
   * off the request path: an unknown email and a wrong password stay equally fast.
   */
  #recordFailedSignIn(
    user: UserRecord,
    ctx: AuditContext,
    extra: Partial<AuditInput>,
  ): void {
    const kit = this.#kit;
    kit.inBackground("audit event", async () => {
      await recordAuditEvent(kit.kv, user.id, kit.stamp(ctx).ctx, {
        action: "session.sign_in_failed",
        target: { type: "user", id: user.id, name: user.email },
        outcome: "failure",
        ...extra,
      }, kit.clock());
    });
  }

  /** createUser, once more after a replaceable unverified holder of the address is deleted. */
  async #createAccount(
    input: { email: string; passwordHash: string; name?: string },
  ): Promise<UserRecord> {
    const kit = this.#kit;
    const make = () =>
      createUser(kit.kv, {
        email: input.email,
        passwordHash: input.passwordHash,
        nowMs: kit.clock(),
        verificationRequired: kit.verifications.required,
        ...(input.name !== undefined ? { name: input.name } : {}),
      });
    try {
      return await make();
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      if (await kit.verifications.releaseUnverified(input.email)) {
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
}
