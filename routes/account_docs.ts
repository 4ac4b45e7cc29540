/**
 * The key-management routes and `POST /api/e2/auth/revoke-key` are registered (handler, scope
 * and description in one place) in routes/api_keys.ts `registerApiKeyRoutes`; this module
 * describes the `/api/auth/*` routes mounted as a plain Hono router (routes/auth_docs.ts).
 */
import { describeAuthRoutes } from "./auth_docs.ts";
import type { RouteRegistry } from "./registry.ts";

export function describeAccountRoutes(registry: RouteRegistry): void {
  describeAuthRoutes(registry);
}
