/**
 * Opens the KV the configuration names: a local SQLite file (its folder is created), `:memory:`,
 * a KV Connect URL (self-hosted denokv; the token comes from DENO_KV_ACCESS_TOKEN), or on Deno
 * Deploy with no path, the platform's KV without touching any file system. The KV comes back
 * wrapped so every call retries SQLite's transient lock (store/retrying_kv.ts).
 */
import { revocationCounterKey } from "./keys.ts";
import { retryingKv, retryTransient } from "./retrying_kv.ts";

/**
 * The KV path lies where this process may not read or write (the tasks grant only ./data). The
 * message is one line naming the flags that would allow it.
 */
export class KvPathNotAllowedError extends Error {
  constructor(readonly kvPath: string) {
    const dir = kvFolder(kvPath);
    super(
      `DENO_KV_PATH=${kvPath} is outside what this process may read and write (the tasks allow ` +
        `only ./data): run deno run with --allow-read=${dir} --allow-write=${dir} instead of the ` +
        `task (docs/deploying.md, "A KV file elsewhere"), or put the KV under ./data`,
    );
    this.name = "KvPathNotAllowedError";
  }
}

/**
 * A KV Connect URL this server refuses: plain `http://` to a host that is not this machine would
 * send DENO_KV_ACCESS_TOKEN and every record unencrypted. One line; the token is never named.
 */
export class KvUrlNotAllowedError extends Error {
  constructor(readonly kvUrl: string) {
    super(
      `DENO_KV_PATH=${kvOrigin(kvUrl)} is plain http:// to a host that is not loopback: the ` +
        `access token and every record would cross the network unencrypted; use https:// (or ` +
        `http:// only to 127.0.0.0/8, ::1 or localhost)`,
    );
    this.name = "KvUrlNotAllowedError";
  }
}

/** Whether `kvPath` is a KV Connect URL (http:// or https://). */
export function isKvConnectUrl(kvPath: string | null): boolean {
  return kvPath !== null && /^https?:\/\//i.test(kvPath);
}

/** A KV Connect URL's scheme, host and port only (no credentials, path or query). */
export function kvOrigin(kvUrl: string): string {
  try {
    return new URL(kvUrl).origin;
  } catch {
    return "(an unparsable URL)";
  }
}

/** Whether a URL host is this machine: 127.0.0.0/8, ::1 or localhost. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h.endsWith(".localhost") || h === "::1" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Throws KvUrlNotAllowedError for a plain-http KV Connect URL to a host that is not loopback;
 * `https://` is allowed anywhere.
 */
export function assertKvUrlAllowed(kvUrl: string): void {
  let url: URL;
  try {
    url = new URL(kvUrl);
  } catch {
    throw new KvUrlNotAllowedError(kvUrl);
  }
  if (url.protocol === "https:") return;
  if (url.protocol === "http:" && isLoopbackHost(url.hostname)) return;
  throw new KvUrlNotAllowedError(kvUrl);
}

/** How logs name the KV: the file, `:memory:`, `deno-deploy` or `kv-connect <origin>` (no token). */
export function describeKvPath(kvPath: string | null): string {
  if (kvPath === null) return "deno-deploy";
  if (isKvConnectUrl(kvPath)) return `kv-connect ${kvOrigin(kvPath)}`;
  return kvPath;
}

/**
 * The store's round trip in milliseconds, rounded: the median of `samples` sequential reads of
 * one small key (the revocation counter, which every server polls anyway). A local file answers
 * in well under a millisecond (0); KV Connect and Deploy take a network round trip. The server
 * scales its store-bound thresholds with it (lib/config.ts withStoreRtt).
 */
export async function measureKvRttMs(kv: Deno.Kv, samples = 5): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const started = performance.now();
    await kv.get(revocationCounterKey());
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return Math.round(times[Math.floor(samples / 2)]);
}

/**
 * The round trip the server allows for: measured for a remote store (a KV Connect URL, or Deno
 * Deploy's KV), 0 for a local file or `:memory:` (no network; a loaded machine's slow read must
 * not stretch the thresholds).
 */
export async function storeRttMs(kv: Deno.Kv, kvPath: string | null): Promise<number> {
  return kvPath === null || isKvConnectUrl(kvPath) ? await measureKvRttMs(kv) : 0;
}

/** The folder holding a KV file path (its -wal and -shm files live there too). */
export function kvFolder(kvPath: string): string {
  const slash = kvPath.lastIndexOf("/");
  return slash > 0 ? kvPath.slice(0, slash) : slash === 0 ? "/" : ".";
}

/** Whether `kvPath` names a local SQLite file (not :memory:, a KV Connect URL or Deploy's KV). */
export function isKvFile(kvPath: string | null): kvPath is string {
  return kvPath !== null && kvPath !== ":memory:" && !isKvConnectUrl(kvPath);
}

/**
 * Whether the KV file exists, without creating it (for commands that only read an existing
 * store). Throws KvPathNotAllowedError when the process may not look there.
 */
export async function kvFileExists(kvPath: string): Promise<boolean> {
  try {
    await Deno.stat(kvPath);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    if (err instanceof Deno.errors.NotCapable) throw new KvPathNotAllowedError(kvPath);
    throw err;
  }
}

export async function openKv(kvPath: string | null): Promise<Deno.Kv> {
  try {
    return retryingKv(await open(kvPath));
  } catch (err) {
    if (err instanceof Deno.errors.NotCapable && isKvFile(kvPath)) {
      throw new KvPathNotAllowedError(kvPath);
    }
    throw err;
  }
}

async function open(kvPath: string | null): Promise<Deno.Kv> {
  if (kvPath === null) return await Deno.openKv();
  if (kvPath === ":memory:") return await Deno.openKv(kvPath);
  if (isKvConnectUrl(kvPath)) {
    assertKvUrlAllowed(kvPath);
    return await Deno.openKv(kvPath);
  }
  const slash = kvPath.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(kvPath.slice(0, slash), { recursive: true });
  // Opening a file another process is opening (or writing) at the same moment can meet the lock
  // too: two servers started together on a fresh file did.
  return await retryTransient(() => Deno.openKv(kvPath));
}
