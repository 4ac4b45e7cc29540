/**
 * Dashboard sessions. The cookie carries a random token; KV holds only its SHA-256 digest, in the
 * pointer index (one read resolves a cookie to its account) and in the account's session record.
 * Both are written and deleted in one checked commit. The expiry lives in the values and is
 * checked on every read; `expireIn` is set as well, but only so KV may clean up some time after.
 *
 * An account that is not active gets no new session (the user record is checked in the session's
 * commit), and suspending it deletes all of its sessions (`deleteAllSessions`, store/users.ts).
 */
import { newId } from "../lib/crypto.ts";
import { RETRY, withRetries } from "./errors.ts";
import { sessionHashIndexKey, sessionKey, sessionPrefix, userKey } from "./keys.ts";
import type { UserRecord } from "./users.ts";

export type SessionRecord = {
  id: string;
  userId: string;
  /** SHA-256 hex digest of the cookie token; needed to remove the pointer. Never returned. */
  hash: string;
  createdAt: string;
  expiresAt: string;
};

/** What the pointer index stores: enough to authenticate with a single read. */
export type SessionPointer = { userId: string; sessionId: string; expiresAt: number };

type NewSession = { userId: string; hash: string; nowMs: number; ttlMs: number };

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
    const user = await kv.get<UserRecord>(userKey(input.userId));
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
  return { record, op };
}

/** Sessions deleted per commit: two deletes each, well under KV's 1000 mutations a commit. */
export const SESSION_PURGE_BATCH = 250;

/**
 * Deletes every session of `userId`, record and pointer always in the same commit, in batches of
 * SESSION_PURGE_BATCH sessions (an account may hold any number of sessions; one commit may not
 * hold more than 1000 mutations). Returns how many were deleted.
 *
 * The batches are not one transaction, so callers make a half-finished purge harmless: the
 * account is suspended before its sessions are purged (from then on every remaining session
 * resolves as suspended, and no new one can be created, see `createSessionForActiveUser`), and
 * reactivation purges again before the account is active (so sessions left by an interrupted
 * purge, or from before suspension signed accounts out, never come back to life). Deletes are
 * unconditional: a session's keys are written once, at creation, under fresh random names, so
 * there is no concurrent writer to lose against.
 */
export async function deleteAllSessions(kv: Deno.Kv, userId: string): Promise<number> {
  let deleted = 0;
  while (true) {
    const batch = await Array.fromAsync(
      kv.list<SessionRecord>({ prefix: sessionPrefix(userId) }, { limit: SESSION_PURGE_BATCH }),
    );
    if (batch.length === 0) return deleted;
    await withRetries(async () => {
      const op = kv.atomic();
      for (const entry of batch) {
        op.delete(entry.key);
        if (typeof entry.value?.hash === "string") op.delete(sessionHashIndexKey(entry.value.hash));
      }
      const res = await op.commit();
      return res.ok ? true : RETRY;
    });
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

/** Deletes the session whose token has digest `hash` (pointer and record together). */
export async function deleteSessionByHash(kv: Deno.Kv, hash: string): Promise<boolean> {
  return await withRetries(async () => {
    const pointer = await kv.get<SessionPointer>(sessionHashIndexKey(hash));
    if (pointer.versionstamp === null || !pointer.value) return false;
    const recordKey = sessionKey(pointer.value.userId, pointer.value.sessionId);
    const record = await kv.get<SessionRecord>(recordKey);
    const res = await kv.atomic()
      .check(pointer)
      .check(record)
      .delete(pointer.key)
      .delete(recordKey)
      .commit();
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
