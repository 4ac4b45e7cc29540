/**
 * What an API key may do. Every authenticated route declares the one scope a Bearer key needs
 * (routes/registry.ts); a dashboard session holds every scope.
 */
export const API_SCOPES = ["domains:read", "domains:write", "audit:read"] as const;

export type ApiScope = (typeof API_SCOPES)[number];

/** A key created without `scopes` (and every key made before scopes existed) has these. */
export const DEFAULT_SCOPES: readonly ApiScope[] = ["domains:read", "domains:write"];

export function isApiScope(value: unknown): value is ApiScope {
  return typeof value === "string" && (API_SCOPES as readonly string[]).includes(value);
}
