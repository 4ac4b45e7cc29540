/**
 * What the signed-in account changes about itself: its name, its password, its sessions, and
 * its deletion; and the password check other signed-in actions ask for (two-factor settings,
 * re-authentication). Every password check goes through the bounded pool after a per-account
 * throttle, so a stolen session cannot guess the password faster than sign-in could.
 */
import { throttleSubject } from "../../lib/client.ts";
import { accountSuspended, HttpError, unauthorized, writeConflict } from "../../lib/errors.ts";
import { deleteAccount } from "../../store/accounts/deletion.ts";
import {
  deleteOtherSessions,
  deleteSession,
  getSessionRecord,
  listSessions,
  type SessionView,
  sessionView,
} from "../../store/sessions.ts";
import {
  getUser,
  updatePasswordHash,
  updateUserName,
  type UserRecord,
} from "../../store/accounts/users.ts";
import type { AccountKit, Caller } from "./kit.ts";
import { type PublicUser, publicUser } from "./user_view.ts";

/** A live session of the account, as the session list shows it; `current` marks this device. */
export type AccountSession = SessionView & { current: boolean };

/** 400 INVALID_PASSWORD: the account's password, asked for again, was wrong. */
function wrongPassword(message = "The password is not correct."): HttpError {
  return new HttpError(400, message, { code: "INVALID_PASSWORD" });
}

export class AccountSettings {
  readonly #kit: AccountKit;

  constructor(kit: AccountKit) {
    this.#kit = kit;
  }

  /**
   * Checks the account's password for a signed-in action (two-factor settings,
   * re-authentication): through the bounded pool after a per-account throttle
   * ("change-password:user"); 400 INVALID_PASSWORD when wrong.
   */
  async verifyPassword(userId: string, password: string, ip: string): Promise<void> {
    using admission = this.#kit.hashing.admit(throttleSubject(ip));
    const user = await this.#activeAccount("change-password:user", userId, "password");
    if (!(await admission.check(password, user.passwordHash)).ok) throw wrongPassword();
  }

  /** Sets the display name (validated by the caller: 1-100 characters, trimmed). */
  async updateName(caller: Caller, name: string): Promise<PublicUser> {
    const { kv, clock } = this.#kit;
    try {
      const user = await updateUserName(kv, caller.userId, name, clock());
      this.#kit.emit({ type: "name-changed", userId: caller.userId });
      return publicUser(user);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) throw unauthorized();
      throw err;
    }
  }

  /**
   * Changes the password: the current one is checked and the new one hashed through the
   * bounded pool (the caller's address takes its place first, as for sign-in), after a
   * per-account throttle. The new hash replaces the old in a checked commit (a concurrent
   * change wins, this one gets 409). Unless `revokeOtherSessions` is false, every other
   * session of the account is deleted; the caller's stays. 400 INVALID_PASSWORD for a wrong
   * current password.
   */
  async changePassword(
    caller: Caller,
    input: { currentPassword: string; newPassword: string; revokeOtherSessions?: boolean },
    ip: string,
  ): Promise<{ user: PublicUser; revokedSessions: number }> {
    const kit = this.#kit;
    using admission = kit.hashing.admit(throttleSubject(ip));
    const user = await this.#activeAccount(
      "change-password:user",
      caller.userId,
      "password change",
    );
    if (!(await admission.check(input.currentPassword, user.passwordHash)).ok) {
      throw wrongPassword("The current password is not correct.");
    }
    const next = await admission.hash(input.newPassword);
    const nowMs = kit.clock();
    const audit = { ...kit.stamp(kit.callerContext(caller)), nowMs };
    if (!(await updatePasswordHash(kit.kv, user.id, user.passwordHash, next, nowMs, audit))) {
      throw writeConflict();
    }
    const revokedSessions = input.revokeOtherSessions === false
      ? 0
      : await deleteOtherSessions(kit.kv, user.id, caller.sessionId);
    kit.emit({ type: "password-changed", userId: user.id, ip, revokedSessions }, nowMs);
    const updated = await getUser(kit.kv, user.id);
    return { user: publicUser(updated ?? user), revokedSessions };
  }

  /** The account's live sessions, newest first, the caller's marked `current`. */
  async listSessions(caller: Caller): Promise<AccountSession[]> {
    const records = await listSessions(this.#kit.kv, caller.userId, this.#kit.clock());
    return records.map((r) => ({ ...sessionView(r), current: r.id === caller.sessionId }));
  }

  /** The caller's own session as the session list shows it, or null once it is gone. */
  async currentSession(caller: Caller): Promise<AccountSession | null> {
    const r = await getSessionRecord(this.#kit.kv, caller.userId, caller.sessionId);
    return r ? { ...sessionView(r), current: true } : null;
  }

  /** Ends one of the account's sessions by id; false when it has none by that id. */
  async revokeSession(caller: Caller, sessionId: string): Promise<boolean> {
    const kit = this.#kit;
    const audit = kit.stamp(kit.callerContext(caller));
    const done = await deleteSession(kit.kv, caller.userId, sessionId, audit);
    if (done) {
      kit.emit({
        type: "session-revoked",
        userId: caller.userId,
        sessionId,
        bySessionId: caller.sessionId,
      });
    }
    return done;
  }

  /** Ends every session of the account but the caller's; returns how many. */
  async revokeOtherSessions(caller: Caller): Promise<number> {
    const kit = this.#kit;
    const audit = kit.stamp(kit.callerContext(caller));
    const count = await deleteOtherSessions(kit.kv, caller.userId, caller.sessionId, audit);
    kit.emit({
      type: "other-sessions-revoked",
      userId: caller.userId,
      bySessionId: caller.sessionId,
      count,
    });
    return count;
  }

  /**
   * Deletes the caller's account (store/accounts/deletion.ts): the password is checked through
   * the bounded pool after a per-account throttle ("delete-user:user", the sign-in limit);
   * 400 INVALID_PASSWORD when wrong, and nothing is deleted. From the first commit on, the
   * account's keys and sessions are refused (401) and its email is free; the rest follows in
   * bounded batches before this returns. A crash midway leaves a tombstone that
   * `admin verify` reports and `admin user:delete --id` finishes.
   */
  async deleteUser(caller: Caller, input: { password: string }, ip: string): Promise<void> {
    const kit = this.#kit;
    using admission = kit.hashing.admit(throttleSubject(ip));
    const user = await this.#activeAccount(
      "delete-user:user",
      caller.userId,
      "account deletion",
    );
    if (!(await admission.check(input.password, user.passwordHash)).ok) throw wrongPassword();
    const nowMs = kit.clock();
    const summary = await deleteAccount(kit.kv, user.id, {
      nowMs,
      passwordHash: user.passwordHash,
    });
    if (!summary) throw unauthorized();
    kit.emit({
      type: "account-deleted",
      userId: user.id,
      ip,
      apiKeys: summary.apiKeys,
      sessions: summary.sessions,
      domains: summary.domains,
    }, nowMs);
  }

  /**
   * Before any password work on the account, once the caller's address has its place in the
   * pool: counts the attempt per account in `scope` (so a stolen session guesses no faster than
   * sign-in), then reads the account: 401 when it is gone, 403 ACCOUNT_SUSPENDED when not active.
   */
  async #activeAccount(scope: string, userId: string, what: string): Promise<UserRecord> {
    await this.#kit.throttle(scope, userId, what);
    const user = await getUser(this.#kit.kv, userId);
    if (!user) throw unauthorized();
    if (user.status !== "active") throw accountSuspended();
    return user;
  }
}
