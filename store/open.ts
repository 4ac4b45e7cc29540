/**
 * Opens the KV the configuration names: a local SQLite file (its folder is created), `:memory:`,
 * a KV Connect URL (self-hosted denokv; the token comes from DENO_KV_ACCESS_TOKEN), or on Deno
 * Deploy with no path, the platform's KV without touching any file system. The KV comes back
 * wrapped so every call retries SQLite's transient lock (store/retrying_kv.ts).
 */
import { retryingKv, retryTransient } from "./retrying_kv.ts";

export async function openKv(kvPath: string | null): Promise<Deno.Kv> {
  return retryingKv(await open(kvPath));
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
