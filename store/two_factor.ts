/**
 * Two-factor state of an account: one TwoFactorRecord (the TOTP secret, whether enrolment is
 * complete, the last accepted time step, the recovery codes' SHA-256 digests) and the pending
 * second steps of password sign-ins. Every change is a checked commit on the record, so a code is
 * accepted once (a step at or before `lastAcceptedStep` is refused) and a recovery code once ever
 * (its digest leaves the list in the commit that accepts it). Changes that the audit log records
 * (`user.two_factor_changed`) append their event to the same commit.
 *
 * A code completing a sign-in is accepted in the commit that takes the pending sign-in, checked on
 * both entries: of attempts racing on one pending sign-in exactly one wins, and a loser consumes
 * nothing (no recovery code, no time step).
 *
 * The TOTP secret is stored as it is: verifying a code needs it readable, so it cannot be hashed
 * like a password. Whoever can read the KV can mint codes; the KV must be protected (README).
 */
import { appendAudit, type AuditContext, type AuditInput } from "./audit_log/events.ts";
import { revokeOnCredentialChange } from "./accounts/credentials.ts";
import { RETRY, withRetries } from "./errors.ts";
import { deleteAllPasskeys } from "./passkeys.ts";
import { twoFactorKey, twoFactorPendingKey, twoFactorPendingPrefix, userKey } from "./keys.ts";
import type { UserRecord } from "./accounts/users.ts";

export type TwoFactorRecord = {
  /** The TOTP secret, base32. Never returned by any route once enrolment is complete. */
  secret: string;
  /** False from `enable` until the first code is verified; a pending enrolment protects nothing. */
  enabled: boolean;
  createdAt: string;
  enabledAt: string | null;
  /** The last TOTP time step accepted: it and every earlier step are refused (replay). */
  lastAcceptedStep: number | null;
  /** SHA-256 hex digests of the unused recovery codes. */
  backupCodes: string[];
};

/** A password sign-in waiting for its second step. */
export type PendingSignIn = {
  userId: string;
  createdAtMs: number;
  expiresAtMs: number;
};

export type TwoFactorAudit = { ctx: AuditContext; nowMs: number; change: string };

function audit(op: Deno.AtomicOperation, userId: string, a: TwoFactorAudit) {
  appendAudit(op, userId, a.ctx, {
    action: "user.two_factor_changed",
    target: { type: "user", id: userId },
    details: { change: a.change },
  }, a.nowMs);
}

export async function getTwoFactor(kv: Deno.Kv, userId: string): Promise<TwoFactorRecord | null> {
  return (await kv.get<TwoFactorRecord>(twoFactorKey(userId))).value;
}

/** Whether the account has a completed TOTP enrolment. */
export async function hasTwoFactor(kv: Deno.Kv, userId: string): Promise<boolean> {
  return (await getTwoFactor(kv, userId))?.enabled === true;
}

/** Already enrolled: disable first (enable would otherwise replace a working secret). */
export class TwoFactorAlreadyEnabledError extends Error {
  constructor() {
    super("Two-factor authentication is already enabled.");
    this.name = "TwoFactorAlreadyEnabledError";
  }
}

/**
 * Starts (or restarts) an enrolment: a new secret and recovery codes, not yet enabled. Refused
 * with TwoFactorAlreadyEnabledError when enrolment is complete; the user record is checked so a
 * deleted or suspended account gets nothing.
 */
export async function beginEnrolment(
  kv: Deno.Kv,
  userId: string,
  input: { secret: string; backupCodeDigests: string[]; nowMs: number },
): Promise<void> {
  await withRetries(async () => {
    const [user, current] = await kv.getMany<[UserRecord, TwoFactorRecord]>([
      userKey(userId),
      twoFactorKey(userId),
    ]);
    if (user.versionstamp === null) throw new Deno.errors.NotFound("No such account");
    if (current.value?.enabled) throw new TwoFactorAlreadyEnabledError();
    const record: TwoFactorRecord = {
      secret: input.secret,
      enabled: false,
      createdAt: new Date(input.nowMs).toISOString(),
      enabledAt: null,
      lastAcceptedStep: null,
      backupCodes: input.backupCodeDigests,
    };
    const res = await kv.atomic().check(user).check(current).set(current.key, record).commit();
    return res.ok ? true : RETRY;
  });
}

/**
 * What a code offered for a pending sign-in came to: "replay" is a right TOTP code whose step
 * was already accepted (its user waits for the next one rather than doubting the app).
 */
export type SecondStepOutcome = "ok" | "invalid" | "replay" | "no_pending";

/** Whether `entry` is a pending sign-in that is live at `nowMs` (expiry checked on read). */
export function isLivePending(
  entry: Deno.KvEntryMaybe<PendingSignIn>,
  nowMs: number,
): entry is Deno.KvEntry<PendingSignIn> {
  return entry.versionstamp !== null && entry.value !== null && entry.value.expiresAtMs > nowMs;
}

/** The account's two-factor record and its pending sign-in `hash`, read together. */
export async function readSecondStep(
  kv: Deno.Kv,
  userId: string,
  hash: string,
): Promise<[Deno.KvEntryMaybe<TwoFactorRecord>, Deno.KvEntryMaybe<PendingSignIn>]> {
  return await kv.getMany<[TwoFactorRecord, PendingSignIn]>([
    twoFactorKey(userId),
    twoFactorPendingKey(userId, hash),
  ]);
}

/**
 * Accepts TOTP step `step` for the account (its code was verified against `expected.secret`):
 * refused (false) when the step is not after the last accepted one, or the record changed since
 * it was read (then the caller reads again). A pending enrolment completes here, with its audit
 * event in the same commit. With `pending` (a sign-in's second step) the pending sign-in is taken
 * in the same commit, checked too: "changed" when another attempt took it first. With
 * `recoveryDigests`, a completing enrolment gets these recovery codes instead of the ones made at
 * `beginEnrolment` (the dashboard shows codes only once the app is proven to work).
 */
export async function acceptTotpStep(
  kv: Deno.Kv,
  userId: string,
  expected: Deno.KvEntryMaybe<TwoFactorRecord>,
  step: number,
  a: Omit<TwoFactorAudit, "change">,
  pending?: Deno.KvEntry<PendingSignIn>,
  recoveryDigests?: string[],
): Promise<"ok" | "replay" | "changed"> {
  const r = expected.value;
  if (!r) return "changed";
  if (r.lastAcceptedStep !== null && step <= r.lastAcceptedStep) return "replay";
  const completing = !r.enabled;
  const next: TwoFactorRecord = {
    ...r,
    enabled: true,
    enabledAt: r.enabledAt ?? new Date(a.nowMs).toISOString(),
    lastAcceptedStep: step,
    ...(completing && recoveryDigests ? { backupCodes: recoveryDigests } : {}),
  };
  const op = kv.atomic().check(expected).set(twoFactorKey(userId), next);
  if (pending) op.check(pending).delete(pending.key);
  if (completing) revokeOnCredentialChange(op, userId);
  if (completing) audit(op, userId, { ...a, change: "enabled" });
  return (await op.commit()).ok ? "ok" : "changed";
}

/**
 * Completes the pending sign-in `hash` with the recovery code of digest `digest`: the code leaves
 * the list and the pending sign-in is deleted in one commit, checked on both. "no_pending" when the
 * pending sign-in is gone or expired (another attempt won: nothing is consumed), "invalid" when
 * the account has no such code.
 */
export async function redeemBackupCode(
  kv: Deno.Kv,
  userId: string,
  hash: string,
  digest: string,
  nowMs: number,
): Promise<SecondStepOutcome> {
  return await withRetries(async () => {
    const [entry, pending] = await readSecondStep(kv, userId, hash);
    if (!isLivePending(pending, nowMs)) return "no_pending";
    const r = entry.value;
    if (!r || !r.enabled || !r.backupCodes.includes(digest)) return "invalid";
    const next = { ...r, backupCodes: r.backupCodes.filter((d) => d !== digest) };
    const res = await kv.atomic().check(entry).check(pending)
      .set(entry.key, next).delete(pending.key).commit();
    return res.ok ? "ok" : RETRY;
  });
}

/** Replaces the recovery codes of an enrolled account; false when it has no enrolment. */
export async function replaceBackupCodes(
  kv: Deno.Kv,
  userId: string,
  digests: string[],
  a: Omit<TwoFactorAudit, "change">,
): Promise<boolean> {
  return await withRetries(async () => {
    const entry = await kv.get<TwoFactorRecord>(twoFactorKey(userId));
    if (!entry.value?.enabled) return false;
    const op = kv.atomic().check(entry).set(entry.key, { ...entry.value, backupCodes: digests });
    revokeOnCredentialChange(op, userId);
    audit(op, userId, { ...a, change: "backup_codes_regenerated" });
    return (await op.commit()).ok ? true : RETRY;
  });
}

/**
 * Removes the TOTP enrolment and recovery codes (and pending sign-ins); the audit event (when
 * `a` is given and there was a completed enrolment) goes in the same commit. False when there
 * was nothing to remove.
 */
export async function deleteTwoFactor(
  kv: Deno.Kv,
  userId: string,
  a: TwoFactorAudit | null,
): Promise<boolean> {
  const removed = await withRetries(async () => {
    const entry = await kv.get<TwoFactorRecord>(twoFactorKey(userId));
    if (entry.versionstamp === null) return false;
    const op = kv.atomic().check(entry).delete(entry.key);
    if (entry.value.enabled) revokeOnCredentialChange(op, userId);
    if (a && entry.value.enabled) audit(op, userId, a);
    return (await op.commit()).ok ? true : RETRY;
  });
  for await (const p of kv.list({ prefix: twoFactorPendingPrefix(userId) })) {
    await kv.delete(p.key);
  }
  return removed;
}

/**
 * Stores a pending sign-in under the digest of its cookie token; with `event` (the password was
 * right: `session.second_factor_required`) its audit event goes in the same commit.
 */
export async function createPendingSignIn(
  kv: Deno.Kv,
  userId: string,
  hash: string,
  nowMs: number,
  ttlMs: number,
  event?: { ctx: AuditContext; input: AuditInput },
): Promise<PendingSignIn> {
  const pending: PendingSignIn = { userId, createdAtMs: nowMs, expiresAtMs: nowMs + ttlMs };
  const key = twoFactorPendingKey(userId, hash);
  const op = kv.atomic().check({ key, versionstamp: null }).set(key, pending, { expireIn: ttlMs });
  if (event) appendAudit(op, userId, event.ctx, event.input, nowMs);
  const res = await op.commit();
  if (!res.ok) throw new Error("pending sign-in key already in use");
  return pending;
}

/** The live pending sign-in, or null (none, used, or expired at `nowMs`). */
export async function findPendingSignIn(
  kv: Deno.Kv,
  userId: string,
  hash: string,
  nowMs: number,
): Promise<PendingSignIn | null> {
  const entry = await kv.get<PendingSignIn>(twoFactorPendingKey(userId, hash));
  return isLivePending(entry, nowMs) ? entry.value : null;
}

/** Deletes the pending sign-in (checked: true only for the one caller that removed it). */
export async function takePendingSignIn(
  kv: Deno.Kv,
  userId: string,
  hash: string,
): Promise<boolean> {
  const entry = await kv.get<PendingSignIn>(twoFactorPendingKey(userId, hash));
  if (entry.versionstamp === null) return false;
  return (await kv.atomic().check(entry).delete(entry.key).commit()).ok;
}

/**
 * Removes every second factor of the account (an operator helping a locked-out user: admin
 * `user:disable-2fa`): the TOTP enrolment and recovery codes, and its passkeys
 * (store/passkeys.ts), each with its `user.two_factor_changed` event in its own commit.
 */
export async function removeSecondFactors(
  kv: Deno.Kv,
  userId: string,
  a: { ctx: AuditContext; nowMs: number },
): Promise<{ totp: boolean; passkeys: number }> {
  const totp = await deleteTwoFactor(kv, userId, { ...a, change: "disabled_by_admin" });
  const passkeys = await deleteAllPasskeys(kv, userId, a.ctx, a.nowMs);
  return { totp, passkeys };
}
