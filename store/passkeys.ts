/**
 * Passkeys (WebAuthn credentials) and the single-use challenges of their ceremonies.
 *
 * A passkey lives under its account ([userId, "passkey", passkeyId]), so account deletion and the
 * account's prefix take it along; a discoverable sign-in finds the account from the credential's
 * user handle (the user id), never through a global index. The public key is not a secret, but it
 * is never shown: `passkeyView` is what lists return. The signature counter moves only by checked
 * commits (clone detection: a counter that does not grow refuses the sign-in).
 *
 * Challenges live at ["webauthn_challenge", id] for at most CHALLENGE_TTL_MS: the expiry is in the
 * value and checked on read; `takeChallenge` reads and deletes in one checked commit, so each is
 * used at most once.
 */
import { newId } from "../lib/crypto.ts";
import { appendAudit, type AuditContext } from "./audit_log/events.ts";
import { revokeOnCredentialChange } from "./accounts/credentials.ts";
import { RETRY, withRetries } from "./errors.ts";
import { passkeyKey, passkeyPrefix, webauthnChallengeKey } from "./keys.ts";

/** Passkeys one account may hold. */
export const MAX_PASSKEYS = 20;
/** How long a ceremony's challenge is good for. */
export const CHALLENGE_TTL_MS = 5 * 60_000;
export const MAX_PASSKEY_NAME = 100;

export type PasskeyRecord = {
  id: string;
  userId: string;
  name: string;
  /** The credential id, base64url, as the authenticator reports it. */
  credentialId: string;
  /** COSE public key. */
  publicKey: Uint8Array;
  counter: number;
  transports: string[];
  deviceType: "singleDevice" | "multiDevice";
  backedUp: boolean;
  createdAt: string;
  lastUsedAt: string | null;
};

/** What lists show: never the public key. */
export type PasskeyView = {
  id: string;
  name: string;
  credentialID: string;
  transports: string[];
  deviceType: "singleDevice" | "multiDevice";
  backedUp: boolean;
  createdAt: string;
  lastUsedAt: string | null;
};

export function passkeyView(r: PasskeyRecord): PasskeyView {
  return {
    id: r.id,
    name: r.name,
    credentialID: r.credentialId,
    transports: r.transports,
    deviceType: r.deviceType,
    backedUp: r.backedUp,
    createdAt: r.createdAt,
    lastUsedAt: r.lastUsedAt,
  };
}

export type ChallengePurpose = "register" | "authenticate";

export type WebAuthnChallenge = {
  challenge: string;
  purpose: ChallengePurpose;
  /** The signed-in account (register, re-authenticate) or the pending sign-in's account. */
  userId: string | null;
  /** The session it was issued to (signed in), else null. */
  sessionId: string | null;
  expiresAtMs: number;
};

/** The account's passkeys, oldest first. */
export async function listPasskeys(kv: Deno.Kv, userId: string): Promise<PasskeyRecord[]> {
  const out: PasskeyRecord[] = [];
  for await (const e of kv.list<PasskeyRecord>({ prefix: passkeyPrefix(userId) })) {
    if (e.value) out.push(e.value);
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** The account's passkey with credential id `credentialId`, with its versionstamp, or null. */
export async function findPasskeyByCredential(
  kv: Deno.Kv,
  userId: string,
  credentialId: string,
): Promise<Deno.KvEntry<PasskeyRecord> | null> {
  for await (const e of kv.list<PasskeyRecord>({ prefix: passkeyPrefix(userId) })) {
    if (e.value?.credentialId === credentialId) return e;
  }
  return null;
}

export class PasskeyLimitError extends Error {
  constructor() {
    super(`An account may hold at most ${MAX_PASSKEYS} passkeys.`);
    this.name = "PasskeyLimitError";
  }
}

export type NewPasskey = Omit<PasskeyRecord, "id" | "createdAt" | "lastUsedAt">;

/**
 * Stores a verified credential, with the `user.two_factor_changed` audit event in the same
 * commit. Throws AlreadyExists when the account holds that credential already, PasskeyLimitError
 * beyond MAX_PASSKEYS. The account's passkeys are checked unchanged in the commit.
 */
export async function addPasskey(
  kv: Deno.Kv,
  input: NewPasskey,
  ctx: AuditContext,
  nowMs: number,
): Promise<PasskeyRecord> {
  return await withRetries(async () => {
    const existing = await Array.fromAsync(
      kv.list<PasskeyRecord>({ prefix: passkeyPrefix(input.userId) }),
    );
    if (existing.some((e) => e.value?.credentialId === input.credentialId)) {
      throw new Deno.errors.AlreadyExists("This passkey is registered already.");
    }
    if (existing.length >= MAX_PASSKEYS) throw new PasskeyLimitError();
    const record: PasskeyRecord = {
      ...input,
      id: newId("pky"),
      createdAt: new Date(nowMs).toISOString(),
      lastUsedAt: null,
    };
    const op = kv.atomic().check({ key: passkeyKey(input.userId, record.id), versionstamp: null });
    for (const e of existing) op.check(e);
    op.set(passkeyKey(input.userId, record.id), record);
    revokeOnCredentialChange(op, input.userId);
    appendAudit(op, input.userId, ctx, {
      action: "user.two_factor_changed",
      target: { type: "user", id: input.userId },
      details: { method: "passkey", change: "added", passkeyId: record.id },
    }, nowMs);
    return (await op.commit()).ok ? record : RETRY;
  });
}

/** Renames a passkey; false when the account has no passkey by that id. */
export async function renamePasskey(
  kv: Deno.Kv,
  userId: string,
  passkeyId: string,
  name: string,
): Promise<boolean> {
  return await withRetries(async () => {
    const e = await kv.get<PasskeyRecord>(passkeyKey(userId, passkeyId));
    if (e.versionstamp === null || !e.value) return false;
    const res = await kv.atomic().check(e).set(e.key, { ...e.value, name }).commit();
    return res.ok ? true : RETRY;
  });
}

/** Deletes a passkey, with its audit event in the same commit; false when there is none. */
export async function deletePasskey(
  kv: Deno.Kv,
  userId: string,
  passkeyId: string,
  ctx: AuditContext,
  nowMs: number,
): Promise<boolean> {
  return await withRetries(async () => {
    const e = await kv.get<PasskeyRecord>(passkeyKey(userId, passkeyId));
    if (e.versionstamp === null || !e.value) return false;
    const op = revokeOnCredentialChange(kv.atomic().check(e).delete(e.key), userId);
    appendAudit(op, userId, ctx, {
      action: "user.two_factor_changed",
      target: { type: "user", id: userId },
      details: { method: "passkey", change: "removed", passkeyId },
    }, nowMs);
    return (await op.commit()).ok ? true : RETRY;
  });
}

/**
 * Deletes every passkey of the account (admin `user:disable-2fa`), in one commit with one audit
 * event when `ctx` is given and there was any. Returns how many went.
 */
export async function deleteAllPasskeys(
  kv: Deno.Kv,
  userId: string,
  ctx?: AuditContext,
  nowMs = Date.now(),
): Promise<number> {
  return await withRetries(async () => {
    const all = await Array.fromAsync(kv.list<PasskeyRecord>({ prefix: passkeyPrefix(userId) }));
    if (all.length === 0) return 0;
    const op = revokeOnCredentialChange(kv.atomic(), userId);
    for (const e of all) op.check(e).delete(e.key);
    if (ctx) {
      appendAudit(op, userId, ctx, {
        action: "user.two_factor_changed",
        target: { type: "user", id: userId },
        details: { method: "passkey", change: "removed_all", count: all.length },
      }, nowMs);
    }
    return (await op.commit()).ok ? all.length : RETRY;
  });
}

/** Thrown when a passkey's counter or record changed between reading and using it. */
export class PasskeyUseConflict extends Error {
  constructor() {
    super("The passkey was used concurrently.");
    this.name = "PasskeyUseConflict";
  }
}

/**
 * Records a verified use: the new counter and lastUsedAt, checked against the entry the
 * verification read (a concurrent use of the same credential makes this throw, never both win).
 */
export async function recordPasskeyUse(
  kv: Deno.Kv,
  entry: Deno.KvEntry<PasskeyRecord>,
  newCounter: number,
  nowMs: number,
): Promise<void> {
  const res = await kv.atomic().check(entry).set(entry.key, {
    ...entry.value,
    counter: newCounter,
    lastUsedAt: new Date(nowMs).toISOString(),
  }).commit();
  if (!res.ok) throw new PasskeyUseConflict();
}

/** Stores a fresh challenge; returns its id (for the cookie or the caller). */
export async function putChallenge(
  kv: Deno.Kv,
  input: Omit<WebAuthnChallenge, "expiresAtMs">,
  nowMs: number,
): Promise<string> {
  const id = newId("wac");
  const value: WebAuthnChallenge = { ...input, expiresAtMs: nowMs + CHALLENGE_TTL_MS };
  const res = await kv.atomic()
    .check({ key: webauthnChallengeKey(id), versionstamp: null })
    .set(webauthnChallengeKey(id), value, { expireIn: CHALLENGE_TTL_MS })
    .commit();
  if (!res.ok) throw new Error("challenge id already in use");
  return id;
}

/**
 * Reads and deletes the challenge in one checked commit: null when it is unknown, used, or
 * expired at `nowMs` (an expired one is deleted too). Each challenge is returned at most once.
 */
export async function takeChallenge(
  kv: Deno.Kv,
  id: string,
  nowMs: number,
): Promise<WebAuthnChallenge | null> {
  if (!/^wac_[A-Za-z0-9]{22}$/.test(id)) return null;
  return await withRetries(async () => {
    const e = await kv.get<WebAuthnChallenge>(webauthnChallengeKey(id));
    if (e.versionstamp === null || !e.value) return null;
    const res = await kv.atomic().check(e).delete(e.key).commit();
    if (!res.ok) return RETRY;
    return e.value.expiresAtMs > nowMs ? e.value : null;
  });
}
