/**
 * The decision shared by forward auth (`GET /api/auth/forward`) and the verify call
 * (`POST /api/e2/keys/verify`), both in routes/forward_auth/: which rule a request falls under,
 * the refusals they answer, the scopes and name a key shows, and why a key was refused.
 *
 * Forward auth runs the very steps of `/api/e2/*` (auth/middleware.ts `authenticate`: the key,
 * the client address, the account's and the key's limit, then the rule's scope); the verify call
 * runs the same checks on a key it is handed and reports the outcome in its body.
 */
import { HttpError } from "../../lib/errors.ts";
import type { Clock } from "../../lib/clock.ts";
import type { KeyScope, ScopeVocabulary } from "../../lib/scopes.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { lookupApiKeyPointer } from "../../store/api_keys.ts";
import { getUser } from "../../store/accounts/users.ts";
import type { TenantStore } from "../../store/tenant.ts";
import { hasScope } from "../api_keys/policy.ts";
import type { Principal } from "../principal.ts";
import { type ForwardAuthRule, type ForwardAuthRules, matchRule, ruleNamed } from "./rules.ts";

/** The original request, as the proxy describes it. */
export type ForwardedRequest = {
  /** `?rule=NAME`: the rule by name, whatever the method and URI. */
  rule?: string | null;
  method?: string | null;
  uri?: string | null;
};

/** 403 NO_MATCHING_RULE: what no rule covers is refused (default deny). */
export function noMatchingRule(message: string): HttpError {
  return new HttpError(403, message, { code: "NO_MATCHING_RULE" });
}

/** The messages of NO_MATCHING_RULE, by cause. */
export const NO_RULE_MESSAGES = {
  noRules: "No forward-auth rules are configured (FORWARD_AUTH_RULES), so every request is " +
    "refused.",
  unknownRule: "No forward-auth rule has that name.",
  noRequest: "The original request is missing: pass X-Forwarded-Method and X-Forwarded-Uri " +
    "(or X-Original-Method and X-Original-URI), or name a rule with ?rule=.",
  noMatch: "No forward-auth rule covers this method and path; what no rule covers is refused.",
  conflict: "X-Forwarded-Method/-Uri and X-Original-Method/-URI disagree; the proxy must set " +
    "one family and remove the other from the client's request.",
} as const;

/**
 * The rule a request falls under: `?rule=` by name, else the first rule matching the forwarded
 * method and URI. Throws 403 NO_MATCHING_RULE otherwise.
 */
export function selectRule(rules: ForwardAuthRules, req: ForwardedRequest): ForwardAuthRule {
  if (rules.rules.length === 0) throw noMatchingRule(NO_RULE_MESSAGES.noRules);
  if (req.rule !== undefined && req.rule !== null) {
    const named = ruleNamed(rules, req.rule);
    if (!named) throw noMatchingRule(NO_RULE_MESSAGES.unknownRule);
    return named;
  }
  if (!req.uri) throw noMatchingRule(NO_RULE_MESSAGES.noRequest);
  const rule = matchRule(rules, req.method ?? null, req.uri);
  if (!rule) throw noMatchingRule(NO_RULE_MESSAGES.noMatch);
  return rule;
}

/** The scopes of `vocab` the principal holds, built-in first: a session holds all of them. */
export function scopesOf(principal: Principal, vocab: ScopeVocabulary): KeyScope[] {
  return vocab.all.filter((s) => hasScope(principal, s));
}

/**
 * A header-safe form of a key's name: printable ASCII as it is, anything else (and "%")
 * percent-encoded as UTF-8, so `decodeURIComponent` gives the name back.
 */
export function headerSafeName(name: string): string {
  return /^[\x20-\x24\x26-\x7e]*$/.test(name)
    ? name
    : name.replace(/[^\x20-\x24\x26-\x7e]/gu, (ch) => encodeURIComponent(ch));
}

const NAME_FRESH_MS = 5_000;
const MAX_NAMES = 100_000;

/**
 * Key names for X-Auth-Key-Name (the verified-key cache holds the grant, not the name): read
 * once per key, then served from memory and re-read in the background when older than 5 s, so a
 * rename shows within seconds and a warm key reads nothing on the request path.
 */
export class KeyNames {
  readonly #names = new Map<string, { name: string; readAt: number }>();
  readonly #pending = new Set<Promise<unknown>>();

  constructor(
    private readonly storeFor: (userId: string) => TenantStore,
    private readonly clock: Clock,
  ) {}

  /** The key's name; a synchronous answer when known. Throws when the first read fails. */
  nameOf(userId: string, keyId: string): string | Promise<string> {
    const hit = this.#names.get(keyId);
    if (hit) {
      if (this.clock() - hit.readAt >= NAME_FRESH_MS) this.#refresh(userId, keyId);
      return hit.name;
    }
    return this.#read(userId, keyId);
  }

  async #read(userId: string, keyId: string): Promise<string> {
    const readAt = this.clock();
    let name = "";
    try {
      name = (await this.storeFor(userId).apiKeys.get(keyId)).name;
    } catch (err) {
      // Deleted since it was verified: no name (the next request is refused anyway).
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (this.#names.size >= MAX_NAMES) this.#names.clear();
    this.#names.set(keyId, { name, readAt });
    return name;
  }

  #refresh(userId: string, keyId: string): void {
    const hit = this.#names.get(keyId);
    if (hit) hit.readAt = this.clock(); // one refresh at a time
    const p = this.#read(userId, keyId).catch(() => {/* the stale name stays; retried later */})
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  async idle(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}

/** Why a key the verifier refused as invalid was refused, for the verify call's `code`. */
export type RefusedKeyCode = "NOT_FOUND" | "EXPIRED" | "DISABLED";

/**
 * Reads the key's pointer again (the refused path only) to say why: no such key (or no account)
 * NOT_FOUND, past its expiry EXPIRED, disabled DISABLED. Throws when the store fails.
 */
export async function refusedKeyCode(
  kv: Deno.Kv,
  clock: Clock,
  key: string,
): Promise<RefusedKeyCode> {
  const pointer = (await lookupApiKeyPointer(kv, sha256Hex(key))).value;
  if (!pointer || !(await getUser(kv, pointer.userId))) return "NOT_FOUND";
  if (pointer.grant?.disabled) return "DISABLED";
  if (pointer.expiresAt !== null && pointer.expiresAt <= clock()) return "EXPIRED";
  // Valid now (it changed in between): say so as the verifier did.
  return "NOT_FOUND";
}
