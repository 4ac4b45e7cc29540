/**
 * Fixtures for the endpoints and e-mail-addresses tests: an app on an in-memory KV with a fake
 * DNS (domains) and a fake webhook address resolver (no real lookup ever), clients whose every
 * answer is checked against the served OpenAPI document, and a verified domain in two calls.
 */
import assert from "node:assert/strict";
import { type App, createApp } from "../../app.ts";
import { fakeClock } from "../../lib/clock.ts";
import { type Config, testConfig } from "../../lib/config.ts";
import type { AddressResolver } from "../../lib/webhooks/deliver.ts";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import type { KeyGrant } from "../../store/api_keys.ts";
import { checkEndpointInvariants } from "../../store/endpoints/invariants.ts";
import { tenantStore } from "../../store/tenant.ts";
import { documentedSender, FakeResolver, type Res } from "../_domains.ts";
import { bearer, createAccountWithKey } from "../_helpers.ts";
import type { OpenApiDoc } from "../_openapi.ts";

export type { Res };

export type Client = {
  userId: string;
  key: string;
  request(method: string, path: string, body?: unknown, init?: RequestInit): Promise<Res>;
  /** A domain added and verified (its records published to the fake DNS); its id. */
  verifiedDomain(name: string): Promise<string>;
  /** A domain added, left pending; its id. */
  pendingDomain(name: string): Promise<string>;
  /** A webhook endpoint; its create answer. */
  webhook(name?: string, url?: string): Promise<Res>;
};

export type EndpointTestApp = {
  app: App;
  kv: Deno.Kv;
  clock: ReturnType<typeof fakeClock>;
  dns: FakeResolver;
  /** Names the fake webhook resolver answers (hostname -> addresses); lookups counted. */
  hosts: Map<string, string[]>;
  lookups: string[];
  doc: OpenApiDoc;
  account(): Promise<Client>;
  /** A key of account `userId` with `grant`, issued straight in the store (no expiry). */
  keyWith(userId: string, grant: Partial<KeyGrant>, name?: string): Promise<string>;
  /** A request with Bearer `key` (`body` sent as JSON when given); the answer unchecked. */
  requestWithKey(
    key: string,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Response>;
  /** store/endpoints/invariants.ts for every account made so far: no violation. */
  assertConsistent(): Promise<void>;
  close(): Promise<void>;
};

export async function endpointTestApp(
  overrides: Partial<Config> = {},
): Promise<EndpointTestApp> {
  const kv = await Deno.openKv(":memory:");
  // Now, not a fixed date: a receiver checks a signature's timestamp against its own clock.
  const clock = fakeClock(Date.now());
  const dns = new FakeResolver();
  const hosts = new Map<string, string[]>();
  const lookups: string[] = [];
  const addressResolver: AddressResolver = (hostname) => {
    lookups.push(hostname);
    return Promise.resolve(hosts.get(hostname) ?? []);
  };
  const config = testConfig({
    rateLimit: { max: 1_000_000, windowMs: 1000, failOpen: false },
    ...overrides,
  });
  const app = createApp({ kv, clock, config, resolver: dns, addressResolver });
  const doc = await (await app.request("/api/e2/openapi.json")).json() as OpenApiDoc;
  const userIds: string[] = [];

  const send = documentedSender(app, doc);

  async function account(): Promise<Client> {
    const a = await createAccountWithKey(kv, clock);
    userIds.push(a.userId);
    const request = (method: string, path: string, body?: unknown, init: RequestInit = {}) => {
      const headers = new Headers(init.headers);
      if (body !== undefined) headers.set("Content-Type", "application/json");
      return send(method, path, {
        ...bearer(a.key, { ...init, headers }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    };
    const pendingDomain = async (name: string) => {
      const res = await request("POST", "/api/e2/domains", { domain: name });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      return res.body.id as string;
    };
    return {
      userId: a.userId,
      key: a.key,
      request,
      pendingDomain,
      async verifiedDomain(name) {
        const created = await request("POST", "/api/e2/domains", { domain: name });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        dns.publish(created.body.dnsRecords);
        clock.advance(60_000);
        const checked = await request("GET", `/api/e2/domains/${created.body.id}?check=true`);
        assert.equal(checked.body.status, "verified", JSON.stringify(checked.body));
        return created.body.id;
      },
      webhook: (name = "Hook", url = "https://hooks.example.com/in") =>
        request("POST", "/api/e2/endpoints", { name, type: "webhook", config: { url } }),
    };
  }

  return {
    app,
    kv,
    clock,
    dns,
    hosts,
    lookups,
    doc,
    account,
    async keyWith(userId, grant, name = "key " + crypto.randomUUID()) {
      const store = tenantStore(kv, userId, clock).apiKeys;
      return (await issueApiKey(store, { name, expiresInDays: null, nowMs: clock(), grant })).key;
    },
    requestWithKey: async (key, method, path, body, headers = {}) =>
      await app.request(
        path,
        bearer(key, {
          method,
          headers: body === undefined
            ? headers
            : { ...headers, "Content-Type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      ),
    async assertConsistent() {
      for (const id of userIds) assert.deepEqual(await checkEndpointInvariants(kv, id), [], id);
    },
    async close() {
      await app.idle();
      kv.close();
    },
  };
}
