/**
 * One-time flashes: what a dashboard POST wants the page after its redirect to show once (the
 * new API key of Post/Redirect/Get). Stored under the account's prefix with its expiry in the
 * value (checked on read; `expireIn` only cleans up), referenced by an opaque id, and taken with
 * a read-and-delete in one checked commit, so it is shown at most once.
 */
import type { Clock } from "../lib/clock.ts";
import { newId } from "../lib/crypto.ts";
import { flashKey } from "./keys.ts";

export const FLASH_TTL_MS = 2 * 60_000;
const FLASH_ID = /^fl_[0-9A-Za-z]{22}$/;

type Stored<T> = { data: T; expiresAtMs: number };

export function flashStore(kv: Deno.Kv, userId: string, clock: Clock) {
  return {
    /** Stores `data` for FLASH_TTL_MS and returns the id to put in the redirect URL. */
    async put<T>(data: T): Promise<string> {
      const id = newId("fl");
      const value: Stored<T> = { data, expiresAtMs: clock() + FLASH_TTL_MS };
      const res = await kv.atomic()
        .check({ key: flashKey(userId, id), versionstamp: null })
        .set(flashKey(userId, id), value, { expireIn: FLASH_TTL_MS })
        .commit();
      if (!res.ok) throw new Error("flash id collision");
      return id;
    },

    /** The flash once: read and deleted in one checked commit; null if absent, expired or taken. */
    async take<T>(id: string): Promise<T | null> {
      if (!FLASH_ID.test(id)) return null;
      const entry = await kv.get<Stored<T>>(flashKey(userId, id));
      if (entry.versionstamp === null) return null;
      const res = await kv.atomic().check(entry).delete(entry.key).commit();
      if (!res.ok) return null;
      return entry.value.expiresAtMs > clock() ? entry.value.data : null;
    },
  };
}

export type FlashStore = ReturnType<typeof flashStore>;
