/**
 * DNS for domain verification: which records a domain must publish, an injectable resolver
 * (the real one wraps `Deno.resolveDns` with a timeout; tests hand in a fake), and the check
 * that compares what is published with what is expected, one result per record.
 *
 * Resolver contract: an answer with no matching records (NXDOMAIN, NODATA) resolves to `[]`;
 * anything that is not an answer (timeout, SERVFAIL, no network) rejects. A lookup given a
 * `signal` stops when it aborts. The check reports a rejection on the record it concerns and never
 * lets it escape.
 *
 * The work a request can cause is bounded (`DnsChecker`): lookups run under the request's signal,
 * at most `perRequest` of them at once and `maxLookupsPerRequest` in all per request, at most
 * `perProcess` at once for the whole process, and a successful answer is cached for `cacheTtlMs`
 * so repeated checks do not repeat lookups.
 */
import { TimeoutError, withTimeout } from "./async.ts";

export type MxAnswer = { preference: number; exchange: string };

export interface DnsResolver {
  /** TXT records at `name`, each one's character strings joined. */
  txt(name: string, signal?: AbortSignal): Promise<string[]>;
  mx(name: string, signal?: AbortSignal): Promise<MxAnswer[]>;
}

export const DEFAULT_DNS_TIMEOUT_MS = 5000;

/** A lookup stopped (or never started) because the check it belongs to ran out of time or room. */
export class LookupCancelledError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LookupCancelledError";
  }
}

/** The real resolver. Needs `--allow-net` (the server has it). */
export function denoResolver(
  opts: { timeoutMs?: number; nameServer?: { ipAddr: string; port?: number } } = {},
): DnsResolver {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
  async function lookup<T>(
    query: (signal: AbortSignal) => Promise<T[]>,
    caller: AbortSignal | undefined,
  ): Promise<T[]> {
    if (caller?.aborted) throw new LookupCancelledError("DNS lookup cancelled");
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = caller ? AbortSignal.any([caller, timeout]) : timeout;
    try {
      return await withTimeout(query(signal), timeoutMs + 100);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      if (caller?.aborted) throw new LookupCancelledError("DNS lookup cancelled");
      if (
        timeout.aborted || (err instanceof DOMException && err.name === "TimeoutError")
      ) {
        throw new TimeoutError(timeoutMs);
      }
      throw err;
    }
  }
  const ns = opts.nameServer ? { nameServer: opts.nameServer } : {};
  return {
    async txt(name, caller) {
      const records = await lookup(
        (signal) => Deno.resolveDns(name, "TXT", { signal, ...ns }),
        caller,
      );
      return records.map((chunks) => chunks.join(""));
    },
    async mx(name, caller) {
      return await lookup((signal) => Deno.resolveDns(name, "MX", { signal, ...ns }), caller);
    },
  };
}

/** A counting semaphore whose waiters give up when their signal aborts. FIFO. */
export class Semaphore {
  #free: number;
  readonly #waiters = new Set<() => void>();

  constructor(readonly limit: number) {
    this.#free = limit;
  }

  /** Slots held right now. */
  get held(): number {
    return this.limit - this.#free;
  }

  /** Waiters queued right now. */
  get waiting(): number {
    return this.#waiters.size;
  }

  /** Resolves once a slot is held (call `release` after); rejects when `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const onAbort = () => {
      this.#waiters.delete(grant);
      reject(signal?.reason);
    };
    const grant = () => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    };
    this.#waiters.add(grant);
    signal?.addEventListener("abort", onAbort, { once: true });
    return promise;
  }

  release(): void {
    for (const grant of this.#waiters) {
      // The slot passes straight to the longest waiter.
      this.#waiters.delete(grant);
      grant();
      return;
    }
    this.#free = Math.min(this.limit, this.#free + 1);
  }
}

/** `promise`, or a rejection with `signal`'s reason as soon as it aborts. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  const { promise: aborted, reject } = Promise.withResolvers<never>();
  const onAbort = () => reject(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  return Promise.race([promise, aborted]).finally(() =>
    signal.removeEventListener("abort", onAbort)
  );
}

type Answers = string[] | MxAnswer[];

export type DnsCheckerOptions = {
  resolver: DnsResolver;
  /** Milliseconds since the epoch; the cache's clock. */
  clock?: () => number;
  /** Lookups in flight at once for the whole process. */
  perProcess?: number;
  /** Lookups in flight at once for one request. */
  perRequest?: number;
  /** Lookups started in all by one request (a full page of 100 domains needs 400). */
  maxLookupsPerRequest?: number;
  /** How long a successful answer is reused. Failures are not cached. */
  cacheTtlMs?: number;
  /** Answers kept at most; the oldest go first. */
  cacheMaxEntries?: number;
};

export const DNS_CHECK_LIMITS = {
  perProcess: 64,
  perRequest: 10,
  maxLookupsPerRequest: 400,
  cacheTtlMs: 30_000,
  cacheMaxEntries: 10_000,
} as const;

/**
 * The process's DNS checks: one per app. Holds the process-wide bound on lookups in flight and
 * the answer cache; `scope` makes the per-request view that the route checks records through.
 *
 * The cache holds public DNS answers keyed by type and name (never a verdict or a token), so
 * reusing one across requests or accounts reveals nothing that a DNS query would not.
 */
export class DnsChecker {
  readonly resolver: DnsResolver;
  readonly #clock: () => number;
  readonly #process: Semaphore;
  readonly #perRequest: number;
  readonly #maxPerRequest: number;
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  readonly #cache = new Map<string, { expires: number; answers: Answers }>();

  constructor(opts: DnsCheckerOptions) {
    this.resolver = opts.resolver;
    this.#clock = opts.clock ?? Date.now;
    this.#process = new Semaphore(opts.perProcess ?? DNS_CHECK_LIMITS.perProcess);
    this.#perRequest = opts.perRequest ?? DNS_CHECK_LIMITS.perRequest;
    this.#maxPerRequest = opts.maxLookupsPerRequest ?? DNS_CHECK_LIMITS.maxLookupsPerRequest;
    this.#ttlMs = opts.cacheTtlMs ?? DNS_CHECK_LIMITS.cacheTtlMs;
    this.#maxEntries = opts.cacheMaxEntries ?? DNS_CHECK_LIMITS.cacheMaxEntries;
  }

  /** Lookups in flight in the whole process right now. */
  get inFlight(): number {
    return this.#process.held;
  }

  /**
   * A request's checks: every lookup runs under `signal` (once it aborts, running lookups are
   * cancelled and none starts), within the per-request and per-process bounds.
   */
  scope(signal: AbortSignal): DnsCheckScope {
    return new DnsCheckScope(this, signal, new Semaphore(this.#perRequest), this.#maxPerRequest);
  }

  /** @internal A fresh cached answer, or undefined. */
  cached(key: string): Answers | undefined {
    const hit = this.#cache.get(key);
    if (!hit) return undefined;
    if (hit.expires > this.#clock()) return hit.answers;
    this.#cache.delete(key);
    return undefined;
  }

  /** @internal */
  remember(key: string, answers: Answers): void {
    if (this.#ttlMs <= 0) return;
    this.#cache.delete(key);
    while (this.#cache.size >= this.#maxEntries) {
      const oldest = this.#cache.keys().next();
      if (oldest.done) break;
      this.#cache.delete(oldest.value);
    }
    this.#cache.set(key, { expires: this.#clock() + this.#ttlMs, answers });
  }

  /** @internal */
  get process(): Semaphore {
    return this.#process;
  }
}

export const OUT_OF_TIME = "DNS lookup cancelled: the check ran out of time.";
export const NOT_STARTED = "DNS lookup not started: the check ran out of time.";

/** One request's view of the checker. */
export class DnsCheckScope {
  /** Lookups this scope sent to the resolver. */
  started = 0;

  constructor(
    readonly checker: DnsChecker,
    readonly signal: AbortSignal,
    readonly request: Semaphore,
    readonly maxLookups: number,
  ) {}

  /** Checks `records` as `checkDnsRecords` does, through this scope's bounded lookups. */
  check(
    records: Pick<DnsRecordSpec, "kind" | "type" | "name" | "value">[],
  ): Promise<CheckedRecord[]> {
    return checkWith((type, name) => this.lookup(type, name), records);
  }

  /** One lookup: from the cache, or through the request's and the process's slots. */
  async lookup(type: "TXT" | "MX", name: string): Promise<Answers> {
    const key = `${type} ${name.toLowerCase()}`;
    const hit = this.checker.cached(key);
    if (hit) return hit;
    const { signal } = this;
    if (signal.aborted) throw new LookupCancelledError(NOT_STARTED);
    try {
      await this.request.acquire(signal);
    } catch {
      throw new LookupCancelledError(NOT_STARTED);
    }
    let releaseRequest = true;
    try {
      try {
        await this.checker.process.acquire(signal);
      } catch {
        throw new LookupCancelledError(NOT_STARTED);
      }
      let releaseProcess = true;
      try {
        // Another request may have looked it up while this one waited.
        const fresh = this.checker.cached(key);
        if (fresh) return fresh;
        if (this.started >= this.maxLookups) {
          throw new LookupCancelledError(
            `DNS lookup not started: one request may start at most ${this.maxLookups} lookups.`,
          );
        }
        this.started++;
        const { resolver } = this.checker;
        const work: Promise<Answers> = type === "TXT"
          ? resolver.txt(name, signal)
          : resolver.mx(name, signal);
        // The slots stay held until the resolver itself lets go (it honours the signal), so the
        // bounds count lookups really in flight; the caller stops waiting at once on abort.
        releaseProcess = releaseRequest = false;
        work.then(() => {}, () => {}).finally(() => {
          this.checker.process.release();
          this.request.release();
        });
        let answers: Answers;
        try {
          answers = await untilAborted(work, signal);
        } catch (err) {
          if (signal.aborted) throw new LookupCancelledError(OUT_OF_TIME);
          throw err;
        }
        this.checker.remember(key, answers);
        return answers;
      } finally {
        if (releaseProcess) this.checker.process.release();
      }
    } finally {
      if (releaseRequest) this.request.release();
    }
  }
}

/** Where mail for verified domains is delivered, and what SPF should include. */
export type MailSettings = { mxHost: string; mxPriority: number; spfInclude: string };

/** The public Inbound service's values, so a domain set up for it checks out here too. */
export const DEFAULT_MAIL_SETTINGS: MailSettings = {
  mxHost: "inbound-smtp.us-east-2.amazonaws.com",
  mxPriority: 10,
  spfInclude: "amazonses.com",
};

export type DnsRecordKind = "verification" | "mx" | "spf" | "dmarc";

export type DnsRecordSpec = {
  kind: DnsRecordKind;
  type: "TXT" | "MX";
  name: string;
  value: string;
  isRequired: boolean;
  description: string;
};

export const VERIFICATION_LABEL = "_inbound";
export const VERIFICATION_PREFIX = "inbound-verification=";

/**
 * The records `domain` should publish. `inherited`: the domain is verified through a parent,
 * so it needs no verification TXT of its own.
 */
export function dnsPlan(
  domain: string,
  token: string,
  inherited: boolean,
  mail: MailSettings = DEFAULT_MAIL_SETTINGS,
): DnsRecordSpec[] {
  const records: DnsRecordSpec[] = [];
  if (!inherited) {
    records.push({
      kind: "verification",
      type: "TXT",
      name: `${VERIFICATION_LABEL}.${domain}`,
      value: `${VERIFICATION_PREFIX}${token}`,
      isRequired: true,
      description: "Proves you control the domain. Verification succeeds once it is published.",
    });
  }
  records.push(
    {
      kind: "mx",
      type: "MX",
      name: domain,
      value: `${mail.mxPriority} ${mail.mxHost}`,
      isRequired: true,
      description: "Routes mail for the domain to this service; required to receive email.",
    },
    {
      kind: "spf",
      type: "TXT",
      name: domain,
      value: `v=spf1 include:${mail.spfInclude} ~all`,
      isRequired: false,
      description: "Recommended SPF record, so mail sent for the domain passes SPF.",
    },
    {
      kind: "dmarc",
      type: "TXT",
      name: `_dmarc.${domain}`,
      value: "v=DMARC1; p=none;",
      isRequired: false,
      description: "Recommended DMARC policy; start with p=none and tighten it later.",
    },
  );
  return records;
}

export type RecordCheck = { kind: DnsRecordKind; isVerified: boolean; error?: string };

/**
 * A record's result. `lookupFailed`: the lookup gave no answer (the stored state is left as it
 * was); `cancelled`: it gave none because the check ran out of time or room, not because DNS
 * failed.
 */
export type CheckedRecord = RecordCheck & { lookupFailed: boolean; cancelled?: boolean };

const normHost = (h: string) => h.toLowerCase().replace(/\.$/, "");

function describeFailure(err: unknown): string {
  if (err instanceof LookupCancelledError) return err.message;
  if (err instanceof TimeoutError) return `DNS lookup ${err.message}`;
  const msg = err instanceof Error ? err.message : String(err);
  return `DNS lookup failed: ${msg.slice(0, 200)}`;
}

/**
 * Looks every record up (each distinct name and type once, concurrently) and reports, per
 * record, whether the expected value is published. `error` is set when the record is absent or
 * wrong (`lookupFailed` false) or when the lookup itself failed (`lookupFailed` true).
 * Unbounded: the routes check through `DnsChecker` instead.
 */
export async function checkDnsRecords(
  resolver: DnsResolver,
  records: Pick<DnsRecordSpec, "kind" | "type" | "name" | "value">[],
  signal?: AbortSignal,
): Promise<CheckedRecord[]> {
  return await checkWith(
    (type, name) => type === "TXT" ? resolver.txt(name, signal) : resolver.mx(name, signal),
    records,
  );
}

async function checkWith(
  resolve: (type: "TXT" | "MX", name: string) => Promise<Answers>,
  records: Pick<DnsRecordSpec, "kind" | "type" | "name" | "value">[],
): Promise<CheckedRecord[]> {
  const lookups = new Map<string, Promise<Answers>>();
  const lookup = (type: "TXT" | "MX", name: string) => {
    const k = `${type} ${name}`;
    let p = lookups.get(k);
    if (!p) {
      p = resolve(type, name);
      // Rejections are read below; this keeps an unread one from being reported as unhandled.
      p.catch(() => {});
      lookups.set(k, p);
    }
    return p;
  };
  return await Promise.all(records.map(async (r): Promise<CheckedRecord> => {
    let answers: Answers;
    try {
      answers = await lookup(r.type, r.name);
    } catch (err) {
      return {
        kind: r.kind,
        isVerified: false,
        error: describeFailure(err),
        lookupFailed: true,
        ...(err instanceof LookupCancelledError ? { cancelled: true } : {}),
      };
    }
    const ok = matches(r, answers);
    return ok
      ? { kind: r.kind, isVerified: true, lookupFailed: false }
      : { kind: r.kind, isVerified: false, error: missing(r, answers), lookupFailed: false };
  }));
}

function matches(r: Pick<DnsRecordSpec, "kind" | "value">, answers: Answers) {
  switch (r.kind) {
    case "verification":
      return (answers as string[]).some((t) => t.trim() === r.value);
    case "mx": {
      const host = normHost(r.value.split(" ").pop() ?? "");
      return (answers as MxAnswer[]).some((a) => normHost(a.exchange) === host);
    }
    case "spf": {
      const include = r.value.split(" ").find((p) => p.startsWith("include:"));
      return (answers as string[]).some((t) =>
        /^v=spf1(\s|$)/i.test(t.trim()) &&
        (!include || t.toLowerCase().split(/\s+/).includes(include.toLowerCase()))
      );
    }
    case "dmarc":
      return (answers as string[]).some((t) => /^v=DMARC1\s*(;|$)/i.test(t.trim()));
  }
}

function missing(r: Pick<DnsRecordSpec, "type" | "name">, answers: unknown[]): string {
  return answers.length === 0
    ? `No ${r.type} record found at ${r.name}.`
    : `The ${r.type} records at ${r.name} do not include the expected value.`;
}
