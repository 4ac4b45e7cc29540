/**
 * Sudo mode: sensitive actions (creating, rolling, editing or deleting API keys, changing the
 * password or the second factors, deleting the account) need a proof of identity made in the
 * last SUDO_WINDOW_MS of the session: its sign-in, or a re-authentication
 * (`POST /api/auth/reauthenticate`, store/sessions.ts `markSessionReauthenticated`). Otherwise
 * 403 `REAUTHENTICATION_REQUIRED`. Bearer keys pass through: they cannot manage keys anyway, and
 * they have no session to re-authenticate.
 *
 * Which operations need it is a field of each operation's declaration (`sudo: true` in
 * routes/registry.ts): the route table checks it before a body is parsed, and the dashboard's
 * forms, which name the operation they perform, are checked against the same declarations
 * (routes/two_factor/pages.tsx `dashboardSudo`). This module only decides whether a
 * session is in sudo mode.
 */
import type { Clock } from "../lib/clock.ts";
import { HttpError, unauthorized } from "../lib/errors.ts";
import { getSessionRecord, markSessionReauthenticated } from "../store/sessions.ts";
import type { Principal } from "./principal.ts";

/** How long a proof of identity keeps a session in sudo mode. */
export const SUDO_WINDOW_MS = 10 * 60 * 1000;

export const REAUTHENTICATION_REQUIRED_MESSAGE =
  "This action needs a recent proof of identity. Re-authenticate with POST " +
  "/api/auth/reauthenticate (your password, an authenticator code or a passkey), then retry.";

export type SudoDeps = { kv: Deno.Kv; clock: Clock };

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

/** Sudo mode over one store and clock, handed to whatever checks or grants it. */
export class SudoMode {
  readonly #deps: SudoDeps;

  constructor(deps: SudoDeps) {
    this.#deps = deps;
  }

  /** Whether the session proved its identity within SUDO_WINDOW_MS. */
  isRecent(userId: string, sessionId: string): Promise<boolean> {
    return isRecentlyAuthenticated(this.#deps, userId, sessionId);
  }

  /**
   * Throws 403 REAUTHENTICATION_REQUIRED unless the principal is a Bearer key or a session in
   * sudo mode; 401 when its session is gone.
   */
  async require(principal: Pick<Principal, "userId" | "method" | "sessionId">): Promise<void> {
    if (principal.method !== "session") return;
    if (!principal.sessionId) throw unauthorized();
    const at = await sessionAuthenticatedAt(
      this.#deps.kv,
      principal.userId,
      principal.sessionId,
    );
    if (at === null) throw unauthorized();
    if (this.#deps.clock() - at > SUDO_WINDOW_MS) throw reauthenticationRequired();
  }

  /** A fresh proof of identity: the session is in sudo mode for SUDO_WINDOW_MS from now. */
  async grant(userId: string, sessionId: string): Promise<void> {
    await markSessionReauthenticated(this.#deps.kv, userId, sessionId, this.#deps.clock());
  }
}
