/**
 * Isolation matrix (issue 6): for every /api/e2 route in the app's route table and every method,
 * account B sends a request that names one of account A's real resource ids (domains in every
 * state, API keys in use, rolled, deleted), authenticated by B's Bearer key and by B's session
 * cookie. Each answer must be identical (status, body, headers other than X-Request-Id and the
 * rate-limit counters) to the answer for a nonexistent id of the same shape, and A's data (all
 * under [A.userId] and every pointer whose value names A) must be unchanged afterwards.
 *
 * Each request runs on its own copy of one seeded world (a fresh in-memory KV and app), so a
 * create, roll or delete by B cannot make the answer of the next request differ, and the A-id
 * request and its nonexistent-id twin start from the same state. Ids and secrets the request
 * generates (a create's new id, key and its displayed start, DNS token) are not in the world and are masked in both
 * answers; A's ids are in the world and are never masked, so a leak of one shows as a difference.
 *
 * Positive controls show the comparison can fail: B naming B's own ids answers differently from a
 * nonexistent id, and A's own delete changes A's dump.
 */
import { NOT_PROVIDED_RESOURCES } from "../../routes/not_implemented.ts";
import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { issueApiKey, rollApiKey } from "../../auth/api_keys/issue.ts";
import { fakeClock } from "../../lib/clock.ts";
import { testConfig } from "../../lib/config.ts";
import { newId } from "../../lib/crypto.ts";
import { tenantStore } from "../../store/tenant.ts";
import { dumpDiff } from "../_faulty_kv.ts";
import { bearer, createAccountWithKey } from "../_helpers.ts";
import { seedSession, seedVerifiedDomain, Tally } from "../_hardening.ts";
import { FakeResolver } from "../_domains.ts";
import { BASE, json } from "../sessions_helpers.ts";
import { seedEndpoint } from "../endpoints/_seed.ts";

const METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;
const UNLIMITED = { max: 1_000_000_000, windowMs: 60_000, failOpen: false };
/** Headers that differ between any two requests by design. */
const IGNORED_HEADER = /^(x-request-id|ratelimit|ratelimit-policy|x-ratelimit-.*)$/i;

/** A valid body per route, so B's request reaches the handler (default: an empty object). */
const BODIES: Record<string, unknown> = {
  "POST /api/e2/domains": { domain: "isolation-new.example" },
  "PATCH /api/e2/domains/:id": { isCatchAllEnabled: true, catchAllEndpointId: "ep_isolation" },
  "POST /api/e2/api-keys": { name: "isolation" },
  "POST /api/e2/api-keys/:id/roll": { expiresInHours: 0 },
  "POST /api/e2/endpoints": { name: "b", type: "email", config: { forwardTo: "b@example.com" } },
  "PUT /api/e2/endpoints/:id": { name: "renamed by B" },
  "PUT /api/e2/email-addresses/:id": { isActive: false },
};

/** Query strings per route beyond the bare request (a DNS check writes the domain record). */
const QUERIES: Record<string, string[]> = {
  "GET /api/e2/domains": ["check=true"],
  "GET /api/e2/domains/:id": ["check=true"],
};

type Entry = [Deno.KvKey, unknown];
type NamedId = { label: string; id: string };

type World = {
  entries: Entry[];
  /** Every key and value of the world as text: strings found here are not masked. */
  text: string;
  clockMs: number;
  a: { userId: string; key: string; ids: NamedId[] };
  b: { userId: string; key: string; cookie: string; ids: NamedId[] };
};

const textOf = (x: unknown) =>
  JSON.stringify(x, (_k, v) => v instanceof Deno.KvU64 ? `${v.value}n` : v);

/** A's data: everything under [A.userId] but its rate-limit windows, and pointers naming A. */
async function dumpAccount(kv: Deno.Kv, userId: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for await (const e of kv.list({ prefix: [userId] })) {
    if (e.key[1] !== "rate") out.set(textOf(e.key), textOf(e.value));
  }
  for await (const e of kv.list<{ userId?: string }>({ prefix: ["idx"] })) {
    if (e.value?.userId === userId) out.set(textOf(e.key), textOf(e.value));
  }
  return out;
}

async function buildWorld(): Promise<World> {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const app = createApp({ kv, clock, config: testConfig({ rateLimit: UNLIMITED }) });
  try {
    const a = await createAccountWithKey(kv, clock);
    await seedSession(kv, a.userId, clock);
    const aStore = tenantStore(kv, a.userId, clock);
    const pending = await (await app.request(
      `${BASE}/api/e2/domains`,
      bearer(a.key, json({ domain: "a-pending.example" })),
    )).json();
    const verified = await seedVerifiedDomain(kv, a.userId, clock, "a-verified.example");
    const sub = await (await app.request(
      `${BASE}/api/e2/domains`,
      bearer(a.key, json({ domain: "mail.a-verified.example" })),
    )).json();
    const catchAll = await seedVerifiedDomain(kv, a.userId, clock, "a-catchall.example");
    // Issue 23: A's endpoint (its catch-all) and an address routed to it.
    const aEndpoint = await seedEndpoint(kv, a.userId, clock, { url: "https://hooks.example/a" });
    await aStore.domains.updateCatchAll(catchAll.id, {
      isCatchAllEnabled: true,
      catchAllEndpointId: aEndpoint,
    });
    const aAddress = await aStore.emailAddresses.create({
      address: "boss@a-catchall.example",
      domainId: catchAll.id,
      endpointId: aEndpoint,
      webhookId: null,
      isActive: true,
    });
    const second = await issueApiKey(aStore.apiKeys, { name: "second", nowMs: clock() });
    const toRoll = await issueApiKey(aStore.apiKeys, { name: "rolled", nowMs: clock() });
    const rolled = await rollApiKey(aStore.apiKeys, toRoll.record.id, 24 * 3_600_000);
    const deleted = await issueApiKey(aStore.apiKeys, { name: "deleted", nowMs: clock() });
    await aStore.apiKeys.delete(deleted.record.id);

    const b = await createAccountWithKey(kv, clock);
    const bSession = await seedSession(kv, b.userId, clock);
    const bDomain = await seedVerifiedDomain(kv, b.userId, clock, "b-own.example");
    const bKey = await issueApiKey(tenantStore(kv, b.userId, clock).apiKeys, {
      name: "b second",
      nowMs: clock(),
    });
    await app.idle();

    for (const x of [pending, sub]) assert.match(x.id, /^dom_/, JSON.stringify(x));
    const entries: Entry[] = [];
    for await (const e of kv.list({ prefix: [] })) entries.push([e.key, e.value]);
    return {
      entries,
      text: textOf(entries),
      clockMs: clock(),
      a: {
        userId: a.userId,
        key: a.key,
        ids: [
          { label: "A's pending domain", id: pending.id },
          { label: "A's verified domain (with a subdomain)", id: verified.id },
          { label: "A's subdomain", id: sub.id },
          { label: "A's domain with catch-all on", id: catchAll.id },
          { label: "A's endpoint", id: aEndpoint },
          { label: "A's email address", id: aAddress.record.id },
          { label: "A's key in use", id: a.keyId },
          { label: "A's second key", id: second.record.id },
          { label: "A's key in its roll grace period", id: toRoll.record.id },
          { label: "A's replacement key", id: rolled.record.id },
          { label: "A's deleted key", id: deleted.record.id },
        ],
      },
      b: {
        userId: b.userId,
        key: b.key,
        cookie: bSession.cookie,
        ids: [
          { label: "B's own domain", id: bDomain.id },
          { label: "B's own key", id: bKey.record.id },
        ],
      },
    };
  } finally {
    await app.idle();
    kv.close();
  }
}

/** A fresh copy of the world: its own in-memory KV and app, at the world's time. */
async function copyOf(world: World) {
  const kv = await Deno.openKv(":memory:");
  for (let i = 0; i < world.entries.length; i += 500) {
    const op = kv.atomic();
    for (const [key, value] of world.entries.slice(i, i + 500)) op.set(key, value);
    const r = await op.commit();
    if (!r.ok) throw new Error("copying the world failed");
  }
  const clock = fakeClock(world.clockMs);
  const app = createApp({
    kv,
    clock,
    config: testConfig({ rateLimit: UNLIMITED }),
    resolver: new FakeResolver(),
  });
  return {
    kv,
    app,
    async close() {
      await app.idle();
      kv.close();
    },
  };
}

type Route = { method: string; pattern: string };

/** Every method of every /api/e2 path in the app's route table. */
function apiRoutes(routes: readonly { path: string }[]): Route[] {
  const patterns = [
    ...new Set(routes.map((r) => r.path).filter((p) => /^\/api\/e2(\/|$)/.test(p))),
  ].filter((p) => !p.includes("*")).sort();
  return patterns.flatMap((pattern) => METHODS.map((method) => ({ method, pattern })));
}

const hasParam = (pattern: string) => /:[A-Za-z_]/.test(pattern);

/** A path of routes/not_implemented.ts (issue 22 item 15). */
const isNotProvided = (pattern: string) =>
  NOT_PROVIDED_RESOURCES.some((r) => pattern === `/api/e2/${r}`);

/** The concrete path, with every path parameter set to `id`, or `id` in the query if none. */
function pathFor(pattern: string, id: string, query: string): string {
  const path = pattern.replace(/:([A-Za-z_]+)(\{[^}]*\})?/g, id);
  const q = [hasParam(pattern) ? "" : `id=${id}`, query].filter(Boolean).join("&");
  return q ? `${path}?${q}` : path;
}

type Answer = { status: number; body: string; headers: [string, string][] };

/** The answer with `id` written as <ID> and strings generated by this request masked. */
function normalised(
  res: { status: number; body: string; headers: Headers },
  id: string,
  world: World,
): Answer {
  const mask = (text: string) =>
    text.replaceAll(id, "<ID>").replace(
      /[A-Za-z0-9_]{10,}/g,
      (run) => run === "<ID>" || world.text.includes(run) ? run : "<generated>",
    );
  const headers = [...res.headers].filter(([name]) => !IGNORED_HEADER.test(name))
    .map(([n, v]): [string, string] => [n, mask(v)]).sort();
  return { status: res.status, body: mask(res.body), headers };
}

type Auth = { label: string; headers: Record<string, string> };

async function send(
  world: World,
  route: Route,
  auth: Auth,
  id: string,
  query: string,
): Promise<{ answer: Answer; aChanged: string[] }> {
  const copy = await copyOf(world);
  try {
    const before = await dumpAccount(copy.kv, world.a.userId);
    const headers = new Headers(auth.headers);
    const init: RequestInit = { method: route.method, headers };
    if (["POST", "PUT", "PATCH"].includes(route.method)) {
      headers.set("Content-Type", "application/json");
      init.body = JSON.stringify(BODIES[`${route.method} ${route.pattern}`] ?? {});
    }
    const res = await copy.app.request(`${BASE}${pathFor(route.pattern, id, query)}`, init);
    const body = await res.text();
    await copy.app.idle();
    const aChanged = dumpDiff(before, await dumpAccount(copy.kv, world.a.userId));
    return {
      answer: normalised({ status: res.status, body, headers: res.headers }, id, world),
      aChanged,
    };
  } finally {
    await copy.close();
  }
}

function differences(x: Answer, y: Answer): string[] {
  const p: string[] = [];
  if (x.status !== y.status) p.push(`status ${x.status} vs ${y.status}`);
  if (x.body !== y.body) p.push(`body ${x.body.slice(0, 200)} vs ${y.body.slice(0, 200)}`);
  if (textOf(x.headers) !== textOf(y.headers)) {
    p.push(`headers ${textOf(x.headers)} vs ${textOf(y.headers)}`);
  }
  return p;
}

/** A nonexistent id with the same prefix and length as `id`. */
function twinOf(id: string): string {
  const prefix = id.slice(0, id.indexOf("_"));
  const twin = newId(prefix);
  assert.equal(twin.length, id.length);
  return twin;
}

Deno.test("account B naming account A's ids on any /api/e2 route and method gets the answer a nonexistent id gets, and A's data is untouched", async (t) => {
  const world = await buildWorld();
  const tally = new Tally("isolation");
  const controls = new Tally("isolation-controls");
  const auths: Auth[] = [
    { label: "Bearer", headers: { Authorization: `Bearer ${world.b.key}` } },
    { label: "session", headers: { Cookie: world.b.cookie } },
  ];
  const probe = await copyOf(world);
  const routes = apiRoutes(probe.app.routes);
  await probe.close();
  const withParam = new Set(routes.filter((r) => hasParam(r.pattern)).map((r) => r.pattern));
  assert.ok(withParam.has("/api/e2/domains/:id") && withParam.has("/api/e2/api-keys/:id"));
  console.log(
    `hardening/isolation: ${routes.length} method+route pairs over ${
      new Set(routes.map((r) => r.pattern)).size
    } paths, ${world.a.ids.length} of A's ids, ${auths.length} ways to authenticate B`,
  );

  await t.step(
    "every route, method, id and credential: same answer as a nonexistent id",
    async () => {
      for (const route of routes) {
        const queries = ["", ...(QUERIES[`${route.method} ${route.pattern}`] ?? [])];
        for (const query of queries) {
          for (const auth of auths) {
            for (const a of world.a.ids) {
              const mine = await send(world, route, auth, a.id, query);
              const none = await send(world, route, auth, twinOf(a.id), query);
              const p = differences(mine.answer, none.answer);
              if (mine.aChanged.length) p.push(`A's data changed: ${mine.aChanged.join(", ")}`);
              // Issue 22 item 15: the resources this server does not provide answer 501 by
              // design (the same for any id); any other 5xx is a defect.
              const notProvided = mine.answer.status === 501 && isNotProvided(route.pattern);
              if (mine.answer.status >= 500 && !notProvided) {
                p.push(`status ${mine.answer.status}`);
              }
              tally.record(
                `${route.method} ${pathFor(route.pattern, "<id>", query)} as B (${auth.label}) ` +
                  `with ${a.label}`,
                p,
              );
            }
          }
        }
      }
    },
  );

  await t.step("controls: B's own ids answer differently from a nonexistent id", async () => {
    const session = auths[1];
    const cases: [Route, NamedId][] = [
      [{ method: "GET", pattern: "/api/e2/domains/:id" }, world.b.ids[0]],
      [{ method: "PATCH", pattern: "/api/e2/domains/:id" }, world.b.ids[0]],
      [{ method: "DELETE", pattern: "/api/e2/domains/:id" }, world.b.ids[0]],
      [{ method: "DELETE", pattern: "/api/e2/api-keys/:id" }, world.b.ids[1]],
      [{ method: "POST", pattern: "/api/e2/api-keys/:id/roll" }, world.b.ids[1]],
    ];
    for (const [route, own] of cases) {
      const mine = await send(world, route, session, own.id, "");
      const none = await send(world, route, session, twinOf(own.id), "");
      controls.record(
        `${route.method} ${route.pattern} with ${own.label}`,
        differences(mine.answer, none.answer).length ? [] : ["same answer: the check is blind"],
      );
    }
  });

  await t.step("control: A's own delete shows in A's dump", async () => {
    const copy = await copyOf(world);
    try {
      const before = await dumpAccount(copy.kv, world.a.userId);
      const res = await copy.app.request(
        `${BASE}/api/e2/domains/${world.a.ids[0].id}`,
        bearer(world.a.key, { method: "DELETE" }),
      );
      await res.body?.cancel();
      const changed = dumpDiff(before, await dumpAccount(copy.kv, world.a.userId));
      controls.record(
        "A deleting its pending domain",
        res.status === 200 && changed.length > 0
          ? []
          : [`status ${res.status}, ${changed.length} changes`],
      );
    } finally {
      await copy.close();
    }
  });

  const failures = [...tally.report(), ...controls.report()];
  assert.ok(tally.tried >= routes.length * auths.length * world.a.ids.length);
  assert.deepEqual(failures, []);
});
