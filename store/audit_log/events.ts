/**
 * The audit log's one write primitive. A security event is never written on its own: the caller
 * adds it to the atomic operation that makes the change it records (`appendAudit(op, …)` before
 * `op.commit()`), so an event exists exactly when its change does. Events are append-only: no
 * route changes or deletes one; they expire after the retention period (the expiry is kept in the
 * value and checked on read; `expireIn` only lets KV drop them later).
 *
 * Key: [userId, "audit", timeMs, eventId]: newest first is a reverse range read.
 */
import { randomBase62 } from "../../lib/crypto.ts";
import { auditEventKey } from "../keys.ts";

export const AUDIT_ACTIONS = [
  "api_key.created",
  "api_key.updated",
  "api_key.rolled",
  "api_key.deleted",
  "api_key.revoked",
  "api_key.denied",
  "session.created",
  "session.sign_in_failed",
  "session.second_factor_required",
  "session.second_factor_failed",
  "session.revoked",
  "user.password_changed",
  "user.password_reset",
  "user.email_verified",
  "user.two_factor_changed",
  "user.suspended",
  "user.unsuspended",
  "domain.created",
  "domain.verified",
  "domain.updated",
  "domain.deleted",
  "endpoint.created",
  "endpoint.updated",
  "endpoint.deleted",
  "endpoint.secret_rolled",
  "endpoint.tested",
  "email_address.created",
  "email_address.updated",
  "email_address.deleted",
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** Who did it: a dashboard session, an API key, or an operator with the admin CLI. */
export type AuditActor = { type: "session" | "api_key" | "admin"; id: string };

/** Where the request came from; both null for the admin CLI. Never a credential. */
export type AuditContext = {
  actor: AuditActor;
  ip: string | null;
  userAgent: string | null;
  /** AUDIT_RETENTION_DAYS, when the caller knows the configuration (the app and the CLI do). */
  retentionDays?: number;
};

/**
 * A store's standing audit context, or a function that makes it when a change is first recorded:
 * a request's context is only needed if the request writes, so the hot path (a read) never builds
 * it (the client address, the User-Agent, the actor).
 */
export type AuditSource = AuditContext | (() => AuditContext);

/** The context of a source, made at most once per call site that keeps the result. */
export function resolveAudit(source: AuditSource | undefined): AuditContext | undefined {
  return typeof source === "function" ? source() : source;
}

/** What a store function needs to record the change it commits: who, and the caller's clock. */
export type AuditStamp = { ctx: AuditContext; nowMs: number };

export type AuditTarget = {
  type: "api_key" | "session" | "user" | "domain" | "endpoint" | "email_address";
  id: string;
  name?: string;
};

export type AuditOutcome = "success" | "failure" | "denied";

export type AuditEvent = {
  id: string;
  time: string;
  action: AuditAction;
  actor: AuditActor;
  target: AuditTarget;
  ip: string | null;
  userAgent: string | null;
  outcome: AuditOutcome;
  /** Non-secret details (e.g. the changed fields of an update, the refused scope). */
  details?: Record<string, string | number | boolean | string[] | null>;
  /** Epoch ms after which the event is treated as gone (AUDIT_RETENTION_DAYS). */
  expiresAtMs: number;
};

export const DEFAULT_AUDIT_RETENTION_DAYS = 90;
const DAY_MS = 24 * 60 * 60 * 1000;
/** User agents are kept short: they are context, not evidence. */
const MAX_USER_AGENT = 256;

export type AuditInput = {
  action: AuditAction;
  target: AuditTarget;
  outcome?: AuditOutcome;
  details?: AuditEvent["details"];
};

/**
 * Adds the event to `op` (one `set`, no check: the event id is fresh). Returns the event so the
 * caller can log its id. `nowMs` is the caller's clock; `retentionDays` AUDIT_RETENTION_DAYS.
 */
export function appendAudit(
  op: Deno.AtomicOperation,
  userId: string,
  ctx: AuditContext,
  input: AuditInput,
  nowMs: number,
  retentionDays = ctx.retentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS,
): AuditEvent {
  const retentionMs = retentionDays * DAY_MS;
  const event: AuditEvent = {
    id: nextEventId(),
    time: new Date(nowMs).toISOString(),
    action: input.action,
    actor: ctx.actor,
    target: input.target,
    ip: ctx.ip,
    userAgent: ctx.userAgent === null ? null : ctx.userAgent.slice(0, MAX_USER_AGENT),
    outcome: input.outcome ?? "success",
    ...(input.details ? { details: input.details } : {}),
    expiresAtMs: nowMs + retentionMs,
  };
  op.set(auditEventKey(userId, nowMs, event.id), event, { expireIn: retentionMs });
  return event;
}

/**
 * Records an event that is no change of its own (a failed sign-in, a wrong second factor: nothing
 * else is written for it) in a commit of its own. Every event that records a change uses
 * `appendAudit` instead.
 *
 * Such an event is written only for an attempt its throttle has already admitted and counted (the
 * sign-in throttle for `session.sign_in_failed`, auth/accounts/service.ts; the two-factor throttle for
 * `session.second_factor_failed`, auth/two_factor.ts `secondStep`): a refused attempt (429)
 * records nothing, so nobody can write more events into an account than its throttle allows.
 */
export async function recordAuditEvent(
  kv: Deno.Kv,
  userId: string,
  ctx: AuditContext,
  input: AuditInput,
  nowMs: number,
): Promise<AuditEvent> {
  const op = kv.atomic();
  const event = appendAudit(op, userId, ctx, input, nowMs);
  const res = await op.commit();
  // The key is fresh (a new random id): a failed check cannot happen.
  if (!res.ok) throw new Error("audit event key already in use");
  return event;
}

/** The context of a change made by an operator with the admin CLI. */
export const ADMIN_AUDIT_CONTEXT: AuditContext = {
  actor: { type: "admin", id: "admin-cli" },
  ip: null,
  userAgent: null,
};

/**
 * Event ids sort in the order this process wrote them: a per-process sequence (fixed width)
 * before the random part, so two events in the same millisecond (a fake clock, a burst) still
 * list newest first. Across processes same-millisecond events have no defined order.
 */
let sequence = 0;
function nextEventId(): string {
  sequence = (sequence + 1) % 36 ** 6;
  return `evt_${sequence.toString(36).padStart(6, "0")}${randomBase62(16)}`;
}
