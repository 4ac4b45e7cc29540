/**
 * Password-reset tokens. The token handed out is `<userId>.<43 base64url chars>` (256 random
 * bits); only the SHA-256 of the whole string is stored, under the account's own prefix, so the
 * account's deletion takes it along and no pointer index is needed. One record per account holds
 * its live links: a newer link is added beside the older ones, which keep working (asking again
 * never kills the link the owner is about to use), at most MAX_RESET_LINKS of them. Each link's
 * expiry is in the value and checked on every read (`expireIn` only cleans up).
 *
 * A reset spends every link of the account and sets the new password hash in one commit checked
 * against both records, so a token works once however many requests race. Any other credential
 * change revokes them as well, in its own commit (store/accounts/credentials.ts).
 *
 * `issuePasswordReset` takes the caller's minimum interval between links and applies it in the
 * checked commit that adds one, so racing requests cannot each issue one: the reset-mail rule
 * (auth/accounts/service.ts) is enforced atomically here.
 */
import { sha256Hex } from "../../lib/sha256.ts";
import { randomBase64Url, timingSafeEqual } from "../../lib/crypto.ts";
import { appendAudit, type AuditStamp } from "../audit_log/events.ts";
import { revokeOnCredentialChange } from "./credentials.ts";
import { RETRY, withRetries } from "../errors.ts";
import { emailVerificationKey, passwordResetKey, userKey } from "../keys.ts";
import type { UserRecord } from "./users.ts";
import { appendVerifiedEvent, verifiedRecord } from "../email_verification.ts";

/** How long a reset token is valid: 1 hour. */
export const PASSWORD_RESET_TTL_MS = 60 * 60 * 1000;

/**
 * Live links one account may hold; adding one beyond drops the oldest. Mailed links come at most
 * one per 5 minutes (auth/accounts/service.ts RESET_MAIL_INTERVAL_MS), so 12 fit in their hour: only
 * operators' links (`admin user:reset-link`, no interval) can reach the bound.
 */
export const MAX_RESET_LINKS = 12;

const TOKEN_BYTES = 32;
const TOKEN_RE = /^(usr_[0-9A-Za-z]{1,64})\.([A-Za-z0-9_-]{43})$/;

/** One issued link. */
export type ResetLinkRecord = {
  /** SHA-256 (hex) of the token; never the token. */
  digest: string;
  createdAt: number;
  expiresAt: number;
};

/**
 * The account's live links, oldest first. A record written before links accumulated is one
 * `ResetLinkRecord` itself; it is read as a list of one.
 */
export type PasswordResetRecord = { links: ResetLinkRecord[] };

/** The account a well-formed token names, or null for anything else. */
export function resetTokenUserId(token: string): string | null {
  return TOKEN_RE.exec(token)?.[1] ?? null;
}

/** The record's links still live at `nowMs`, oldest first (any other shape reads as none). */
function liveLinks(value: unknown, nowMs: number): ResetLinkRecord[] {
  if (!value || typeof value !== "object") return [];
  const v = value as Partial<PasswordResetRecord> & Partial<ResetLinkRecord>;
  const links: unknown[] = Array.isArray(v.links) ? v.links : [v];
  return links.filter((l): l is ResetLinkRecord => {
    const r = l as Partial<ResetLinkRecord> | null;
    return typeof r?.digest === "string" && /^[0-9a-f]{64}$/.test(r.digest) &&
      typeof r.createdAt === "number" && typeof r.expiresAt === "number" && nowMs < r.expiresAt;
  });
}

/**
 * Issues a new token for the account, beside its live ones (the oldest dropped beyond
 * MAX_RESET_LINKS). Returns null, issuing nothing, when the account does not exist (or stops
 * existing meanwhile: the write is checked against the user record), or when its newest live
 * link is less than `opts.minIntervalMs` old (that link stays as it is). The interval is
 * checked in the commit that adds the link, so of racing requests only one issues.
 */
export async function issuePasswordReset(
  kv: Deno.Kv,
  userId: string,
  nowMs: number,
  opts: { minIntervalMs?: number } = {},
): Promise<{ token: string; expiresAt: number } | null> {
  const token = `${userId}.${randomBase64Url(TOKEN_BYTES)}`;
  const link: ResetLinkRecord = {
    digest: sha256Hex(token),
    createdAt: nowMs,
    expiresAt: nowMs + PASSWORD_RESET_TTL_MS,
  };
  return await withRetries(async () => {
    const [user, current] = await kv.getMany<[UserRecord, PasswordResetRecord]>([
      userKey(userId),
      passwordResetKey(userId),
    ]);
    if (!user.value) return null;
    const links = liveLinks(current.value, nowMs);
    const newest = links.at(-1);
    if (newest && nowMs - newest.createdAt < (opts.minIntervalMs ?? 0)) return null;
    const record: PasswordResetRecord = { links: [...links, link].slice(-MAX_RESET_LINKS) };
    const res = await kv.atomic().check(user, current)
      .set(passwordResetKey(userId), record, { expireIn: PASSWORD_RESET_TTL_MS + 60_000 })
      .commit();
    return res.ok ? { token, expiresAt: link.expiresAt } : RETRY;
  });
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

export type ResetCheck =
  | { ok: true; user: UserRecord }
  | { ok: false };

/** Whether `token` is one of the account's live links at `nowMs` (no write). */
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

/** Whether `token` matches a live link of the record (every link compared in constant time). */
function live(record: unknown, token: string, nowMs: number): boolean {
  const digest = hexBytes(sha256Hex(token));
  let found = false;
  for (const link of liveLinks(record, nowMs)) {
    if (timingSafeEqual(hexBytes(link.digest), digest)) found = true;
  }
  return found;
}

/**
 * Consumes the token and sets the account's password hash to `nextHash`, in one commit checked
 * against both records: null when the token is not (or no longer) a live link of the account.
 * The commit revokes what any credential change revokes (store/accounts/credentials.ts): every link of
 * the account, this one included.
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
    // The link was opened from the account's mailbox: that proves the address too.
    const updated: UserRecord = verifiedRecord({
      ...user.value,
      passwordHash: nextHash,
      updatedAt: new Date(nowMs).toISOString(),
    }, nowMs);
    const op = revokeOnCredentialChange(
      kv.atomic().check(reset, user).set(user.key, updated).delete(emailVerificationKey(userId)),
      userId,
    );
    if (audit) {
      appendAudit(op, userId, audit.ctx, {
        action: "user.password_reset",
        target: { type: "user", id: userId, name: user.value.email },
      }, audit.nowMs);
      if (user.value.emailVerified !== true) {
        appendVerifiedEvent(op, updated, audit, "password_reset");
      }
    }
    const res = await op.commit();
    return res.ok ? updated : RETRY;
  });
}
