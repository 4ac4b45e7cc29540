/**
 * The forward-auth rules file (FORWARD_AUTH_RULES, docs/forward-auth.md#rules): the operator's
 * scope vocabulary and a rule table saying what each upstream route needs.
 *
 *   { "scopes": ["orders:read", "orders:write"],
 *     "rules": [
 *       { "name": "orders-read", "method": "GET", "path": "/orders/*", "scope": "orders:read" },
 *       { "name": "health", "method": "GET", "path": "/health", "public": true },
 *       { "name": "v1", "method": "*", "path": "/v1/*" } ] }
 *
 * A rule: `name` (unique), `method` (one method or "*") or `methods` (a list), `path` (exact, or
 * ending in "/*": the prefix itself and everything under it), then at most one of `scope` (a key
 * must hold it), `public: true` (no credential at all); neither: any valid key. `cookie: true`
 * also accepts the dashboard session cookie (off by default: cookies plus forward auth invite
 * CSRF). The first rule that matches wins; nothing matching is refused (default deny).
 *
 * Validation is strict and happens once, at start-up: unknown fields, duplicate names, a scope
 * not declared, an operator scope named like a built-in one... each refuses to start with one line
 * naming the file and the JSON path (`ForwardAuthRulesError`, a ConfigError).
 *
 * Matching works on the request's path only (the query and fragment are ignored), percent-decoded
 * and with dot segments removed first, so `/orders/../admin` and `/orders/%2e%2e/admin` are
 * `/admin`, and do not match `/orders/*`. A path an upstream may read two ways (an encoded "/",
 * or "//" before ".."; `normalisePath`) matches only when both readings select the same rule.
 * A rule for GET covers HEAD too (RFC 9110: HEAD is GET without the body).
 */
import { ConfigError } from "../../lib/config.ts";
import { API_SCOPES, isApiScope } from "../../lib/scopes.ts";

/** One rule, as validated: `methods` null means any method. */
export type ForwardAuthRule = {
  readonly name: string;
  readonly methods: readonly string[] | null;
  /** The path without its trailing "/*" when `prefix`; else the exact path. */
  readonly path: string;
  readonly prefix: boolean;
  /** The scope a key must hold; null: any valid key (or nothing at all when `public`). */
  readonly scope: string | null;
  readonly public: boolean;
  readonly cookie: boolean;
};

export type ForwardAuthRules = {
  /** The operator's scopes, in the file's order. */
  readonly scopes: readonly string[];
  readonly rules: readonly ForwardAuthRule[];
  /** Where they came from (for messages); null: given in code, or no file. */
  readonly source: string | null;
};

/** No file: no operator scopes and no rule, so every forward-auth request is refused. */
export const NO_RULES: ForwardAuthRules = Object.freeze({
  scopes: Object.freeze([]),
  rules: Object.freeze([]),
  source: null,
});

/** A rules file that cannot be used: one line naming the file and the JSON path at fault. */
export class ForwardAuthRulesError extends ConfigError {
  constructor(source: string, path: string, problem: string) {
    super(`FORWARD_AUTH_RULES ${source}: ${path}: ${problem}`);
    this.name = "ForwardAuthRulesError";
  }
}

/** Rule names: also the `?rule=` value and the X-Auth-Rule header, so plain characters only. */
const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Scope names: one token (X-Auth-Scopes is space-separated), such as `orders:read`. */
const SCOPE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9._-]+)*$/;
const MAX_SCOPE_LENGTH = 64;
const MAX_SCOPES = 100;
const MAX_RULES = 1000;
/** An HTTP method token (RFC 9110), compared upper-cased. */
const METHOD = /^[A-Za-z]{1,20}$/;
const TOP_FIELDS = new Set(["scopes", "rules"]);
const RULE_FIELDS = new Set(["name", "method", "methods", "path", "scope", "public", "cookie"]);

/**
 * Reads and validates the rules file at `path`; null (no FORWARD_AUTH_RULES): `NO_RULES`. Throws
 * `ForwardAuthRulesError` (a ConfigError: main.ts prints its one line and exits).
 */
export function loadForwardAuthRules(path: string | null): ForwardAuthRules {
  if (path === null) return NO_RULES;
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (err) {
    const why = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied ||
          (err instanceof Error && err.name === "NotCapable")
      ? "not allowed: the server reads files under ./data only"
      : err instanceof Error
      ? err.name
      : "unreadable";
    throw new ForwardAuthRulesError(path, "$", `cannot read the file (${why})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const why = err instanceof SyntaxError ? err.message.split("\n")[0] : "invalid";
    throw new ForwardAuthRulesError(path, "$", `not JSON (${why})`);
  }
  return parseForwardAuthRules(json, path);
}

/** Validates a parsed rules document (`source` names it in errors). */
export function parseForwardAuthRules(json: unknown, source = "(rules)"): ForwardAuthRules {
  const fail = (at: string, problem: string): never => {
    throw new ForwardAuthRulesError(source, at, problem);
  };
  if (!isObject(json)) return fail("$", "must be an object with `scopes` and `rules`");
  for (const field of Object.keys(json)) {
    if (!TOP_FIELDS.has(field)) fail(`$.${field}`, "unknown field (expected scopes, rules)");
  }
  const scopes = parseScopes(json.scopes ?? [], fail);
  if (!Array.isArray(json.rules)) return fail("$.rules", "must be an array of rules");
  if (json.rules.length > MAX_RULES) fail("$.rules", `at most ${MAX_RULES} rules`);
  const names = new Set<string>();
  const rules = json.rules.map((raw, i) => {
    const rule = parseRule(raw, `$.rules[${i}]`, new Set(scopes), fail);
    if (names.has(rule.name)) fail(`$.rules[${i}].name`, `duplicate rule name "${rule.name}"`);
    names.add(rule.name);
    return rule;
  });
  return Object.freeze({
    scopes: Object.freeze(scopes),
    rules: Object.freeze(rules),
    source,
  });
}

type Fail = (at: string, problem: string) => never;

function parseScopes(raw: unknown, fail: Fail): string[] {
  if (!Array.isArray(raw)) return fail("$.scopes", "must be an array of scope names");
  if (raw.length > MAX_SCOPES) fail("$.scopes", `at most ${MAX_SCOPES} scopes`);
  const seen = new Set<string>();
  raw.forEach((s, i) => {
    const at = `$.scopes[${i}]`;
    if (typeof s !== "string" || !SCOPE_NAME.test(s) || s.length > MAX_SCOPE_LENGTH) {
      fail(at, `must be a scope name such as "orders:read" (letters, digits, . _ - and :)`);
    }
    if (isApiScope(s)) {
      fail(at, `"${s}" is a built-in scope (${API_SCOPES.join(", ")}); choose another name`);
    }
    if (seen.has(s)) fail(at, `duplicate scope "${s}"`);
    seen.add(s);
  });
  return [...seen];
}

function parseRule(raw: unknown, at: string, declared: Set<string>, fail: Fail): ForwardAuthRule {
  if (!isObject(raw)) return fail(at, "must be an object");
  for (const field of Object.keys(raw)) {
    if (!RULE_FIELDS.has(field)) {
      fail(`${at}.${field}`, `unknown field (expected ${[...RULE_FIELDS].join(", ")})`);
    }
  }
  const { name } = raw;
  if (typeof name !== "string" || !RULE_NAME.test(name)) {
    fail(`${at}.name`, "must be 1 to 64 letters, digits, . _ - (starting with a letter or digit)");
  }
  const methods = parseMethods(raw, at, fail);
  const { path, prefix } = parsePattern(raw.path, `${at}.path`, fail);
  const scope = raw.scope ?? null;
  if (scope !== null) {
    if (typeof scope !== "string") fail(`${at}.scope`, "must be a scope name");
    if (!declared.has(scope as string) && !isApiScope(scope)) {
      fail(`${at}.scope`, `"${scope}" is not declared in $.scopes (nor a built-in scope)`);
    }
  }
  const isPublic = flag(raw.public, `${at}.public`, fail);
  const cookie = flag(raw.cookie, `${at}.cookie`, fail);
  if (isPublic && scope !== null) fail(`${at}.public`, "a public rule cannot require a scope");
  if (isPublic && cookie) fail(`${at}.cookie`, "a public rule takes no credential");
  return Object.freeze({
    name: name as string,
    methods,
    path,
    prefix,
    scope: scope as string | null,
    public: isPublic,
    cookie,
  });
}

function parseMethods(
  raw: Record<string, unknown>,
  at: string,
  fail: Fail,
): readonly string[] | null {
  if (raw.method !== undefined && raw.methods !== undefined) {
    fail(`${at}.methods`, "give method or methods, not both");
  }
  if (raw.method === undefined && raw.methods === undefined) {
    return fail(`${at}.method`, `is required ("GET", "*", …; or methods: ["GET", "HEAD"])`);
  }
  const list = raw.methods ?? [raw.method];
  const field = raw.methods !== undefined ? `${at}.methods` : `${at}.method`;
  if (!Array.isArray(list) || list.length === 0) {
    return fail(field, "must be a non-empty array of methods");
  }
  const out = new Set<string>();
  for (const m of list) {
    if (m === "*") return null;
    if (typeof m !== "string" || !METHOD.test(m)) fail(field, `must be an HTTP method or "*"`);
    out.add((m as string).toUpperCase());
  }
  return Object.freeze([...out]);
}

function parsePattern(raw: unknown, at: string, fail: Fail): { path: string; prefix: boolean } {
  if (typeof raw !== "string" || !raw.startsWith("/")) {
    return fail(at, `must be a path starting with "/" ("/orders/*", "/health")`);
  }
  const prefix = raw.endsWith("/*");
  const body = prefix ? raw.slice(0, -2) : raw;
  if (body.includes("*")) fail(at, `"*" may only end the path, as "/*"`);
  if (body.includes("?") || body.includes("#")) fail(at, "a path has no query or fragment");
  const plain = body === "" ? "/" : body;
  if (normalisePath(plain) !== plain || normalisePath(plain, "merged") !== plain) {
    fail(at, "must be a normalised path (no %-escapes, dot segments or repeated slashes)");
  }
  return { path: prefix && body === "" ? "" : body, prefix };
}

function flag(value: unknown, at: string, fail: Fail): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") fail(at, "must be true or false");
  return value as boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The path of a forwarded URI as an upstream will route it (RFC 3986 5.2.4, as a WHATWG URL
 * parser does): query and fragment dropped, split on "/", each segment percent-decoded on its
 * own ("%2e%2e" is a dot segment; an encoded "/" stays inside its segment, shown as "%2F"), dot
 * segments removed with empty segments kept ("/a//../b" is "/a/b"). null: not a path (no
 * leading "/", a bad escape, a control character or a backslash) — matched by no rule. An
 * absolute URI ("https://host/path") gives its path.
 *
 * `merged`: the other reading some servers and proxies make (nginx with merge_slashes, Go's
 * path.Clean): the whole path decoded first ("%2F" is "/"), repeated slashes merged, then dot
 * segments removed. `matchRule` selects a rule only when both readings select the same one.
 */
export function normalisePath(
  uri: string,
  reading: "segments" | "merged" = "segments",
): string | null {
  let raw = uri.replace(/[?#].*$/s, "");
  if (/^https?:\/\//i.test(raw)) {
    const slash = raw.indexOf("/", raw.indexOf("//") + 2);
    raw = slash === -1 ? "/" : raw.slice(slash);
  }
  if (!raw.startsWith("/")) return null;
  let segments: string[];
  try {
    segments = reading === "merged"
      ? decodeURIComponent(raw).split("/").slice(1)
      : raw.split("/").slice(1).map((seg) => decodeURIComponent(seg));
  } catch {
    return null;
  }
  const out: string[] = [];
  for (const [i, seg] of segments.entries()) {
    // Control characters (NUL, CR, LF, …) and a backslash (some servers read it as "/") match
    // no rule.
    // deno-lint-ignore no-control-regex -- control characters are exactly what is refused here
    if (/[\x00-\x1f\x7f\\]/.test(seg)) return null;
    const last = i === segments.length - 1;
    if (seg === "..") out.pop();
    if (seg === "." || seg === "..") {
      if (last) out.push("");
      continue;
    }
    if (seg === "" && !last && reading === "merged") continue;
    out.push(seg.replaceAll("/", "%2F"));
  }
  return "/" + out.join("/");
}

/** Whether `rule` covers `method` (upper-case) and the normalised `path`. */
export function ruleMatches(rule: ForwardAuthRule, method: string | null, path: string): boolean {
  if (rule.methods !== null && (method === null || !coversMethod(rule.methods, method))) {
    return false;
  }
  if (!rule.prefix) return path === rule.path;
  // "/*" (path "") covers every path; "/orders/*" covers "/orders" and everything under it.
  return path === rule.path || path.startsWith(rule.path + "/");
}

/** A rule's methods cover HEAD when they name GET (RFC 9110 9.3.2: HEAD is GET without a body). */
function coversMethod(methods: readonly string[], method: string): boolean {
  return methods.includes(method) || (method === "HEAD" && methods.includes("GET"));
}

/**
 * The first rule covering the request; null: none (refused, default deny). `uri` is the
 * forwarded URI as sent; one that does not normalise matches nothing, and neither does one whose
 * two readings (`normalisePath`: segment by segment, or decoded and merged first) fall under
 * different rules: the upstream may read it either way, so no rule is picked for it.
 */
export function matchRule(
  rules: ForwardAuthRules,
  method: string | null,
  uri: string,
): ForwardAuthRule | null {
  const path = normalisePath(uri, "segments");
  const merged = normalisePath(uri, "merged");
  if (path === null || merged === null) return null;
  const m = method === null ? null : method.toUpperCase();
  const first = (p: string) => rules.rules.find((rule) => ruleMatches(rule, m, p)) ?? null;
  const rule = first(path);
  return merged === path || first(merged) === rule ? rule : null;
}

/** The rule called `name`; null: no such rule. */
export function ruleNamed(rules: ForwardAuthRules, name: string): ForwardAuthRule | null {
  return rules.rules.find((r) => r.name === name) ?? null;
}
