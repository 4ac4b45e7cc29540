/**
 * The verified-key cache across real server processes sharing one KV file: `kv.watch` does not
 * fire across processes on a local SQLite file, so each process polls the revocation counter; a
 * key deleted elsewhere is refused by every process within 1 second.
 */
import { retryingKv } from "../../store/retrying_kv.ts";
import assert from "node:assert/strict";
import { systemClock } from "../../lib/clock.ts";
import { apiKeyStore } from "../../store/api_keys.ts";
import {
  bearer,
  createAccountWithKey,
  removeKvFile,
  type ServerProcess,
  startServer,
  tempKvPath,
} from "../_helpers.ts";

async function status(server: ServerProcess, key: string): Promise<number> {
  const res = await fetch(`${server.url}/api/e2/domains`, bearer(key));
  await res.body?.cancel();
  return res.status;
}

Deno.test("a key deleted by another process is refused by both servers within 1 second", async (t) => {
  const path = await tempKvPath();
  const kv = retryingKv(await Deno.openKv(path)); // servers write the same file: retry SQLite's lock
  const env = { DENO_KV_PATH: path, LOG_LEVEL: "silent", RATE_LIMIT_MAX: "1000" };
  const servers: ServerProcess[] = [];
  try {
    const account = await createAccountWithKey(kv, systemClock);
    const keep = await createAccountWithKey(kv, systemClock);
    servers.push(...await Promise.all([startServer(env), startServer(env)]));

    await t.step("both servers accept the key (and cache it)", async () => {
      for (let i = 0; i < 5; i++) {
        for (const s of servers) assert.equal(await status(s, account.key), 200);
      }
    });

    await t.step("a third process deletes it; 1 second later both refuse it", async () => {
      await apiKeyStore(kv, account.userId, systemClock).delete(account.keyId);
      await new Promise((r) => setTimeout(r, 1000));
      for (const s of servers) assert.equal(await status(s, account.key), 401);
    });

    await t.step("other keys are unaffected", async () => {
      for (const s of servers) assert.equal(await status(s, keep.key), 200);
    });
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    kv.close();
    await removeKvFile(path);
  }
});
