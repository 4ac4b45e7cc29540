/**
 * Sign-up and sign-in: the only unauthenticated operations that touch accounts. Both are throttled
 * (store/throttle.ts) before any password work, and sign-in answers an unknown email exactly like
 * a wrong password, after the same amount of scrypt work.
 */
import type { Context } from "hono";
import type { Clock } from "../lib/clock.ts";
import type { Config } from "../lib/config.ts";
import { sha256Hex } from "../lib/sha256.ts";
import { accountSuspended, HttpError } from "../lib/errors.ts";
import { recordAttempt } from "../store/throttle.ts";
import {
  createUser,
  findUserByEmail,
  getUser,
  normaliseEmail,
  type UserRecord,
} from "../store/users.ts";
import { hashPassword, verifyAgainstDummy, verifyPassword } from "./password.ts";
import type { IssuedSession, SessionManager } from "./session.ts";

export const INVALID_CREDENTIALS_MESSAGE = "Invalid email or password.";

export type PublicUser = { id: string; email: string; createdAt: string };

export function publicUser(u: UserRecord): PublicUser {
  return { id: u.id, email: u.email, createdAt: u.createdAt };
}

/**
 * The connecting peer's address, as Deno.serve reports it. Forwarded-for headers are not trusted:
 * behind a proxy all clients share the proxy's address, which only makes the limit stricter.
 */
export function clientAddress(c: Context): string {
  const env = c.env as { remoteAddr?: { hostname?: string } } | undefined;
  return env?.remoteAddr?.hostname ?? "unknown";
}

export type AccountDeps = { kv: Deno.Kv; clock: Clock; config: Config; sessions: SessionManager };

export type SignedIn = { user: PublicUser; session: IssuedSession };

export function accountService(deps: AccountDeps) {
  const { kv, clock, config, sessions } = deps;
  const limit = config.signInThrottle;

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
    /** The account and session behind the request's cookie, or null. */
    async current(
      req: Request,
    ): Promise<{ user: PublicUser; session: { id: string; expiresAt: string } } | null> {
      const pointer = await sessions.lookup(req);
      if (!pointer) return null;
      const user = await getUser(kv, pointer.userId);
      if (!user) return null;
      return {
        user: publicUser(user),
        session: { id: pointer.sessionId, expiresAt: new Date(pointer.expiresAt).toISOString() },
      };
    },

    /** Creates the account and signs it in. 409 when the email is taken. */
    async signUp(input: { email: string; password: string }, ip: string): Promise<SignedIn> {
      await throttle("sign-up:ip", ip, "sign-up");
      let user: UserRecord;
      try {
        user = await createUser(kv, {
          email: input.email,
          passwordHash: await hashPassword(input.password, config.passwordHashCost),
          nowMs: clock(),
        });
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) {
          throw new HttpError(409, "An account with that email already exists. Sign in instead.", {
            code: "EMAIL_TAKEN",
          }, { "x-should-retry": "false" });
        }
        throw err;
      }
      return { user: publicUser(user), session: await sessions.start(user.id) };
    },

    /**
     * Verifies the credentials and issues a fresh session. Any session the request already carried
     * is deleted first, so a planted cookie cannot survive a sign-in.
     */
    async signIn(
      input: { email: string; password: string },
      req: Request,
      ip: string,
    ): Promise<SignedIn> {
      const email = normaliseEmail(input.email);
      await throttle("sign-in:ip", ip, "sign-in");
      await throttle("sign-in:email", sha256Hex(email), "sign-in");
      const user = await findUserByEmail(kv, email);
      const ok = user
        ? await verifyPassword(input.password, user.passwordHash)
        : await verifyAgainstDummy(input.password, config.passwordHashCost);
      if (!user || !ok) throw new HttpError(401, INVALID_CREDENTIALS_MESSAGE);
      if (user.status !== "active") {
        throw accountSuspended();
      }
      await sessions.end(req);
      return { user: publicUser(user), session: await sessions.start(user.id) };
    },
  };
}

export type AccountService = ReturnType<typeof accountService>;
