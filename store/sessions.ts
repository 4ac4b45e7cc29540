/**
 * Dashboard sessions. The cookie carries a random token; KV holds only its SHA-256 digest, in the
 * pointer index (one read resolves a cookie to its account) and in the account's session record.
 * Both are written and deleted in one checked commit. The expiry lives in the values and is
 * checked on every read; `expireIn` is set as well, but only so KV may clean up some time after.
 *
 * An account that is not active gets no new session (the user record is checked in the session's
 * commit), and suspending it deletes all of its sessions (`deleteAllSessions`, store/accounts/users.ts).
 */
import { newId } from "../lib/crypto.ts";
import { appendAudit, type AuditContext, type AuditStamp } from "./audit_log/events.ts";
import { revokeOnCredentialChange } from "./accounts/credentials.ts";
import { RETRY, withRetries } from "./errors.ts";
import { sessionHashIndexKey, sessionKey, sessionPrefix, userKey } from "./keys.ts";

export type SessionRecord = {
  id: string;
  userId: string;
  /** SHA-256 hex digest of the cookie token; needed to remove the pointer. Never returned. */
  hash: string;
  createdAt: string;
  expiresAt: string;
  /**
   * When a request last used the session: written at creation, then at most once a minute per
   * session and process, off the request path (auth/sessions/manager.ts). Absent on older records.
   */
  lastSeenAt?: string;
  /** The client address that started the session (lib/client.ts, proxy-aware). */
  ip?: string;
  /** A short summary of the User-Agent that started it, e.g. "Chrome on macOS". */
  userAgent?: string;
  /**
   * Epoch ms of the session's last proof of identity: its sign-in, then each re-authentication
   * (`markSessionReauthenticated`). Sudo mode (auth/sudo.ts) reads it; absent on older records,
   * which count from `createdAt`.
   */
  authenticatedAt?: number;
};

/** What the session list shows: never the digest. */
export type SessionView = {
  id: string;
  createdAt: string;
  expiresAt: string;
  lastSeenAt: string;
  ip: string | null;
  userAgent: string | null;
};

export function sessionView(r: SessionRecord): SessionView {
  return {
    id: r.id,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    lastSeenAt: r.lastSeenAt ?? r.createdAt,
    ip: r.ip ?? null,
    userAgent: r.userAgent ?? null,
  };
}

/** What the pointer index stores: enough to authenticate with a single read. */
export type SessionPointer = { userId: string; sessionId: string; expiresAt: number };

type NewSession = {
  userId: string;
  hash: string;
  nowMs: number;
  ttlMs: number;
  ip?: string;
  userAgent?: string;
  /** Records `session.created` in the session's commit (the new session is its actor). */
  audit?: AuditContext;
};

/** The account is suspended (or otherwise not active): it may not start a session. */
export class AccountNotActiveError extends Error {
  constructor() {
    super("This account is not active.");
    this.name = "AccountNotActiveError";
  }
}

/** Creates a session for `userId` whose cookie token has digest `hash`. */
export async function createSession(kv: Deno.Kv, input: NewSession): Promise<SessionRecord> {
  const { record, op } = sessionWrite(kv, input);
  const res = await op.commit();
  // Both keys are fresh random values: a collision means something is badly wrong.
  if (!res.ok) throw new Error("session keys already in use");
  return record;
}

/**
 * Like `createSession`, for an account that must exist and be active: the user record is read
 * and checked in the session's commit, so a suspension that commits first (even while sign-in
 * was verifying the password) leaves no session behind. Throws `Deno.errors.NotFound` for an
 * unknown account and `AccountNotActiveError` for a suspended one.
 */
export async function createSessionForActiveUser(
  kv: Deno.Kv,
  input: NewSession,
): Promise<SessionRecord> {
  return await withRetries(async () => {
    // Only the user record's status is read here (store/accounts/users.ts UserRecord), typed in place:
    // users.ts imports this module (a suspension deletes the sessions), not the other way.
    const user = await kv.get<{ status: string }>(userKey(input.userId));
    if (user.versionstamp === null || !user.value) {
      throw new Deno.errors.NotFound("No such account");
    }
    if (user.value.status !== "active") throw new AccountNotActiveError();
    const { record, op } = sessionWrite(kv, input);
    const res = await op.check(user).commit();
    return res.ok ? record : RETRY;
  });
}

function sessionWrite(
  kv: Deno.Kv,
  input: NewSession,
): { record: SessionRecord; op: Deno.AtomicOperation } {
  const expiresAtMs = input.nowMs + input.ttlMs;
  const record: SessionRecord = {
    id: newId("ses"),
    userId: input.userId,
    hash: input.hash,
    createdAt: new Date(input.nowMs).toISOString(),
    expiresAt: new Date(expiresAtMs).toISOString(),
    lastSeenAt: new Date(input.nowMs).toISOString(),
    authenticatedAt: input.nowMs,
    ...(input.ip !== undefined ? { ip: input.ip } : {}),
    ...(input.userAgent !== undefined ? { userAgent: input.userAgent } : {}),
  };
  const pointer: SessionPointer = {
    userId: input.userId,
    sessionId: record.id,
    expiresAt: expiresAtMs,
  };
  const op = kv.atomic()
    .check({ key: sessionKey(input.userId, record.id), versionstamp: null })
    .check({ key: sessionHashIndexKey(input.hash), versionstamp: null })
    .set(sessionKey(input.userId, record.id), record, { expireIn: input.ttlMs })
    .set(sessionHashIndexKey(input.hash), pointer, { expireIn: input.ttlMs });
  if (input.audit) {
    appendAudit(op, input.userId, { ...input.audit, actor: { type: "session", id: record.id } }, {
      action: "session.created",
      target: { type: "session", id: record.id },
    }, input.nowMs);
  }
  return { record, op };
}

/**
 * Sessions deleted per commit: two deletes each (and an audit event when recorded), well under
 * KV's 1000 mutations a commit.
 */
export const SESSION_PURGE_BATCH = 250;

/**
 * Deletes every session of `userId`, record and pointer always in the same commit, in batches of
 * SESSION_PURGE_BATCH sessions (an account may hold any number of sessions; one commit may not
 * hold more than 1000 mutations). Returns how many were deleted. Signing out everywhere is a
 * credential change: the first commit also revokes what one revokes (store/accounts/credentials.ts), and
 * is made even when there is no session to delete.
 *
 * The batches are not one transaction, so callers make a half-finished purge harmless: the
 * account is suspended before its sessions are purged (from then on every remaining session
 * resolves as suspended, and no new one can be created, see `createSessionForActiveUser`), and
 * reactivation purges again before the account is active (so sessions left by an interrupted
 * purge, or from before suspension signed accounts out, never come back to life). Deletes are
 * unconditional: a session's keys are written once, at creation, under fresh random names, so
 * there is no concurrent writer to lose against.
 */
export async function deleteAllSessions(
  kv: Deno.Kv,
  userId: string,
  audit?: AuditStamp,
): Promise<number> {
  let deleted = 0;
  let revoked = false;
  while (true) {
    const batch = await Array.fromAsync(
      kv.list<SessionRecord>({ prefix: sessionPrefix(userId) }, { limit: SESSION_PURGE_BATCH }),
    );
    if (batch.length === 0 && revoked) return deleted;
    await withRetries(async () => {
      const op = revoked ? kv.atomic() : revokeOnCredentialChange(kv.atomic(), userId);
      for (const entry of batch) {
        op.delete(entry.key);
        if (typeof entry.value?.hash === "string") op.delete(sessionHashIndexKey(entry.value.hash));
        if (audit) auditRevoked(op, userId, String(entry.key[2]), audit);
      }
      const res = await op.commit();
      return res.ok ? true : RETRY;
    });
    revoked = true;
    if (batch.length === 0) return deleted;
    deleted += batch.length;
  }
}

/** The live session for a token digest, or null (none, deleted, or expired at `nowMs`). */
export async function findSession(
  kv: Deno.Kv,
  hash: string,
  nowMs: number,
): Promise<SessionPointer | null> {
  const entry = await kv.get<SessionPointer>(sessionHashIndexKey(hash));
  const pointer = entry.value;
  if (entry.versionstamp === null || !pointer) return null;
  if (!(pointer.expiresAt > nowMs)) return null;
  return pointer;
}

/** `session.revoked` for one deleted session, in the commit that deletes it. */
function auditRevoked(
  op: Deno.AtomicOperation,
  userId: string,
  sessionId: string,
  audit: AuditStamp,
): void {
  appendAudit(op, userId, audit.ctx, {
    action: "session.revoked",
    target: { type: "session", id: sessionId },
  }, audit.nowMs);
}

/** Deletes the session whose token has digest `hash` (pointer and record together). */
export async function deleteSessionByHash(
  kv: Deno.Kv,
  hash: string,
  audit?: AuditStamp,
): Promise<boolean> {
  return await withRetries(async () => {
    const pointer = await kv.get<SessionPointer>(sessionHashIndexKey(hash));
    if (pointer.versionstamp === null || !pointer.value) return false;
    const recordKey = sessionKey(pointer.value.userId, pointer.value.sessionId);
    const record = await kv.get<SessionRecord>(recordKey);
    const op = kv.atomic()
      .check(pointer)
      .check(record)
      .delete(pointer.key)
      .delete(recordKey);
    if (audit) auditRevoked(op, pointer.value.userId, pointer.value.sessionId, audit);
    const res = await op.commit();
    return res.ok ? true : RETRY;
  });
}

/** Reads an account's session record (tests and invariant checks). */
export async function getSessionRecord(
  kv: Deno.Kv,
  userId: string,
  sessionId: string,
): Promise<SessionRecord | null> {
  return (await kv.get<SessionRecord>(sessionKey(userId, sessionId))).value;
}

/** The account's live sessions at `nowMs` (expired ones are left for KV to clean up), newest first. */
export async function listSessions(
  kv: Deno.Kv,
  userId: string,
  nowMs: number,
): Promise<SessionRecord[]> {
  const out: SessionRecord[] = [];
  for await (const entry of kv.list<SessionRecord>({ prefix: sessionPrefix(userId) })) {
    const r = entry.value;
    if (r && Date.parse(r.expiresAt) > nowMs) out.push(r);
  }
  return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/**
 * Deletes one session of `userId` by id, record and pointer in one checked commit. False when
 * the account has no such session (another account's session id is simply not found).
 */
export async function deleteSession(
  kv: Deno.Kv,
  userId: string,
  sessionId: string,
  audit?: AuditStamp,
): Promise<boolean> {
  return await withRetries(async () => {
    const record = await kv.get<SessionRecord>(sessionKey(userId, sessionId));
    if (record.versionstamp === null || !record.value) return false;
    const op = kv.atomic().check(record).delete(record.key);
    if (typeof record.value.hash === "string") op.delete(sessionHashIndexKey(record.value.hash));
    if (audit) auditRevoked(op, userId, sessionId, audit);
    const res = await op.commit();
    return res.ok ? true : RETRY;
  });
}

/**
 * Deletes every session of `userId` except `keepSessionId`, in checked batches of
 * SESSION_PURGE_BATCH (each record checked unchanged, deleted with its pointer). Returns how
 * many were deleted. Signing out everywhere else is a credential change: it revokes what one
 * revokes (store/accounts/credentials.ts), in the first batch's commit, or in a commit of its own when
 * that one did not go through or there was nothing to delete.
 */
export async function deleteOtherSessions(
  kv: Deno.Kv,
  userId: string,
  keepSessionId: string,
  audit?: AuditStamp,
): Promise<number> {
  let deleted = 0;
  let revoked = false;
  let cursor: string | undefined;
  while (true) {
    const iter = kv.list<SessionRecord>({ prefix: sessionPrefix(userId) }, {
      limit: SESSION_PURGE_BATCH,
      cursor,
    });
    const listed = await Array.fromAsync(iter);
    const batch = listed.filter((e) => e.key[2] !== keepSessionId);
    if (batch.length > 0) {
      const op = revoked ? kv.atomic() : revokeOnCredentialChange(kv.atomic(), userId);
      for (const entry of batch) {
        op.check(entry).delete(entry.key);
        if (typeof entry.value?.hash === "string") {
          op.delete(sessionHashIndexKey(entry.value.hash));
        }
        if (audit) auditRevoked(op, userId, String(entry.key[2]), audit);
      }
      if ((await op.commit()).ok) {
        deleted += batch.length;
        revoked = true;
      } else {
        // A record changed meanwhile (its lastSeenAt was touched): delete one by one, checked.
        for (const entry of batch) {
          if (await deleteSession(kv, userId, String(entry.key[2]), audit)) deleted++;
        }
      }
    }
    if (listed.length < SESSION_PURGE_BATCH) {
      if (!revoked) await revokeOnCredentialChange(kv.atomic(), userId).commit();
      return deleted;
    }
    cursor = iter.cursor;
  }
}

/**
 * Records that the session was used at `nowMs`: a checked write of `lastSeenAt` that never
 * brings back a session deleted meanwhile, and keeps the record's expiry. False when the session
 * is gone or changed concurrently (the next touch tries again).
 */
export async function touchSession(
  kv: Deno.Kv,
  userId: string,
  sessionId: string,
  nowMs: number,
): Promise<boolean> {
  const entry = await kv.get<SessionRecord>(sessionKey(userId, sessionId));
  if (entry.versionstamp === null || !entry.value) return false;
  const remaining = Date.parse(entry.value.expiresAt) - nowMs;
  if (!(remaining > 0)) return false;
  const res = await kv.atomic()
    .check(entry)
    .set(entry.key, { ...entry.value, lastSeenAt: new Date(nowMs).toISOString() }, {
      expireIn: remaining,
    })
    .commit();
  return res.ok;
}

/**
 * Records a fresh proof of identity (password, TOTP or passkey) for the session at `nowMs`: a
 * checked write of `authenticatedAt` that keeps the record's expiry and never brings back a
 * session deleted meanwhile. Throws `Deno.errors.NotFound` when the session is gone.
 */
export async function markSessionReauthenticated(
  kv: Deno.Kv,
  userId: string,
  sessionId: string,
  nowMs: number,
): Promise<void> {
  await withRetries(async () => {
    const entry = await kv.get<SessionRecord>(sessionKey(userId, sessionId));
    if (entry.versionstamp === null || !entry.value) {
      throw new Deno.errors.NotFound("No such session");
    }
    const remaining = Date.parse(entry.value.expiresAt) - nowMs;
    if (!(remaining > 0)) throw new Deno.errors.NotFound("No such session");
    const res = await kv.atomic()
      .check(entry)
      .set(entry.key, { ...entry.value, authenticatedAt: nowMs }, { expireIn: remaining })
      .commit();
    return res.ok ? true : RETRY;
  });
}
