/**
 * Fixtures for the domains tests: a fake DNS resolver, an app on an in-memory KV that uses it,
 * and a client whose every response is checked against the served OpenAPI document.
 */
import { type App, createApp } from "../app.ts";
import { TimeoutError } from "../lib/async.ts";
import { fakeClock } from "../lib/clock.ts";
import { testConfig } from "../lib/config.ts";
import { dnsPlan, type DnsResolver, type MxAnswer } from "../lib/dns.ts";
import { parseDomainName } from "../lib/domain_name.ts";
import { checkDomainInvariants } from "../store/domains/store.ts";
import { bearer, createAccountWithKey } from "./_helpers.ts";
import { assertMatchesDocument, type OpenApiDoc } from "./_openapi.ts";
import assert from "node:assert/strict";

/** What the store's `create` takes for a name, as the route builds it. */
export function domainInput(name: string) {
  const parsed = parseDomainName(name);
  if (!parsed.ok) throw new Error(parsed.problem);
  return {
    domain: parsed.value.name,
    ancestors: parsed.value.ancestors,
    plan: (c: { domain: string; token: string; inherited: boolean }) =>
      dnsPlan(c.domain, c.token, c.inherited),
  };
}

type Answer<T> = T[] | "timeout" | Error;

/** DNS answers set by the test; a name with nothing set has no records. */
export class FakeResolver implements DnsResolver {
  readonly txtAnswers = new Map<string, Answer<string>>();
  readonly mxAnswers = new Map<string, Answer<MxAnswer>>();
  lookups = 0;

  #answer<T>(a: Answer<T> | undefined): Promise<T[]> {
    this.lookups++;
    if (a === undefined) return Promise.resolve([]);
    if (a === "timeout") return Promise.reject(new TimeoutError(5000));
    if (a instanceof Error) return Promise.reject(a);
    return Promise.resolve(a);
  }
  txt(name: string): Promise<string[]> {
    return this.#answer(this.txtAnswers.get(name));
  }
  mx(name: string): Promise<MxAnswer[]> {
    return this.#answer(this.mxAnswers.get(name));
  }

  /** Publishes every record of a create/retrieve response, as its owner would. */
  publish(records: { type?: string; recordType?: string; name: string; value: string }[]): void {
    for (const r of records) {
      const type = r.type ?? r.recordType;
      if (type === "MX") {
        const [preference, exchange] = r.value.split(" ");
        this.mxAnswers.set(r.name, [{ preference: Number(preference), exchange: exchange + "." }]);
      } else {
        const existing = this.txtAnswers.get(r.name);
        this.txtAnswers.set(r.name, [...(Array.isArray(existing) ? existing : []), r.value]);
      }
    }
  }
}

// deno-lint-ignore no-explicit-any -- JSON bodies, asserted field by field in the tests
export type Res = { status: number; headers: Headers; body: any };

export type DomainTestApp = {
  app: App;
  kv: Deno.Kv;
  clock: ReturnType<typeof fakeClock>;
  resolver: FakeResolver;
  doc: OpenApiDoc;
  /** A new account with a key and a client for it. */
  account(): Promise<Account>;
  /** Asserts invariants I1–I5 of store/domains/store.ts for every account made so far. */
  assertConsistent(): Promise<void>;
  close(): Promise<void>;
};

export type Account = {
  userId: string;
  key: string;
  request(method: string, path: string, body?: unknown, init?: RequestInit): Promise<Res>;
  create(domain: string): Promise<Res>;
};

/** Sends a request to `app` and checks the answer against its OpenAPI document `doc`. */
export function documentedSender(app: App, doc: OpenApiDoc) {
  return async (method: string, path: string, init: RequestInit): Promise<Res> => {
    const res = await app.request(path, { ...init, method });
    const text = await res.text();
    const body = text ? JSON.parse(text) : null;
    assertMatchesDocument(doc, method, path, res.status, res.headers.get("Content-Type"), body);
    return { status: res.status, headers: res.headers, body };
  };
}

export async function domainTestApp(): Promise<DomainTestApp> {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const resolver = new FakeResolver();
  const config = testConfig({ rateLimit: { max: 1_000_000, windowMs: 1000, failOpen: false } });
  const app = createApp({ kv, clock, config, resolver });
  const doc = await (await app.request("/api/e2/openapi.json")).json() as OpenApiDoc;
  const userIds: string[] = [];

  const send = documentedSender(app, doc);

  return {
    app,
    kv,
    clock,
    resolver,
    doc,
    async account() {
      const a = await createAccountWithKey(kv, clock);
      userIds.push(a.userId);
      const request = (method: string, path: string, body?: unknown, init: RequestInit = {}) => {
        const headers = new Headers(init.headers);
        if (body !== undefined && !headers.has("Content-Type")) {
          headers.set("Content-Type", "application/json");
        }
        return send(
          method,
          path,
          bearer(a.key, {
            ...init,
            headers,
            body: body === undefined
              ? undefined
              : typeof body === "string"
              ? body
              : JSON.stringify(body),
          }),
        );
      };
      return {
        userId: a.userId,
        key: a.key,
        request,
        create: (domain: string) => request("POST", "/api/e2/domains", { domain }),
      };
    },
    async assertConsistent() {
      for (const id of userIds) assert.deepEqual(await checkDomainInvariants(kv, id), [], id);
    },
    async close() {
      await app.idle();
      kv.close();
    },
  };
}

/** `GET /api/e2/domains/{id}?check=true`, asserted 200; the body. */
export async function checkDomain(a: Account, id: string) {
  const res = await a.request("GET", `/api/e2/domains/${id}?check=true`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Publishes `records`, moves past the DNS answer cache, and checks the domain. */
export async function publishAndCheck(
  ctx: DomainTestApp,
  a: Account,
  id: string,
  records: Parameters<FakeResolver["publish"]>[0],
) {
  ctx.resolver.publish(records);
  ctx.clock.advance(60_000);
  return await checkDomain(a, id);
}
