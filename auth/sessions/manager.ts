/**
 * Session cookies: minting, reading and resolving them into a Principal.
 *
 * The token is 256 random bits, base64url-encoded; KV stores only its SHA-256 digest
 * (store/sessions.ts). The cookie is `HttpOnly; SameSite=Lax; Path=/`, and `Secure` with the
 * `__Host-` name prefix on a real deployment (auth/cookies.ts owns the names, the attributes and
 * the rule); only the name that fits the site is read.
 */
import type { Context } from "hono";
import type { Site } from "../../lib/client.ts";
import type { Clock } from "../../lib/clock.ts";
import { randomBase64Url } from "../../lib/crypto.ts";
import { accountSuspended } from "../../lib/errors.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import {
  AccountNotActiveError,
  createSessionForActiveUser,
  deleteSessionByHash,
  findSession,
  type SessionPointer,
  touchSession,
} from "../../store/sessions.ts";
import { getUser, type UserRecord } from "../../store/accounts/users.ts";
import type { AuditContext, AuditStamp } from "../../store/audit_log/events.ts";
import {
  cookieHeader,
  cookieName,
  readCookie,
  secureCookies,
  SESSION_COOKIE,
  siteFor,
} from "../cookies.ts";
import { assertSameOrigin } from "../csrf.ts";
import {
  assertNever,
  type AuthOutcome,
  INVALID,
  type InvalidOutcome,
  type Principal,
  type SuspendedOutcome,
} from "../principal.ts";

/**
 * Kept here for the modules that import them from the session module; their home is
 * auth/cookies.ts.
 */
export { secureCookies, siteFor };

/** The session cookie's unprefixed name (its attributes: auth/cookies.ts). */
export const SESSION_COOKIE_BASE = SESSION_COOKIE.base;
const TOKEN_BYTES = 32;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;
const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/**
 * True for `http://localhost`, `http://127.0.0.1` and `http://[::1]` (any port). The URL alone:
 * cookie decisions go by `siteFor(req)`, which knows about proxies and PUBLIC_URL.
 */
export function isPlainHttpLocalhost(url: string | URL): boolean {
  const u = typeof url === "string" ? new URL(url) : url;
  return u.protocol === "http:" && LOCAL_HOSTS.has(u.hostname);
}

/** Whether plain HTTP here makes the browser drop the session cookie (the pages warn). */
export function sessionCookieDropped(site: Site): boolean {
  return !site.https && secureCookies(site);
}

/**
 * The origin a mailed link (password reset, e-mail verification) may point to: PUBLIC_URL's, or
 * in development a loopback origin; null otherwise, since the Host header is the client's to
 * choose (a link to it would hand the token to whoever asked for the mail).
 */
export function mailLinkOrigin(req: Request): string | null {
  const site = siteFor(req);
  return site.configured || site.loopback ? site.origin : null;
}

/** The session cookie's name for the request's site: `__Host-` prefixed when Secure. */
export function sessionCookieName(target: Request | string | URL): string {
  return cookieName(SESSION_COOKIE, target);
}

export function generateSessionToken(): string {
  return randomBase64Url(TOKEN_BYTES);
}

/** The well-formed session token in the request's cookie, or null. */
export function readSessionToken(req: Request): string | null {
  const value = readCookie(req, SESSION_COOKIE);
  return value !== null && TOKEN_SHAPE.test(value) ? value : null;
}

/** `Set-Cookie` value carrying `token` for `maxAgeSeconds`, for the response to `req`. */
export function sessionCookieHeader(
  req: Request | string,
  token: string,
  maxAgeSeconds: number,
): string {
  return cookieHeader(SESSION_COOKIE, req, token, maxAgeSeconds);
}

/** `Set-Cookie` value that removes the session cookie from the browser. */
export function clearSessionCookieHeader(req: Request | string): string {
  return sessionCookieHeader(req, "", 0);
}

export type SessionDeps = {
  kv: Deno.Kv;
  clock: Clock;
  ttlMs: number;
  /** AUDIT_RETENTION_DAYS for the `session.created` events (store/audit_log/events.ts default if absent). */
  auditRetentionDays?: number;
};

export type IssuedSession = {
  /** The cookie token: goes into Set-Cookie and nowhere else. */
  token: string;
  sessionId: string;
  expiresAt: string;
};

/**
 * What the request's cookie resolves to: an `AuthOutcome` (assignable to it) whose ok case also
 * carries the account and the session, for the pages and `/api/auth/session` that show them.
 */
export type SessionOutcome =
  | {
    readonly kind: "ok";
    readonly principal: Principal;
    readonly user: UserRecord;
    readonly session: SessionPointer;
  }
  | SuspendedOutcome
  | InvalidOutcome;

/** A session's lastSeenAt is written at most this often per process. */
export const LAST_SEEN_INTERVAL_MS = 60_000;
const MAX_TRACKED_SESSIONS = 50_000;

/**
 * Where a session was started from: stored on its record, shown in the session list. `audit`
 * (the request's, auth/audit_context.ts) goes into the `session.created` event every start
 * writes in the session's commit; without it the event carries `ip` and `userAgent`.
 */
export type SessionOrigin = { ip?: string; userAgent?: string; audit?: AuditContext };

/**
 * Records sessions' use off the request path, at most once per LAST_SEEN_INTERVAL_MS per session
 * in this process (like api_key_verifier.ts's lastUsedAt): never a write per request.
 */
function lastSeenWriter(kv: Deno.Kv, clock: Clock) {
  /** sessionId -> when this process last wrote (or created) its lastSeenAt. */
  const lastTouched = new Map<string, number>();
  const pending = new Set<Promise<unknown>>();
  return {
    /** The session was used now: writes its lastSeenAt unless this process did so lately. */
    touch(session: SessionPointer): void {
      const now = clock();
      const last = lastTouched.get(session.sessionId);
      if (last !== undefined && now - last < LAST_SEEN_INTERVAL_MS) return;
      if (lastTouched.size >= MAX_TRACKED_SESSIONS) {
        for (const [id, at] of lastTouched) {
          if (now - at >= LAST_SEEN_INTERVAL_MS) lastTouched.delete(id);
        }
        if (lastTouched.size >= MAX_TRACKED_SESSIONS) lastTouched.clear();
      }
      lastTouched.set(session.sessionId, now);
      const p = touchSession(kv, session.userId, session.sessionId, now)
        .catch(() => false) // Best effort: the next touch a minute on tries again.
        .finally(() => pending.delete(p));
      pending.add(p);
    },
    /** The session was created with lastSeenAt = `nowMs`: the first touch is due a minute on. */
    created(sessionId: string, nowMs: number): void {
      lastTouched.set(sessionId, nowMs);
    },
    /** Waits for the writes started so far. */
    async settle(): Promise<void> {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}

export function sessionManager(deps: SessionDeps) {
  const { kv, clock, ttlMs } = deps;
  const lastSeen = lastSeenWriter(kv, clock);

  /**
   * What the request's cookie authenticates: ok (a live session of an active account), suspended
   * (a live session of a suspended account: refused with 403), or invalid (no cookie, or an
   * unknown, expired or signed-out session, or a deleted account). No CSRF check.
   */
  async function resolve(req: Request): Promise<SessionOutcome> {
    const token = readSessionToken(req);
    if (!token) return INVALID;
    const session = await findSession(kv, sha256Hex(token), clock());
    if (!session) return INVALID;
    const user = await getUser(kv, session.userId);
    if (!user) return INVALID;
    if (user.status !== "active") return { kind: "suspended", userId: user.id };
    const principal: Principal = {
      userId: session.userId,
      method: "session",
      sessionId: session.sessionId,
    };
    lastSeen.touch(session);
    return { kind: "ok", principal, user, session };
  }

  return {
    resolve,

    /**
     * For the authentication middleware: resolves the cookie, and when it names a live session
     * (of an active or a suspended account), refuses a state-changing request from another
     * origin with 403. An invalid cookie yields `invalid`, so the middleware falls through to
     * the Bearer key.
     */
    async resolveForApi(c: Context): Promise<AuthOutcome> {
      const outcome = await resolve(c.req.raw);
      switch (outcome.kind) {
        case "ok":
        case "suspended":
          assertSameOrigin(c.req.raw);
          return outcome;
        case "invalid":
          return outcome;
        default:
          return assertNever(outcome);
      }
    },

    /**
     * A fresh session for `userId`; the token exists only in the returned value. Refused with
     * 403 ACCOUNT_SUSPENDED when the account is not active, checked in the session's commit.
     */
    async start(userId: string, origin: SessionOrigin = {}): Promise<IssuedSession> {
      const token = generateSessionToken();
      try {
        const nowMs = clock();
        const audit: AuditContext = origin.audit ?? {
          actor: { type: "session", id: "sign-in" },
          ip: origin.ip ?? null,
          userAgent: origin.userAgent ?? null,
        };
        const record = await createSessionForActiveUser(kv, {
          userId,
          hash: sha256Hex(token),
          nowMs,
          ttlMs,
          ...origin,
          audit: { ...audit, retentionDays: deps.auditRetentionDays ?? audit.retentionDays },
        });
        lastSeen.created(record.id, nowMs);
        return { token, sessionId: record.id, expiresAt: record.expiresAt };
      } catch (err) {
        if (err instanceof AccountNotActiveError) throw accountSuspended();
        throw err;
      }
    },

    /**
     * Deletes the request's session server-side, if it has one; with `audit`, `session.revoked`
     * joins the deleting commit.
     */
    async end(req: Request, audit?: AuditStamp): Promise<boolean> {
      const token = readSessionToken(req);
      if (!token) return false;
      return await deleteSessionByHash(kv, sha256Hex(token), audit);
    },

    /** Waits for the lastSeenAt writes started so far (tests, shutdown). */
    settle(): Promise<void> {
      return lastSeen.settle();
    },

    cookieMaxAgeSeconds: Math.floor(ttlMs / 1000),
  };
}

export type SessionManager = ReturnType<typeof sessionManager>;
