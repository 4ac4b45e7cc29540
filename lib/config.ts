import { parsePublicUrl, parseTrustProxy, type TrustProxy } from "./client.ts";

/**
 * Configuration from the environment. Only the names listed in `ENV_NAMES` are read, so the
 * tasks can grant `--allow-env` for exactly these.
 */
export const ENV_NAMES = [
  "PORT",
  "HOSTNAME",
  "DENO_KV_PATH",
  "DENO_KV_ACCESS_TOKEN",
  "DENO_DEPLOYMENT_ID",
  "RATE_LIMIT_MAX",
  "RATE_LIMIT_WINDOW_MS",
  "RATE_LIMIT_FAIL_OPEN",
  "LOG_LEVEL",
  "PASSWORD_HASH_COST",
  "PASSWORD_HASH_CONCURRENCY",
  "MAX_DOMAINS_PER_ACCOUNT",
  "TRUST_PROXY",
  "PUBLIC_URL",
  "SMTP_URL",
  "MAIL_FROM",
  "AUDIT_RETENTION_DAYS",
  "USAGE_FLUSH_MS",
  "EMAIL_VERIFICATION",
  "SIGN_UP",
  "SIGN_UP_EMAIL_DOMAINS",
] as const;

export type EnvName = (typeof ENV_NAMES)[number];
export type Env = Partial<Record<EnvName, string>>;

export type Config = {
  port: number;
  hostname: string;
  /** null: Deno Deploy's platform KV via `Deno.openKv()`. */
  kvPath: string | null;
  onDeploy: boolean;
  /**
   * `storeRttMs`: the store's measured round trip (withStoreRtt), which the limiter's lease
   * timeout allows for; absent means a local store.
   */
  rateLimit: { max: number; windowMs: number; failOpen: boolean; storeRttMs?: number };
  /** log2 of scrypt's N. 17 in production (OWASP); tests lower it to stay fast. */
  passwordHashCost: number;
  /**
   * Password hashes running at once, process-wide. Worst-case hashing memory is this times
   * `passwordHashMemoryBytes(passwordHashCost)`, at most `MAX_PASSWORD_HASH_MEMORY_BYTES`.
   */
  passwordHashConcurrency: number;
  /**
   * The queue in front of them: at most `perAddress` sign-ins/sign-ups in flight or waiting per
   * client address (more: 429), at most `max` waiting (more: 503 SERVER_BUSY), each for at most
   * `waitMs` (then 503). 4 s: at cost 17 one hash takes ~0.7 s alone and ~1.4 s two at a time
   * on 2 cores, so a queue of 8 mostly drains in time, and wait plus hash stays far inside the
   * 10 s `requestTimeoutMs`.
   */
  passwordHashQueue: { perAddress: number; max: number; waitMs: number };
  maxApiKeysPerAccount: number;
  /** Domains one account may hold (exact under concurrency: store/domains.ts I6). */
  maxDomainsPerAccount: number;
  /** AUDIT_RETENTION_DAYS: how long audit events are kept and listed (store/audit.ts). */
  auditRetentionDays: number;
  /** USAGE_FLUSH_MS: how often per-key usage counts are written to KV (auth/usage.ts). */
  usageFlushMs: number;
  logRequests: boolean;
  /**
   * How long a request may take before it is answered with a 500 and its request id, so a
   * stalled store cannot hold connections open forever.
   */
  requestTimeoutMs: number;
  /** Dashboard sessions: lifetime of a session cookie and its server-side record. */
  sessionTtlMs: number;
  /** Sign-in (and sign-up) attempts admitted per IP and per email in each window. */
  signInThrottle: { max: number; windowMs: number };
  /** Which peers' forwarding headers are believed (lib/client.ts); none by default. */
  trustProxy: TrustProxy;
  /** The origin of `PUBLIC_URL` (cookies, CSRF origin, snippets, OpenAPI servers), or null. */
  publicUrl: string | null;
  /**
   * Where password-reset mail goes (lib/mailer.ts): an SMTP server, or null to write the link to
   * the server log (development only). Holds credentials: never log it, never put it in an error.
   */
  smtp: SmtpConfig | null;
  /** The From address of mail the server sends (`MAIL_FROM`). */
  mailFrom: string;
  /**
   * EMAIL_VERIFICATION: "required" (the default when SMTP_URL is set) keeps an account from
   * creating API keys, adding domains or enrolling second factors until it proved its address
   * (auth/email_verification.ts); "off" (the default without SMTP) only records it.
   */
  emailVerification: EmailVerificationMode;
  /**
   * SIGN_UP ("open" by default, or "closed": accounts then come from `admin user:create`) and
   * SIGN_UP_EMAIL_DOMAINS (open sign-up only for addresses at these domains; null: any).
   */
  signUp: SignUpPolicy;
};

export type EmailVerificationMode = "required" | "off";

export type SignUpPolicy = { open: boolean; emailDomains: string[] | null };

/** `SMTP_URL` parsed: `smtp://user:pass@host:port` (STARTTLS when offered), `smtps://` (TLS). */
export type SmtpConfig = {
  host: string;
  port: number;
  secure: boolean;
  user: string | null;
  pass: string | null;
};

/**
 * Parses `SMTP_URL`. Errors name the variable and the rule, never the value (it carries the
 * password).
 */
export function parseSmtpUrl(raw: string | undefined): SmtpConfig | null {
  if (raw === undefined || raw === "") return null;
  const bad = (why: string) => new ConfigError(`SMTP_URL ${why} (the value is not shown)`);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw bad("must be a URL: smtp://user:pass@host:port or smtps://user:pass@host:port");
  }
  if (u.protocol !== "smtp:" && u.protocol !== "smtps:") {
    throw bad("must start with smtp:// or smtps://");
  }
  if (!u.hostname) throw bad("must name a host");
  if ((u.pathname && u.pathname !== "/") || u.search || u.hash) {
    throw bad("must have no path, query or fragment");
  }
  const secure = u.protocol === "smtps:";
  const decode = (s: string) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw bad("has a malformed percent-encoding in its user or password");
    }
  };
  return {
    host: u.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: u.port ? Number(u.port) : secure ? 465 : 587,
    secure,
    user: u.username ? decode(u.username) : null,
    pass: u.password ? decode(u.password) : null,
  };
}

const MAIL_FROM_RE = /^[^\s@<>"]{1,64}@[^\s@<>"]{1,253}$/;

function mailFrom(env: Env): string {
  const raw = env.MAIL_FROM;
  if (raw === undefined || raw === "") return "Inbound <no-reply@localhost>";
  const m = /^\s*(?:([^<>"\r\n]{0,100}?)\s*<([^<>]+)>|([^<>]+))\s*$/.exec(raw);
  const address = m ? (m[2] ?? m[3]).trim() : "";
  if (!m || !MAIL_FROM_RE.test(address) || /[\r\n]/.test(raw)) {
    throw new ConfigError(
      `MAIL_FROM must be an address (no-reply@example.com or "Name <no-reply@example.com>"), got "${raw}"`,
    );
  }
  return raw.trim();
}

function oneOf<T extends string>(env: Env, name: EnvName, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = raw.trim().toLowerCase();
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got "${raw}"`);
  }
  return value as T;
}

const EMAIL_DOMAIN_RE = /^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/;

/** SIGN_UP and SIGN_UP_EMAIL_DOMAINS (comma-separated domain names, case-insensitive). */
function signUpPolicy(env: Env): SignUpPolicy {
  const open = oneOf(env, "SIGN_UP", ["open", "closed"], "open") === "open";
  const raw = env.SIGN_UP_EMAIL_DOMAINS;
  if (raw === undefined || raw.trim() === "") return { open, emailDomains: null };
  const domains = raw.split(",").map((d) => d.trim().toLowerCase()).filter((d) => d !== "");
  for (const d of domains) {
    if (!EMAIL_DOMAIN_RE.test(d)) {
      throw new ConfigError(
        `SIGN_UP_EMAIL_DOMAINS must be domain names separated by commas ` +
          `(example.com,example.org), got "${d}"`,
      );
    }
  }
  return { open, emailDomains: domains };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

function int(env: Env, name: EnvName, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

function bool(env: Env, name: EnvName, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  if (/^(1|true|yes)$/i.test(raw)) return true;
  if (/^(0|false|no)$/i.test(raw)) return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

/** The most memory password hashing may use at once (concurrency x per-hash memory). */
export const MAX_PASSWORD_HASH_MEMORY_BYTES = 256 * 2 ** 20;

/** scrypt's working memory at r = 8: 128 * N * r bytes, 128 MiB at cost 17. */
export function passwordHashMemoryBytes(cost: number): number {
  return 128 * 8 * 2 ** cost;
}

const mib = (bytes: number) => bytes / 2 ** 20;

/**
 * The cost, and a concurrency whose worst case fits the memory bound: by default the number of
 * CPUs, capped to what fits; an explicit value or a cost that does not fit is refused.
 */
function passwordHashing(env: Env): { cost: number; concurrency: number } {
  const cost = int(env, "PASSWORD_HASH_COST", 17, 10, 20);
  const perHash = passwordHashMemoryBytes(cost);
  const fits = Math.floor(MAX_PASSWORD_HASH_MEMORY_BYTES / perHash);
  const bound = `the ${mib(MAX_PASSWORD_HASH_MEMORY_BYTES)} MiB bound on hashing memory`;
  if (fits < 1) {
    throw new ConfigError(
      `PASSWORD_HASH_COST ${cost} needs ${mib(perHash)} MiB per hash, over ${bound}; use at most ${
        Math.log2(MAX_PASSWORD_HASH_MEMORY_BYTES / passwordHashMemoryBytes(0))
      }`,
    );
  }
  const cpus = Math.max(1, navigator.hardwareConcurrency || 1);
  const concurrency = int(env, "PASSWORD_HASH_CONCURRENCY", Math.min(cpus, fits), 1, 256);
  if (concurrency > fits) {
    throw new ConfigError(
      `PASSWORD_HASH_CONCURRENCY ${concurrency} x ${mib(perHash)} MiB per hash ` +
        `(PASSWORD_HASH_COST ${cost}) is ${
          mib(concurrency * perHash)
        } MiB, over ${bound}; use at most ${fits}`,
    );
  }
  return { cost, concurrency };
}

/** A lib/client.ts parser's RangeError as a ConfigError naming the variable. */
function parsed<T>(name: EnvName, env: Env, parse: (raw: string | undefined) => T): T {
  try {
    return parse(env[name]);
  } catch (err) {
    if (err instanceof RangeError) throw new ConfigError(`${name} ${err.message}`);
    throw err;
  }
}

export function readEnv(): Env {
  const env: Env = {};
  for (const name of ENV_NAMES) {
    const value = Deno.env.get(name);
    if (value !== undefined) env[name] = value;
  }
  return env;
}

export function loadConfig(env: Env): Config {
  const onDeploy = Boolean(env.DENO_DEPLOYMENT_ID);
  const kvPath = env.DENO_KV_PATH || (onDeploy ? null : "./data/kv.sqlite3");
  const hashing = passwordHashing(env);
  const smtp = parseSmtpUrl(env.SMTP_URL);
  return {
    port: int(env, "PORT", 8000, 0, 65535),
    hostname: env.HOSTNAME || "0.0.0.0",
    kvPath,
    onDeploy,
    rateLimit: {
      max: int(env, "RATE_LIMIT_MAX", 100, 1, 1_000_000_000),
      windowMs: int(env, "RATE_LIMIT_WINDOW_MS", 1000, 100, 3_600_000),
      failOpen: bool(env, "RATE_LIMIT_FAIL_OPEN", false),
    },
    passwordHashCost: hashing.cost,
    passwordHashConcurrency: hashing.concurrency,
    passwordHashQueue: { perAddress: 1, max: 4 * hashing.concurrency, waitMs: 4000 },
    maxApiKeysPerAccount: 50,
    maxDomainsPerAccount: int(env, "MAX_DOMAINS_PER_ACCOUNT", 1000, 1, 100_000),
    auditRetentionDays: int(env, "AUDIT_RETENTION_DAYS", 90, 1, 3650),
    usageFlushMs: int(env, "USAGE_FLUSH_MS", 60_000, 100, 3_600_000),
    logRequests: env.LOG_LEVEL !== "silent",
    requestTimeoutMs: 10_000,
    sessionTtlMs: 7 * 24 * 60 * 60 * 1000,
    signInThrottle: { max: 10, windowMs: 60_000 },
    trustProxy: parsed("TRUST_PROXY", env, parseTrustProxy),
    publicUrl: parsed("PUBLIC_URL", env, parsePublicUrl),
    smtp,
    mailFrom: mailFrom(env),
    emailVerification: oneOf(
      env,
      "EMAIL_VERIFICATION",
      ["required", "off"],
      smtp ? "required" : "off",
    ),
    signUp: signUpPolicy(env),
  };
}

/**
 * Round trips to the store a request's deadline allows for on top of `requestTimeoutMs`: twice the
 * limiter's lease allowance (auth/rate_limit.ts LEASE_ROUND_TRIPS, 32), so the handler's own reads
 * and commits (a domain create: about 7 sequential round trips an attempt) fit after the longest
 * lease wait, and the deadline's margin over the lease timeout only grows with the round trip.
 */
export const REQUEST_DEADLINE_ROUND_TRIPS = 64;

/**
 * The configuration for a store whose round trip was measured as `rttMs` (store/open.ts
 * measureKvRttMs, at start-up): the thresholds that wait for the store grow with it, so a remote
 * KV's latency is not mistaken for a stalled store (the limiter's 503, the deadline's 500). A
 * local file (0 ms) keeps the configured values.
 */
export function withStoreRtt(config: Config, rttMs: number): Config {
  const rtt = Math.max(0, Math.round(rttMs));
  return {
    ...config,
    rateLimit: { ...config.rateLimit, storeRttMs: rtt },
    requestTimeoutMs: config.requestTimeoutMs + REQUEST_DEADLINE_ROUND_TRIPS * rtt,
  };
}

/** Defaults for tests: cheap password hashing, quiet logs. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return {
    ...loadConfig({}),
    kvPath: ":memory:",
    passwordHashCost: 10,
    logRequests: false,
    ...overrides,
  };
}
