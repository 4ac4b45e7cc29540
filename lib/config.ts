import { parsePublicUrl, parseTrustProxy, type TrustProxy } from "./client.ts";

/**
 * One setting read from the environment. `default` and `meaning` are Markdown: they are the
 * README's configuration table (admin/generate_settings.ts writes it, with the `--allow-env`
 * lists of deno.json's tasks), so this list is the only place a setting is named and explained.
 * `docs`: the page under docs/ that says more.
 */
export type Setting = { name: string; default: string; meaning: string; docs?: string };

/**
 * Every variable the server reads. Only these are read (`readEnv`), so the tasks can grant
 * `--allow-env` for exactly these names. Deno's permission sets in deno.json would name the list
 * once without generating anything, but Deno 2.9.6 prints "Permissions in the config file is an
 * experimental feature" at every start (only `-q`, which hides every other diagnostic, silences
 * it), and a flag added to `-P=<set>` replaces the set's list for that permission instead of
 * adding to it.
 */
export const SETTINGS = [
  {
    name: "PORT",
    default: "`8000`",
    meaning: "port to listen on (`0`: any free port, printed at start-up)",
  },
  {
    name: "HOSTNAME",
    default: "`0.0.0.0`",
    meaning: "interface to listen on; `deno task dev` always listens on `127.0.0.1` only, " +
      "`deno task start` on every interface (`0.0.0.0`) unless set",
  },
  {
    name: "DENO_KV_PATH",
    default: "`./data/kv.sqlite3`",
    meaning: "a SQLite file, `:memory:`, or a KV Connect URL (`https://…`, self-hosted denokv); " +
      "a file outside `./data` needs other permissions than the tasks grant",
    docs: "deploying.md#a-kv-file-elsewhere",
  },
  {
    name: "DENO_KV_ACCESS_TOKEN",
    default: "—",
    meaning: "the token for a KV Connect URL (read by Deno itself, never logged)",
    docs: "deploying.md#self-hosted-denokv-kv-connect",
  },
  {
    name: "DENO_DEPLOYMENT_ID",
    default: "set by Deno Deploy",
    meaning: "on Deploy with no `DENO_KV_PATH`, the platform's KV is opened with `Deno.openKv()` " +
      "and no file system is touched",
    docs: "deploying.md#deno-deploy",
  },
  {
    name: "RATE_LIMIT_MAX",
    default: "`100`",
    meaning: "requests per window per account",
    docs: "rate-limiting.md",
  },
  { name: "RATE_LIMIT_WINDOW_MS", default: "`1000`", meaning: "the window (100–3600000 ms)" },
  {
    name: "RATE_LIMIT_FAIL_OPEN",
    default: "`false`",
    meaning: "admit requests when the rate-limit store cannot answer (the default fails closed " +
      "with a 503)",
    docs: "rate-limiting.md#store-unavailable",
  },
  {
    name: "LOG_LEVEL",
    default: "`info`",
    meaning: "`info` logs a JSON line per request (and the app's warnings); `silent` turns " +
      "that log off, start-up lines excepted. Any other value is refused at start-up",
  },
  {
    name: "PASSWORD_HASH_COST",
    default: "`17`",
    meaning: "log2 of scrypt's N for new password hashes (10–20; 17 = OWASP's figure; tests " +
      "use 10)",
  },
  {
    name: "PASSWORD_HASH_CONCURRENCY",
    default: "the CPU count, capped to fit",
    meaning: "password hashes run at once, process-wide (128 MiB each at cost 17); cost x " +
      "concurrency over 256 MiB is refused at start-up",
    docs: "accounts-and-security.md#passwords-and-sign-in",
  },
  {
    name: "MAX_DOMAINS_PER_ACCOUNT",
    default: "`1000`",
    meaning: "domains one account may hold (1–100,000); past it `POST /api/e2/domains` answers " +
      "403 `DOMAIN_LIMIT_REACHED`, exactly, however many creates race",
    docs: "domains.md",
  },
  {
    name: "MAX_ENDPOINTS_PER_ACCOUNT",
    default: "`50`",
    meaning: "endpoints one account may hold (1–1,000); past it `POST /api/e2/endpoints` " +
      "answers 403 `ENDPOINT_LIMIT_REACHED`, exactly, however many creates race",
    docs: "endpoints-and-addresses.md",
  },
  {
    name: "MAX_EMAIL_ADDRESSES_PER_ACCOUNT",
    default: "`500`",
    meaning: "e-mail addresses one account may hold (1–5,000); past it " +
      "`POST /api/e2/email-addresses` answers 403 `EMAIL_ADDRESS_LIMIT_REACHED`",
    docs: "endpoints-and-addresses.md",
  },
  {
    name: "ALLOW_PRIVATE_WEBHOOK_TARGETS",
    default: "`false`",
    meaning: "`true` lets webhook endpoints target loopback and private addresses (and plain " +
      "`http://` to loopback): for development and tests only; a `warn` line at start-up says so",
    docs: "endpoints-and-addresses.md#webhook-targets",
  },
  {
    name: "TRUST_PROXY",
    default: "unset: trust no proxy",
    meaning: "whose forwarding headers to believe: a hop count (`1`) or your proxies' CIDRs " +
      "(`127.0.0.0/8,::1`)",
    docs: "reverse-proxies.md",
  },
  {
    name: "PUBLIC_URL",
    default: "unset: per request",
    meaning: "the site's origin (`https://api.example.com`): cookie name and `Secure`, the CSRF " +
      "origin, dashboard snippets, OpenAPI `servers`, password-reset and verification links",
    docs: "reverse-proxies.md",
  },
  {
    name: "SMTP_URL",
    default: "unset: links go to the log",
    meaning: "`smtp://user:pass@host:port` (STARTTLS when offered) or `smtps://…` (TLS): where " +
      "password-reset and verification mail goes; never printed",
    docs: "accounts-and-security.md#resetting-a-forgotten-password",
  },
  {
    name: "MAIL_FROM",
    default: "`Inbound <no-reply@localhost>`",
    meaning: "the From of that mail: `no-reply@example.com` or `Name <no-reply@example.com>`",
  },
  {
    name: "AUDIT_RETENTION_DAYS",
    default: "`90`",
    meaning: "how long audit-log events are kept and listed (1–3650 days); older ones are never " +
      "returned and KV drops them later",
    docs: "usage-and-audit.md#audit-log",
  },
  {
    name: "USAGE_FLUSH_MS",
    default: "`60000`",
    meaning: "how often each process writes its per-key usage counts to KV (100–3600000 ms); a " +
      "crash loses at most one interval",
    docs: "usage-and-audit.md#usage",
  },
  {
    name: "EMAIL_VERIFICATION",
    default: "`required` with `SMTP_URL`, else `off`",
    meaning: "`required`: sign-up mails a link, and until it is opened the account can create " +
      "no API keys, add no domains and enrol no second factors",
    docs: "accounts-and-security.md#e-mail-verification-and-who-may-sign-up",
  },
  {
    name: "SIGN_UP",
    default: "`open`",
    meaning: "`closed`: sign-up answers 403 `SIGN_UP_CLOSED`; accounts come from " +
      "`deno task admin user:create`",
  },
  {
    name: "SIGN_UP_EMAIL_DOMAINS",
    default: "unset: any address",
    meaning: "`example.com,example.org`: open sign-up only for addresses at these domains " +
      "(others: 403 `SIGN_UP_DOMAIN_NOT_ALLOWED`)",
  },
  {
    name: "FORWARD_AUTH_RULES",
    default: "unset: `/api/auth/forward` refuses everything",
    meaning:
      "a JSON file of forward-auth rules and operator scopes (`./data/forward-auth.json`), " +
      "validated at start-up",
    docs: "forward-auth.md",
  },
] as const satisfies readonly Setting[];

export type EnvName = (typeof SETTINGS)[number]["name"];

/** The names of `SETTINGS`, in its order. */
export const ENV_NAMES: readonly EnvName[] = SETTINGS.map((s) => s.name);

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
  /** Domains one account may hold (exact under concurrency: store/domains/store.ts I6). */
  maxDomainsPerAccount: number;
  /** MAX_ENDPOINTS_PER_ACCOUNT (exact under concurrency: store/endpoints/store.ts). */
  maxEndpointsPerAccount: number;
  /** MAX_EMAIL_ADDRESSES_PER_ACCOUNT (exact under concurrency: store/email_addresses/store.ts). */
  maxEmailAddressesPerAccount: number;
  /** ALLOW_PRIVATE_WEBHOOK_TARGETS: the SSRF guard lets private targets through (dev, tests). */
  allowPrivateWebhookTargets: boolean;
  /** AUDIT_RETENTION_DAYS: how long audit events are kept and listed (store/audit_log/events.ts). */
  auditRetentionDays: number;
  /** USAGE_FLUSH_MS: how often per-key usage counts are written to KV (routes/usage/recorder.ts). */
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
  /**
   * FORWARD_AUTH_RULES: the path of the forward-auth rules file (auth/forward_auth/rules.ts
   * `loadForwardAuthRules`, called by main.ts and serve.ts), or null: no rules, every
   * `/api/auth/forward` request refused.
   */
  forwardAuthRules: string | null;
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
    maxEndpointsPerAccount: int(env, "MAX_ENDPOINTS_PER_ACCOUNT", 50, 1, 1000),
    maxEmailAddressesPerAccount: int(env, "MAX_EMAIL_ADDRESSES_PER_ACCOUNT", 500, 1, 5000),
    allowPrivateWebhookTargets: bool(env, "ALLOW_PRIVATE_WEBHOOK_TARGETS", false),
    auditRetentionDays: int(env, "AUDIT_RETENTION_DAYS", 90, 1, 3650),
    usageFlushMs: int(env, "USAGE_FLUSH_MS", 60_000, 100, 3_600_000),
    // Two levels only: a value such as "verbose" or "debug" is refused rather than read as "info",
    // so a typo cannot silently leave the log on (or off) against the operator's intent.
    logRequests: oneOf(env, "LOG_LEVEL", ["info", "silent"], "info") === "info",
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
    forwardAuthRules: env.FORWARD_AUTH_RULES || null,
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
