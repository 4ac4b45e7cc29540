/**
 * Opens the KV the configuration names: a local SQLite file (its folder is created), `:memory:`,
 * a KV Connect URL (self-hosted denokv; the token comes from DENO_KV_ACCESS_TOKEN), or on Deno
 * Deploy with no path, the platform's KV without touching any file system. The KV comes back
 * wrapped so every call retries SQLite's transient lock (store/retrying_kv.ts).
 */
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
        `task (README "A KV file elsewhere"), or put the KV under ./data`,
    );
    this.name = "KvPathNotAllowedError";
  }
}

/** The folder holding a KV file path (its -wal and -shm files live there too). */
export function kvFolder(kvPath: string): string {
  const slash = kvPath.lastIndexOf("/");
  return slash > 0 ? kvPath.slice(0, slash) : slash === 0 ? "/" : ".";
}

/** Whether `kvPath` names a local SQLite file (not :memory:, a KV Connect URL or Deploy's KV). */
export function isKvFile(kvPath: string | null): kvPath is string {
  return kvPath !== null && kvPath !== ":memory:" && !/^https?:\/\//.test(kvPath);
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
  if (kvPath === ":memory:" || /^https?:\/\//.test(kvPath)) return await Deno.openKv(kvPath);
  const slash = kvPath.lastIndexOf("/");
  if (slash > 0) await Deno.mkdir(kvPath.slice(0, slash), { recursive: true });
  // Opening a file another process is opening (or writing) at the same moment can meet the lock
  // too: two servers started together on a fresh file did.
  return await retryTransient(() => Deno.openKv(kvPath));
}
