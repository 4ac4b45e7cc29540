/**
 * The audit context of a request: who acted (the principal's session or key) and from where (the
 * proxy-aware client address, the User-Agent). Never a credential: actor ids are record ids.
 */
import type { AuditActor, AuditContext } from "../store/audit_log/events.ts";
import { clientOf } from "../lib/client.ts";
import type { Principal } from "./principal.ts";

export function actorOf(principal: Principal): AuditActor {
  return principal.method === "api_key"
    ? { type: "api_key", id: principal.keyId ?? "unknown" }
    : { type: "session", id: principal.sessionId ?? "unknown" };
}

/** The context of a request; `principal` is absent before sign-in (the actor is then the user). */
export function auditContextOf(
  req: Request,
  principal: Principal | { userId: string },
): AuditContext {
  const actor: AuditActor = "method" in principal
    ? actorOf(principal)
    : { type: "session", id: "sign-in" };
  return {
    actor,
    ip: clientOf(req).address,
    userAgent: req.headers.get("User-Agent"),
  };
}
