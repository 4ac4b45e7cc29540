/**
 * Account events: every account flow reports here, and only here, what it did (never a secret:
 * ids, counts and the client address only). Where they go is a dependency of the account service
 * (`AccountDeps.events`); without one they go nowhere. The audit log does not depend on them: its
 * events are written in the commits that make each change (store/audit_log/events.ts).
 */

export type AccountEvent =
  | { type: "sign-up"; userId: string; ip: string; sessionId: string }
  | {
    type: "sign-in";
    userId: string;
    ip: string;
    sessionId: string;
    /**
     * The browser carried no valid device cookie for this account (auth/sessions/new_device.ts):
     * a device not seen before, which the owner is told about (auth/accounts/notifications.ts).
     */
    newDevice?: boolean;
    /** The summarised User-Agent (never the raw header). */
    userAgent?: string | null;
  }
  | { type: "sign-out"; userId: string; sessionId: string }
  | { type: "name-changed"; userId: string }
  | { type: "password-changed"; userId: string; ip: string; revokedSessions: number }
  | { type: "session-revoked"; userId: string; sessionId: string; bySessionId: string }
  | { type: "other-sessions-revoked"; userId: string; bySessionId: string; count: number }
  | {
    type: "account-deleted";
    userId: string;
    ip: string;
    apiKeys: number;
    sessions: number;
    domains: number;
  }
  | { type: "password-reset-requested"; userId: string; ip: string }
  | { type: "password-reset"; userId: string; ip: string; revokedSessions: number };

/** Where account events go, each stamped with the time it happened. */
export type AccountEventSink = (event: AccountEvent & { at: string }) => void;

/** Reports `event`, made at `nowMs`, to `sink`. A failing sink never fails the flow. */
export function emitAccountEvent(
  sink: AccountEventSink | undefined,
  event: AccountEvent,
  nowMs: number,
): void {
  if (!sink) return;
  try {
    sink({ ...event, at: new Date(nowMs).toISOString() });
  } catch {
    // An event sink's failure is its own to report.
  }
}
