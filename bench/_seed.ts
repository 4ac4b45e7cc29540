/** For the auth benchmarks: accounts with plain keys and scoped, IP-restricted keys. */
import { hashPassword } from "../auth/passwords/hash.ts";
import { issueApiKey } from "../auth/api_keys/issue.ts";
import { sessionCookieName, sessionManager } from "../auth/sessions/manager.ts";
import { systemClock } from "../lib/clock.ts";
import { tenantStore } from "../store/tenant.ts";
import { createUser } from "../store/accounts/users.ts";

/** A key and the account it belongs to (the unauthenticated baseline is told the account). */
export type SeededKey = { key: string; userId: string };

/**
 * `accounts` accounts holding `keys` plain keys and (unless `scoped: false`) `keys` keys scoped to
 * `domains:read` and restricted to 127.0.0.1/32, spread evenly; each list shuffled so that
 * consecutive requests hit different accounts.
 */
export async function seedKeys(
  kv: Deno.Kv,
  accounts: number,
  keys: number,
  opts: { scoped?: boolean } = {},
): Promise<{ plain: SeededKey[]; scoped: SeededKey[] }> {
  const scopedKeys = opts.scoped === false ? 0 : keys;
  const perAccount = Math.ceil(keys / accounts);
  if (perAccount > 50) throw new Error("at most 50 keys per account: raise --accounts");
  const plain: SeededKey[] = [];
  const scoped: SeededKey[] = [];
  const passwordHash = await hashPassword("bench password, never used to sign in", 10);
  await Promise.all(Array.from({ length: accounts }, async (_, a) => {
    const user = await createUser(kv, {
      email: `bench-${a}-${crypto.randomUUID()}@example.com`,
      passwordHash,
      nowMs: systemClock(),
    });
    // Twice the usual keys: the plain ones and the scoped, IP-restricted ones.
    const store = tenantStore(kv, user.id, systemClock, { maxApiKeys: 100 });
    for (let k = 0; k < perAccount && plain.length < keys; k++) {
      const { key } = await issueApiKey(store.apiKeys, {
        name: `bench ${k}`,
        nowMs: systemClock(),
      });
      plain.push({ key, userId: user.id });
    }
    for (let k = 0; k < perAccount && scoped.length < scopedKeys; k++) {
      const { key } = await issueApiKey(store.apiKeys, {
        name: `bench scoped ${k}`,
        nowMs: systemClock(),
        grant: { scopes: ["domains:read"], allowedIps: ["127.0.0.1/32"] },
      });
      scoped.push({ key, userId: user.id });
    }
  }));
  plain.sort(() => Math.random() - 0.5);
  scoped.sort(() => Math.random() - 0.5);
  return { plain, scoped };
}

/** Writes keys as the wrk scripts read them: a line `<key> <userId>` each, readable by owner only. */
export async function writeKeysFile(path: string, keys: SeededKey[]): Promise<void> {
  await Deno.writeTextFile(path, keys.map((k) => `${k.key} ${k.userId}\n`).join(""), {
    mode: 0o600,
  });
}

/**
 * One signed-in browser session per account of `userIds`, as `<cookie> <userId>` pairs for the
 * wrk scripts (BENCH_AUTH=cookie): the session cookie a loopback http:// site is given.
 */
export async function seedSessions(kv: Deno.Kv, userIds: string[]): Promise<SeededKey[]> {
  const sessions = sessionManager({ kv, clock: systemClock, ttlMs: 7 * 86_400_000 });
  const name = sessionCookieName("http://127.0.0.1/");
  const out: SeededKey[] = [];
  for (const userId of userIds) {
    const { token } = await sessions.start(userId);
    out.push({ key: `${name}=${token}`, userId });
  }
  return out;
}
