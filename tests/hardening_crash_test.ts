/**
 * Crash safety (issue 6): the real server is killed with SIGKILL while many creates are in flight,
 * restarted on the same KV file, and `deno task admin verify` must find no orphan and no wrong
 * count; every write that was acknowledged (2xx received) must be there and usable.
 *
 * Writes go through every write endpoint the server has, found by a probe (WRITE_DRIVERS): adding
 * a new kind of create is one entry in that table.
 */
import assert from "node:assert/strict";
import { generateSessionToken } from "../auth/session.ts";
import { sha256Hex } from "../lib/crypto.ts";
import { createSession } from "../store/sessions.ts";
import { createAccountWithKey, removeKvFile, runAdminCli, tempKvPath } from "./_helpers.ts";
import { type DirectServer, startServerDirect, Tally } from "./_hardening.ts";

type Account = { userId: string; key: string; cookie: string };
/** An acknowledged write and how to check, after the crash, that it is there. */
type Acked = { what: string; check(url: string): Promise<boolean> };

type WriteDriver = {
  name: string;
  /** One create; resolves to the acknowledged write, or null when refused (4xx). */
  write(url: string, a: Account, n: number, signal: AbortSignal): Promise<Acked | null>;
};

const json = (body: unknown, headers: Record<string, string>): RequestInit => ({
  method: "POST",
  headers: { "Content-Type": "application/json", ...headers },
  body: JSON.stringify(body),
});

async function okStatus(res: Response): Promise<boolean> {
  await res.body?.cancel();
  return res.status === 200;
}

const WRITE_DRIVERS: WriteDriver[] = [
  {
    name: "domain create (POST /api/e2/domains, Bearer)",
    async write(url, a, n, signal) {
      const domain = `crash-${n}-${crypto.randomUUID().slice(0, 8)}.com`;
      const res = await fetch(`${url}/api/e2/domains`, {
        ...json({ domain }, { Authorization: `Bearer ${a.key}` }),
        signal,
      });
      const body = await res.json();
      if (res.status !== 201) return null;
      return {
        what: `domain ${domain}`,
        check: async (u) =>
          await okStatus(
            await fetch(`${u}/api/e2/domains/${body.id}`, {
              headers: { Authorization: `Bearer ${a.key}` },
            }),
          ),
      };
    },
  },
  {
    name: "API key create (POST /api/e2/api-keys, session)",
    async write(url, a, n, signal) {
      const res = await fetch(`${url}/api/e2/api-keys`, {
        ...json({ name: `crash ${n}` }, { Cookie: a.cookie }),
        signal,
      });
      const body = await res.json();
      if (res.status !== 201) return null;
      return {
        what: `API key ${body.id}`,
        check: async (u) =>
          await okStatus(
            await fetch(`${u}/api/e2/domains?limit=1`, {
              headers: { Authorization: `Bearer ${body.key}` },
            }),
          ),
      };
    },
  },
];

/** The drivers whose endpoint answers 201 to a probe on this server. */
async function availableDrivers(url: string, a: Account): Promise<WriteDriver[]> {
  const out: WriteDriver[] = [];
  for (const d of WRITE_DRIVERS) {
    const acked = await d.write(url, a, -1, AbortSignal.timeout(10_000)).catch(() => null);
    if (acked && await acked.check(url)) out.push(d);
    else console.log(`hardening/crash: no working endpoint for ${d.name}; skipped`);
  }
  return out;
}

async function seedAccounts(path: string, n: number): Promise<Account[]> {
  const kv = await Deno.openKv(path);
  const out: Account[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const a = await createAccountWithKey(kv, () => Date.now());
      const token = generateSessionToken();
      await createSession(kv, {
        userId: a.userId,
        hash: await sha256Hex(token),
        nowMs: Date.now(),
        ttlMs: 3_600_000,
      });
      out.push({ userId: a.userId, key: a.key, cookie: `inbound_session=${token}` });
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

Deno.test("SIGKILL during concurrent creates loses no acknowledged write and leaves no orphan or wrong count", async () => {
  const path = await tempKvPath();
  const tally = new Tally("crash");
  const accounts = await seedAccounts(path, 16);
  let server: DirectServer | null = await startServerDirect(ENV(path));
  const acked: Acked[] = [];
  try {
    const drivers = await availableDrivers(server.url, accounts[0]);
    assert.ok(drivers.length > 0, "no write endpoint answered the probe");

    for (let cycle = 0; cycle < 3; cycle++) {
      const url = server!.url;
      const controller = new AbortController();
      let inFlight = 0, n = 0, lost = 0, failedBeforeKill = 0;
      let inFlightAtKill = 0;
      let killing = false;
      const ackedThisCycle: Acked[] = [];
      const worker = async (w: number) => {
        while (!controller.signal.aborted) {
          const i = n++;
          const d = drivers[i % drivers.length];
          const a = accounts[(w + i) % accounts.length];
          inFlight++;
          try {
            const result = await d.write(url, a, i, controller.signal);
            if (result) ackedThisCycle.push(result);
          } catch {
            if (!killing) failedBeforeKill++;
            else {
              lost++; // cut off by the kill: not acknowledged
              break;
            }
          } finally {
            inFlight--;
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
      inFlightAtKill = inFlight;
      killing = true;
      const status = await server!.stop("SIGKILL");
      server = null;
      controller.abort();
      await Promise.all(workers);
      acked.push(...ackedThisCycle);

      const p: string[] = [];
      if (status.signal !== "SIGKILL") p.push(`server ended with ${JSON.stringify(status)}`);
      if (inFlightAtKill === 0) p.push("nothing was in flight at the kill");
      if (failedBeforeKill) p.push(`${failedBeforeKill} requests failed before the kill`);
      console.log(
        `hardening/crash: cycle ${cycle}: ${ackedThisCycle.length} acknowledged, ` +
          `${inFlightAtKill} in flight at SIGKILL, ${lost} lost with the connection`,
      );

      server = await startServerDirect(ENV(path));
      const v = await verify(path);
      if (!v.ok) p.push(`verify after restart: ${v.text}`);
      tally.record(`cycle ${cycle}: kill, restart, verify`, p);
    }

    const missing: string[] = [];
    for (const a of acked) if (!(await a.check(server!.url))) missing.push(a.what);
    tally.record(
      `all ${acked.length} acknowledged writes present after the crashes`,
      missing.length ? [`missing: ${missing.slice(0, 10).join(", ")}`] : [],
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
