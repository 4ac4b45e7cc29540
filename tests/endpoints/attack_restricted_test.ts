/**
 * Engineer X1's attack on issue 23 with restricted keys: a key restricted to some domains must
 * learn nothing about the account's other domains through the endpoints resource (retrieve,
 * delete cleanup), and scopes must hold on the write, test and roll operations.
 */
import assert from "node:assert/strict";
import type { ApiScope } from "../../lib/scopes.ts";
import { type Client, type EndpointTestApp, endpointTestApp } from "./_fixture.ts";

// deno-lint-ignore no-explicit-any -- JSON answers of many shapes, checked field by field
type Json = any;

async function keyFor(
  ctx: EndpointTestApp,
  a: Client,
  grant: { domainIds?: string[]; scopes?: ApiScope[]; allowedIps?: string[] },
): Promise<
  (
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ) => Promise<{ status: number; json: Json }>
> {
  const key = await ctx.keyWith(a.userId, grant, "restricted " + crypto.randomUUID());
  return async (method, path, body, headers = {}) => {
    const res = await ctx.requestWithKey(key, method, path, body, headers);
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  };
}

/** An account with a seen and a hidden domain, a webhook routed from both, a catch-all on each. */
async function setup(ctx: EndpointTestApp) {
  const a = await ctx.account();
  const seen = await a.verifiedDomain("seen.example");
  const hidden = await a.verifiedDomain("hidden.example");
  const hook = (await a.webhook("Hook")).body.id as string;
  for (const [address, domainId] of [["a@seen.example", seen], ["b@hidden.example", hidden]]) {
    const r = await a.request("POST", "/api/e2/email-addresses", {
      address,
      domainId,
      endpointId: hook,
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  for (const d of [seen, hidden]) {
    const r = await a.request("PATCH", `/api/e2/domains/${d}`, {
      isCatchAllEnabled: true,
      catchAllEndpointId: hook,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  return { a, seen, hidden, hook };
}

Deno.test("attack: a domain-restricted key's endpoint delete does not count hidden addresses or domains", async (t) => {
  // DEFECT (fixed in the tree while this session ran): routes/endpoints/operations.ts
  // registerDelete filtered `cleanup.emailAddresses` and `cleanup.domains` to the key's domains
  // but answered `emailAddressesUpdated` and `domainsUpdated` unfiltered: the key learned how
  // many addresses and catch-all domains of its hidden domains used the endpoint.
  // RULE CHANGED (engineer G, then G2): a restricted key may not delete an endpoint that hidden
  // domains' addresses or catch-alls use (409 ENDPOINT_IN_USE naming and counting nothing); this
  // test expected 200 from that setup, and now expects the 409. The count rule is kept by the
  // second step: an endpoint only the key's own domains use is deleted, counting its own only.
  const ctx = await endpointTestApp();
  try {
    const { a, seen, hidden, hook } = await setup(ctx);
    const call = await keyFor(ctx, a, { domainIds: [seen] });

    await t.step("used by a hidden domain too: 409 that names and counts nothing", async () => {
      const before = await call("GET", `/api/e2/endpoints/${hook}`);
      assert.equal(
        before.json.associatedEmails.length,
        1,
        "retrieve hides the other domain's address",
      );
      assert.equal(
        before.json.catchAllDomains.length,
        1,
        "retrieve hides the other catch-all domain",
      );
      const del = await call("DELETE", `/api/e2/endpoints/${hook}`);
      assert.equal(del.status, 409, JSON.stringify(del.json));
      assert.equal(del.json.code, "ENDPOINT_IN_USE");
      const text = JSON.stringify(del.json);
      for (const hiddenThing of ["hidden.example", hidden, "b@hidden.example"]) {
        assert.ok(!text.includes(hiddenThing), text);
      }
      assert.equal(del.json.addresses, undefined, "no count of hidden addresses");
      assert.equal(del.json.domains, undefined, "no count of hidden domains");
      assert.ok(!/\d/.test(del.json.message), `the message counts nothing: ${del.json.message}`);
      assert.equal((await a.request("GET", `/api/e2/endpoints/${hook}`)).status, 200);
    });

    await t.step("used by the key's own domains only: 200, counting its own", async () => {
      const own = (await a.webhook("Own")).body.id as string;
      for (const address of ["c@seen.example", "d@seen.example"]) {
        const r = await a.request("POST", "/api/e2/email-addresses", {
          address,
          domainId: seen,
          endpointId: own,
        });
        assert.equal(r.status, 201, JSON.stringify(r.body));
      }
      const catchAll = await a.request("PATCH", `/api/e2/domains/${seen}`, {
        isCatchAllEnabled: true,
        catchAllEndpointId: own,
      });
      assert.equal(catchAll.status, 200, JSON.stringify(catchAll.body));
      const del = await call("DELETE", `/api/e2/endpoints/${own}`);
      assert.equal(del.status, 200, JSON.stringify(del.json));
      assert.deepEqual(del.json.cleanup.emailAddresses.toSorted(), [
        "c@seen.example",
        "d@seen.example",
      ]);
      assert.deepEqual(del.json.cleanup.domains, ["seen.example"]);
      assert.equal(del.json.cleanup.emailAddressesUpdated, 2);
      assert.equal(del.json.cleanup.domainsUpdated, 1);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("attack: a domain-restricted auditor's endpoint.deleted event does not count hidden objects", async () => {
  // DEFECT: store/endpoints/store.ts delete() writes `emailAddressesUpdated` and `domainsUpdated`
  // (every domain's) into the endpoint.deleted event, and routes/audit_log/operations.ts shows
  // endpoint events to a key restricted to some domains unchanged: the count of the hidden
  // domains' addresses and catch-alls leaks through the log, as through the delete's cleanup.
  const ctx = await endpointTestApp();
  try {
    const { a, seen, hook } = await setup(ctx);
    assert.equal((await a.request("DELETE", `/api/e2/endpoints/${hook}`)).status, 200);
    const auditor = await keyFor(ctx, a, { scopes: ["audit:read"], domainIds: [seen] });
    const log = await auditor("GET", "/api/e2/audit-log?action=endpoint.deleted");
    assert.equal(log.status, 200, JSON.stringify(log.json));
    for (const e of log.json.data) {
      const d = e.details ?? {};
      assert.ok(
        (d.emailAddressesUpdated ?? 0) <= 1 && (d.domainsUpdated ?? 0) <= 1,
        `the restricted auditor sees only its domain's share: ${JSON.stringify(d)}`,
      );
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("attack: a domain-restricted key's endpoint delete leaves the hidden domains' addresses alone", async () => {
  // DEFECT: routes/endpoints/operations.ts registerDelete (store/endpoints/store.ts delete)
  // detaches every address and catch-all routed to the endpoint, those of domains the key may
  // not see included: a key restricted to seen.example changes b@hidden.example (its routing is
  // cleared, so the hidden domain's mail stops being delivered) and hidden.example's catch-all.
  // Suggested fix: a domain-restricted key may delete an endpoint only when nothing outside its
  // domains uses it (else 409 ENDPOINT_IN_USE without names), or the delete leaves it to a key
  // that sees everything.
  const ctx = await endpointTestApp();
  try {
    const { a, seen, hidden, hook } = await setup(ctx);
    const hiddenAddr = (await a.request("GET", `/api/e2/email-addresses?domainId=${hidden}`))
      .body.data[0];
    const call = await keyFor(ctx, a, { domainIds: [seen] });
    await call("DELETE", `/api/e2/endpoints/${hook}`);
    const after = await a.request("GET", `/api/e2/email-addresses/${hiddenAddr.id}`);
    assert.equal(after.body.endpointId, hook, "the hidden domain's address was re-routed");
    assert.equal(after.body.updatedAt, hiddenAddr.updatedAt);
    const domain = await a.request("GET", `/api/e2/domains/${hidden}`);
    assert.equal(
      domain.body.isCatchAllEnabled,
      true,
      "the hidden domain's catch-all was turned off",
    );
  } finally {
    await ctx.close();
  }
});

Deno.test("attack (defended): restricted keys on endpoints", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const { a, seen, hidden, hook } = await setup(ctx);

    await t.step("retrieve names no hidden address or domain, nor does an error", async () => {
      const call = await keyFor(ctx, a, { domainIds: [seen] });
      const r = await call("GET", `/api/e2/endpoints/${hook}`);
      const text = JSON.stringify(r.json);
      assert.ok(!text.includes("hidden.example"), text);
      assert.ok(!text.includes(hidden), text);
      const list = JSON.stringify((await call("GET", "/api/e2/endpoints")).json);
      assert.ok(!list.includes("hidden.example"), list);
      const routed = await call("POST", "/api/e2/email-addresses", {
        address: "b@hidden.example",
        domainId: hidden,
      });
      assert.equal(routed.status, 400);
      assert.ok(
        !JSON.stringify(routed.json).includes("hidden.example"),
        JSON.stringify(routed.json),
      );
    });

    await t.step("endpoints:read cannot write, test or roll", async () => {
      const call = await keyFor(ctx, a, { scopes: ["endpoints:read"] });
      const attempts: [string, string, unknown][] = [
        ["POST", "/api/e2/endpoints", {
          name: "x",
          type: "webhook",
          config: { url: "https://a.com" },
        }],
        ["PUT", `/api/e2/endpoints/${hook}`, { name: "pwned" }],
        ["DELETE", `/api/e2/endpoints/${hook}`, undefined],
        ["POST", `/api/e2/endpoints/${hook}/test`, {}],
        ["POST", `/api/e2/endpoints/${hook}/secret/roll`, undefined],
        ["POST", `/api/v2/endpoints/${hook}/secret/roll`, undefined],
        ["POST", "/api/e2/email-addresses", { address: "z@seen.example", domainId: seen }],
      ];
      for (const [method, path, body] of attempts) {
        const r = await call(method, path, body);
        assert.equal(r.status, 403, `${method} ${path}: ${JSON.stringify(r.json)}`);
        assert.equal(r.json.code, "INSUFFICIENT_SCOPE", `${method} ${path}`);
      }
      assert.equal((await a.request("GET", `/api/e2/endpoints/${hook}`)).body.name, "Hook");
    });

    await t.step(
      "an IP-restricted key is refused on every new route, spoofing or not",
      async () => {
        const call = await keyFor(ctx, a, { allowedIps: ["203.0.113.0/24"] });
        for (
          const [method, path] of [
            ["GET", "/api/e2/endpoints"],
            ["GET", `/api/v2/endpoints/${hook}`],
            ["POST", `/api/e2/endpoints/${hook}/test`],
            ["GET", "/api/e2/email-addresses"],
            ["DELETE", `/api/v2/endpoints/${hook}`],
          ]
        ) {
          const r = await call(method, path, method === "POST" ? {} : undefined, {
            "X-Forwarded-For": "203.0.113.9",
            "X-Real-IP": "203.0.113.9",
          });
          assert.equal(r.status, 403, `${method} ${path}`);
          assert.equal(r.json.code, "IP_NOT_ALLOWED", `${method} ${path}`);
        }
        assert.equal((await a.request("GET", `/api/e2/endpoints/${hook}`)).status, 200);
      },
    );

    await t.step("email-addresses scopes do not reach endpoints", async () => {
      const call = await keyFor(ctx, a, {
        scopes: ["email-addresses:write", "email-addresses:read"],
      });
      assert.equal((await call("GET", `/api/e2/endpoints/${hook}`)).status, 403);
      assert.equal((await call("POST", `/api/e2/endpoints/${hook}/test`, {})).status, 403);
    });
  } finally {
    await ctx.close();
  }
});
