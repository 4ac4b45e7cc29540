/** Accounts: the user record under its own prefix and the email -> userId pointer index. */
import { newId } from "../../lib/crypto.ts";
import { appendAudit, type AuditStamp } from "../audit_log/events.ts";
import { revokeOnCredentialChange } from "./credentials.ts";
import { RETRY, withRetries } from "../errors.ts";
import { emailIndexKey, userKey } from "../keys.ts";
import { commitRevocation, processRevocations, type RevocationHub } from "../revocation.ts";
import { deleteAllSessions } from "../sessions.ts";

export type UserStatus = "active" | "suspended";

export type UserRecord = {
  id: string;
  email: string;
  /** Encoded KDF output (see auth/passwords/hash.ts); never leaves the server. */
  passwordHash: string;
  status: UserStatus;
  createdAt: string;
  /** Display name, 1-100 characters, trimmed. Absent on accounts made before names existed. */
  name?: string;
  /** When the name or password last changed; absent until then. */
  updatedAt?: string;
  /**
   * Whether the owner proved the address (a verification link, a completed password reset, or
   * an operator: store/email_verification.ts). Absent means false. Never goes back to false.
   */
  emailVerified?: boolean;
  emailVerifiedAt?: string;
  /**
   * Made while EMAIL_VERIFICATION=required: such an account, never verified, can be replaced by
   * a new sign-up for its address once its link has expired (auth/email_verification.ts).
   */
  verificationRequired?: boolean;
};

export const MAX_NAME_LENGTH = 100;

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

/** Creates the account; throws `Deno.errors.AlreadyExists` when the email is taken. */
export async function createUser(
  kv: Deno.Kv,
  input: {
    email: string;
    passwordHash: string;
    nowMs: number;
    name?: string;
    /** Operators' accounts (`admin user:create`) are verified from the start. */
    emailVerified?: boolean;
    /** EMAIL_VERIFICATION=required at sign-up (UserRecord.verificationRequired). */
    verificationRequired?: boolean;
  },
): Promise<UserRecord> {
  const email = normaliseEmail(input.email);
  const createdAt = new Date(input.nowMs).toISOString();
  const user: UserRecord = {
    id: newId("usr"),
    email,
    passwordHash: input.passwordHash,
    status: "active",
    createdAt,
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.emailVerified ? { emailVerified: true, emailVerifiedAt: createdAt } : {}),
    ...(input.verificationRequired ? { verificationRequired: true } : {}),
  };
  const res = await kv.atomic()
    .check({ key: emailIndexKey(email), versionstamp: null })
    .check({ key: userKey(user.id), versionstamp: null })
    .set(userKey(user.id), user)
    .set(emailIndexKey(email), { userId: user.id })
    .commit();
  if (!res.ok) throw new Deno.errors.AlreadyExists("An account with that email already exists");
  return user;
}

export async function findUserIdByEmail(kv: Deno.Kv, email: string): Promise<string | null> {
  const entry = await kv.get<{ userId: string }>(emailIndexKey(normaliseEmail(email)));
  return entry.value?.userId ?? null;
}

export async function getUser(kv: Deno.Kv, userId: string): Promise<UserRecord | null> {
  return (await kv.get<UserRecord>(userKey(userId))).value;
}

/** Like `getUser`, but throws `Deno.errors.NotFound`. */
export async function getUserOrThrow(kv: Deno.Kv, userId: string): Promise<UserRecord> {
  const user = await getUser(kv, userId);
  if (!user) throw new Deno.errors.NotFound("No such account");
  return user;
}

export async function findUserByEmail(kv: Deno.Kv, email: string): Promise<UserRecord | null> {
  const userId = await findUserIdByEmail(kv, email);
  return userId ? await getUser(kv, userId) : null;
}

/**
 * Suspends or reactivates an account. The status change is a revocation (store/revocation.ts):
 * this process's verifiers drop the account's cached keys at once, other processes' within a
 * second, and the next request re-reads the account. Throws `Deno.errors.NotFound` for an
 * unknown account.
 *
 * Suspension signs the account out: the status flips first, then every session is deleted (in
 * bounded batches, store/sessions.ts `deleteAllSessions`); a session not yet deleted already
 * resolves as suspended, and none can be created. Reactivation deletes any session still there
 * (an interrupted purge, or one from before this rule) before the account is active again, so
 * no old cookie comes back to life; its API keys simply work again. Reactivating an active
 * account changes nothing (its sessions stay).
 */
export async function setUserStatus(
  kv: Deno.Kv,
  userId: string,
  status: UserStatus,
  revocations: RevocationHub = processRevocations,
  audit?: AuditStamp,
): Promise<UserRecord> {
  const current = await getUserOrThrow(kv, userId);
  if (status === "active" && current.status === "active") return current;
  if (status === "active") await deleteAllSessions(kv, userId);
  const updated = await withRetries(async () => {
    const entry = await kv.get<UserRecord>(userKey(userId));
    if (!entry.value) throw new Deno.errors.NotFound("No such account");
    const updated = { ...entry.value, status };
    const op = kv.atomic().check(entry).set(entry.key, updated);
    // user.suspended / user.unsuspended, in the commit that changes the status.
    if (audit && entry.value.status !== status) {
      appendAudit(op, userId, audit.ctx, {
        action: status === "active" ? "user.unsuspended" : "user.suspended",
        target: { type: "user", id: userId, name: entry.value.email },
      }, audit.nowMs);
    }
    const res = await commitRevocation(op, { kind: "account", userId }, revocations);
    return res.ok ? updated : RETRY;
  });
  if (status !== "active") await deleteAllSessions(kv, userId);
  return updated;
}

/**
 * Replaces the account's password hash with `next` (a rehash at new parameters after a sign-in),
 * in one checked commit, only while it is still `current`: false when the account is gone or its
 * hash changed meanwhile, so a concurrent change is never overwritten. A change of password
 * (`changedAtMs` given) is a credential change: its commit revokes what one revokes
 * (store/accounts/credentials.ts); a rehash changes no credential and revokes nothing.
 */
export async function updatePasswordHash(
  kv: Deno.Kv,
  userId: string,
  current: string,
  next: string,
  changedAtMs?: number,
  audit?: AuditStamp,
): Promise<boolean> {
  return await withRetries(async () => {
    const entry = await kv.get<UserRecord>(userKey(userId));
    if (!entry.value || entry.value.passwordHash !== current) return false;
    const updated: UserRecord = { ...entry.value, passwordHash: next };
    if (changedAtMs !== undefined) updated.updatedAt = new Date(changedAtMs).toISOString();
    const op = kv.atomic().check(entry).set(entry.key, updated);
    if (changedAtMs !== undefined) revokeOnCredentialChange(op, userId);
    // user.password_changed (a rehash at new parameters passes no audit: nothing changed).
    if (audit) {
      appendAudit(op, userId, audit.ctx, {
        action: "user.password_changed",
        target: { type: "user", id: userId, name: entry.value.email },
      }, audit.nowMs);
    }
    const res = await op.commit();
    return res.ok ? true : RETRY;
  });
}

/** Sets the account's display name (already validated) in one checked commit. */
export async function updateUserName(
  kv: Deno.Kv,
  userId: string,
  name: string,
  nowMs: number,
): Promise<UserRecord> {
  return await withRetries(async () => {
    const entry = await kv.get<UserRecord>(userKey(userId));
    if (!entry.value) throw new Deno.errors.NotFound("No such account");
    const updated: UserRecord = { ...entry.value, name, updatedAt: new Date(nowMs).toISOString() };
    const res = await kv.atomic().check(entry).set(entry.key, updated).commit();
    return res.ok ? updated : RETRY;
  });
}
