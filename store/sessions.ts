/**
 * Dashboard sessions. The cookie carries a random token; KV holds only its SHA-256 digest, in the
 * pointer index (one read resolves a cookie to its account) and in the account's session record.
 * Both are written and deleted in one checked commit. The expiry lives in the values and is
 * checked on every read; `expireIn` is set as well, but only so KV may clean up some time after.
 */
import { newId } from "../lib/crypto.ts";
import { RETRY, withRetries } from "./errors.ts";
import { sessionHashIndexKey, sessionKey } from "./keys.ts";

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

/** Creates a session for `userId` whose cookie token has digest `hash`. */
export async function createSession(
  kv: Deno.Kv,
  input: { userId: string; hash: string; nowMs: number; ttlMs: number },
): Promise<SessionRecord> {
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
  const res = await kv.atomic()
    .check({ key: sessionKey(input.userId, record.id), versionstamp: null })
    .check({ key: sessionHashIndexKey(input.hash), versionstamp: null })
    .set(sessionKey(input.userId, record.id), record, { expireIn: input.ttlMs })
    .set(sessionHashIndexKey(input.hash), pointer, { expireIn: input.ttlMs })
    .commit();
  // Both keys are fresh random values: a collision means something is badly wrong.
  if (!res.ok) throw new Error("session keys already in use");
  return record;
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
