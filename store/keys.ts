/**
 * The KV key layout. Every key the server reads or writes is built here and nowhere else.
 *
 * Account-owned keys: the first element is always the account's `userId` ("usr_…"), so an
 * account's whole state is one prefix, and a store bound to a userId cannot name another's.
 *
 *   [userId, "user"]                                   UserRecord (email, password hash, status)
 *   [userId, "api_key", keyId]                         ApiKeyRecord (SHA-256 digest, never the key)
 *   [userId, "count", "api_keys"]                      number: keys held, moved by checked commits
 *   [userId, "session", sessionId]                     SessionRecord (digest of the cookie token, expiresAt;
 *                                                      written with its pointer in one commit: store/sessions.ts)
 *   [userId, "domain", domainId]                       DomainRecord
 *   [userId, "domain_by_time", createdAtMs, domainId]  domainId: newest-first listing
 *   [userId, "domain_by_filter", filter, createdAtMs, domainId]
 *                                                      domainId: filtered listing (status:…, canReceive:…)
 *   [userId, "count", "domains", filter]               Deno.KvU64: totals without a scan ("all", "status:verified", …),
 *                                                      moved by commutative `sum` mutations (store/domains/plan.ts)
 *   [userId, "domain_slot", n]                         domainId: one of the account's MAX_DOMAINS_PER_ACCOUNT quota
 *                                                      slots (0 <= n < max), claimed with a `versionstamp: null` check
 *   [userId, "domain_children", parentId, childId]     childId: subdomains of a domain
 *   [userId, "domain_by_name", reversedName]           domainId, keyed "com.example.mail" for "mail.example.com":
 *                                                      a domain's subdomains are one key range
 *                                                      (domainDescendantsRange; invariants: store/domains/store.ts)
 *   [userId, "endpoint", endpointId]                   EndpointRecord (its webhook signing secret readable, as the
 *                                                      TOTP secret is: it must be to sign; never listed or logged)
 *   [userId, "count", "endpoints"]                     number: endpoints held, moved by checked commits
 *   [userId, "endpoint_refs", endpointId, kind, refId] refId: an address ("address") or a domain's catch-all
 *                                                      ("domain") routed to the endpoint, written in the commit
 *                                                      that routes it (store/endpoints/store.ts)
 *   [userId, "endpoint_test_rate", windowStartMs]      number: endpoint tests in a one-minute window (per account)
 *   [userId, "email_address", addressId]               EmailAddressRecord
 *   [userId, "email_address_by_name", lowerAddress]    addressId: one account holds an address once, in any
 *                                                      letter case (the key lower-cased; the record keeps it as given)
 *   [userId, "count", "email_addresses"]               number: addresses held, moved by checked commits
 *   [userId, "domain_addresses", domainId, addressId]  addressId: the addresses of a domain
 *                                                      (store/email_addresses/store.ts)
 *   [userId, "domain_address_count", domainId]         { total, active }: the domain's addresses and the active
 *                                                      ones (its `stats`), set by the checked commits that add,
 *                                                      delete or (de)activate one; absent at zero
 *   [userId, "rate", windowStartMs]                    Deno.KvU64: quota tokens leased to all instances in a
 *                                                      rate-limit window (never above the limit)
 *   [userId, "key_rate", keyId, windowStartMs]         Deno.KvU64: the same for one API key's own limit
 *                                                      (its grant's rateLimit), leased like the account's
 *   [userId, "password_reset"]                         PasswordResetRecord: SHA-256 and expiresAt (checked on
 *                                                      read) of each live reset link; a newer link is added
 *                                                      beside them, a reset or any credential change deletes
 *                                                      them in its commit (store/accounts/password_reset.ts)
 *   [userId, "email_verification"]                     EmailVerificationRecord: SHA-256 of the latest verification
 *                                                      token, the address it was mailed to, expiresAt (checked on
 *                                                      read); consumed with the user record's `emailVerified` mark
 *                                                      in one checked commit (store/email_verification.ts)
 *   [userId, "audit", timeMs, eventId]                 AuditEvent: append-only security log, written in the commit
 *                                                      of the change it records; expiresAtMs in the value
 *                                                      (AUDIT_RETENTION_DAYS, checked on read) (store/audit_log/events.ts)
 *   [userId, "usage", keyId, hourStartMs, outcome]     Deno.KvU64: requests of one API key in one UTC hour with one
 *                                                      outcome ("2xx", "4xx", "429", "5xx"), moved only by commutative
 *                                                      `sum` mutations flushed from memory (routes/usage/recorder.ts); reads ignore
 *                                                      hours older than 90 days, flushes delete them (store/usage.ts)
 *   [userId, "usage_key", keyId]                       { lastHourMs }: a key that has usage (deleted keys too), so the
 *                                                      account's usage is found without a scan; set with expireIn 91 days
 *   [userId, "usage_rule", keyId, dayStartMs, rule, outcome]
 *                                                      Deno.KvU64: forward-auth and verify answers of one key in one
 *                                                      UTC day under one rule (its name), by outcome, beside the key's
 *                                                      hourly counts; moved, read and pruned as those (store/usage.ts)
 *   [userId, "flash", flashId]                         one-time dashboard flash (a new API key after Post/
 *                                                      Redirect/Get), expiresAtMs in the value (checked on
 *                                                      read), read-and-deleted in one checked commit (store/flash.ts)
 *   [userId, "passkey", passkeyId]                     PasskeyRecord: a WebAuthn credential (credential id, public
 *                                                      key, signature counter moved by checked commits, name)
 *                                                      (store/passkeys.ts)
 *   [userId, "two_factor"]                             TwoFactorRecord: the TOTP secret (base32, readable: it must
 *                                                      be to verify codes), whether enrolment is complete, the
 *                                                      last accepted time step (replay), SHA-256 digests of the
 *                                                      recovery codes; changed by checked commits (store/two_factor.ts)
 *   [userId, "two_factor_pending", sha256hex]          PendingSignIn: a password sign-in waiting for its second
 *                                                      step, keyed by the digest of its cookie token;
 *                                                      expiresAtMs in the value (checked on read), deleted by the
 *                                                      checked commit that completes it (store/two_factor.ts)
 *
 * Pointer indexes: the only keys not under a userId. Each resolves a secret's digest or a
 * globally unique name to the owning account, and carries nothing else an attacker could use.
 *
 *   ["idx", "api_key", sha256hex]                      ApiKeyPointer { userId, keyId, expiresAt }
 *   ["idx", "email", normalisedEmail]                  { userId }
 *   ["idx", "session", sha256hex]                      SessionPointer { userId, sessionId, expiresAt }
 *   ["idx", "domain", domainName]                      { userId, domainId }
 *
 * Operational keys, owned by no account:
 *
 *   ["meta", "revocations"]                            Deno.KvU64: bumped by every key revocation, so
 *                                                      caches in other processes drop revoked keys
 *   ["meta", "device_cookie_secret"]                   Uint8Array(32): the HMAC-SHA-256 key signing device
 *                                                      cookies, made once with a `versionstamp: null` check
 *                                                      so all instances share it (auth/sessions/device_cookie.ts)
 *   ["meta", "deleting", userId]                       DeletionTombstone: an account deletion under way, written
 *                                                      in the commit that removes the user record and email
 *                                                      pointer, deleted last (store/accounts/deletion.ts)
 *   ["throttle", scope, subject, windowStartMs]        Deno.KvU64: sign-in / sign-up attempts (scope
 *                                                      "sign-in:ip", "sign-in:email" (subject: SHA-256
 *                                                      of the email), "sign-in:device" (subject: the
 *                                                      device cookie's id), "sign-in:ip-device" (trusted
 *                                                      devices' attempts per address), "sign-up:ip",
 *                                                      "change-password:user", "password-reset:ip",
 *                                                      "password-reset:email" (subject: SHA-256 of the
 *                                                      email), "reset-password:ip",
 *                                                      "delete-user:user", "two-factor:user",
 *                                                      "two-factor:ip" (second-step and
 *                                                      re-authentication codes), "passkey:ip"
 *                                                      (signed-out passkey ceremonies started));
 *                                                      store/throttle.ts
 *   ["webauthn_challenge", challengeId]                WebAuthnChallenge: one passkey ceremony's challenge, bound to a
 *                                                      session, a pending sign-in or a challenge cookie; expiresAtMs
 *                                                      in the value (checked on read), deleted by a checked commit
 *                                                      when used (store/passkeys.ts)
 *   ["service_token", sha256hex]                       ServiceTokenRecord { id, name, start, mayAssertIp, createdAt }:
 *                                                      an operator's token for POST /api/e2/keys/verify, keyed by
 *                                                      the SHA-256 of the token (never the token); deleted to revoke,
 *                                                      read on every verify call (store/service_tokens.ts)
 *   ["health"]                                         probe key read by /healthz
 */

export type UserId = string;

/** Names the pointer-index families; anything else outside a user prefix is operational. */
export const POINTER_INDEXES = ["api_key", "email", "session", "domain"] as const;

// Account-owned keys.
export const userKey = (userId: UserId) => [userId, "user"] as const;
export const apiKeyKey = (userId: UserId, keyId: string) => [userId, "api_key", keyId] as const;
export const apiKeyPrefix = (userId: UserId) => [userId, "api_key"] as const;
export const apiKeyCountKey = (userId: UserId) => [userId, "count", "api_keys"] as const;
export const sessionKey = (userId: UserId, sessionId: string) =>
  [userId, "session", sessionId] as const;
export const sessionPrefix = (userId: UserId) => [userId, "session"] as const;
export const domainKey = (userId: UserId, domainId: string) =>
  [userId, "domain", domainId] as const;
export const domainPrefix = (userId: UserId) => [userId, "domain"] as const;
export const domainByTimeKey = (userId: UserId, createdAtMs: number, domainId: string) =>
  [userId, "domain_by_time", createdAtMs, domainId] as const;
export const domainByTimePrefix = (userId: UserId) => [userId, "domain_by_time"] as const;
export const domainByFilterKey = (
  userId: UserId,
  filter: string,
  createdAtMs: number,
  domainId: string,
) => [userId, "domain_by_filter", filter, createdAtMs, domainId] as const;
export const domainByFilterPrefix = (userId: UserId, filter: string) =>
  [userId, "domain_by_filter", filter] as const;
/** Every filtered index entry of an account (invariant checks). */
export const domainByFilterRootPrefix = (userId: UserId) => [userId, "domain_by_filter"] as const;
export const domainCountKey = (userId: UserId, filter: string) =>
  [userId, "count", "domains", filter] as const;
/** A quota slot: the account holds at most `max` of these, so at most `max` domains. */
export const domainSlotKey = (userId: UserId, slot: number) =>
  [userId, "domain_slot", slot] as const;
export const domainSlotPrefix = (userId: UserId) => [userId, "domain_slot"] as const;
export const domainChildKey = (userId: UserId, parentId: string, childId: string) =>
  [userId, "domain_children", parentId, childId] as const;
/** Every child link of an account (invariant checks). */
export const domainChildRootPrefix = (userId: UserId) => [userId, "domain_children"] as const;
/**
 * "mail.example.com" -> "com.example.mail" (its own inverse). Names are normalised LDH labels
 * (lib/domain_name.ts), so they never contain "/" and the range below is exact.
 */
export const reverseDomainName = (name: string) => name.split(".").reverse().join(".");
export const domainByNameKey = (userId: UserId, domain: string) =>
  [userId, "domain_by_name", reverseDomainName(domain)] as const;
/** Every reversed-name entry of an account (invariant checks). */
export const domainByNamePrefix = (userId: UserId) => [userId, "domain_by_name"] as const;
/**
 * The reversed-name entries of `domain`'s strict descendants: every reversed name that starts
 * with `reversed(domain) + "."`, i.e. from that string up to the same prefix with "/" (the
 * character after ".") in place of the dot. "example.com" covers "com.example.mail" and
 * "com.example.a.b" but not "com.example" itself, "com.example-x" or "com.examplex".
 */
export const domainDescendantsRange = (userId: UserId, domain: string) => {
  const r = reverseDomainName(domain);
  return {
    start: [userId, "domain_by_name", r + "."] as Deno.KvKey,
    end: [userId, "domain_by_name", r + "/"] as Deno.KvKey,
  };
};
/** The account's one live password-reset token (its digest): a newer one replaces it. */
/** A one-time flash shown by the dashboard after a redirect (store/flash.ts). */
/** One audit event; newest first is a reverse read of auditPrefix (store/audit_log/events.ts). */
export const auditEventKey = (userId: UserId, timeMs: number, eventId: string) =>
  [userId, "audit", timeMs, eventId] as const;
export const auditPrefix = (userId: UserId) => [userId, "audit"] as const;
export const flashKey = (userId: UserId, flashId: string) => [userId, "flash", flashId] as const;
/** One counter of one key's usage in one hour (store/usage.ts). */
export const usageCounterKey = (
  userId: UserId,
  keyId: string,
  hourStartMs: number,
  outcome: string,
) => [userId, "usage", keyId, hourStartMs, outcome] as const;
export const usageKeyPrefix = (userId: UserId, keyId: string) => [userId, "usage", keyId] as const;
/** The first counter key of an hour: range bounds for reads and pruning. */
export const usageHourStart = (userId: UserId, keyId: string, hourStartMs: number) =>
  [userId, "usage", keyId, hourStartMs] as const;
/** One key's answers under one forward-auth rule in one UTC day, one outcome (store/usage.ts). */
export const usageRuleCounterKey = (
  userId: UserId,
  keyId: string,
  dayStartMs: number,
  rule: string,
  outcome: string,
) => [userId, "usage_rule", keyId, dayStartMs, rule, outcome] as const;
export const usageRulePrefix = (userId: UserId, keyId: string) =>
  [userId, "usage_rule", keyId] as const;
/** The first rule counter key of a day: range bounds for reads and pruning. */
export const usageRuleDayStart = (userId: UserId, keyId: string, dayStartMs: number) =>
  [userId, "usage_rule", keyId, dayStartMs] as const;
export const usageIndexKey = (userId: UserId, keyId: string) =>
  [userId, "usage_key", keyId] as const;
export const usageIndexPrefix = (userId: UserId) => [userId, "usage_key"] as const;
/** The account's TOTP enrolment and recovery-code digests (store/two_factor.ts). */
export const twoFactorKey = (userId: UserId) => [userId, "two_factor"] as const;
/** A password sign-in waiting for its second step (store/two_factor.ts). */
export const twoFactorPendingKey = (userId: UserId, sha256hex: string) =>
  [userId, "two_factor_pending", sha256hex] as const;
export const twoFactorPendingPrefix = (userId: UserId) => [userId, "two_factor_pending"] as const;
/** One WebAuthn credential of the account (store/passkeys.ts). */
export const passkeyKey = (userId: UserId, passkeyId: string) =>
  [userId, "passkey", passkeyId] as const;
export const passkeyPrefix = (userId: UserId) => [userId, "passkey"] as const;
export const passwordResetKey = (userId: UserId) => [userId, "password_reset"] as const;
/** The account's live e-mail verification link (store/email_verification.ts). */
export const emailVerificationKey = (userId: UserId) => [userId, "email_verification"] as const;
export const rateWindowKey = (userId: UserId, windowStartMs: number) =>
  [userId, "rate", windowStartMs] as const;
/** One API key's own rate-limit window (auth/rate_limit.ts, a key's grant's rateLimit). */
export const keyRateWindowKey = (userId: UserId, keyId: string, windowStartMs: number) =>
  [userId, "key_rate", keyId, windowStartMs] as const;
// Endpoints and e-mail addresses (issue 23: store/endpoints/store.ts, store/email_addresses/store.ts).
export const endpointKey = (userId: UserId, endpointId: string) =>
  [userId, "endpoint", endpointId] as const;
export const endpointPrefix = (userId: UserId) => [userId, "endpoint"] as const;
export const endpointCountKey = (userId: UserId) => [userId, "count", "endpoints"] as const;
export const endpointRefKey = (
  userId: UserId,
  endpointId: string,
  kind: "address" | "domain",
  refId: string,
) => [userId, "endpoint_refs", endpointId, kind, refId] as const;
export const endpointRefPrefix = (userId: UserId, endpointId: string) =>
  [userId, "endpoint_refs", endpointId] as const;
/** Every reference entry of an account (invariant checks). */
export const endpointRefRootPrefix = (userId: UserId) => [userId, "endpoint_refs"] as const;
export const endpointTestRateKey = (userId: UserId, windowStartMs: number) =>
  [userId, "endpoint_test_rate", windowStartMs] as const;
export const emailAddressKey = (userId: UserId, addressId: string) =>
  [userId, "email_address", addressId] as const;
export const emailAddressPrefix = (userId: UserId) => [userId, "email_address"] as const;
/** Keyed on the lower-cased address: `Boss@x.com` and `boss@x.com` are one address. */
export const emailAddressByNameKey = (userId: UserId, address: string) =>
  [userId, "email_address_by_name", address.toLowerCase()] as const;
export const emailAddressByNamePrefix = (userId: UserId) =>
  [userId, "email_address_by_name"] as const;
export const emailAddressCountKey = (userId: UserId) =>
  [userId, "count", "email_addresses"] as const;
export const domainAddressKey = (userId: UserId, domainId: string, addressId: string) =>
  [userId, "domain_addresses", domainId, addressId] as const;
export const domainAddressPrefix = (userId: UserId, domainId: string) =>
  [userId, "domain_addresses", domainId] as const;
/** Every domain-address entry of an account (invariant checks). */
export const domainAddressRootPrefix = (userId: UserId) => [userId, "domain_addresses"] as const;
/** { total, active }: a domain's address counts (its stats), moved by the address commits. */
export const domainAddressCountKey = (userId: UserId, domainId: string) =>
  [userId, "domain_address_count", domainId] as const;
export const domainAddressCountRootPrefix = (userId: UserId) =>
  [userId, "domain_address_count"] as const;
/** Everything an account owns: for dumps, invariant checks and account deletion. */
export const accountPrefix = (userId: UserId) => [userId] as const;

// Pointer indexes.
export const apiKeyHashIndexKey = (sha256hex: string) => ["idx", "api_key", sha256hex] as const;
export const emailIndexKey = (email: string) => ["idx", "email", email] as const;
export const emailIndexPrefix = () => ["idx", "email"] as const;
export const sessionHashIndexKey = (sha256hex: string) => ["idx", "session", sha256hex] as const;
export const domainNameIndexKey = (name: string) => ["idx", "domain", name] as const;
export const indexPrefix = (family: (typeof POINTER_INDEXES)[number]) => ["idx", family] as const;

// Operational keys.
export const revocationCounterKey = () => ["meta", "revocations"] as const;
export const deviceCookieSecretKey = () => ["meta", "device_cookie_secret"] as const;
export const accountDeletionKey = (userId: UserId) => ["meta", "deleting", userId] as const;
export const accountDeletionPrefix = () => ["meta", "deleting"] as const;
export const throttleKey = (scope: string, subject: string, windowStartMs: number) =>
  ["throttle", scope, subject, windowStartMs] as const;
/** A single-use WebAuthn challenge (store/passkeys.ts). */
export const webauthnChallengeKey = (challengeId: string) =>
  ["webauthn_challenge", challengeId] as const;
export const healthKey = () => ["health"] as const;
/** An operator's service token for the verify call, by its digest (store/service_tokens.ts). */
export const serviceTokenKey = (sha256hex: string) => ["service_token", sha256hex] as const;
export const serviceTokenPrefix = () => ["service_token"] as const;

/** True when `key` is one of the pointer indexes above (used by the isolation tests). */
export function isPointerIndexKey(key: Deno.KvKey): boolean {
  return key[0] === "idx" && (POINTER_INDEXES as readonly unknown[]).includes(key[1]);
}
