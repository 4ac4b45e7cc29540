/**
 * What an API key may do. Every authenticated route declares the one scope a Bearer key needs
 * (routes/registry.ts); a dashboard session holds every scope.
 */
export const API_SCOPES = [
  "domains:read",
  "domains:write",
  "endpoints:read",
  "endpoints:write",
  "email-addresses:read",
  "email-addresses:write",
  "audit:read",
] as const;

export type ApiScope = (typeof API_SCOPES)[number];

/**
 * A key created without `scopes` gets these, written out in its record and its pointer
 * (store/api_keys.ts `newGrant`): every built-in scope but audit:read. The endpoints and
 * e-mail-address scopes joined in issue 23; keys stored before (a pointer without a grant, a
 * record without `scopes`) keep LEGACY_DEFAULT_SCOPES, so no existing key is widened.
 */
export const DEFAULT_SCOPES: readonly ApiScope[] = API_SCOPES.filter((s) => s !== "audit:read");

/**
 * DEFAULT_SCOPES before issue 23: what a stored key without a grant may do (auth/api_keys/policy.ts
 * `hasScope`, store/api_keys.ts `grantOf`).
 */
export const LEGACY_DEFAULT_SCOPES: readonly ApiScope[] = ["domains:read", "domains:write"];

export function isApiScope(value: unknown): value is ApiScope {
  return typeof value === "string" && (API_SCOPES as readonly string[]).includes(value);
}

/**
 * A scope a key may hold: a built-in one (`ApiScope`) or one of the operator's, declared in the
 * forward-auth rules file (FORWARD_AUTH_RULES, auth/forward_auth/rules.ts, docs/forward-auth.md).
 */
export type KeyScope = ApiScope | (string & Record<never, never>);

/**
 * The scopes keys may be granted in one app: the built-in ones, then the operator's (declared in
 * the forward-auth rules file, FORWARD_AUTH_RULES), in the file's order. Built once by createApp
 * (app.ts) from its rules and handed to everything that validates or shows scopes (the key
 * routes' schemas, the dashboard's key forms, forward auth, the admin CLI): no process-wide
 * state, so two apps with different rules files never see each other's scopes.
 */
export type ScopeVocabulary = {
  /** The operator's scopes; empty without a rules file. */
  readonly operator: readonly string[];
  /** Every grantable scope: the built-in ones, then the operator's. */
  readonly all: readonly KeyScope[];
  /** Whether a key may be granted `value`. */
  has(value: unknown): value is KeyScope;
};

/** The vocabulary of the built-in scopes and `operator`'s (validated by the rules file's parser). */
export function scopeVocabulary(operator: readonly string[] = []): ScopeVocabulary {
  const op = Object.freeze([...operator]);
  const all: readonly KeyScope[] = Object.freeze([...API_SCOPES, ...op]);
  const known = new Set<string>(all);
  return Object.freeze({
    operator: op,
    all,
    has: (value: unknown): value is KeyScope => typeof value === "string" && known.has(value),
  });
}

/** The built-in scopes alone (no rules file). */
export const BUILT_IN_VOCABULARY: ScopeVocabulary = scopeVocabulary();
