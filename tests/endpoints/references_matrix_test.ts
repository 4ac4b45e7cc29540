/**
 * Issue 23's cross-account matrix: every reference field (domainId in an address create and the
 * list filter, endpointId and webhookId in address create and update, catchAllEndpointId in the
 * domain update) and every id in a path (retrieve, update, delete, test, secret roll) answers
 * another account's id byte for byte as it answers an id that does not exist; and the victim's
 * objects are unchanged. Then a key restricted to some domains, and the new scopes.
 */
import assert from "node:assert/strict";
import type { ApiScope } from "../../lib/scopes.ts";
import { bearer } from "../_helpers.ts";
import { endpointTestApp } from "./_fixture.ts";

type Raw = { status: number; text: string };

Deno.test("another account's id answers exactly as a nonexistent id, everywhere", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const victim = await ctx.account();
    const vDomain = await victim.verifiedDomain("victim.example");
    const vHook = (await victim.webhook("Victim hook")).body.id as string;
    const vAddr = (await victim.request("POST", "/api/e2/email-addresses", {
      address: "boss@victim.example",
      domainId: vDomain,
      endpointId: vHook,
    })).body.id as string;
    const before = await Promise.all([
      victim.request("GET", `/api/e2/endpoints/${vHook}`),
      victim.request("GET", `/api/e2/email-addresses/${vAddr}`),
      victim.request("GET", `/api/e2/domains/${vDomain}`),
    ]);

    const me = await ctx.account();
    const myDomain = await me.verifiedDomain("attacker.example");
    const myHook = (await me.webhook("Mine")).body.id as string;
    const myAddr = (await me.request("POST", "/api/e2/email-addresses", {
      address: "me@attacker.example",
      domainId: myDomain,
    })).body.id as string;

    const raw = async (method: string, path: string, body?: unknown): Promise<Raw> => {
      const init = bearer(me.key, {
        method,
        headers: body === undefined ? {} : { "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const res = await ctx.app.request(path, init);
      return { status: res.status, text: await res.text() };
    };

    const ghost = {
      domain: "dom_0000000000000000000000",
      endpoint: "ep_0000000000000000000000",
      address: "ea_0000000000000000000000",
    };
    const foreign = { domain: vDomain, endpoint: vHook, address: vAddr };
    type Ids = typeof ghost;
    const cases: [string, (ids: Ids) => Promise<Raw>, number][] = [
      ["address create: domainId", (x) =>
        raw("POST", "/api/e2/email-addresses", {
          address: "new@attacker.example",
          domainId: x.domain,
        }), 400],
      [
        "address list: domainId filter",
        (x) => raw("GET", `/api/e2/email-addresses?domainId=${x.domain}`),
        200,
      ],
      ["address create: endpointId", (x) =>
        raw("POST", "/api/e2/email-addresses", {
          address: "new@attacker.example",
          domainId: myDomain,
          endpointId: x.endpoint,
        }), 400],
      ["address create: webhookId", (x) =>
        raw("POST", "/api/e2/email-addresses", {
          address: "new@attacker.example",
          domainId: myDomain,
          webhookId: x.endpoint,
        }), 400],
      [
        "address update: endpointId",
        (x) => raw("PUT", `/api/e2/email-addresses/${myAddr}`, { endpointId: x.endpoint }),
        400,
      ],
      [
        "address update: webhookId",
        (x) => raw("PUT", `/api/e2/email-addresses/${myAddr}`, { webhookId: x.endpoint }),
        400,
      ],
      ["domain update: catchAllEndpointId", (x) =>
        raw("PATCH", `/api/e2/domains/${myDomain}`, {
          isCatchAllEnabled: true,
          catchAllEndpointId: x.endpoint,
        }), 400],
      ["endpoint retrieve", (x) => raw("GET", `/api/e2/endpoints/${x.endpoint}`), 404],
      [
        "endpoint update",
        (x) => raw("PUT", `/api/e2/endpoints/${x.endpoint}`, { name: "pwned" }),
        404,
      ],
      ["endpoint test", (x) => raw("POST", `/api/e2/endpoints/${x.endpoint}/test`, {}), 404],
      [
        "endpoint secret roll",
        (x) => raw("POST", `/api/e2/endpoints/${x.endpoint}/secret/roll`),
        404,
      ],
      ["endpoint delete", (x) => raw("DELETE", `/api/e2/endpoints/${x.endpoint}`), 404],
      ["address retrieve", (x) => raw("GET", `/api/e2/email-addresses/${x.address}`), 404],
      [
        "address update",
        (x) => raw("PUT", `/api/e2/email-addresses/${x.address}`, { isActive: false }),
        404,
      ],
      ["address delete", (x) => raw("DELETE", `/api/e2/email-addresses/${x.address}`), 404],
      ["domain retrieve", (x) => raw("GET", `/api/e2/domains/${x.domain}`), 404],
    ];
    for (const [label, send, status] of cases) {
      await t.step(label, async () => {
        const a = await send(foreign);
        const b = await send(ghost);
        assert.equal(a.status, status, `${label}: ${a.text}`);
        assert.equal(a.status, b.status, label);
        assert.equal(a.text, b.text, label);
      });
    }

    await t.step("the victim's objects are exactly as they were", async () => {
      const after = await Promise.all([
        victim.request("GET", `/api/e2/endpoints/${vHook}`),
        victim.request("GET", `/api/e2/email-addresses/${vAddr}`),
        victim.request("GET", `/api/e2/domains/${vDomain}`),
      ]);
      for (let i = 0; i < before.length; i++) assert.deepEqual(after[i].body, before[i].body);
      const mine = await me.request("GET", `/api/e2/endpoints/${myHook}`);
      assert.deepEqual(mine.body.associatedEmails, []);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a key restricted to some domains sees only their addresses", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const seen = await a.verifiedDomain("seen.example");
    const hidden = await a.verifiedDomain("hidden.example");
    const hook = (await a.webhook("Hook")).body.id as string;
    const mk = (address: string, domainId: string) =>
      a.request("POST", "/api/e2/email-addresses", { address, domainId, endpointId: hook });
    const seenAddr = (await mk("a@seen.example", seen)).body.id as string;
    const hiddenAddr = (await mk("b@hidden.example", hidden)).body.id as string;
    const key = await ctx.keyWith(a.userId, { domainIds: [seen] }, "restricted");
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await ctx.requestWithKey(key, method, path, body);
      return { status: res.status, text: await res.text() };
    };
    const ghost = "ea_0000000000000000000000";

    await t.step("the other domain's address: 404 as a nonexistent one", async () => {
      for (
        const [method, suffix, body] of [
          ["GET", "", undefined],
          ["PUT", "", { isActive: false }],
          ["DELETE", "", undefined],
        ] as const
      ) {
        const x = await call(method, `/api/e2/email-addresses/${hiddenAddr}${suffix}`, body);
        const y = await call(method, `/api/e2/email-addresses/${ghost}${suffix}`, body);
        assert.equal(x.status, 404, method);
        assert.deepEqual(x, y, method);
      }
      assert.equal((await call("GET", `/api/e2/email-addresses/${seenAddr}`)).status, 200);
    });

    await t.step("lists and totals leave it out; filtering on it lists nothing", async () => {
      const list = JSON.parse((await call("GET", "/api/e2/email-addresses")).text);
      assert.deepEqual(list.data.map((x: { id: string }) => x.id), [seenAddr]);
      assert.equal(list.pagination.total, 1);
      const filtered = await call("GET", `/api/e2/email-addresses?domainId=${hidden}`);
      const none = await call("GET", "/api/e2/email-addresses?domainId=dom_0000000000000000000000");
      assert.deepEqual(filtered, none);
    });

    await t.step("creating on the other domain: as on a nonexistent one", async () => {
      const x = await call("POST", "/api/e2/email-addresses", {
        address: "c@hidden.example",
        domainId: hidden,
      });
      const y = await call("POST", "/api/e2/email-addresses", {
        address: "c@hidden.example",
        domainId: "dom_0000000000000000000000",
      });
      assert.equal(x.status, 400);
      assert.deepEqual(x, y);
    });

    await t.step("an endpoint shows it only what is on its domains", async () => {
      const ep = JSON.parse((await call("GET", `/api/e2/endpoints/${hook}`)).text);
      assert.deepEqual(ep.associatedEmails.map((x: { id: string }) => x.id), [seenAddr]);
    });

    await t.step("the audit log shows it only its domains' address events", async () => {
      const auditorGrant = { scopes: ["audit:read"], domainIds: [seen] };
      const auditor = await ctx.keyWith(a.userId, auditorGrant, "restricted auditor");
      const res = await ctx.app.request(
        "/api/e2/audit-log?action=email_address.created",
        bearer(auditor),
      );
      assert.equal(res.status, 200);
      const names = (await res.json()).data.map((e: { target: { name: string } }) => e.target.name);
      assert.deepEqual(names, ["a@seen.example"]);
      const fullAuditor = await ctx.keyWith(a.userId, { scopes: ["audit:read"] }, "auditor");
      const full = await ctx.app.request(
        "/api/e2/audit-log?action=email_address.created",
        bearer(fullAuditor),
      );
      assert.equal((await full.json()).data.length, 2, "unrestricted, both are listed");
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("scopes: endpoints:* and email-addresses:* guard the new routes", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const issue = (scopes: ApiScope[]) => ctx.keyWith(a.userId, { scopes }, scopes.join(","));
    const status = async (key: string, method: string, path: string, body?: unknown) => {
      const res = await ctx.app.request(
        path,
        bearer(key, {
          method,
          headers: { "Content-Type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        }),
      );
      const json = await res.json();
      return [res.status, json.code] as const;
    };
    const domainsOnly = await issue(["domains:read", "domains:write"]);
    const readOnly = await issue(["endpoints:read", "email-addresses:read"]);

    await t.step("a domains-only key: 403 INSUFFICIENT_SCOPE on both resources", async () => {
      assert.deepEqual(await status(domainsOnly, "GET", "/api/e2/endpoints"), [
        403,
        "INSUFFICIENT_SCOPE",
      ]);
      assert.deepEqual(
        await status(domainsOnly, "GET", "/api/e2/email-addresses"),
        [403, "INSUFFICIENT_SCOPE"],
      );
    });

    await t.step("read scopes read, and do not write", async () => {
      assert.equal((await status(readOnly, "GET", "/api/e2/endpoints"))[0], 200);
      assert.equal((await status(readOnly, "GET", "/api/e2/email-addresses"))[0], 200);
      assert.deepEqual(
        await status(readOnly, "POST", "/api/e2/endpoints", {
          name: "x",
          type: "email",
          config: { forwardTo: "a@example.com" },
        }),
        [403, "INSUFFICIENT_SCOPE"],
      );
    });

    await t.step("the account's default key (no scopes given) may do both", async () => {
      assert.equal((await status(a.key, "GET", "/api/e2/endpoints"))[0], 200);
      assert.equal((await status(a.key, "GET", "/api/e2/email-addresses"))[0], 200);
    });
  } finally {
    await ctx.close();
  }
});
