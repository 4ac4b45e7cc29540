/**
 * E-mail verification: the link a new account is mailed, and the account's `emailVerified` mark.
 *
 * The token handed out is `<userId>.<43 base64url chars>` (256 random bits), as for password
 * resets; only its SHA-256 is stored, under the account's own prefix with the address it was
 * mailed to, so the account's deletion takes it along. One record per account: a newer link
 * replaces the older. Its expiry is in the value and checked on every read (`expireIn` only
 * cleans up). Verifying consumes the token and marks the account in one commit checked against
 * both records, so a link works once and never verifies an address the account no longer has.
 *
 * `emailVerified` only ever goes from false to true (nothing un-verifies an address), so a check
 * that read it true stays right: the gates that read it (requireVerifiedEmail) need no commit.
 */
import { encodeBase64Url } from "hono/utils/encode";
import { timingSafeEqual } from "../lib/crypto.ts";
import { sha256Hex } from "../lib/sha256.ts";
import { appendAudit, type AuditStamp } from "./audit_log/events.ts";
import { RETRY, withRetries } from "./errors.ts";
import { emailVerificationKey, userKey } from "./keys.ts";
import type { UserRecord } from "./accounts/users.ts";

/** How long a verification link works: 1 hour (better-auth's default `expiresIn`). */
export const EMAIL_VERIFICATION_TTL_MS = 60 * 60 * 1000;

const TOKEN_BYTES = 32;
const TOKEN_RE = /^(usr_[0-9A-Za-z]{1,64})\.([A-Za-z0-9_-]{43})$/;

export type EmailVerificationRecord = {
  /** SHA-256 (hex) of the token; never the token. */
  digest: string;
  /** The address the link was mailed to: the link verifies this one only. */
  email: string;
  createdAt: number;
  expiresAt: number;
};

/** The account a well-formed token names, or null for anything else. */
export function verificationTokenUserId(token: string): string | null {
  return TOKEN_RE.exec(token)?.[1] ?? null;
}

/**
 * A new link for the account's current address, replacing any earlier one. Null when the
 * account does not exist or is verified already (the write is checked against the user record),
 * or when its live link is younger than `minIntervalMs`: that link keeps working, no new one.
 */
export async function issueEmailVerification(
  kv: Deno.Kv,
  userId: string,
  nowMs: number,
  minIntervalMs = 0,
): Promise<{ token: string; email: string; expiresAt: number } | null> {
  const random = crypto.getRandomValues(new Uint8Array(TOKEN_BYTES));
  const token = `${userId}.${encodeBase64Url(random.buffer).replace(/=+$/, "")}`;
  return await withRetries(async () => {
    const [user, current] = await kv.getMany<[UserRecord, EmailVerificationRecord]>([
      userKey(userId),
      emailVerificationKey(userId),
    ]);
    if (!user.value || user.value.emailVerified === true) return null;
    const last = current.value;
    if (
      last && nowMs < last.expiresAt && last.email === user.value.email &&
      nowMs - last.createdAt < minIntervalMs
    ) {
      return null;
    }
    const record: EmailVerificationRecord = {
      digest: sha256Hex(token),
      email: user.value.email,
      createdAt: nowMs,
      expiresAt: nowMs + EMAIL_VERIFICATION_TTL_MS,
    };
    const res = await kv.atomic().check(user, current)
      .set(emailVerificationKey(userId), record, { expireIn: EMAIL_VERIFICATION_TTL_MS + 60_000 })
      .commit();
    return res.ok ? { token, email: record.email, expiresAt: record.expiresAt } : RETRY;
  });
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function live(r: EmailVerificationRecord | null, token: string, nowMs: number): boolean {
  if (!r || typeof r.digest !== "string" || r.digest.length !== 64) return false;
  if (!(nowMs < r.expiresAt)) return false;
  return timingSafeEqual(hexBytes(r.digest), hexBytes(sha256Hex(token)));
}

export type VerifyOutcome =
  | { ok: true; user: UserRecord; alreadyVerified: boolean }
  | { ok: false };

/**
 * Consumes the token and marks the account verified, in one commit checked against the token's
 * record and the user record. A token of an account verified meanwhile (by another link, a
 * password reset or an operator) answers ok with `alreadyVerified`, as better-auth does.
 */
export async function consumeEmailVerification(
  kv: Deno.Kv,
  token: string,
  nowMs: number,
  audit?: AuditStamp,
): Promise<VerifyOutcome> {
  const userId = verificationTokenUserId(token);
  if (!userId) return { ok: false };
  return await withRetries(async () => {
    const [record, user] = await kv.getMany<[EmailVerificationRecord, UserRecord]>([
      emailVerificationKey(userId),
      userKey(userId),
    ]);
    if (!user.value) return { ok: false } as const;
    if (!live(record.value, token, nowMs) || record.value?.email !== user.value.email) {
      return { ok: false } as const;
    }
    if (user.value.emailVerified === true) {
      await kv.atomic().check(record).delete(record.key).commit();
      return { ok: true, user: user.value, alreadyVerified: true } as const;
    }
    const updated = verifiedRecord(user.value, nowMs);
    const op = kv.atomic().check(record, user).set(user.key, updated).delete(record.key);
    if (audit) appendVerifiedEvent(op, updated, audit, "link");
    const res = await op.commit();
    return res.ok ? { ok: true, user: updated, alreadyVerified: false } as const : RETRY;
  });
}

/** The user record with its address marked verified now (unchanged when it already was). */
export function verifiedRecord(user: UserRecord, nowMs: number): UserRecord {
  if (user.emailVerified === true) return user;
  return { ...user, emailVerified: true, emailVerifiedAt: new Date(nowMs).toISOString() };
}

/** `user.email_verified`, in the commit that marks the account. */
export function appendVerifiedEvent(
  op: Deno.AtomicOperation,
  user: UserRecord,
  audit: AuditStamp,
  by: "link" | "password_reset" | "admin",
): void {
  appendAudit(op, user.id, audit.ctx, {
    action: "user.email_verified",
    target: { type: "user", id: user.id, name: user.email },
    details: { by },
  }, audit.nowMs);
}

/**
 * Marks the account verified (operators: `admin user:verify-email`, and accounts made by
 * `admin user:create`). False when there is no such account; true when it is (now) verified.
 */
export async function markEmailVerified(
  kv: Deno.Kv,
  userId: string,
  nowMs: number,
  audit?: AuditStamp,
): Promise<boolean> {
  return await withRetries(async () => {
    const user = await kv.get<UserRecord>(userKey(userId));
    if (!user.value) return false;
    if (user.value.emailVerified === true) return true;
    const updated = verifiedRecord(user.value, nowMs);
    const op = kv.atomic().check(user).set(user.key, updated)
      .delete(emailVerificationKey(userId));
    if (audit) appendVerifiedEvent(op, updated, audit, "admin");
    const res = await op.commit();
    return res.ok ? true : RETRY;
  });
}

/** 403 `EMAIL_NOT_VERIFIED`: what an unverified account may not do while verification is on. */
export class EmailNotVerifiedError extends Error {
  constructor(readonly action: string) {
    super(
      `Verify your email address before you ${action}: open the link we mailed you, or ask ` +
        "for a new one (POST /api/auth/send-verification-email, or the banner in the dashboard).",
    );
    this.name = "EmailNotVerifiedError";
  }
}

/**
 * The one gate for "needs a verified address" (EMAIL_VERIFICATION=required): creating API keys,
 * adding domains, enrolling second factors. Throws EmailNotVerifiedError (403) otherwise. One
 * read, no commit: the mark never goes back to false (above).
 */
export async function requireVerifiedEmail(
  kv: Deno.Kv,
  userId: string,
  action: string,
): Promise<void> {
  const user = await kv.get<UserRecord>(userKey(userId));
  if (user.value && user.value.emailVerified !== true) throw new EmailNotVerifiedError(action);
}
