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
] as const;

export type EnvName = (typeof ENV_NAMES)[number];
export type Env = Partial<Record<EnvName, string>>;

export type Config = {
  port: number;
  hostname: string;
  /** null: Deno Deploy's platform KV via `Deno.openKv()`. */
  kvPath: string | null;
  onDeploy: boolean;
  rateLimit: { max: number; windowMs: number; failOpen: boolean };
  /** log2 of scrypt's N. 17 in production (OWASP); tests lower it to stay fast. */
  passwordHashCost: number;
  maxApiKeysPerAccount: number;
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
};

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
    passwordHashCost: int(env, "PASSWORD_HASH_COST", 17, 10, 20),
    maxApiKeysPerAccount: 50,
    logRequests: env.LOG_LEVEL !== "silent",
    requestTimeoutMs: 10_000,
    sessionTtlMs: 7 * 24 * 60 * 60 * 1000,
    signInThrottle: { max: 10, windowMs: 60_000 },
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
