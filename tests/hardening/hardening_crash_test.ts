/**
 * Crash safety (issue 6): the real server is killed with SIGKILL while many writes are in flight,
 * restarted on the same KV file, and `deno task admin verify` must find no orphan and no wrong
 * count; every write that was acknowledged (2xx received) must be there and usable, and every
 * acknowledged delete must be gone.
 *
 * Writes go through every write endpoint the server has (WRITE_DRIVERS): creates (domain, API
 * key, sign-up), updates (domain PATCH, key roll) and deletes (domain, key), so updates and
 * deletes are cut mid-flight as well as creates. Updates and deletes act on records seeded before
 * the server starts, each record used by one write only, so its expected final state is known.
 * Adding a new kind of write is one entry in that table. Every driver must answer a probe with a
 * 2xx before the kills, and must have writes acknowledged during the run (nothing is skipped).
 */
import assert from "node:assert/strict";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { tenantStore } from "../../store/tenant.ts";
import {
  createAccountWithKey,
  removeKvFile,
  runAdminCli,
  type ServerProcess,
  startServer,
  tempKvPath,
  TEST_PASSWORD,
} from "../_helpers.ts";
import { seedSession, seedVerifiedDomain, Tally } from "../_hardening.ts";
import { json } from "../sessions_helpers.ts";
import { seedEndpoint } from "../endpoints/_seed.ts";

/** A key seeded for a roll or a delete. */
type PoolKey = { id: string; key: string };

/** A seeded account, and the records it holds for the update and delete drivers to consume. */
type Account = {
  userId: string;
  key: string;
  cookie: string;
  pool: {
    patchDomains: string[];
    /** Real endpoints for the catch-all updates (issue 23), one per update. */
    endpoints: string[];
    deleteDomains: string[];
    rollKeys: PoolKey[];
    deleteKeys: PoolKey[];
  };
};

/** An acknowledged write and how to check, after the crash, that it is there (or gone). */
type Acked = { what: string; check(url: string): Promise<boolean> };

type WriteDriver = {
  name: string;
  /** False while the driver has nothing to act on for `a` (its pool is used up, or throttled). */
  ready(a: Account): boolean;
  /** One write; resolves to the acknowledged write, or null when refused (4xx). */
  write(url: string, a: Account, n: number, signal: AbortSignal): Promise<Acked | null>;
};

/** The status of a GET with the given headers (the body is discarded). */
async function statusOf(url: string, headers: Record<string, string>): Promise<number> {
  const res = await fetch(url, { headers });
  await res.body?.cancel();
  return res.status;
}

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });

/** Whether `key` authenticates (200) on the domain list. */
async function keyWorks(url: string, key: string): Promise<number> {
  return await statusOf(`${url}/api/e2/domains?limit=1`, bearer(key));
}

let signUpThrottledUntil = 0;

const WRITE_DRIVERS: WriteDriver[] = [
  {
    name: "domain create (POST /api/e2/domains, Bearer)",
    ready: () => true,
    async write(url, a, n, signal) {
      const domain = `crash-${n}-${crypto.randomUUID().slice(0, 8)}.com`;
      const res = await fetch(`${url}/api/e2/domains`, {
        ...json({ domain }, { headers: bearer(a.key) }),
        signal,
      });
      const body = await res.json();
      if (res.status !== 201) return null;
      return {
        what: `created domain ${domain}`,
        check: async (u) => await statusOf(`${u}/api/e2/domains/${body.id}`, bearer(a.key)) === 200,
      };
    },
  },
  {
    name: "API key create (POST /api/e2/api-keys, session)",
    ready: () => true,
    async write(url, a, n, signal) {
      const res = await fetch(`${url}/api/e2/api-keys`, {
        ...json({ name: `crash ${n}` }, { headers: { Cookie: a.cookie } }),
        signal,
      });
      const body = await res.json();
      if (res.status !== 201) return null;
      return {
        what: `created API key ${body.id}`,
        check: async (u) => await keyWorks(u, body.key) === 200,
      };
    },
  },
  {
    name: "sign-up (POST /api/auth/sign-up)",
    // Sign-ups are throttled per IP (10 a minute): after a 429, wait for the window to pass.
    ready: () => Date.now() >= signUpThrottledUntil,
    async write(url, _a, n, signal) {
      const email = `crash-${n}-${crypto.randomUUID().slice(0, 8)}@example.com`;
      const res = await fetch(`${url}/api/auth/sign-up`, {
        ...json({ email, password: TEST_PASSWORD }),
        signal,
      });
      const body = await res.json();
      if (res.status === 429) {
        signUpThrottledUntil = Date.now() + Number(res.headers.get("Retry-After") ?? "60") * 1000;
      }
      if (res.status !== 201) return null;
      const cookie = res.headers.get("Set-Cookie")!.split(";")[0];
      return {
        what: `signed-up account ${email}`,
        check: async (u) => {
          const r = await fetch(`${u}/api/auth/session`, { headers: { Cookie: cookie } });
          const s = await r.json();
          return r.status === 200 && s.user?.id === body.user.id && s.user?.email === email;
        },
      };
    },
  },
  {
    name: "domain update (PATCH /api/e2/domains/:id, Bearer)",
    ready: (a) => a.pool.patchDomains.length > 0,
    async write(url, a, n, signal) {
      const id = a.pool.patchDomains.pop()!;
      const k = a.pool.endpoints.length;
      const endpoint = a.pool.endpoints[((n % k) + k) % k]; // the probe's n is -1
      const res = await fetch(`${url}/api/e2/domains/${id}`, {
        ...json({ isCatchAllEnabled: true, catchAllEndpointId: endpoint }, {
          method: "PATCH",
          headers: bearer(a.key),
        }),
        signal,
      });
      await res.body?.cancel();
      if (res.status !== 200) return null;
      return {
        what: `catch-all update of domain ${id}`,
        check: async (u) => {
          const r = await fetch(`${u}/api/e2/domains/${id}`, { headers: bearer(a.key) });
          const d = await r.json();
          return r.status === 200 && d.isCatchAllEnabled === true &&
            d.catchAllEndpointId === endpoint;
        },
      };
    },
  },
  {
    name: "domain delete (DELETE /api/e2/domains/:id, Bearer)",
    ready: (a) => a.pool.deleteDomains.length > 0,
    async write(url, a, _n, signal) {
      const id = a.pool.deleteDomains.pop()!;
      const res = await fetch(`${url}/api/e2/domains/${id}`, {
        method: "DELETE",
        headers: bearer(a.key),
        signal,
      });
      await res.body?.cancel();
      if (res.status !== 200) return null;
      return {
        what: `deletion of domain ${id}`,
        check: async (u) => await statusOf(`${u}/api/e2/domains/${id}`, bearer(a.key)) === 404,
      };
    },
  },
  {
    name: "API key roll (POST /api/e2/api-keys/:id/roll, session)",
    ready: (a) => a.pool.rollKeys.length > 0,
    async write(url, a, _n, signal) {
      const old = a.pool.rollKeys.pop()!;
      const res = await fetch(`${url}/api/e2/api-keys/${old.id}/roll`, {
        ...json({ expiresInHours: 0 }, { headers: { Cookie: a.cookie } }),
        signal,
      });
      const body = await res.json();
      if (res.status !== 201) return null;
      return {
        what: `roll of API key ${old.id}`,
        check: async (u) =>
          await keyWorks(u, body.key) === 200 && await keyWorks(u, old.key) === 401,
      };
    },
  },
  {
    name: "API key delete (DELETE /api/e2/api-keys/:id, session)",
    ready: (a) => a.pool.deleteKeys.length > 0,
    async write(url, a, _n, signal) {
      const k = a.pool.deleteKeys.pop()!;
      const res = await fetch(`${url}/api/e2/api-keys/${k.id}`, {
        method: "DELETE",
        headers: { Cookie: a.cookie },
        signal,
      });
      await res.body?.cancel();
      if (res.status !== 200) return null;
      return {
        what: `deletion of API key ${k.id}`,
        check: async (u) => await keyWorks(u, k.key) === 401,
      };
    },
  },
];

/** Records per account for each update/delete driver: enough for the probe and three cycles. */
const POOL_SIZE = 8;

async function seedAccounts(path: string, n: number): Promise<Account[]> {
  const kv = await Deno.openKv(path);
  const clock = () => Date.now();
  const out: Account[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const a = await createAccountWithKey(kv, clock);
      const { cookie } = await seedSession(kv, a.userId, clock);
      const store = tenantStore(kv, a.userId, clock);
      const domains: string[] = [];
      for (let d = 0; d < 2 * POOL_SIZE; d++) {
        const name = `seed-${i}-${d}-${crypto.randomUUID().slice(0, 8)}.com`;
        domains.push((await seedVerifiedDomain(kv, a.userId, clock, name)).id);
      }
      const endpoints: string[] = [];
      for (let e = 0; e < POOL_SIZE; e++) endpoints.push(await seedEndpoint(kv, a.userId, clock));
      const keys: PoolKey[] = [];
      for (let k = 0; k < 2 * POOL_SIZE; k++) {
        const issued = await issueApiKey(store.apiKeys, { name: `seed ${k}`, nowMs: clock() });
        keys.push({ id: issued.record.id, key: issued.key });
      }
      out.push({
        userId: a.userId,
        key: a.key,
        cookie,
        pool: {
          patchDomains: domains.slice(0, POOL_SIZE),
          endpoints,
          deleteDomains: domains.slice(POOL_SIZE),
          rollKeys: keys.slice(0, POOL_SIZE),
          deleteKeys: keys.slice(POOL_SIZE),
        },
      });
    }
  } finally {
    kv.close();
  }
  return out;
}

const ENV = (path: string) => ({ DENO_KV_PATH: path, RATE_LIMIT_MAX: "1000000" });

async function verify(path: string): Promise<{ ok: boolean; text: string }> {
  const r = await runAdminCli(["verify"], { DENO_KV_PATH: path });
  let ok = false;
  try {
    ok = r.code === 0 && JSON.parse(r.stdout).ok === true;
  } catch { /* not JSON: not ok */ }
  return { ok, text: `exit ${r.code}\n${r.stdout.slice(0, 3000)}\n${r.stderr.slice(0, 500)}` };
}

Deno.test("SIGKILL during concurrent creates, updates and deletes loses no acknowledged write and leaves no orphan or wrong count", async () => {
  const path = await tempKvPath();
  const tally = new Tally("crash");
  const accounts = await seedAccounts(path, 16);
  let server: ServerProcess | null = await startServer(ENV(path), { direct: true });
  const acked: Acked[] = [];
  const ackedBy = new Map<string, number>(WRITE_DRIVERS.map((d) => [d.name, 0]));
  const inFlightAtKills = new Map<string, number>(WRITE_DRIVERS.map((d) => [d.name, 0]));
  try {
    // Every driver must work before the kills: a broken endpoint would make the run vacuous.
    for (const d of WRITE_DRIVERS) {
      const result = await d.write(server.url, accounts[0], -1, AbortSignal.timeout(10_000))
        .catch((err) => err as Error);
      const ok = result !== null && !(result instanceof Error) && await result.check(server.url);
      tally.record(`probe: ${d.name} acknowledges a write`, ok ? [] : [`probe gave ${result}`]);
    }

    for (let cycle = 0; cycle < 3; cycle++) {
      const url = server!.url;
      const controller = new AbortController();
      let n = 0, lost = 0, failedBeforeKill = 0;
      let killing = false;
      const inFlight = new Map<string, number>(WRITE_DRIVERS.map((d) => [d.name, 0]));
      const ackedThisCycle: { driver: string; acked: Acked }[] = [];
      const worker = async (w: number) => {
        while (!controller.signal.aborted) {
          const i = n++;
          const a = accounts[(w + i) % accounts.length];
          const wanted = WRITE_DRIVERS[i % WRITE_DRIVERS.length];
          const d = wanted.ready(a) ? wanted : WRITE_DRIVERS[0];
          inFlight.set(d.name, inFlight.get(d.name)! + 1);
          try {
            const result = await d.write(url, a, i, controller.signal);
            if (result) ackedThisCycle.push({ driver: d.name, acked: result });
          } catch {
            if (!killing) failedBeforeKill++;
            else {
              lost++; // cut off by the kill: not acknowledged
              break;
            }
          } finally {
            inFlight.set(d.name, inFlight.get(d.name)! - 1);
          }
        }
      };
      const workers = Array.from({ length: 24 }, (_, w) => worker(w));
      // Kill once writes are flowing, at a different moment each cycle.
      const target = 30 + cycle * 40;
      const deadline = Date.now() + 20_000;
      while (ackedThisCycle.length < target && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const atKill = new Map(inFlight);
      killing = true;
      const status = await server!.stop("SIGKILL");
      server = null;
      controller.abort();
      await Promise.all(workers);
      for (const { driver, acked: x } of ackedThisCycle) {
        acked.push(x);
        ackedBy.set(driver, ackedBy.get(driver)! + 1);
      }
      for (const [name, count] of atKill) {
        inFlightAtKills.set(name, inFlightAtKills.get(name)! + count);
      }

      const p: string[] = [];
      if (status.signal !== "SIGKILL") p.push(`server ended with ${JSON.stringify(status)}`);
      const total = [...atKill.values()].reduce((x, y) => x + y, 0);
      if (total === 0) p.push("nothing was in flight at the kill");
      if (failedBeforeKill) p.push(`${failedBeforeKill} requests failed before the kill`);
      console.log(
        `hardening/crash: cycle ${cycle}: ${ackedThisCycle.length} acknowledged, ${total} in ` +
          `flight at SIGKILL (${
            [...atKill].map(([k, v]) => `${k.split(" (")[0]} ${v}`).join(", ")
          }), ` +
          `${lost} lost with the connection`,
      );

      server = await startServer(ENV(path), { direct: true });
      const v = await verify(path);
      if (!v.ok) p.push(`verify after restart: ${v.text}`);
      tally.record(`cycle ${cycle}: kill, restart, verify`, p);
    }

    const missing: string[] = [];
    for (const a of acked) if (!(await a.check(server!.url))) missing.push(a.what);
    tally.record(
      `all ${acked.length} acknowledged writes present (and deletes absent) after the crashes`,
      missing.length ? [`not as acknowledged: ${missing.slice(0, 10).join(", ")}`] : [],
    );
    for (const d of WRITE_DRIVERS) {
      const count = ackedBy.get(d.name)!;
      tally.record(`${d.name}: writes acknowledged during the kill cycles`, count ? [] : ["none"]);
    }
    const updatesAndDeletes = WRITE_DRIVERS.slice(3).reduce(
      (s, d) => s + inFlightAtKills.get(d.name)!,
      0,
    );
    tally.record(
      "updates and deletes were cut mid-flight by the kills",
      updatesAndDeletes > 0 ? [] : ["no update or delete was in flight at any kill"],
    );
  } finally {
    await server?.stop();
    const v = await verify(path);
    tally.record("verify after a clean stop", v.ok ? [] : [v.text]);
    await removeKvFile(path);
  }
  assert.ok(acked.length >= 90, `only ${acked.length} acknowledged writes`);
  assert.deepEqual(tally.report(), []);
});
