/**
 * Bearer key verification: the key's digest is looked up in this process's cache of verified
 * keys; on a miss, shape and checksum are checked (no KV read for garbage), then one KV read.
 * Expiry is checked against the clock on every request, cached or not.
 *
 * A cached entry carries the key's grant (scopes, domains, addresses, limit: store/api_keys.ts
 * ApiKeyPointer), so the checks of auth/api_keys/policy.ts read nothing. A change to a grant (PATCH,
 * disable) commits like a revocation, so the same mechanism below drops the stale grant.
 *
 * Revocation stays prompt with the cache:
 * - in this process, at once: every revoking write commits through store/revocation.ts, whose hub
 *   tells this verifier right after the commit (a key's digest: that entry is dropped; an
 *   account suspended or reactivated: all of its keys' entries are dropped);
 * - across processes sharing the KV, within 1 s: every revocation bumps ["meta","revocations"]
 *   in its commit; this verifier polls that counter (at most every POLL_INTERVAL_MS, off the
 *   request path) and empties its cache when it changed. A cached entry is only served while the
 *   last poll that *started* is at most FRESH_MS old; otherwise the request waits for a poll first.
 *   So a key revoked at time T is not served from the cache after T + FRESH_MS (< 1 s).
 *   (`kv.watch` would be simpler, but it does not fire across processes on a local SQLite file.)
 * An `epoch`, bumped whenever entries are dropped, keeps a lookup that raced a revocation from
 * re-inserting the key it read before the revocation.
 */
import type { Clock } from "../../lib/clock.ts";
import { clientOf } from "../../lib/client.ts";
import type { Logger } from "../../lib/log.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { type ApiKeyPointer, apiKeyStore } from "../../store/api_keys.ts";
import { apiKeyHashIndexKey, revocationCounterKey } from "../../store/keys.ts";
import { processRevocations, type RevocationHub, type Revoked } from "../../store/revocation.ts";
import { getUser } from "../../store/accounts/users.ts";
import { API_KEY_LENGTH, isWellFormedApiKey } from "./format.ts";
import { keyAccessOf } from "./policy.ts";
import {
  assertNever,
  type AuthOutcome,
  INVALID,
  type Principal,
  type SuspendedOutcome,
} from "../principal.ts";

const LAST_USED_INTERVAL_MS = 60_000;
/** How often the revocation counter is read while requests come in. */
export const POLL_INTERVAL_MS = 250;
/** A cache hit needs a completed poll that started at most this long ago. */
export const FRESH_MS = 750;
const MAX_CACHED_KEYS = 100_000;

type OkOutcome = Extract<AuthOutcome, { kind: "ok" }>;

/**
 * A verification that must read KV (a key not in the cache). `identified` resolves, after the
 * first read, with the principal the key would have if its account is active (null: unknown,
 * disabled or expired key, or a cache hit), before the account itself is read: the middleware
 * starts the rate limiter's lease then (auth/middleware.ts), so the two reads overlap.
 */
export type PendingOutcome = Promise<AuthOutcome> & { identified?: Promise<Principal | null> };

/**
 * A pointer as read from KV, with the outcome its account's standing at that moment gives. The
 * outcome is built (and frozen) once, so a cache hit allocates nothing.
 */
type Cached = {
  pointer: ApiKeyPointer;
  versionstamp: string;
  outcome: OkOutcome | SuspendedOutcome;
};

export type VerifierOptions = {
  cache?: boolean;
  /** Where this process's revocations are announced; defaults to the process's hub. */
  revocations?: RevocationHub;
};

export class ApiKeyVerifier {
  /** keyId -> when this process may next write lastUsedAt for it. */
  #lastTouched = new Map<string, number>();
  #pending = new Set<Promise<unknown>>();
  /** SHA-256 digest -> pointer as read from KV. Never holds a plaintext key. */
  #cache = new Map<string, Cached>();
  #epoch = 0;
  /** Last value seen of the revocation counter; undefined before the first poll. */
  #revocations: bigint | undefined;
  /** When the last completed poll started (clock ms). */
  #polledAt = -Infinity;
  #poll: Promise<void> | null = null;
  #pollStartedAt = -Infinity;
  /**
   * The newest commit of a revocation this process announced (the hub). An eventual read whose
   * counter is older comes from a replica that has not seen it: its counter may still equal the
   * last poll's, so the value alone would not tell (issue 24's attack:
   * tests/api_keys/attack_hotpath_eventual_test.ts); such a read is made again, strongly.
   */
  #announcedStamp = "";
  readonly #useCache: boolean;

  constructor(
    private readonly kv: Deno.Kv,
    private readonly clock: Clock,
    private readonly log: Logger,
    opts: VerifierOptions = {},
  ) {
    this.#useCache = opts.cache ?? true;
    // The hub holds this verifier only weakly: a verifier nobody uses any more can be collected.
    const self = new WeakRef(this);
    const unsubscribe = (opts.revocations ?? processRevocations).subscribe((revoked, stamp) => {
      const verifier = self.deref();
      if (verifier) verifier.#revoked(revoked, stamp);
      else unsubscribe();
    });
  }

  /**
   * What a Bearer token authenticates: ok, suspended or invalid. A fresh cache hit answers
   * synchronously with the cached, frozen outcome (no promise, no microtask, no new object);
   * anything else returns a promise. `req`: the request the token came with; its client address
   * is resolved only when a lastUsedAt write is due (once a minute per key), never otherwise.
   */
  verify(token: string, req?: Request): AuthOutcome | PendingOutcome {
    // No key has another length: refuse without hashing (an 8 KB token costs nothing).
    if (token.length !== API_KEY_LENGTH) return INVALID;
    const hash = sha256Hex(token);
    const hit = this.#freshHit(hash);
    if (hit) {
      this.#pollInBackground();
      return this.#outcomeOf(hit, req);
    }
    const { promise: identified, resolve } = Promise.withResolvers<Principal | null>();
    const outcome = this.#lookup(hash, token, resolve).then((found) =>
      found ? this.#outcomeOf(found, req) : INVALID
    );
    outcome.then(() => resolve(null), () => resolve(null));
    return Object.assign(outcome, { identified });
  }

  #outcomeOf({ pointer, versionstamp, outcome }: Cached, req: Request | undefined): AuthOutcome {
    const now = this.clock();
    if (pointer.expiresAt !== null && pointer.expiresAt <= now) return INVALID;
    if (outcome.kind === "ok") {
      this.#maybeTouch(pointer.userId, pointer.keyId, versionstamp, now, req);
    }
    return outcome;
  }

  #freshHit(hash: string): Cached | undefined {
    if (!this.#useCache || this.clock() - this.#polledAt >= FRESH_MS) return undefined;
    return this.#cache.get(hash);
  }

  /**
   * Drops anything this process remembers about a key digest; called right after a revocation
   * commits, so the next request with that key is refused by this process.
   */
  forget(hash: string): void {
    this.#cache.delete(hash);
    this.#epoch++;
  }

  /** Drops every cached key of `userId` (its account was suspended or reactivated). */
  forgetAccount(userId: string): void {
    for (const [hash, cached] of this.#cache) {
      if (cached.pointer.userId === userId) this.#cache.delete(hash);
    }
    this.#epoch++;
  }

  #revoked(revoked: Revoked, versionstamp: string | undefined): void {
    // Versionstamps are fixed-width hex: their string order is the commits' order.
    if (versionstamp && versionstamp > this.#announcedStamp) this.#announcedStamp = versionstamp;
    switch (revoked.kind) {
      case "api_key":
        return this.forget(revoked.hash);
      case "account":
        return this.forgetAccount(revoked.userId);
      default:
        return assertNever(revoked);
    }
  }

  /**
   * The slow path: shape and checksum, then the key's pointer with the revocation counter in one
   * read (issue 24: when the last poll is too old, that read is the poll, so a first request
   * waits for no separate one), then the account. `identified` hears of the key's account
   * between the two reads, so the limiter's lease can run beside the account read.
   */
  async #lookup(
    hash: string,
    token: string,
    identified: (principal: Principal) => void,
  ): Promise<Cached | null> {
    if (!isWellFormedApiKey(token)) return null;
    const stale = !this.#useCache || this.clock() - this.#polledAt >= FRESH_MS;
    if (!stale) {
      this.#pollInBackground();
      const hit = this.#cache.get(hash);
      if (hit) return hit;
    }
    const startedAt = this.clock();
    // A revocation this process announces while the read is in flight bumps the epoch; the
    // read's own counter, when it empties the cache, bumps it once more (`emptied`).
    const before = this.#epoch;
    const { entry, emptied } = await this.#readPointer(hash, stale, startedAt);
    const epoch = before + (emptied ? 1 : 0);
    // The cache survived the counter just read (it empties on any change): a cached key of an
    // idle process costs this one round trip, the poll it would have waited for anyway.
    const hit = this.#useCache ? this.#cache.get(hash) : undefined;
    if (hit) return hit;
    const found = await this.#resolve(entry, startedAt, identified);
    if (found && this.#useCache && epoch === this.#epoch) {
      if (this.#cache.size >= MAX_CACHED_KEYS) {
        this.#cache.delete(this.#cache.keys().next().value!);
      }
      this.#cache.set(hash, found);
    }
    return found;
  }

  /** Keeps the cache fresh while requests come in: a poll every POLL_INTERVAL_MS at most. */
  #pollInBackground(): void {
    const now = this.clock();
    if (now - this.#pollStartedAt < POLL_INTERVAL_MS) return;
    this.#pollRevocations(now).catch(() => {/* logged in the poll; next request retries */});
  }

  /**
   * The pointer's account (the second round trip of a cache miss). A key whose account no longer
   * exists is refused like an unknown key; a suspended account's key gives the suspended outcome.
   */
  async #resolve(
    entry: Deno.KvEntryMaybe<ApiKeyPointer>,
    startedAt: number,
    identified: (principal: Principal) => void,
  ): Promise<Cached | null> {
    const pointer = entry.value;
    if (!pointer || entry.versionstamp === null) return null;
    // A disabled key is refused like an unknown one (not cached: enabling it takes effect on
    // the next request, and a PATCH bumps the revocation counter anyway).
    if (pointer.grant?.disabled) return null;
    // The key's scopes and restrictions ride in the pointer, compiled once per cache fill, so
    // checking them costs no KV read (auth/api_keys/policy.ts).
    const access = keyAccessOf(pointer.grant);
    // One shape for every key's principal (`access` present, undefined for the default grant):
    // code on the hot path then sees a single object layout whichever keys are used.
    const principal: Principal = Object.freeze({
      userId: pointer.userId,
      keyId: pointer.keyId,
      method: "api_key",
      access,
    });
    if (pointer.expiresAt === null || pointer.expiresAt > startedAt) identified(principal);
    // Strong: the account's standing (suspended, deleted) must be the primary's, at once.
    const user = await getUser(this.kv, pointer.userId);
    if (!user) return null;
    const outcome: OkOutcome | SuspendedOutcome = user.status === "active"
      ? Object.freeze({ kind: "ok", principal })
      : Object.freeze({ kind: "suspended", userId: pointer.userId });
    return { pointer, versionstamp: entry.versionstamp, outcome };
  }

  /**
   * The key's pointer and the revocation counter, in one snapshot. `strong`: the last poll is too
   * old, so this read is the poll. Otherwise it may be eventual (a nearby replica on Deploy): the
   * snapshot is used only if its counter is at least the last strong poll's and no older than the
   * newest revocation this process committed, so the replica holds every revocation the cache
   * already had to know about and this process's own; a replica further behind is re-read
   * strongly. (The local file and KV Connect ignore the option: every read is strong there.)
   */
  async #readPointer(
    hash: string,
    strong: boolean,
    startedAt: number,
  ): Promise<{ entry: Deno.KvEntryMaybe<ApiKeyPointer>; emptied: boolean }> {
    const consistency: Deno.KvConsistencyLevel = strong ? "strong" : "eventual";
    const [pointer, counter] = await this.kv.getMany<[ApiKeyPointer, Deno.KvU64]>(
      [apiKeyHashIndexKey(hash), revocationCounterKey()],
      { consistency },
    );
    const value = counter.value instanceof Deno.KvU64 ? counter.value.value : 0n;
    const behind = (this.#revocations !== undefined && value < this.#revocations) ||
      (counter.versionstamp ?? "") < this.#announcedStamp;
    if (!strong && behind) {
      return await this.#readPointer(hash, true, this.clock());
    }
    // Only a strong read is a poll. A newer counter seen by a fresh process's read is left to the
    // background poll (within POLL_INTERVAL_MS), as before: this process's own revocations have
    // already dropped their entries (the hub), and the others' keys stay cached until then.
    return { entry: pointer, emptied: strong && this.#applyCounter(value, startedAt) };
  }

  /**
   * A revocation counter read: a new value empties the cache (the counter only grows, so an older
   * value read late changes nothing); true when it did. `polledAt`: when a strong read of it
   * started.
   */
  #applyCounter(value: bigint, polledAt: number | null): boolean {
    if (polledAt !== null) this.#polledAt = Math.max(this.#polledAt, polledAt);
    if (this.#revocations !== undefined && value <= this.#revocations) return false;
    this.#cache.clear();
    this.#epoch++;
    this.#revocations = value;
    return true;
  }

  /** One poll in flight at a time; empties the cache when the counter moved (or on the first). */
  #pollRevocations(now: number): Promise<void> {
    if (this.#poll) return this.#poll;
    this.#pollStartedAt = now;
    const poll = (async () => {
      try {
        // Strong, always: the poll is what bounds how long a revoked key is served.
        const entry = await this.kv.get<Deno.KvU64>(revocationCounterKey());
        this.#applyCounter(entry.value instanceof Deno.KvU64 ? entry.value.value : 0n, now);
      } catch (err) {
        this.log({
          level: "warn",
          msg: "revocation counter read failed",
          error: err instanceof Error ? err.name : "non-error thrown",
        });
        throw err;
      } finally {
        this.#poll = null;
      }
    })();
    this.#poll = poll;
    return poll;
  }

  /**
   * At most one lastUsedAt write per key per minute per process, off the request path. The next
   * write of a key is due 60 to 90 s after this one (random): keys first used together (a deploy,
   * a client starting) would otherwise all write again in the same second every minute, 1,000 keys
   * a burst of 1,000 commits (measured: ~0.3 s of CPU and ~0.45 s of the store's time).
   * The client address rides in the same write (no commit or read of its own); it is resolved
   * here, behind the gate, so the other requests of the minute never compute it.
   */
  #maybeTouch(
    userId: string,
    keyId: string,
    versionstamp: string,
    now: number,
    req: Request | undefined,
  ): void {
    const due = this.#lastTouched.get(keyId);
    if (due !== undefined && now < due) return;
    this.#lastTouched.set(keyId, now + LAST_USED_INTERVAL_MS * (1 + Math.random() / 2));
    if (this.#lastTouched.size > 100_000) this.#lastTouched.clear();
    const ip = addressOf(req);
    const write = apiKeyStore(this.kv, userId, this.clock)
      .touchLastUsed(keyId, versionstamp, ip)
      .catch((err) => {
        this.log({
          level: "warn",
          msg: "lastUsedAt write failed",
          keyId,
          error: String(err?.name),
        });
      })
      .finally(() => this.#pending.delete(write));
    this.#pending.add(write);
  }

  /** Resolves when background writes and polls have finished (tests and shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.#pending, this.#poll?.catch(() => {})]);
  }
}

/** The proxy-aware client address of `req` (lib/client.ts); null without a request or peer. */
function addressOf(req: Request | undefined): string | null {
  if (!req) return null;
  const address = clientOf(req).address;
  return address === "unknown" ? null : address;
}
