/**
 * `admin verify`: walks the whole KV once and checks the invariants of the key layout in
 * store/keys.ts. Every check is a pair of directions:
 *
 *   - every pointer index entry (["idx", family, …]) resolves to a live record that points back
 *     (api_key: the record carries that digest; email: the user has that email; session: the
 *     record carries that digest; domain: the record has that name);
 *   - every record has its index entries (a user its email pointer, an API key / session its
 *     digest pointer, a domain its name pointer, reversed-name entry, time index and filter
 *     indexes);
 *   - every counter ([userId, "count", …]) equals the number of records it counts (domain
 *     counters are Deno.KvU64, moved by `sum`);
 *   - every domain holds its own quota slot, and no account holds more than `maxDomains`;
 *   - endpoints and e-mail addresses (issue 23): their counters, name, domain and reference
 *     entries, and the references between addresses, domains and endpoints
 *     (store/endpoints/invariants.ts, "endpoint_invariant");
 *   - nothing is stored under an account prefix whose user record is gone
 *     ("orphan_account_data", usage counters included: a flush must never land after a
 *     deletion's purge, store/usage.ts); `admin user:delete --id` removes it;
 *   - no account deletion is left unfinished (a tombstone ["meta", "deleting", userId]:
 *     "deletion_unfinished"; `admin user:delete --id` finishes it). The half-deleted account's
 *     remaining keys and pointers are that one violation, not orphans or dangling entries.
 *
 * The walk is not a snapshot: run it against a store no server is writing to (or expect that a
 * write landing mid-walk can show up as a transient violation; run it again to confirm).
 * The report never contains a secret: key and session digests are cut to their first 8 hex
 * characters.
 */
import { grantOf, type KeyGrant } from "../store/api_keys.ts";
import { listUnfinishedDeletions } from "../store/accounts/deletion.ts";
import { DEFAULT_MAX_DOMAINS, filterNamesOf } from "../store/domains/store.ts";
import { accountDeletionKey } from "../store/keys.ts";
import { POINTER_INDEXES, reverseDomainName } from "../store/keys.ts";
import { USAGE_OUTCOMES } from "../store/usage.ts";
import type { DomainRecord } from "../store/domains/record.ts";
import { endpointViolations } from "../store/endpoints/invariants.ts";
import type { EmailAddressRecord, EndpointRecord } from "../store/endpoints/record.ts";

export type Violation = {
  kind: string;
  /** The offending entry's key, digests shortened. */
  key: string;
  detail: string;
};

export type VerifyReport = {
  ok: boolean;
  scanned: {
    entries: number;
    accounts: number;
    apiKeys: number;
    sessions: number;
    domains: number;
    pointers: Record<string, number>;
  };
  violationCount: number;
  /** The first `maxViolations` violations. */
  violations: Violation[];
  /** Keys this checker does not know (a layout change it was not taught); not a failure. */
  unrecognised: { count: number; sample: string[] };
};

type Entry = { key: Deno.KvKey; value: unknown };

/** Everything one account holds, by family. */
type Account = {
  userId: string;
  user?: Entry;
  apiKeys: Map<string, Entry>;
  sessions: Map<string, Entry>;
  domains: Map<string, Entry>;
  domainByTime: Entry[];
  domainByFilter: Entry[];
  domainChildren: Entry[];
  domainByName: Entry[];
  domainSlots: Entry[];
  /** Endpoints, e-mail addresses and their indexes (issue 23). */
  routing: Entry[];
  counts: Map<string, Entry>;
  /** Every key under the prefix, for orphan reporting when the user record is gone. */
  keys: Deno.KvKey[];
};

const OPERATIONAL_ROOTS = new Set([
  "meta",
  "throttle",
  "health",
  "webauthn_challenge",
  "service_token",
]);
const ACCOUNT_FAMILIES = new Set([
  "user",
  "api_key",
  "session",
  "domain",
  "domain_by_time",
  "domain_by_filter",
  "domain_children",
  "domain_by_name",
  "domain_slot",
  "count",
  "rate",
  "key_rate",
  "password_reset",
  "flash",
  "passkey",
  "two_factor",
  "two_factor_pending",
  "audit",
  "usage",
  "usage_key",
  "usage_rule",
  // Issue 23 (store/endpoints/store.ts, store/email_addresses/store.ts): checked by
  // store/endpoints/invariants.ts.
  "endpoint",
  "endpoint_refs",
  "endpoint_test_rate",
  "email_address",
  "email_address_by_name",
  "domain_addresses",
  "domain_address_count",
]);
const HEX64 = /^[0-9a-f]{64}$/;

/** A key as text for the report, with any 64-hex digest cut short. */
export function showKey(key: Deno.KvKey): string {
  return JSON.stringify(
    key.map((part) => {
      if (typeof part === "string") return HEX64.test(part) ? `${part.slice(0, 8)}…` : part;
      if (typeof part === "bigint") return `${part}n`;
      if (part instanceof Uint8Array) return `<${part.byteLength} bytes>`;
      return part;
    }),
  );
}

function obj(value: unknown): Record<string, unknown> | null {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

function counterValue(value: unknown): number | null {
  if (typeof value === "number" && Number.isInteger(value)) return value;
  // Above 2^63 only a `sum` below zero can have left it: a broken count, never a real one.
  if (value instanceof Deno.KvU64) return value.value < 1n << 63n ? Number(value.value) : null;
  return null;
}

/** The digest a session record carries; the sessions engineer may name the field either way. */
export function sessionDigestOf(record: Record<string, unknown>): unknown {
  return record.hash ?? record.tokenHash ?? record.digest;
}

function expiryMs(value: unknown): number | null {
  return typeof value === "string" ? Date.parse(value) : typeof value === "number" ? value : null;
}

/**
 * A usage counter [u, "usage", keyId, hourStartMs, outcome] (a Deno.KvU64) or a usage index
 * entry [u, "usage_key", keyId] or a rule's daily counter [u, "usage_rule", keyId, dayStartMs,
 * rule, outcome] (store/usage.ts): they point nowhere and belong to the account.
 */
function isUsageKey(key: Deno.KvKey, value: unknown): boolean {
  if (typeof key[2] !== "string") return false;
  if (key[1] === "usage_key") return key.length === 3;
  if (key[1] === "usage_rule") {
    return key.length === 6 && typeof key[3] === "number" && typeof key[4] === "string" &&
      value instanceof Deno.KvU64 && (USAGE_OUTCOMES as readonly unknown[]).includes(key[5]);
  }
  return key.length === 5 && typeof key[3] === "number" && value instanceof Deno.KvU64 &&
    (USAGE_OUTCOMES as readonly unknown[]).includes(key[4]);
}

class Collector {
  violations: Violation[] = [];
  count = 0;
  constructor(private readonly max: number) {}
  add(kind: string, key: Deno.KvKey, detail: string): void {
    this.count++;
    if (this.violations.length < this.max) {
      this.violations.push({ kind, key: showKey(key), detail });
    }
  }
}

/** Pointer entries checked together: their records are read with batched `getMany`s. */
const POINTER_BATCH = 200;
/** `getMany` takes at most 10 keys; this many run at once. */
const GET_MANY_PARALLEL = 16;
/** How often (in entries) `onProgress` is called. */
const PROGRESS_EVERY = 5000;

/** Point reads of `keys`, 10 to a `getMany`, a few `getMany`s at once; values in order. */
async function readMany(kv: Deno.Kv, keys: Deno.KvKey[]): Promise<unknown[]> {
  const chunks: Deno.KvKey[][] = [];
  for (let i = 0; i < keys.length; i += 10) chunks.push(keys.slice(i, i + 10));
  const values: unknown[] = [];
  for (let i = 0; i < chunks.length; i += GET_MANY_PARALLEL) {
    const results = await Promise.all(
      chunks.slice(i, i + GET_MANY_PARALLEL).map((c) => kv.getMany(c)),
    );
    for (const r of results) {
      for (const e of r) values.push(e.versionstamp === null ? undefined : e.value);
    }
  }
  return values;
}

/** The pointer entries ["idx", family, name] an account's records need, read by point reads. */
type PointerLookup = (family: string, name: string) => Entry | undefined;

function newAccount(userId: string): Account {
  return {
    userId,
    apiKeys: new Map(),
    sessions: new Map(),
    domains: new Map(),
    domainByTime: [],
    domainByFilter: [],
    domainChildren: [],
    domainByName: [],
    domainSlots: [],
    routing: [],
    counts: new Map(),
    keys: [],
  };
}

/**
 * Streams the store once, in key order. Memory stays bounded by the largest single account plus
 * one batch of pointers, whatever the size of the store:
 *   - KV lists keys in order, so all of an account's keys ([userId, …]) come in one contiguous
 *     run; the account is checked when its run ends and then dropped. Its record-side checks
 *     read the pointer entries they need (["idx", family, name]) with point reads.
 *   - Pointer entries (["idx", …], listed before every account) are checked in batches of
 *     POINTER_BATCH against the records they name, again with point reads, and dropped.
 * The largest account holds at most MAX_DOMAINS_PER_ACCOUNT domains (each with its time,
 * filter, reversed-name, slot and child-link entries), 50 API keys and its live sessions.
 */
export async function verifyStore(
  kv: Deno.Kv,
  opts: {
    maxViolations?: number;
    maxDomains?: number;
    /** Called every few thousand entries while the walk runs (for a progress display). */
    onProgress?: (scanned: { entries: number; accounts: number }) => void;
  } = {},
): Promise<VerifyReport> {
  const v = new Collector(opts.maxViolations ?? 1000);
  // Unfinished deletions are few; read first, so both pointers (listed before "meta") and
  // accounts know which userIds are being deleted.
  const deleting = new Set<string>();
  for (const t of await listUnfinishedDeletions(kv)) {
    deleting.add(t.userId);
    v.add(
      "deletion_unfinished",
      accountDeletionKey(t.userId),
      `deletion of ${t.userId} started ${t.startedAt} did not finish; ` +
        `run: deno task admin user:delete --id ${t.userId}`,
    );
  }
  const walk = new StoreWalk(kv, v, deleting, opts.maxDomains ?? DEFAULT_MAX_DOMAINS);
  for await (const e of kv.list({ prefix: [] }, { batchSize: 500 })) {
    walk.entries++;
    if (opts.onProgress && walk.entries % PROGRESS_EVERY === 0) {
      opts.onProgress({ entries: walk.entries, accounts: walk.accounts });
    }
    await walk.visit({ key: e.key, value: e.value });
  }
  await walk.end();
  opts.onProgress?.({ entries: walk.entries, accounts: walk.accounts });
  return walk.report();
}

/**
 * Families under an account prefix that point nowhere: only the shape of their keys is checked
 * (a key of another shape is reported as unrecognised). Each expires or goes with its account.
 */
const LEAF_SHAPES: Readonly<Record<string, (key: Deno.KvKey, value: unknown) => boolean>> = {
  rate: () => true,
  // A key's own rate-limit window ([u, "key_rate", keyId, windowStartMs]): expires on its own.
  key_rate: (key) => key.length === 4 && typeof key[3] === "number",
  password_reset: (key) => key.length === 2,
  // A one-time dashboard flash (store/flash.ts): expires on its own, points nowhere.
  flash: (key) => key.length === 3,
  // A WebAuthn credential (store/passkeys.ts): found through its account, points nowhere.
  passkey: (key) => key.length === 3 && typeof key[2] === "string",
  // The TOTP enrolment and recovery-code digests (store/two_factor.ts): points nowhere.
  two_factor: (key) => key.length === 2,
  // A sign-in waiting for its second step, keyed by its cookie token's digest: expires on its
  // own, points nowhere.
  two_factor_pending: (key) => key.length === 3 && typeof key[2] === "string" && HEX64.test(key[2]),
  // An audit event (store/audit_log/events.ts): [u, "audit", timeMs, eventId], points nowhere, expires on
  // its own after AUDIT_RETENTION_DAYS.
  audit: (key) => key.length === 4 && typeof key[2] === "number" && typeof key[3] === "string",
  usage: isUsageKey,
  usage_key: isUsageKey,
  usage_rule: isUsageKey,
};

/** The state of one `verifyStore` walk: the account whose run is being read, and the tallies. */
class StoreWalk {
  /** Entries listed so far (counted by the caller, which reports progress from it). */
  entries = 0;
  accounts = 0;
  #apiKeys = 0;
  #sessions = 0;
  #domains = 0;
  #pending: Entry[] = [];
  #current: Account | null = null;
  readonly #pointerCounts = new Map<string, number>(POINTER_INDEXES.map((f) => [f, 0]));
  readonly #unrecognised: string[] = [];
  #unrecognisedCount = 0;

  readonly #kv: Deno.Kv;
  readonly #v: Collector;
  readonly #deleting: ReadonlySet<string>;
  readonly #maxDomains: number;

  constructor(kv: Deno.Kv, v: Collector, deleting: ReadonlySet<string>, maxDomains: number) {
    this.#kv = kv;
    this.#v = v;
    this.#deleting = deleting;
    this.#maxDomains = maxDomains;
  }

  /** Files one listed entry: a pointer to check, an account's entry, or an unknown key. */
  async visit(entry: Entry): Promise<void> {
    const key = entry.key;
    const [root, family] = key;
    if (root === "idx") return await this.#pointer(entry);
    if (typeof root === "string" && OPERATIONAL_ROOTS.has(root)) return;
    if (typeof root !== "string" || !root.startsWith("usr_") || typeof family !== "string") {
      return this.#unknown(key);
    }
    if (!ACCOUNT_FAMILIES.has(family)) return this.#unknown(key);
    if (this.#current?.userId !== root) {
      if (this.#current) await this.#finish(this.#current);
      this.#current = newAccount(root);
    }
    this.#current.keys.push(key);
    if (!fileAccountEntry(this.#current, family, entry)) this.#unknown(key);
  }

  /** Checks what is still held: the last pointer batch and the last account. */
  async end(): Promise<void> {
    await checkPointers(this.#kv, this.#pending, this.#v, this.#deleting);
    this.#pending = [];
    if (this.#current) await this.#finish(this.#current);
    this.#current = null;
  }

  report(): VerifyReport {
    return {
      ok: this.#v.count === 0,
      scanned: {
        entries: this.entries,
        accounts: this.accounts,
        apiKeys: this.#apiKeys,
        sessions: this.#sessions,
        domains: this.#domains,
        pointers: Object.fromEntries(this.#pointerCounts),
      },
      violationCount: this.#v.count,
      violations: this.#v.violations,
      unrecognised: { count: this.#unrecognisedCount, sample: this.#unrecognised },
    };
  }

  async #pointer(entry: Entry): Promise<void> {
    const family = entry.key[1];
    const n = typeof family === "string" ? this.#pointerCounts.get(family) : undefined;
    if (n === undefined || entry.key.length !== 3) return this.#unknown(entry.key);
    this.#pointerCounts.set(family as string, n + 1);
    this.#pending.push(entry);
    if (this.#pending.length >= POINTER_BATCH) {
      await checkPointers(this.#kv, this.#pending, this.#v, this.#deleting);
      this.#pending = [];
    }
  }

  async #finish(a: Account): Promise<void> {
    if (a.user) this.accounts++;
    this.#apiKeys += a.apiKeys.size;
    this.#sessions += a.sessions.size;
    this.#domains += a.domains.size;
    if (!this.#deleting.has(a.userId)) await checkAccount(this.#kv, a, this.#v, this.#maxDomains);
    for (const [name, entry] of a.counts) {
      if (name === "api_keys" || name.startsWith("domains/")) continue;
      if (name === "endpoints" || name === "email_addresses") continue;
      this.#unknown(entry.key);
    }
  }

  #unknown(key: Deno.KvKey): void {
    this.#unrecognisedCount++;
    if (this.#unrecognised.length < 20) this.#unrecognised.push(showKey(key));
  }
}

/**
 * Adds an entry of `family` under the account's prefix to what the account holds; false when
 * its key has a shape this checker does not know.
 */
function fileAccountEntry(a: Account, family: string, entry: Entry): boolean {
  const key = entry.key;
  const id = key[2];
  switch (family) {
    case "user":
      if (key.length !== 2) return false;
      a.user = entry;
      return true;
    case "api_key":
    case "session":
    case "domain": {
      if (key.length !== 3 || typeof id !== "string") return false;
      const records = family === "api_key"
        ? a.apiKeys
        : family === "session"
        ? a.sessions
        : a.domains;
      records.set(id, entry);
      return true;
    }
    case "domain_by_time":
      a.domainByTime.push(entry);
      return true;
    case "domain_by_filter":
      a.domainByFilter.push(entry);
      return true;
    case "domain_children":
      a.domainChildren.push(entry);
      return true;
    case "domain_by_name":
      a.domainByName.push(entry);
      return true;
    case "domain_slot":
      a.domainSlots.push(entry);
      return true;
    case "endpoint":
    case "endpoint_refs":
    case "email_address":
    case "email_address_by_name":
    case "domain_addresses":
    case "domain_address_count":
      a.routing.push(entry);
      return true;
    case "endpoint_test_rate":
      return key.length === 3 && typeof key[2] === "number";
    case "count":
      a.counts.set(key.slice(2).map(String).join("/"), entry);
      return true;
    default:
      return LEAF_SHAPES[family]?.(key, entry.value) ?? true;
  }
}

/** Every check of one account (its run of the listing), then it can be dropped. */
async function checkAccount(
  kv: Deno.Kv,
  a: Account,
  v: Collector,
  maxDomains: number,
): Promise<void> {
  if (!a.user) {
    for (const key of a.keys) {
      v.add(
        "orphan_account_data",
        key,
        `no user record at [${a.userId}, "user"]; ` +
          `run: deno task admin user:delete --id ${a.userId}`,
      );
    }
  }
  // The pointer entries this account's records should have, read in one batched pass.
  const wanted = new Map<string, Deno.KvKey>();
  const want = (family: string, name: unknown) => {
    if (typeof name === "string") wanted.set(`${family}\n${name}`, ["idx", family, name]);
  };
  const u = obj(a.user?.value);
  if (u) want("email", u.email);
  for (const entry of a.apiKeys.values()) want("api_key", obj(entry.value)?.hash);
  for (const entry of a.sessions.values()) {
    const r = obj(entry.value);
    if (r) want("session", sessionDigestOf(r));
  }
  for (const entry of a.domains.values()) want("domain", obj(entry.value)?.domain);
  const ids = [...wanted.keys()];
  const values = await readMany(kv, [...wanted.values()]);
  const found = new Map<string, Entry>();
  ids.forEach((id, i) => {
    if (values[i] !== undefined) found.set(id, { key: wanted.get(id)!, value: values[i] });
  });
  const lookup: PointerLookup = (family, name) => found.get(`${family}\n${name}`);

  checkUser(a, lookup, v);
  checkApiKeys(a, lookup, v);
  checkSessions(a, lookup, v);
  checkDomains(a, lookup, v, maxDomains);
  checkRouting(a, v);
}

/** Issue 23's invariants (store/endpoints/invariants.ts) over the account's entries. */
function checkRouting(a: Account, v: Collector): void {
  const of = (family: string) => a.routing.filter((e) => e.key[1] === family);
  const byId = <T>(entries: Entry[]) =>
    new Map(entries.filter((e) => e.key.length === 3).map((e) => [String(e.key[2]), e.value as T]));
  const violations = endpointViolations({
    endpoints: byId<EndpointRecord>(of("endpoint")),
    addresses: byId<EmailAddressRecord>(of("email_address")),
    domains: byId<DomainRecord>([...a.domains.values()]),
    byName: of("email_address_by_name"),
    domainAddresses: of("domain_addresses"),
    refs: of("endpoint_refs"),
    endpointCount: counterValue(a.counts.get("endpoints")?.value),
    addressCount: counterValue(a.counts.get("email_addresses")?.value),
    domainCounts: of("domain_address_count"),
  });
  for (const detail of violations) v.add("endpoint_invariant", [a.userId, "endpoint"], detail);
}

/**
 * The pointer side: each ["idx", family, name] entry resolves to a live record that points back.
 * The records (and, for keys and sessions, their account's user record) are point reads.
 */
async function checkPointers(
  kv: Deno.Kv,
  all: Entry[],
  v: Collector,
  deleting: ReadonlySet<string>,
): Promise<void> {
  // A half-deleted account's pointers are part of its "deletion_unfinished" violation.
  const pointers = all.filter((p) => !deleting.has(String(obj(p.value)?.userId)));
  if (pointers.length === 0) return;
  const keys: Deno.KvKey[] = [];
  const plan: { p: Entry; record?: number; user?: number }[] = [];
  const read = (key: Deno.KvKey) => keys.push(key) - 1;
  for (const p of pointers) {
    const pv = obj(p.value);
    const userId = typeof pv?.userId === "string" && pv.userId.startsWith("usr_")
      ? pv.userId
      : undefined;
    const family = p.key[1];
    const id = family === "api_key"
      ? pv?.keyId
      : family === "session"
      ? pv?.sessionId
      : family === "domain"
      ? pv?.domainId
      : undefined;
    if (!userId) plan.push({ p });
    else if (family === "email") plan.push({ p, user: read([userId, "user"]) });
    else if (typeof id !== "string") plan.push({ p });
    else {
      plan.push({
        p,
        record: read([userId, family as string, id]),
        user: family === "domain" ? undefined : read([userId, "user"]),
      });
    }
  }
  const values = await readMany(kv, keys);
  for (const { p, record, user } of plan) {
    const userValue = user === undefined ? undefined : values[user];
    const recordValue = record === undefined ? undefined : values[record];
    switch (p.key[1]) {
      case "email": {
        const u = obj(userValue);
        if (!u) v.add("dangling_index", p.key, "email index entry points at no user");
        else if (u.email !== p.key[2]) {
          v.add("index_mismatch", p.key, "email index entry points at a user with another email");
        }
        break;
      }
      case "api_key":
        if (recordValue === undefined) {
          v.add("dangling_index", p.key, "API key index entry points at no key record");
        } else if (userValue === undefined) {
          v.add("dangling_index", p.key, "API key index entry of a gone account");
        } else if (obj(recordValue)?.hash !== p.key[2]) {
          v.add(
            "index_mismatch",
            p.key,
            "API key index entry points at a record with another digest",
          );
        }
        break;
      case "session": {
        const r = obj(recordValue);
        if (!r) v.add("dangling_index", p.key, "session index entry points at no session record");
        else if (userValue === undefined) {
          v.add("dangling_index", p.key, "session index entry of a gone account");
        } else if (sessionDigestOf(r) !== p.key[2]) {
          v.add(
            "index_mismatch",
            p.key,
            "session index entry points at a record with another digest",
          );
        }
        break;
      }
      case "domain": {
        const r = obj(recordValue);
        if (!r) {
          v.add("dangling_index", p.key, "domain name index entry points at no domain record");
        } else if (r.domain !== p.key[2]) {
          v.add("index_mismatch", p.key, "domain name index entry points at another name");
        } else if (r.status !== "verified") {
          v.add("index_mismatch", p.key, "domain name index entry points at an unverified domain");
        }
        break;
      }
    }
  }
}

function checkCount(
  a: Account,
  name: string,
  expected: number,
  v: Collector,
): void {
  const entry = a.counts.get(name);
  const key = entry?.key ?? [a.userId, "count", ...name.split("/")];
  if (!entry) {
    if (expected !== 0) v.add("wrong_count", key, `counter missing, ${expected} records`);
    return;
  }
  const n = counterValue(entry.value);
  if (n === null) v.add("wrong_count", key, "counter is not an integer");
  else if (n !== expected) v.add("wrong_count", key, `counter says ${n}, ${expected} records`);
}

function checkUser(a: Account, lookup: PointerLookup, v: Collector): void {
  if (!a.user) return;
  const u = obj(a.user.value);
  if (!u || u.id !== a.userId || typeof u.email !== "string") {
    v.add("bad_record", a.user.key, "user record without matching id or an email");
    return;
  }
  const p = lookup("email", u.email);
  if (!p) v.add("missing_index", a.user.key, "user has no email index entry");
  else if (obj(p.value)?.userId !== a.userId) {
    v.add("index_mismatch", a.user.key, "email index entry names another account");
  }
}

function checkApiKeys(a: Account, lookup: PointerLookup, v: Collector): void {
  for (const [keyId, entry] of a.apiKeys) {
    const r = obj(entry.value);
    if (!r || r.id !== keyId || typeof r.hash !== "string") {
      v.add("bad_record", entry.key, "API key record without matching id or a digest");
      continue;
    }
    const pv = obj(lookup("api_key", r.hash)?.value);
    if (!pv) {
      v.add("missing_index", entry.key, "API key record has no digest index entry");
    } else if (pv.userId !== a.userId || pv.keyId !== keyId) {
      v.add("index_mismatch", entry.key, "digest index entry names another key");
    } else if ((pv.expiresAt ?? null) !== (r.expiresAt === null ? null : expiryMs(r.expiresAt))) {
      v.add("index_mismatch", entry.key, "index expiry differs from the record's");
    } else if (
      JSON.stringify(grantOf(pv.grant as Partial<KeyGrant> | undefined)) !==
        JSON.stringify(grantOf(r as Partial<KeyGrant>))
    ) {
      // The pointer carries the grant the verifier checks (store/api_keys.ts ApiKeyPointer).
      v.add(
        "index_mismatch",
        entry.key,
        "index grant (scopes, restrictions) differs from the record's",
      );
    }
  }
  checkCount(a, "api_keys", a.apiKeys.size, v);
}

function checkSessions(a: Account, lookup: PointerLookup, v: Collector): void {
  for (const [sessionId, entry] of a.sessions) {
    const r = obj(entry.value);
    const digest = r ? sessionDigestOf(r) : undefined;
    if (typeof digest !== "string") {
      v.add("bad_record", entry.key, "session record without a digest");
      continue;
    }
    const pv = obj(lookup("session", digest)?.value);
    if (!pv) v.add("missing_index", entry.key, "session record has no digest index entry");
    else if (pv.userId !== a.userId || pv.sessionId !== sessionId) {
      v.add("index_mismatch", entry.key, "digest index entry names another session");
    }
  }
}

/**
 * Domain invariants, one function per family of keys, following store/domains/store.ts as it grows:
 *   - record [u, "domain", id]: `id` and `userId` match its key; name index ["idx", "domain",
 *     record.domain] -> { userId: u, domainId: id } exactly while the record is verified;
 *   - exactly one [u, "domain_by_time", createdAtMs, id] = id per record, createdAtMs =
 *     Date.parse(record.createdAt), and no time entry without a record;
 *   - [u, "domain_by_filter", f, createdAtMs, id] = id for every f in filterNamesOf(record) except
 *     "all" (the time index serves "all"), and no other filter entry;
 *   - [u, "count", "domains", f] = number of records whose filterNamesOf includes f;
 *   - [u, "domain_children", parentId, childId] = childId exists exactly when record childId has
 *     parentDomainId = parentId, the parent exists, and its childCount equals its links;
 *   - [u, "domain_by_name", reverse(record.domain)] = id for every record, and no reversed-name
 *     entry without a record of that name (the delete rule's subdomain lookup reads only these);
 *   - [u, "domain_slot", n] = id exactly for the records with quotaSlot n, 0 <= n < maxDomains,
 *     and no account above maxDomains records.
 * These are store/domains/store.ts's I1-I6 (store/domains/invariants.ts `checkDomainInvariants` checks
 * one account at a time; this walk checks each account as its run of the listing ends, and also
 * pointers naming a gone account). The tests run both on the same corrupted stores so the two
 * cannot drift apart unnoticed.
 */
function checkDomains(
  a: Account,
  lookup: PointerLookup,
  v: Collector,
  maxDomains: number,
): void {
  const { createdMs, expectedFilters, counts } = checkDomainRecords(a, lookup, v);
  checkDomainTimeIndex(a, createdMs, v);
  checkDomainFilterIndex(a, createdMs, expectedFilters, v);
  checkDomainCounters(a, counts, v);
  checkDomainSlots(a, v, maxDomains);
  checkDomainReversedNames(a, v);
  checkDomainChildLinks(a, v);
}

/**
 * Each domain record matches its key and holds the name pointer exactly while verified; returns
 * what the index checks compare with: createdAt per id, each record's filters, and the number of
 * records in each filter.
 */
function checkDomainRecords(a: Account, lookup: PointerLookup, v: Collector): {
  createdMs: Map<string, number>;
  expectedFilters: Map<string, Set<string>>;
  counts: Map<string, number>;
} {
  const createdMs = new Map<string, number>();
  const expectedFilters = new Map<string, Set<string>>();
  const counts = new Map<string, number>();
  for (const [domainId, entry] of a.domains) {
    const r = obj(entry.value);
    if (!r || r.id !== domainId || r.userId !== a.userId || typeof r.domain !== "string") {
      v.add("bad_record", entry.key, "domain record without matching id, userId or a name");
      continue;
    }
    createdMs.set(domainId, Date.parse(String(r.createdAt)));
    const names = filterNamesOf(r as Parameters<typeof filterNamesOf>[0]);
    for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
    expectedFilters.set(domainId, new Set(names.filter((n) => n !== "all")));
    // A name is exclusive once verified: the pointer exists exactly for verified records.
    const pv = obj(lookup("domain", r.domain)?.value);
    const named = pv?.userId === a.userId && pv?.domainId === domainId;
    if (r.status === "verified" && !pv) {
      v.add("missing_index", entry.key, "verified domain has no name index entry");
    } else if (r.status === "verified" && !named) {
      v.add("index_mismatch", entry.key, "name index entry names another domain");
    } else if (r.status !== "verified" && named) {
      v.add("index_mismatch", entry.key, `${r.status} domain holds the name index entry`);
    }
  }
  return { createdMs, expectedFilters, counts };
}

/** Exactly one time index entry per record, at its createdAt; none without a record. */
function checkDomainTimeIndex(
  a: Account,
  createdMs: ReadonlyMap<string, number>,
  v: Collector,
): void {
  const timeEntries = new Map<string, number>();
  for (const e of a.domainByTime) {
    const [, , ms, id] = e.key;
    const known = typeof id === "string" ? createdMs.get(id) : undefined;
    if (e.key.length !== 4 || known === undefined || e.value !== id) {
      v.add("dangling_index", e.key, "time index entry without a matching domain record");
      continue;
    }
    if (ms !== known) v.add("index_mismatch", e.key, "time index differs from createdAt");
    timeEntries.set(id as string, (timeEntries.get(id as string) ?? 0) + 1);
  }
  for (const [id] of createdMs) {
    const n = timeEntries.get(id) ?? 0;
    if (n !== 1) v.add("missing_index", a.domains.get(id)!.key, `${n} time index entries`);
  }
}

/** A filter entry for every filter of every record but "all", and no other. */
function checkDomainFilterIndex(
  a: Account,
  createdMs: ReadonlyMap<string, number>,
  expectedFilters: ReadonlyMap<string, Set<string>>,
  v: Collector,
): void {
  const seenFilters = new Map<string, Set<string>>();
  for (const e of a.domainByFilter) {
    const [, , f, ms, id] = e.key;
    const expected = typeof id === "string" ? expectedFilters.get(id) : undefined;
    if (e.key.length !== 5 || !expected || e.value !== id) {
      v.add("dangling_index", e.key, "filter index entry without a matching domain record");
      continue;
    }
    if (!expected.has(String(f))) {
      v.add("index_mismatch", e.key, "filter index entry the record does not match");
    } else if (ms !== createdMs.get(id as string)) {
      v.add("index_mismatch", e.key, "filter index differs from createdAt");
    }
    const seen = seenFilters.get(id as string) ?? new Set<string>();
    seen.add(String(f));
    seenFilters.set(id as string, seen);
  }
  for (const [id, expected] of expectedFilters) {
    const seen = seenFilters.get(id) ?? new Set<string>();
    for (const f of expected) {
      if (!seen.has(f)) {
        v.add("missing_index", a.domains.get(id)!.key, `no filter index entry for ${f}`);
      }
    }
  }
}

/** Every domain counter (Deno.KvU64, moved by `sum`) equals the records in its filter. */
function checkDomainCounters(a: Account, counts: ReadonlyMap<string, number>, v: Collector): void {
  const countNames = new Set([...counts.keys()]);
  for (const name of a.counts.keys()) {
    if (name.startsWith("domains/")) countNames.add(name.slice("domains/".length));
  }
  for (const f of countNames) {
    checkCount(a, `domains/${f}`, counts.get(f) ?? 0, v);
    const entry = a.counts.get(`domains/${f}`);
    if (entry && !(entry.value instanceof Deno.KvU64)) {
      v.add("wrong_count", entry.key, "domain counter is not a Deno.KvU64 (`sum` needs one)");
    }
  }
}

/** Slots and records name each other, every slot is below the quota, the account within it. */
function checkDomainSlots(a: Account, v: Collector, maxDomains: number): void {
  const slotOf = new Map<string, number>();
  for (const e of a.domainSlots) {
    const [, , n] = e.key;
    const r = typeof e.value === "string" ? obj(a.domains.get(e.value)?.value) : null;
    if (e.key.length !== 3 || typeof n !== "number" || !r || r.quotaSlot !== n) {
      v.add("dangling_index", e.key, "quota slot without a domain record that holds it");
      continue;
    }
    if (n < 0 || n >= maxDomains) {
      v.add("over_quota", e.key, `quota slot outside 0..${maxDomains - 1}`);
    }
    slotOf.set(e.value as string, n);
  }
  for (const [domainId, entry] of a.domains) {
    const r = obj(entry.value);
    if (r && typeof r.quotaSlot === "number" && slotOf.get(domainId) !== r.quotaSlot) {
      v.add("missing_index", entry.key, `domain lacks its quota slot ${r.quotaSlot}`);
    }
  }
  if (a.domains.size > maxDomains) {
    v.add(
      "over_quota",
      [a.userId, "domain"],
      `${a.domains.size} domains, above the quota of ${maxDomains}`,
    );
  }
}

/** A reversed-name entry for every record, and none without a record of that name. */
function checkDomainReversedNames(a: Account, v: Collector): void {
  const byReversed = new Map<string, Entry>();
  for (const e of a.domainByName) {
    const [, , reversed] = e.key;
    const id = e.value;
    const r = typeof id === "string" ? obj(a.domains.get(id)?.value) : null;
    if (e.key.length !== 3 || typeof reversed !== "string" || !r) {
      v.add("dangling_index", e.key, "reversed-name entry without a matching domain record");
      continue;
    }
    byReversed.set(reversed, e);
    if (r.domain !== reverseDomainName(reversed)) {
      v.add("index_mismatch", e.key, "reversed-name entry points at a record with another name");
    }
  }
  for (const [domainId, entry] of a.domains) {
    const r = obj(entry.value);
    if (!r || typeof r.domain !== "string") continue;
    const e = byReversed.get(reverseDomainName(r.domain));
    if (!e) v.add("missing_index", entry.key, "domain has no reversed-name entry");
    else if (e.value !== domainId) {
      v.add("index_mismatch", entry.key, "reversed-name entry names another domain");
    }
  }
}

/** A child link exactly for each record with a parent; each childCount equals its links. */
function checkDomainChildLinks(a: Account, v: Collector): void {
  const links = new Map<string, number>();
  const linked = new Set<string>();
  for (const e of a.domainChildren) {
    const [, , parentId, childId] = e.key;
    const child = typeof childId === "string" ? obj(a.domains.get(childId)?.value) : null;
    if (
      e.key.length !== 4 || typeof parentId !== "string" || !a.domains.has(parentId) ||
      !child || child.parentDomainId !== parentId || e.value !== childId
    ) {
      v.add("dangling_index", e.key, "child link without a matching parent and child record");
      continue;
    }
    links.set(parentId, (links.get(parentId) ?? 0) + 1);
    linked.add(childId as string);
  }
  for (const [domainId, entry] of a.domains) {
    const r = obj(entry.value);
    if (!r) continue;
    if (typeof r.parentDomainId === "string" && !linked.has(domainId)) {
      v.add("missing_index", entry.key, "subdomain has no child link under its parent");
    }
    const n = links.get(domainId) ?? 0;
    if (typeof r.childCount === "number" && r.childCount !== n) {
      v.add("wrong_count", entry.key, `childCount ${r.childCount}, ${n} child links`);
    }
  }
}
