/**
 * Sudo mode: sensitive actions (creating, rolling, editing or deleting API keys, changing the
 * password or the second factors, deleting the account) need a proof of identity made in the
 * last SUDO_WINDOW_MS of the session: its sign-in, or a re-authentication
 * (`POST /api/auth/reauthenticate`, store/sessions.ts `markSessionReauthenticated`). Otherwise
 * 403 `REAUTHENTICATION_REQUIRED`. Bearer keys pass through: they cannot manage keys anyway, and
 * they have no session to re-authenticate.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { Clock } from "../lib/clock.ts";
import { HttpError, unauthorized } from "../lib/errors.ts";
import { getSessionRecord } from "../store/sessions.ts";
import type { AppEnv } from "./middleware.ts";
import type { Principal } from "./principal.ts";

/**
 * The operations that need sudo mode, by the API document's operationId: the one list. The JSON
 * API's route table (routes/registry.ts `mount`) checks it before a body is parsed; the
 * dashboard's forms name the operation each performs and its guard
 * (routes/dashboard/two_factor_pages.tsx `dashboardSudo`) checks it before a body is read; the
 * routes mounted outside the table (routes/auth.ts, routes/two_factor.ts, routes/passkeys.ts) call
 * `requireRecentAuth` for exactly these. `verifyTotp` needs it only from a signed-in session that
 * completes an enrolment (auth/two_factor.ts `verifySignedIn`), which is what the dashboard's
 * verify form does.
 */
export const SUDO_OPERATIONS: ReadonlySet<string> = new Set([
  "createApiKey",
  "updateApiKey",
  "rollApiKey",
  "deleteApiKey",
  "changePassword",
  "deleteUser",
  "enableTwoFactor",
  "verifyTotp",
  "disableTwoFactor",
  "generateBackupCodes",
  "passkeyGenerateRegisterOptions",
  "passkeyVerifyRegistration",
  "passkeyDelete",
]);

/** Whether the operation (its operationId) needs a session in sudo mode. */
export function needsSudo(operationId: string): boolean {
  return SUDO_OPERATIONS.has(operationId);
}

/** How long a proof of identity keeps a session in sudo mode. */
export const SUDO_WINDOW_MS = 10 * 60 * 1000;

export const REAUTHENTICATION_REQUIRED_MESSAGE =
  "This action needs a recent proof of identity. Re-authenticate with POST " +
  "/api/auth/reauthenticate (your password, an authenticator code or a passkey), then retry.";

export type SudoDeps = { kv: Deno.Kv; clock: Clock };

/**
 * Per request (its Context), set app-wide by auth/two_factor.ts `bindTwoFactor`; a property under
 * a module-private symbol rather than a WeakMap entry (no per-request GC work).
 */
const DEPS = Symbol("inbound.sudoDeps");
type WithDeps = Context & { [DEPS]?: SudoDeps };

export function bindSudoDeps(c: Context, deps: SudoDeps): void {
  (c as WithDeps)[DEPS] = deps;
}

function depsOf(c: Context, deps: SudoDeps | undefined): SudoDeps {
  const found = deps ?? (c as WithDeps)[DEPS];
  if (!found) throw new Error("sudo mode's dependencies are not bound to the request");
  return found;
}

/** The 403 a stale session gets. */
export function reauthenticationRequired(): HttpError {
  return new HttpError(403, REAUTHENTICATION_REQUIRED_MESSAGE, {
    code: "REAUTHENTICATION_REQUIRED",
  });
}

/** Epoch ms of the session's last proof of identity, or null when the session is gone. */
export async function sessionAuthenticatedAt(
  kv: Deno.Kv,
  userId: string,
  sessionId: string,
): Promise<number | null> {
  const record = await getSessionRecord(kv, userId, sessionId);
  if (!record) return null;
  return record.authenticatedAt ?? Date.parse(record.createdAt);
}

/** Whether the session proved its identity within SUDO_WINDOW_MS of `nowMs`. */
export async function isRecentlyAuthenticated(
  deps: SudoDeps,
  userId: string,
  sessionId: string,
): Promise<boolean> {
  const at = await sessionAuthenticatedAt(deps.kv, userId, sessionId);
  return at !== null && deps.clock() - at <= SUDO_WINDOW_MS;
}

/**
 * Throws 403 REAUTHENTICATION_REQUIRED unless the principal (by default the request's, as the
 * authentication middleware set it) is a Bearer key or a session in sudo mode; 401 when its
 * session is gone. `deps` default to the ones bound to the request (app.ts).
 */
export async function requireRecentAuth(
  c: Context<AppEnv>,
  deps?: SudoDeps,
  principal: Pick<Principal, "userId" | "method" | "sessionId"> = c.get("principal"),
): Promise<void> {
  if (principal.method !== "session") return;
  deps = depsOf(c, deps);
  if (!principal.sessionId) throw unauthorized();
  const at = await sessionAuthenticatedAt(deps.kv, principal.userId, principal.sessionId);
  if (at === null) throw unauthorized();
  if (deps.clock() - at > SUDO_WINDOW_MS) throw reauthenticationRequired();
}

/** `requireRecentAuth` as a Hono middleware, after `authenticate` (or requireSession). */
export function sudo(deps?: SudoDeps): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    await requireRecentAuth(c, deps);
    await next();
  };
}
