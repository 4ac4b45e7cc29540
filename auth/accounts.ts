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
import { boundClient } from "../lib/client.ts";
import type { Clock } from "../lib/clock.ts";
import type { Config } from "../lib/config.ts";
import { sha256Hex } from "../lib/sha256.ts";
import { accountSuspended, HttpError } from "../lib/errors.ts";
import { recordAttempt } from "../store/throttle.ts";
import {
  createUser,
  findUserByEmail,
  normaliseEmail,
  updatePasswordHash,
  type UserRecord,
} from "../store/users.ts";
import { deviceCookies, readDeviceCookie } from "./device_cookie.ts";
import type { Kdf } from "./password.ts";
import { PasswordHasher } from "./password_pool.ts";
import type { IssuedSession, SessionManager } from "./session.ts";

export const INVALID_CREDENTIALS_MESSAGE = "Invalid email or password.";

export type PublicUser = { id: string; email: string; createdAt: string };

export function publicUser(u: UserRecord): PublicUser {
  return { id: u.id, email: u.email, createdAt: u.createdAt };
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

export type AccountDeps = {
  kv: Deno.Kv;
  clock: Clock;
  config: Config;
  sessions: SessionManager;
  /** The key derivation; tests inject one that counts or holds the work. */
  kdf?: Kdf;
};

/** `deviceCookie`: the new device cookie's value, for `Set-Cookie` only (never logged). */
export type SignedIn = { user: PublicUser; session: IssuedSession; deviceCookie: string };

export function accountService(deps: AccountDeps) {
  const { kv, clock, config, sessions } = deps;
  const limit = config.signInThrottle;
  const hashing = new PasswordHasher(config, deps.kdf);
  const devices = deviceCookies(kv);

  async function throttle(scope: string, subject: string, what: string): Promise<void> {
    const r = await recordAttempt(kv, scope, subject, clock(), limit);
    if (r.allowed) return;
    throw new HttpError(
      429,
      `Too many ${what} attempts. Retry after ${r.retryAfterSeconds} seconds.`,
      { code: "TOO_MANY_ATTEMPTS" },
      { "Retry-After": String(r.retryAfterSeconds) },
    );
  }

  return {
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

    /** Creates the account and signs it in. 409 when the email is taken. */
    async signUp(input: { email: string; password: string }, ip: string): Promise<SignedIn> {
      using admission = hashing.admit(ip);
      await throttle("sign-up:ip", ip, "sign-up");
      const passwordHash = await admission.hash(input.password);
      let user: UserRecord;
      try {
        user = await createUser(kv, { email: input.email, passwordHash, nowMs: clock() });
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) {
          throw new HttpError(409, "An account with that email already exists. Sign in instead.", {
            code: "EMAIL_TAKEN",
          }, { "x-should-retry": "false" });
        }
        throw err;
      }
      const session = await sessions.start(user.id);
      return {
        user: publicUser(user),
        session,
        deviceCookie: await devices.issue(user.id, user.email),
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
    ): Promise<SignedIn> {
      using admission = hashing.admit(ip);
      const email = normaliseEmail(input.email);
      const untrusted = async () => {
        await throttle("sign-in:ip", ip, "sign-in");
        await throttle("sign-in:email", sha256Hex(email), "sign-in");
      };
      const device = await devices.verify(readDeviceCookie(req), email);
      const trusted = device !== null &&
        (await recordAttempt(kv, "sign-in:device", device.deviceId, clock(), limit)).allowed;
      if (!trusted) await untrusted();
      const user = await findUserByEmail(kv, email);
      // Issued to an account since deleted, whose email someone has signed up again.
      if (trusted && user && user.id !== device.userId) await untrusted();
      // Not req.signal: touching it makes Deno.serve print a warning line. A waiter leaves the
      // queue after passwordHashQueue.waitMs anyway, and no hash starts in the second half of the
      // request's time, so none outlives its request's answer.
      const check = await admission.check(input.password, user?.passwordHash ?? null);
      if (!user || !check.ok) throw new HttpError(401, INVALID_CREDENTIALS_MESSAGE);
      if (user.status !== "active") {
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
      const session = await sessions.start(user.id);
      // A fresh device id: the device's failure count starts again from this success.
      return {
        user: publicUser(user),
        session,
        deviceCookie: await devices.issue(user.id, user.email),
      };
    },
  };
}

export type AccountService = ReturnType<typeof accountService>;
