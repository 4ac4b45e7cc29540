/**
 * Two real server processes (`deno task start`) on one SQLite KV file, while both write: SQLite's
 * transient `database is locked` is retried on every path (store/retrying_kv.ts), so sign-up,
 * sign-in, key use, key create and domain create never answer 5xx, and every key that was used
 * gets its lastUsedAt (before: 35-51 of 200 sign-ups/sign-ins answered 500, and 6-19 of 45 used
 * keys kept lastUsedAt = null).
 */
import assert from "node:assert/strict";
import {
  removeKvFile,
  type ServerProcess,
  startServer,
  tempKvPath,
  TEST_PASSWORD,
} from "../_helpers.ts";
import { freshEmail } from "../sessions_helpers.ts";

type Outcome = { what: string; status: number; body: string };

async function call(
  server: ServerProcess,
  what: string,
  path: string,
  init: RequestInit = {},
): Promise<Outcome & { res: Response }> {
  const res = await fetch(`${server.url}${path}`, init);
  const body = await res.clone().text();
  return { what, status: res.status, body, res };
}

function jsonPost(body: unknown, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  };
}

/** `name=value` of the session cookie the response set. */
function cookieOf(res: Response): string {
  const set = res.headers.get("Set-Cookie");
  if (!set) throw new Error(`no Set-Cookie (${res.status})`);
  return set.split(";")[0];
}

Deno.test("two processes on one KV file: no 5xx on any path and every used key gets lastUsedAt", async () => {
  const path = await tempKvPath();
  const env = { DENO_KV_PATH: path, LOG_LEVEL: "silent", RATE_LIMIT_MAX: "100000" };
  const servers = await Promise.all([startServer(env), startServer(env)]);
  const outcomes: Outcome[] = [];
  const record = <T extends Outcome>(o: T): T => {
    outcomes.push({ what: o.what, status: o.status, body: o.body.slice(0, 200) });
    return o;
  };
  let writing = true;
  try {
    // Sign-ups and sign-ins stay under the 10-a-minute throttles of one client address, one at
    // a time per process (the password queue admits one per address); both processes at once.
    const accounts = (await Promise.all(servers.map(async (server) => {
      const made = [];
      for (let i = 0; i < 4; i++) {
        const email = freshEmail();
        const up = record(
          await call(
            server,
            "sign-up",
            "/api/auth/sign-up",
            jsonPost({ email, password: TEST_PASSWORD }),
          ),
        );
        if (up.status !== 201) continue;
        const inn = record(
          await call(
            server,
            "sign-in",
            "/api/auth/sign-in",
            jsonPost({ email, password: TEST_PASSWORD }),
          ),
        );
        if (inn.status === 200) made.push({ email, cookie: cookieOf(inn.res), server });
      }
      return made;
    }))).flat();
    assert.equal(accounts.length, 8, JSON.stringify(outcomes));

    // A steady stream of domain creates through both processes keeps the file's lock busy.
    const writers = accounts.slice(0, 4).map(async (a, i) => {
      const created = record(
        await call(
          a.server,
          "key create",
          "/api/e2/api-keys",
          jsonPost({ name: "writer" }, {
            Cookie: a.cookie,
          }),
        ),
      );
      const key = JSON.parse(created.body).key as string;
      let n = 0;
      await Promise.all(Array.from({ length: 6 }, async (_, conn) => {
        while (writing) {
          record(
            await call(
              servers[(conn + i) % 2],
              "domain create",
              "/api/e2/domains",
              jsonPost({ domain: `d${n++}.c${conn}.w${i}-locks.com` }, {
                Authorization: `Bearer ${key}`,
              }),
            ),
          );
        }
      }));
    });

    // Meanwhile: 45 keys created over both processes, each used once through the other one.
    const used: { email: string; cookie: string; server: ServerProcess; id: string }[] = [];
    await Promise.all(accounts.map(async (a, i) => {
      for (let j = 0; j < (i < 5 ? 6 : 5); j++) {
        const made = record(
          await call(
            servers[j % 2],
            "key create",
            "/api/e2/api-keys",
            jsonPost({ name: `k${j}` }, { Cookie: a.cookie }),
          ),
        );
        if (made.status !== 201) continue;
        const { key, id } = JSON.parse(made.body);
        record(
          await call(servers[(j + 1) % 2], "key use", "/api/e2/domains?limit=1", {
            headers: { Authorization: `Bearer ${key}` },
          }),
        );
        used.push({ ...a, id });
      }
    }));
    writing = false;
    await Promise.all(writers);

    const failures = outcomes.filter((o) => o.status >= 500);
    assert.deepEqual(failures, [], `${failures.length} of ${outcomes.length} answers were 5xx`);
    assert.equal(used.length, 45);
    const byStatus: Record<string, number> = {};
    for (const o of outcomes) {
      byStatus[`${o.what} ${o.status}`] = (byStatus[`${o.what} ${o.status}`] ?? 0) + 1;
    }
    assert.ok((byStatus["domain create 201"] ?? 0) > 50, JSON.stringify(byStatus));

    // lastUsedAt is written off the request path: poll until every used key shows it.
    const deadline = Date.now() + 15_000;
    let missing: string[] = [];
    do {
      missing = [];
      for (const a of accounts) {
        const list = await call(a.server, "key list", "/api/e2/api-keys", {
          headers: { Cookie: a.cookie },
        });
        assert.equal(list.status, 200);
        const keys = JSON.parse(list.body).data as { id: string; lastUsedAt: string | null }[];
        for (const u of used.filter((u) => u.email === a.email)) {
          if (!keys.find((k) => k.id === u.id)?.lastUsedAt) missing.push(u.id);
        }
      }
      if (missing.length) await new Promise((r) => setTimeout(r, 250));
    } while (missing.length && Date.now() < deadline);
    assert.deepEqual(missing, [], `${missing.length} of 45 used keys have no lastUsedAt`);
  } finally {
    writing = false;
    await Promise.all(servers.map((s) => s.stop()));
    await removeKvFile(path);
  }
});
