/**
 * Password-reset tokens. The token handed out is `<userId>.<43 base64url chars>` (256 random
 * bits); only the SHA-256 of the whole string is stored, under the account's own prefix, so the
 * account's deletion takes it along and no pointer index is needed. One record per account: a
 * newer token replaces the older (which stops working at once). Its expiry is in the value and
 * checked on every read (`expireIn` only cleans up). A reset consumes the token and sets the new
 * password hash in one checked commit, so a token works once however many requests race.
 */
import { sha256Hex } from "../lib/sha256.ts";
import { timingSafeEqual } from "../lib/crypto.ts";
import { appendAudit, type AuditStamp } from "./audit.ts";
import { RETRY, withRetries } from "./errors.ts";
import { passwordResetKey, userKey } from "./keys.ts";
import type { UserRecord } from "./users.ts";

/** How long a reset token is valid: 1 hour. */
export const PASSWORD_RESET_TTL_MS = 60 * 60 * 1000;

const TOKEN_BYTES = 32;
const TOKEN_RE = /^(usr_[0-9A-Za-z]{1,64})\.([A-Za-z0-9_-]{43})$/;

export type PasswordResetRecord = {
  /** SHA-256 (hex) of the token; never the token. */
  digest: string;
  createdAt: number;
  expiresAt: number;
};

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** The account a well-formed token names, or null for anything else. */
export function resetTokenUserId(token: string): string | null {
  return TOKEN_RE.exec(token)?.[1] ?? null;
}

/**
 * Issues a new token for the account, replacing any earlier one. Returns null when the account
 * does not exist (or stops existing meanwhile: the write is checked against the user record).
 */
export async function issuePasswordReset(
  kv: Deno.Kv,
  userId: string,
  nowMs: number,
): Promise<{ token: string; expiresAt: number } | null> {
  const token = `${userId}.${base64url(crypto.getRandomValues(new Uint8Array(TOKEN_BYTES)))}`;
  const record: PasswordResetRecord = {
    digest: sha256Hex(token),
    createdAt: nowMs,
    expiresAt: nowMs + PASSWORD_RESET_TTL_MS,
  };
  return await withRetries(async () => {
    const user = await kv.get<UserRecord>(userKey(userId));
    if (!user.value) return null;
    const res = await kv.atomic().check(user)
      .set(passwordResetKey(userId), record, { expireIn: PASSWORD_RESET_TTL_MS + 60_000 })
      .commit();
    return res.ok ? { token, expiresAt: record.expiresAt } : RETRY;
  });
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

export type ResetCheck =
  | { ok: true; user: UserRecord }
  | { ok: false };

/** Whether `token` is the account's live token at `nowMs` (no write). */
export async function checkPasswordReset(
  kv: Deno.Kv,
  token: string,
  nowMs: number,
): Promise<ResetCheck> {
  const userId = resetTokenUserId(token);
  if (!userId) return { ok: false };
  const [reset, user] = await kv.getMany<[PasswordResetRecord, UserRecord]>([
    passwordResetKey(userId),
    userKey(userId),
  ]);
  if (!live(reset.value, token, nowMs) || !user.value) return { ok: false };
  return { ok: true, user: user.value };
}

function live(r: PasswordResetRecord | null, token: string, nowMs: number): boolean {
  if (!r || typeof r.digest !== "string" || r.digest.length !== 64) return false;
  if (!(nowMs < r.expiresAt)) return false;
  return timingSafeEqual(hexBytes(r.digest), hexBytes(sha256Hex(token)));
}

/**
 * Consumes the token and sets the account's password hash to `nextHash`, in one commit checked
 * against both records: false when the token is not (or no longer) the account's live one.
 */
export async function consumePasswordReset(
  kv: Deno.Kv,
  token: string,
  nextHash: string,
  nowMs: number,
  audit?: AuditStamp,
): Promise<UserRecord | null> {
  const userId = resetTokenUserId(token);
  if (!userId) return null;
  return await withRetries(async () => {
    const [reset, user] = await kv.getMany<[PasswordResetRecord, UserRecord]>([
      passwordResetKey(userId),
      userKey(userId),
    ]);
    if (!live(reset.value, token, nowMs) || !user.value) return null;
    const updated: UserRecord = {
      ...user.value,
      passwordHash: nextHash,
      updatedAt: new Date(nowMs).toISOString(),
    };
    const op = kv.atomic().check(reset, user)
      .set(user.key, updated)
      .delete(reset.key);
    if (audit) {
      appendAudit(op, userId, audit.ctx, {
        action: "user.password_reset",
        target: { type: "user", id: userId, name: user.value.email },
      }, audit.nowMs);
    }
    const res = await op.commit();
    return res.ok ? updated : RETRY;
  });
}
