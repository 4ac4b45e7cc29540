/**
 * The per-account rate limiter: a fixed window of `windowMs` (default 100 requests per 1000 ms),
 * counted per `userId` in KV and shared by every instance on that KV.
 *
 * Hot path: a request spends a quota token this process already holds (no KV work). When it holds
 * none, it leases a batch from the account's KV counter for the window (store/rate_limit.ts); one
 * lease per account is in flight per process, and the requests that arrive meanwhile wait for it.
 * A busy account's next lease is taken in the background when its tokens run low, and the next
 * window's first lease shortly before the window ends, so it seldom waits at all.
 *
 * Lease size, chosen against the counter's remaining quota R at commit time:
 *   max(waiting requests - tokens held, min(demand, floor(R / LEASE_DIVISOR) - tokens held)),
 *   at most R,
 * where demand starts at 1.25 x what this process admitted for the account in the previous window
 * (one lease covers a steady window) and doubles with each lease in the window. Tokens for waiting requests are spent at once;
 * the rest is prefetch, at most R / 16. So tokens held idle by another instance ("stranded") are at
 * most limit/16 per instance: an account is never refused while all instances together have
 * admitted fewer than limit - (instances - 1) * limit/16 in the window (two instances: 93.75 %).
 *
 * Guarantees: the counter never exceeds the limit, so no window admits more than the limit across
 * all instances. A lease for a window that ended before it answered is dropped, never carried over.
 * The store failing or not answering within `timeoutMs` refuses with the seed's 503 (fail closed);
 * with `failOpen`, this process instead admits up to the limit per window on its own count.
 */
import type { Context } from "hono";
import type { Clock } from "../lib/clock.ts";
import { withTimeout } from "../lib/async.ts";
import { HttpError, rateLimitUnavailable } from "../lib/errors.ts";
import type { Logger } from "../lib/log.ts";
import { keyRateWindowKey } from "../store/keys.ts";
import { leaseTokens } from "../store/rate_limit.ts";
import type { Principal } from "./principal.ts";

export type RateLimitPolicy = {
  max: number;
  windowMs: number;
  failOpen: boolean;
  /** The store's measured round trip (lib/config.ts withStoreRtt); absent: a local store. */
  storeRttMs?: number;
};

export type RateLimiterOptions = {
  /** How long a request waits for the store before the 503 (or fail-open). */
  timeoutMs?: number;
  /** Prefetch cap: a lease takes at most remaining/leaseDivisor beyond the waiting requests. */
  leaseDivisor?: number;
  /**
   * The KV counter of a subject's window; default the account's (`check(userId)`). The per-key
   * limiters count `check("userId/keyId")` in keyRateWindowKey.
   */
  counterKey?: (subject: string, windowStartMs: number) => Deno.KvKey;
};

/** What the rate-limit headers say; absent fields are unknown (the store did not answer). */
export type RateLimitInfo = {
  limit: number;
  windowMs: number;
  remaining?: number;
  /** Epoch milliseconds at which the current window ends. */
  resetMs?: number;
  now: number;
};

export type RateLimitDecision = { allowed: boolean; info: RateLimitInfo };

/** `RateLimiter.hook`: the per-request check, and the early lease of a key just identified. */
export type RateLimitHook = ((c: Context, principal: Principal) => void | Promise<void>) & {
  prepare: (principal: Principal) => void;
};

/**
 * How long a request waits for a lease before the seed's 503. Was 1 s; measured: 160 concurrent
 * domain creates in one process on a SQLite file, on a loaded 2-core machine, queued enough
 * commits ahead of a lease that it waited over 1 s, and ~1 % of the creates answered the 503 from
 * a store that was busy, not unavailable. 3 s absorbs that queue and stays well inside the 10 s
 * request deadline; a store that really stalls still gets the 503 (tests/hardening/hardening_faults_test.ts).
 */
export const DEFAULT_TIMEOUT_MS = 3000;
/**
 * Round trips the lease timeout allows for on top of DEFAULT_TIMEOUT_MS: a lease is a read and a
 * commit, retried up to WRITE_ATTEMPTS (16) times when another instance's lease won the race. On
 * a remote store (KV Connect, Deploy) each costs a network round trip: 16 attempts at 80 ms are
 * 2.6 s of network alone, so a store that was answering could be taken for a stalled one
 * (measured over the KV Connect test backend at 80 ms, two servers, 128 clients on 4 accounts on a
 * loaded 2-core machine: 16 of 143 requests answered the limiter's 503 in one run of five; with
 * this allowance, none in four runs). The timeout is 3 s + 32 measured round trips (main.ts
 * measures a remote store at start-up; a local file counts as 0 and keeps 3 s).
 */
export const LEASE_ROUND_TRIPS = 32;
export const LEASE_DIVISOR = 16;
const SWEEP_THRESHOLD = 10_000;
/**
 * The context variable carrying a request's decision from the hook to the headers middleware (a
 * context variable dies with the request; a WeakMap keyed by requests measurably slowed the GC).
 */
const INFO_VAR = "rateLimitInfo";
/** The next window's lease is taken up to this long before the window ends... */
const PREFETCH_LEAD_MS = 200;
/** ...by an account that has made at least this many requests in the window. */
const PREFETCH_MIN_ADMITTED = 2;
const ERROR_LOG_INTERVAL_MS = 1000;

/** One account's quota in the current window, as this process knows it. */
class AccountWindow {
  /** Tokens leased by this process and not yet spent. */
  tokens = 0;
  /** The KV counter as of this process's last lease (a lower bound of the global count). */
  leasedTotal = 0;
  /** True once the counter reached the limit: the window's quota stays spent until it ends. */
  spent = false;
  admitted = 0;
  lastLease = 0;
  waiting = 0;
  inflight: Promise<void> | null = null;
  /**
   * The KV counter as this process's last lease left it (null: unknown), so the next lease can be
   * one checked write without a read (store/rate_limit.ts `known`). A new window starts as
   * "absent" unless this account's previous window showed another instance leasing too.
   */
  counter: { used: number; versionstamp: string | null } | null;
  /** A guessed counter was stale in this window: another instance leases from it too. */
  contended = false;
  /** When this process last admitted a request of the account in this window. */
  lastAt: number;
  /** The next window's state, leased ahead near the end of this one... */
  next: AccountWindow | null = null;
  /** ...from this time on: a random moment in the window's last fifth (at most 200 ms), so the
   * accounts' leases do not all hit the store at once. */
  readonly prefetchAt: number;

  constructor(
    readonly windowStart: number,
    public previousAdmitted: number,
    windowMs: number,
    guessAbsent = true,
  ) {
    this.counter = guessAbsent ? { used: 0, versionstamp: null } : null;
    this.lastAt = windowStart;
    const lead = Math.min(PREFETCH_LEAD_MS, windowMs / 5) * (0.25 + 0.75 * Math.random());
    this.prefetchAt = windowStart + windowMs - lead;
  }
}

export class RateLimiter {
  readonly #states = new Map<string, AccountWindow>();
  readonly #timeoutMs: number;
  readonly #divisor: number;
  readonly #counterKey: RateLimiterOptions["counterKey"];
  /** A key's own limit: one limiter per distinct (max, windowMs), made on first use. */
  readonly #keyLimiters = new Map<string, RateLimiter>();
  /** Leases in flight (a request's, or a prefetch nobody waits for): what `idle()` waits for. */
  readonly #pending = new Set<Promise<void>>();
  #lastSweep = 0;
  #lastErrorLog = -Infinity;

  constructor(
    private readonly kv: Deno.Kv,
    readonly policy: RateLimitPolicy,
    private readonly clock: Clock,
    private readonly log: Logger,
    opts: RateLimiterOptions = {},
  ) {
    this.#timeoutMs = opts.timeoutMs ??
      DEFAULT_TIMEOUT_MS + LEASE_ROUND_TRIPS * (policy.storeRttMs ?? 0);
    this.#divisor = opts.leaseDivisor ?? LEASE_DIVISOR;
    this.#counterKey = opts.counterKey;
  }

  /**
   * The limiter of keys whose own limit is `limit`: exactly the account limiter's leases, counted
   * per key (subject "userId/keyId") in keyRateWindowKey.
   */
  #keyLimiter(limit: { max: number; windowMs: number }): RateLimiter {
    const id = `${limit.max}/${limit.windowMs}`;
    let limiter = this.#keyLimiters.get(id);
    if (!limiter) {
      limiter = new RateLimiter(
        this.kv,
        { max: limit.max, windowMs: limit.windowMs, failOpen: this.policy.failOpen },
        this.clock,
        this.log,
        {
          timeoutMs: this.#timeoutMs,
          leaseDivisor: this.#divisor,
          counterKey: (subject, windowStartMs) => {
            const slash = subject.indexOf("/");
            return keyRateWindowKey(
              subject.slice(0, slash),
              subject.slice(slash + 1),
              windowStartMs,
            );
          },
        },
      );
      this.#keyLimiters.set(id, limiter);
    }
    return limiter;
  }

  /**
   * The account's decision, then (when it admits and the key has a limit of its own) the key's:
   * a request passes both; the headers describe whichever is tighter (fewer remaining).
   */
  #checkPrincipal(principal: Principal): RateLimitDecision | Promise<RateLimitDecision> {
    const account = this.check(principal.userId);
    const limit = principal.access?.rateLimit;
    if (!limit || !principal.keyId) return account;
    const subject = `${principal.userId}/${principal.keyId}`;
    const withKey = (a: RateLimitDecision): RateLimitDecision | Promise<RateLimitDecision> => {
      if (!a.allowed) return a;
      const k = this.#keyLimiter(limit).check(subject);
      return k instanceof Promise ? k.then((kd) => tighter(a, kd)) : tighter(a, k);
    };
    return account instanceof Promise ? account.then(withKey) : withKey(account);
  }

  /**
   * Admits or refuses one request of `userId`. Throws the 503 HttpError when the store cannot
   * answer (unless fail-open). Answers synchronously while this process holds tokens (the common
   * case: no promise, no microtask), and with a promise when it must wait for a lease.
   */
  check(userId: string): RateLimitDecision | Promise<RateLimitDecision> {
    return this.#fromTokens(userId) ?? this.#checkAfterLease(userId);
  }

  /** A decision from what this process already knows, or null when it must lease. */
  #fromTokens(userId: string): RateLimitDecision | null {
    const now = this.clock();
    const st = this.#current(userId, now);
    if (st.tokens > 0) {
      st.tokens--;
      st.admitted++;
      this.#prefetch(userId, st, now);
      return { allowed: true, info: this.#infoOf(st, now) };
    }
    if (st.spent) return { allowed: false, info: this.#infoOf(st, now) };
    return null;
  }

  async #checkAfterLease(userId: string): Promise<RateLimitDecision> {
    for (;;) {
      const st = this.#current(userId, this.clock());
      st.inflight ??= this.#lease(userId, st);
      const lease = st.inflight;
      st.waiting++;
      try {
        await lease;
      } catch (err) {
        this.#logError(err);
        if (!this.policy.failOpen) throw rateLimitUnavailable();
        return this.#failOpen(st, this.clock());
      } finally {
        st.waiting--;
      }
      const decision = this.#fromTokens(userId);
      if (decision) return decision;
    }
  }

  /**
   * Starts the lease `principal`'s next request will need when this process holds no token for
   * it (account and key limits), without waiting and without admitting anything: called by the
   * authentication middleware as soon as a new key's pointer names its account, so the lease runs
   * beside the account read instead of after it (issue 24: a first request waits for 2 round
   * trips, not 3). A lease taken for a request that is then refused only holds its tokens in this
   * process for the window, as any prefetch does.
   */
  prepare(principal: Principal): void {
    this.#warm(principal.userId);
    const limit = principal.access?.rateLimit;
    if (limit && principal.keyId) {
      this.#keyLimiter(limit).#warm(`${principal.userId}/${principal.keyId}`);
    }
  }

  #warm(subject: string): void {
    const st = this.#current(subject, this.clock());
    if (st.tokens === 0 && !st.spent && st.inflight === null) {
      st.inflight = this.#lease(subject, st);
    }
  }

  /**
   * Resolves once no lease of this limiter (nor of its per-key limiters) is in flight, those
   * started meanwhile included: a prefetch writes its counter in the background, after the
   * request that started it was answered (tests' KV snapshots, shutdown). It waits for the
   * store itself, not the request timeout: a store that never answers keeps it waiting.
   */
  async idle(): Promise<void> {
    while (this.#busy()) {
      await Promise.all([
        ...this.#pending,
        ...[...this.#keyLimiters.values()].map((l) => l.idle()),
      ]);
    }
  }

  #busy(): boolean {
    if (this.#pending.size > 0) return true;
    for (const l of this.#keyLimiters.values()) if (l.#busy()) return true;
    return false;
  }

  /**
   * The hook for `authenticate({ rateLimit })`: refuses with 429 or 503, never 401. Its
   * `prepare` is the limiter's: the middleware starts a new key's lease early with it.
   */
  readonly hook: RateLimitHook = Object.assign(
    (c: Context, principal: Principal) => this.#hook(c, principal),
    { prepare: (principal: Principal) => this.prepare(principal) },
  );

  #hook(c: Context, principal: Principal): void | Promise<void> {
    let decision: RateLimitDecision | Promise<RateLimitDecision>;
    try {
      decision = this.#checkPrincipal(principal);
    } catch (err) {
      this.#refuseUnavailable(c, err);
    }
    if (decision instanceof Promise) {
      return decision.then((d) => this.#apply(c, d), (err) => this.#refuseUnavailable(c, err));
    }
    this.#apply(c, decision);
  }

  /**
   * One request's decision for `principal` (the account's limit, then the key's own), as `hook`
   * makes it but without a context: for the verify call (routes/forward_auth/), which answers a
   * refusal in its body. Throws (the 503 HttpError) when the store cannot answer.
   */
  decide(principal: Principal): RateLimitDecision | Promise<RateLimitDecision> {
    return this.#checkPrincipal(principal);
  }

  #apply(c: Context, decision: RateLimitDecision): void {
    c.set(INFO_VAR, decision.info);
    if (!decision.allowed) throw tooManyRequests(decision.info);
  }

  #refuseUnavailable(c: Context, err: unknown): never {
    c.set(
      INFO_VAR,
      {
        limit: this.policy.max,
        windowMs: this.policy.windowMs,
        now: this.clock(),
      } satisfies RateLimitInfo,
    );
    throw err instanceof HttpError ? err : rateLimitUnavailable();
  }

  /**
   * Puts this request's decision on the final response (a handler's, or an error turned into a
   * response by onError). Called by the outermost middleware, so it costs no middleware layer.
   */
  decorate(c: Context): void {
    const info: RateLimitInfo | undefined = c.get(INFO_VAR);
    if (info) setRateLimitHeaders(c.res.headers, info);
  }

  #current(userId: string, now: number): AccountWindow {
    const windowStart = now - mod(now, this.policy.windowMs);
    let st = this.#states.get(userId);
    if (st?.windowStart === windowStart) return st;
    const previous = st?.windowStart === windowStart - this.policy.windowMs ? st.admitted : 0;
    if (st?.next?.windowStart === windowStart) {
      st = st.next;
      st.previousAdmitted = previous;
    } else {
      st = new AccountWindow(windowStart, previous, this.policy.windowMs, !st?.contended);
    }
    this.#states.set(userId, st);
    if (this.#states.size > SWEEP_THRESHOLD && now - this.#lastSweep > this.policy.windowMs) {
      this.#sweep(windowStart, now);
    }
    return st;
  }

  /**
   * Off the request path, so that a busy account rarely waits for KV: a new lease when this
   * process's tokens run low, and the next window's first lease shortly before this one ends.
   * Both are sized like any lease, so the prefetch cap (remaining / divisor) still bounds what
   * an instance holds unspent.
   */
  #prefetch(userId: string, st: AccountWindow, now: number): void {
    if (st.inflight === null && !st.spent && st.lastLease > 0 && st.tokens <= st.lastLease / 4) {
      st.inflight = this.#lease(userId, st);
    }
    const end = st.windowStart + this.policy.windowMs;
    // Near the end, or when this account's pace (twice the gap since its previous request) says
    // its next request comes after the end: a slow account's first request of a window would
    // otherwise wait for the lease (issue 24).
    const nextExpected = now + 2 * (now - st.lastAt);
    st.lastAt = now;
    if (
      st.next === null && st.admitted >= PREFETCH_MIN_ADMITTED &&
      (now >= st.prefetchAt || nextExpected >= end)
    ) {
      // This window's pace, extrapolated to a whole window, is the next one's demand estimate.
      const elapsed = Math.max(1, now - st.windowStart);
      const pace = Math.ceil(st.admitted * Math.max(1, this.policy.windowMs / elapsed));
      st.next = new AccountWindow(end, pace, this.policy.windowMs, !st.contended);
      st.next.inflight = this.#lease(userId, st.next);
    }
  }

  /** One lease in flight per account and window; it credits its tokens to `st` if still current. */
  #lease(userId: string, st: AccountWindow): Promise<void> {
    const { max, windowMs } = this.policy;
    const attempt = leaseTokens(this.kv, userId, {
      windowStartMs: st.windowStart,
      max,
      expireInMs: windowMs + 60_000,
      ...(this.#counterKey ? { counterKey: this.#counterKey(userId, st.windowStart) } : {}),
      ...(st.counter ? { known: st.counter } : {}),
      size: (remaining) => {
        const prefetchCap = Math.max(1, Math.floor(remaining / this.#divisor));
        // A quarter more than last window's pace, so a steady account needs one lease per window;
        // the prefetch cap below, not this estimate, is what bounds idle tokens.
        const demand = Math.max(1, st.lastLease * 2, Math.ceil(st.previousAdmitted * 1.25));
        // Waiting requests beyond the tokens held: a burst's waiters resume one by one after
        // their lease, and a prefetch started by the first ones is sized while the rest, which
        // the tokens already credited will serve, are still counted as waiting (taking tokens
        // for them again left 11 of 100 idle: the two-process "90 %" flake, issue 24).
        const short = st.waiting - st.tokens;
        return Math.max(short, Math.min(demand, prefetchCap - st.tokens));
      },
    }).then((lease) => {
      if (!lease.guessHeld) st.contended = true;
      // Known for the next lease only while this process is the one that last wrote it.
      st.counter = lease.versionstamp === null || st.contended
        ? null
        : { used: lease.leasedTotal, versionstamp: lease.versionstamp };
      st.leasedTotal = Math.max(st.leasedTotal, lease.leasedTotal);
      if (st.leasedTotal >= max) st.spent = true;
      // A lease that answers after its window ended is dropped: its tokens count for that
      // window only. A late answer within the window (after a timeout) is still credited.
      // This lease is over once credited: a request spending its tokens in the same turn may
      // start the next one (before the `finally` below has run).
      if (st.inflight === bounded) st.inflight = null;
      if (this.clock() >= st.windowStart + windowMs) return;
      st.tokens += lease.granted;
      st.lastLease = lease.granted;
    });
    const bounded = withTimeout(attempt, this.#timeoutMs).finally(() => {
      if (st.inflight === bounded) st.inflight = null;
    });
    // Waiting requests handle a failure; a prefetch nobody waits for must not be unhandled.
    bounded.catch(() => {});
    // The write itself, not the timeout: idle() waits for the counter to be written.
    const done = attempt.catch(() => {});
    this.#pending.add(done);
    done.then(() => this.#pending.delete(done));
    return bounded;
  }

  /** The store did not answer and RATE_LIMIT_FAIL_OPEN is set: this process counts on its own. */
  #failOpen(st: AccountWindow, now: number): RateLimitDecision {
    const resetMs = st.windowStart + this.policy.windowMs;
    const base = { limit: this.policy.max, windowMs: this.policy.windowMs, resetMs, now };
    if (st.admitted >= this.policy.max) return { allowed: false, info: { ...base, remaining: 0 } };
    st.admitted++;
    return { allowed: true, info: { ...base, remaining: this.policy.max - st.admitted } };
  }

  #infoOf(st: AccountWindow, now: number): RateLimitInfo {
    const remaining = st.spent && st.tokens === 0
      ? 0
      : Math.max(0, Math.min(this.policy.max, this.policy.max - st.leasedTotal + st.tokens));
    return {
      limit: this.policy.max,
      windowMs: this.policy.windowMs,
      remaining,
      resetMs: st.windowStart + this.policy.windowMs,
      now,
    };
  }

  #sweep(windowStart: number, now: number): void {
    this.#lastSweep = now;
    for (const [userId, st] of this.#states) {
      if (st.windowStart < windowStart - this.policy.windowMs && st.inflight === null) {
        this.#states.delete(userId);
      }
    }
  }

  /** At most one log line a second while the store is failing; error names only. */
  #logError(err: unknown): void {
    const now = this.clock();
    if (now - this.#lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.#lastErrorLog = now;
    this.log({
      level: "error",
      msg: this.policy.failOpen
        ? "rate limit store unavailable; failing open (per-process count)"
        : "rate limit store unavailable; refusing with 503",
      error: err instanceof Error ? `${err.name}: ${err.message}` : "non-error thrown",
    });
  }
}

/** A refusal wins; else the decision with fewer requests left (then the smaller limit). */
function tighter(account: RateLimitDecision, key: RateLimitDecision): RateLimitDecision {
  if (!key.allowed) return key;
  const a = account.info.remaining ?? Infinity;
  const k = key.info.remaining ?? Infinity;
  return k < a || (k === a && key.info.limit < account.info.limit) ? key : account;
}

/** Seconds until the window resets, rounded up, at least 1. */
export function retryAfterSeconds(info: RateLimitInfo): number {
  const resetMs = info.resetMs ?? info.now + info.windowMs;
  return Math.max(1, Math.ceil((resetMs - info.now) / 1000));
}

/** "per second" for the default window, as the public service says; else "per N seconds". */
function perWindow(windowMs: number): string {
  return windowMs === 1000 ? "per second" : `per ${windowMs / 1000} seconds`;
}

export function tooManyRequests(info: RateLimitInfo): HttpError {
  const s = retryAfterSeconds(info);
  return new HttpError(
    429,
    `Rate limit exceeded. Maximum ${info.limit} requests ${perWindow(info.windowMs)}. ` +
      `Retry after ${s} seconds.`,
    {},
    { "Retry-After": String(s) },
  );
}

/**
 * X-RateLimit-Limit / -Remaining / -Reset (epoch ms, like the public service) and the IETF draft's
 * `RateLimit-Policy: "default";q=100;w=1` and `RateLimit: "default";r=42;t=1` (seconds).
 */
export function setRateLimitHeaders(headers: Headers, info: RateLimitInfo): void {
  headers.set("X-RateLimit-Limit", String(info.limit));
  const w = Math.max(1, Math.ceil(info.windowMs / 1000));
  headers.set("RateLimit-Policy", `"default";q=${info.limit};w=${w}`);
  if (info.remaining === undefined || info.resetMs === undefined) return;
  headers.set("X-RateLimit-Remaining", String(info.remaining));
  headers.set("X-RateLimit-Reset", String(info.resetMs));
  const t = Math.max(0, Math.ceil((info.resetMs - info.now) / 1000));
  headers.set("RateLimit", `"default";r=${info.remaining};t=${t}`);
}

function mod(a: number, m: number): number {
  return ((a % m) + m) % m;
}
