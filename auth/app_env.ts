/**
 * Hono's environment of this app: what every request carries, set once by the middleware that
 * resolves it (routes/request_context.ts, auth/middleware.ts, the dashboard's session check).
 * A module of its own, so the policies can name it without importing the middleware.
 */
import type { RequestClient } from "../lib/client.ts";
import type { TenantStore } from "../store/tenant.ts";
import type { Principal } from "./principal.ts";

export type AppEnv = {
  Variables: {
    requestId: string;
    /** The request's deadline (routes/request_context.ts, lib/deadline.ts). */
    deadline: { readonly signal: AbortSignal; remainingMs(): number };
    /** Who is asking, resolved once, on first use (lib/client.ts, routes/request_context.ts). */
    client: RequestClient;
    principal: Principal;
    store: TenantStore;
    /**
     * The status the key's usage counts when it differs from the response's (forward auth's
     * `compat=nginx` answers a 429 or 503 as a 403): read by routes/usage/recorder.ts
     * `countUsage`.
     */
    usageStatus: number;
  };
};
