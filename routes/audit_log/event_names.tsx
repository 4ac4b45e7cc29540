/**
 * How the Security log names who acted and on what (issue 22 item 8): keys as every page names
 * them ("ci key (inb_xXaAEw…)", routes/dashboard/key_names.tsx), sessions as Settings > Security's
 * list does ("Safari on macOS", this device marked), browsers summarised (lib/user_agent.ts).
 * Events keep ids; names are resolved when the page is read, from the account's keys and live
 * sessions, so nothing is copied into events and a renamed key reads with its current name. What
 * no longer exists is said so: a deleted key by its id, an ended session by the browser its
 * own events came from.
 */
import type { AccountSession } from "../../auth/accounts/service.ts";
import { summariseUserAgent, UNKNOWN_AGENT } from "../../lib/user_agent.ts";
import type { AuditEventView } from "../../store/audit_log/reads.ts";
import { formatDate } from "../dashboard/format.ts";
import { type KeyNames, KeyRef } from "../dashboard/key_names.tsx";

/** What the page resolves names from: the account's keys and its live sessions. */
export type EventNames = { keys: KeyNames; sessions: ReadonlyMap<string, AccountSession> };

export function eventNames(keys: KeyNames, sessions: readonly AccountSession[]): EventNames {
  return { keys, sessions: new Map(sessions.map((s) => [s.id, s])) };
}

/**
 * The actor ids that are no session (auth/accounts/kit.ts `anonymousContext`): the request came
 * before there was one.
 */
const BEFORE_SESSION: Record<string, string> = {
  "sign-in": "Sign-in form",
  "sign-up": "Sign-up form",
  "password-reset": "Password reset link",
  "unknown": "Unknown session",
};

/**
 * Whether the event's own User-Agent is session `id`'s browser: it is when the session acted
 * (its actor), or when the event is the session's start.
 */
function eventIsFrom(e: AuditEventView, id: string): boolean {
  return (e.actor.type === "session" && e.actor.id === id) || e.action === "session.created";
}

/**
 * A session as the Sessions list names it: "Chrome on macOS (this device)", "Firefox on Linux
 * (signed in 2026-03-01)"; ended: "Chrome on macOS (ended)" when the event came from it, else
 * "A session that has ended".
 */
export function sessionText(e: AuditEventView, id: string, names: EventNames): string {
  const before = BEFORE_SESSION[id];
  if (before) return before;
  const live = names.sessions.get(id);
  if (live) {
    // Stored summarised at sign-in (auth/accounts/service.ts `requestOrigin`), as the list shows it.
    const browser = live.userAgent ?? UNKNOWN_AGENT;
    if (live.current) return `${browser} (this device)`;
    return `${browser} (signed in ${formatDate(live.createdAt).slice(0, 10)})`;
  }
  if (eventIsFrom(e, id) && e.userAgent) return `${summariseUserAgent(e.userAgent)} (ended)`;
  return "A session that has ended";
}

/** The "By" cell: the administrator, a key, or a session. */
export function Actor(props: { e: AuditEventView; names: EventNames }) {
  const { e, names } = props;
  switch (e.actor.type) {
    case "admin":
      return <>Administrator</>;
    case "api_key": {
      return (
        <>
          API key <KeyRef id={e.actor.id} names={names.keys} />
        </>
      );
    }
    default:
      return <>{sessionText(e, e.actor.id, names)}</>;
  }
}

/** The "Target" cell: keys and sessions named as above; users and domains by their name. */
export function Target(props: { e: AuditEventView; names: EventNames }) {
  const { e, names } = props;
  const t = e.target;
  if (t.type === "api_key") return <KeyRef id={t.id} names={names.keys} name={t.name} />;
  if (t.type === "session") return <>{sessionText(e, t.id, names)}</>;
  return (
    <>
      {t.name ?? t.id}
      {t.name ? <span class="muted">{` ${t.id}`}</span> : null}
    </>
  );
}

/** The "Browser" cell: the summary; the header as sent stays in the title, for whoever needs it. */
export function Browser(props: { userAgent: string | null }) {
  if (props.userAgent === null) return <span class="muted">—</span>;
  return <span title={props.userAgent}>{summariseUserAgent(props.userAgent)}</span>;
}
