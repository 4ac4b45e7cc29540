import assert from "node:assert/strict";
import { createApp } from "../../app.ts";
import { fakeClock } from "../../lib/clock.ts";
import { testConfig } from "../../lib/config.ts";
import { isPointerIndexKey } from "../../store/keys.ts";
import { seedEndpoint } from "../endpoints/_seed.ts";
import { bearer, createAccountWithKey } from "../_helpers.ts";
import { recordingKv } from "../_recording_kv.ts";
import { type Account, type DomainTestApp, domainTestApp, FakeResolver } from "../_domains.ts";

/** Creates `name` in `a` and makes its DNS check pass, so it is verified and can receive. */
async function createVerified(ctx: DomainTestApp, a: Account, name: string) {
  const created = await a.create(name);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  ctx.resolver.publish(created.body.dnsRecords);
  const checked = await a.request("GET", `/api/e2/domains/${created.body.id}?check=true`);
  assert.equal(checked.body.status, "verified");
  return checked.body;
}

async function totals(a: Account): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (
    const q of ["", "status=pending", "status=verified", "canReceive=true", "canReceive=false"]
  ) {
    out[q || "all"] = (await a.request("GET", `/api/e2/domains?${q}`)).body.pagination.total;
  }
  return out;
}

Deno.test("creating a domain answers 201 with the record and the DNS records to publish", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const res = await a.create("Example.COM.");
    await t.step("the record is pending, normalised, and carries every SDK field", () => {
      assert.equal(res.status, 201);
      assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
      assert.match(res.body.id, /^dom_[0-9A-Za-z]{22}$/);
      assert.equal(res.body.domain, "example.com");
      assert.equal(res.body.status, "pending");
      assert.equal(res.body.canReceiveEmails, false);
      assert.equal(res.body.hasMxRecords, false);
      assert.equal(res.body.domainProvider, null);
      assert.equal(res.body.providerConfidence, null);
      assert.equal(res.body.createdAt, new Date(ctx.clock()).toISOString());
      assert.equal(typeof res.body.message, "string");
    });
    await t.step("it lists a verification TXT, the MX, SPF and DMARC, each with isRequired", () => {
      const records = res.body.dnsRecords.map((
        r: { type: string; name: string; isRequired: boolean },
      ) => [r.type, r.name, r.isRequired]);
      assert.deepEqual(records, [
        ["TXT", "_inbound.example.com", true],
        ["MX", "example.com", true],
        ["TXT", "example.com", false],
        ["TXT", "_dmarc.example.com", false],
      ]);
      assert.match(res.body.dnsRecords[0].value, /^inbound-verification=[0-9A-Za-z]{32}$/);
      assert.match(res.body.dnsRecords[2].value, /^v=spf1 /);
      assert.match(res.body.dnsRecords[3].value, /^v=DMARC1;/);
    });
    await t.step("each domain gets its own verification token", async () => {
      const other = await a.create("example.org");
      assert.notEqual(other.body.dnsRecords[0].value, res.body.dnsRecords[0].value);
    });
    await t.step(
      "retrieve answers the same record with its DNS records and zero stats",
      async () => {
        const got = await a.request("GET", `/api/e2/domains/${res.body.id}`);
        assert.equal(got.status, 200);
        assert.equal(got.body.id, res.body.id);
        assert.equal(got.body.userId, a.userId);
        assert.equal(got.body.lastDnsCheck, null);
        assert.equal(got.body.catchAllEndpoint, null);
        assert.equal(got.body.parentDomain, null);
        assert.equal(got.body.inheritsFromParent, false);
        assert.equal(got.body.verificationCheck, undefined);
        assert.deepEqual(got.body.stats, {
          activeEmailAddresses: 0,
          emailsLast24h: 0,
          emailsLast30d: 0,
          emailsLast7d: 0,
          totalEmailAddresses: 0,
        });
        assert.deepEqual(
          got.body.dnsRecords.map((d: { recordType: string; value: string }) => d.value),
          res.body.dnsRecords.map((d: { value: string }) => d.value),
        );
        for (const d of got.body.dnsRecords) {
          assert.equal(d.domainId, res.body.id);
          assert.equal(d.isVerified, false);
          assert.equal(d.lastChecked, null);
        }
        assert.equal(got.body.authRecommendations.spf.name, "example.com");
        assert.equal(got.body.authRecommendations.dmarc.name, "_dmarc.example.com");
      },
    );
    await t.step(
      "no internal field (token, child count, parent id) appears in any body",
      async () => {
        const got = await a.request("GET", `/api/e2/domains/${res.body.id}`);
        const list = await a.request("GET", "/api/e2/domains");
        for (const text of [JSON.stringify(got.body), JSON.stringify(list.body)]) {
          assert.ok(!text.includes("verificationToken"));
          assert.ok(!text.includes("childCount"));
          assert.ok(!text.includes("parentDomainId"));
          assert.ok(!text.includes("lastError"));
        }
      },
    );
    await ctx.assertConsistent();
  } finally {
    await ctx.close();
  }
});

Deno.test("a name already in this account is a 409, in another account a 409 DOMAIN_ALREADY_REGISTERED", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const b = await ctx.account();
    const c = await ctx.account();
    // Issue 10: a name is exclusive once verified (before, from its creation).
    await t.step("a name pending in another account does not block it", async () => {
      const pending = await a.create("open.example");
      assert.equal(pending.status, 201);
      const other = await b.create("open.example");
      assert.equal(other.status, 201);
      assert.equal(other.body.status, "pending");
      await ctx.assertConsistent();
    });
    const first = { body: await createVerified(ctx, a, "taken.example") };
    await t.step("the same name in the same account, however spelled, is 409", async () => {
      for (const spelling of ["taken.example", "TAKEN.example.", " taken.EXAMPLE "]) {
        const res = await a.create(spelling);
        assert.equal(res.status, 409);
        assert.equal(res.body.error, "Conflict");
        assert.equal(res.body.statusCode, 409);
        assert.notEqual(res.body.code, "DOMAIN_ALREADY_REGISTERED");
        assert.equal(res.headers.get("x-should-retry"), "false");
      }
    });
    await t.step(
      "another account gets DOMAIN_ALREADY_REGISTERED and nothing about the owner",
      async () => {
        const res = await b.create("taken.example");
        assert.equal(res.status, 409);
        assert.deepEqual(Object.keys(res.body).sort(), ["code", "error", "message", "statusCode"]);
        assert.equal(res.body.code, "DOMAIN_ALREADY_REGISTERED");
        const text = JSON.stringify(res.body);
        assert.ok(!text.includes(a.userId) && !text.includes(first.body.id));
        // A third account gets the very same answer: it depends on the name only.
        const again = await c.create("taken.example");
        assert.deepEqual(again.body, res.body);
      },
    );
    await t.step("the refused creates changed no count", async () => {
      assert.equal((await a.request("GET", "/api/e2/domains")).body.pagination.total, 2);
      assert.equal((await b.request("GET", "/api/e2/domains")).body.pagination.total, 1);
      await ctx.assertConsistent();
    });
    await t.step(
      "once its owner deletes it, the name can be added by another account",
      async () => {
        assert.equal((await a.request("DELETE", `/api/e2/domains/${first.body.id}`)).status, 200);
        assert.equal((await b.create("taken.example")).status, 201);
        await ctx.assertConsistent();
      },
    );
  } finally {
    await ctx.close();
  }
});

Deno.test("another account's domain id answers exactly like an id that does not exist", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const b = await ctx.account();
    const own = await createVerified(ctx, a, "private.example");
    const missing = "dom_0000000000000000000000";
    const requests: [string, string, unknown?][] = [
      ["GET", ""],
      ["GET", "?check=true"],
      ["PATCH", "", { isCatchAllEnabled: true, catchAllEndpointId: "ep_1" }],
      ["DELETE", ""],
    ];
    for (const [method, query, body] of requests) {
      await t.step(`${method}${query}`, async () => {
        const foreign = await b.request(method, `/api/e2/domains/${own.id}${query}`, body);
        const none = await b.request(method, `/api/e2/domains/${missing}${query}`, body);
        assert.equal(foreign.status, 404);
        assert.deepEqual(foreign.body, none.body);
        assert.deepEqual(foreign.body, {
          error: "Not Found",
          message: "Not found.",
          statusCode: 404,
        });
        assert.equal(foreign.headers.get("Content-Type"), none.headers.get("Content-Type"));
      });
    }
    await t.step("A's domain is untouched", async () => {
      const got = await a.request("GET", `/api/e2/domains/${own.id}`);
      assert.equal(got.status, 200);
      assert.equal(got.body.isCatchAllEnabled, false);
      assert.equal(got.body.updatedAt, own.updatedAt);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("catch-all can be changed only on a verified domain", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const pending = await a.create("pending.example");
    await t.step("a pending domain answers 400 DOMAIN_NOT_VERIFIED", async () => {
      const res = await a.request("PATCH", `/api/e2/domains/${pending.body.id}`, {
        isCatchAllEnabled: true,
        catchAllEndpointId: "ep_abc",
      });
      assert.equal(res.status, 400);
      assert.equal(res.body.code, "DOMAIN_NOT_VERIFIED");
      assert.match(res.body.message, /verified/);
    });
    const verified = await createVerified(ctx, a, "verified.example");
    await t.step("enabling needs an endpoint id: 400 naming catchAllEndpointId", async () => {
      const res = await a.request("PATCH", `/api/e2/domains/${verified.id}`, {
        isCatchAllEnabled: true,
      });
      assert.equal(res.status, 400);
      assert.equal(res.body.field, "catchAllEndpointId");
    });
    await t.step("isCatchAllEnabled is required and must be a boolean", async () => {
      for (const body of [{}, { isCatchAllEnabled: "yes" }]) {
        const res = await a.request("PATCH", `/api/e2/domains/${verified.id}`, body);
        assert.equal(res.status, 400);
        assert.equal(res.body.field, "isCatchAllEnabled");
      }
    });
    await t.step("enabling answers the SDK's DomainUpdateResponse and persists", async () => {
      // Issue 23: the catch-all names a real endpoint of the account, described in the answer.
      const endpointId = await seedEndpoint(ctx.kv, a.userId, ctx.clock, { name: "Catch-all" });
      ctx.clock.advance(1000);
      const res = await a.request("PATCH", `/api/e2/domains/${verified.id}`, {
        isCatchAllEnabled: true,
        catchAllEndpointId: endpointId,
      });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, {
        id: verified.id,
        catchAllEndpointId: endpointId,
        domain: "verified.example",
        isCatchAllEnabled: true,
        status: "verified",
        updatedAt: new Date(ctx.clock()).toISOString(),
        catchAllEndpoint: { id: endpointId, isActive: true, name: "Catch-all", type: "email" },
      });
      const got = await a.request("GET", `/api/e2/domains/${verified.id}`);
      assert.equal(got.body.isCatchAllEnabled, true);
      assert.equal(got.body.catchAllEndpointId, endpointId);
      const list = await a.request("GET", "/api/e2/domains?status=verified");
      assert.equal(list.body.data[0].stats.hasCatchAll, true);
    });
    await t.step("disabling clears the endpoint", async () => {
      const res = await a.request("PATCH", `/api/e2/domains/${verified.id}`, {
        isCatchAllEnabled: false,
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.isCatchAllEnabled, false);
      assert.equal(res.body.catchAllEndpointId, null);
    });
    await ctx.assertConsistent();
  } finally {
    await ctx.close();
  }
});

Deno.test("deleting a domain answers what was deleted and frees the name and the counts", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const keep = await createVerified(ctx, a, "keep.example");
    const gone = await createVerified(ctx, a, "gone.example");
    await a.create("pending.example");
    await t.step("counts before", async () => {
      assert.deepEqual(await totals(a), {
        all: 3,
        "status=pending": 1,
        "status=verified": 2,
        "canReceive=true": 2,
        "canReceive=false": 1,
      });
    });
    await t.step("DELETE answers success, a message and deletedResources", async () => {
      const res = await a.request("DELETE", `/api/e2/domains/${gone.id}`);
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, {
        success: true,
        message: "Domain gone.example deleted.",
        deletedResources: {
          blockedEmails: 0,
          dnsRecords: 4,
          domain: "gone.example",
          emailAddresses: 0,
          sesIdentity: false,
          sesReceiptRules: false,
        },
      });
    });
    await t.step("it is gone: GET and a second DELETE are 404", async () => {
      assert.equal((await a.request("GET", `/api/e2/domains/${gone.id}`)).status, 404);
      assert.equal((await a.request("DELETE", `/api/e2/domains/${gone.id}`)).status, 404);
      assert.equal((await a.request("GET", `/api/e2/domains/${keep.id}`)).status, 200);
    });
    await t.step("every counter dropped by exactly one", async () => {
      assert.deepEqual(await totals(a), {
        all: 2,
        "status=pending": 1,
        "status=verified": 1,
        "canReceive=true": 1,
        "canReceive=false": 1,
      });
      await ctx.assertConsistent();
    });
    await t.step("the name can be added again, as a new pending domain", async () => {
      const again = await a.create("gone.example");
      assert.equal(again.status, 201);
      assert.notEqual(again.body.id, gone.id);
      assert.equal(again.body.status, "pending");
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a subdomain of a domain this account verified is verified at once", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const b = await ctx.account();
    const parent = await createVerified(ctx, a, "parent.example");
    let childId = "";
    await t.step(
      "the subdomain is verified, names its parent and needs no TXT of its own",
      async () => {
        const res = await a.create("Mail.Parent.Example");
        assert.equal(res.status, 201);
        childId = res.body.id;
        assert.equal(res.body.status, "verified");
        assert.equal(res.body.parentDomain, "parent.example");
        assert.equal(res.body.canReceiveEmails, false, "receiving still needs its MX record");
        assert.deepEqual(res.body.dnsRecords.map((d: { type: string }) => d.type), [
          "MX",
          "TXT",
          "TXT",
        ]);
        const got = await a.request("GET", `/api/e2/domains/${childId}`);
        assert.equal(got.body.inheritsFromParent, true);
        assert.equal(got.body.parentDomain, "parent.example");
      },
    );
    await t.step("a deeper subdomain inherits too", async () => {
      const res = await a.create("x.y.parent.example");
      assert.equal(res.body.status, "verified");
      assert.equal(res.body.parentDomain, "parent.example");
      assert.equal((await a.request("DELETE", `/api/e2/domains/${res.body.id}`)).status, 200);
    });
    await t.step(
      "the parent cannot be deleted while it has subdomains: 409 naming them",
      async () => {
        const res = await a.request("DELETE", `/api/e2/domains/${parent.id}`);
        assert.equal(res.status, 409);
        assert.equal(res.body.code, "DOMAIN_HAS_SUBDOMAINS");
        assert.match(res.body.message, /mail\.parent\.example/);
        assert.equal((await a.request("GET", `/api/e2/domains/${parent.id}`)).status, 200);
      },
    );
    await t.step("after the subdomain is deleted, the parent can be", async () => {
      assert.equal((await a.request("DELETE", `/api/e2/domains/${childId}`)).status, 200);
      assert.equal((await a.request("DELETE", `/api/e2/domains/${parent.id}`)).status, 200);
      await ctx.assertConsistent();
    });
    // Issue 10 changed this rule: a name under one another account has verified is theirs too
    // (before, it was created pending and unlinked).
    await t.step("a subdomain of another account's verified domain is refused", async () => {
      await createVerified(ctx, a, "theirs.example");
      const res = await b.create("sub.theirs.example");
      assert.equal(res.status, 409);
      assert.equal(res.body.code, "DOMAIN_ALREADY_REGISTERED");
      assert.equal(
        (await b.create("deep.sub.theirs.example")).body.code,
        "DOMAIN_ALREADY_REGISTERED",
      );
    });
    await ctx.assertConsistent();
  } finally {
    await ctx.close();
  }
});

Deno.test("a subdomain of a pending domain waits, and is verified once its parent is", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const parent = await a.create("later.example");
    const child = await a.create("sub.later.example");
    await t.step("the subdomain is pending, linked to its parent", async () => {
      assert.equal(child.body.status, "pending");
      assert.equal(child.body.parentDomain, "later.example");
      assert.equal((await a.request("DELETE", `/api/e2/domains/${parent.body.id}`)).status, 409);
    });
    await t.step("after the parent verifies, checking the subdomain verifies it", async () => {
      ctx.resolver.publish(parent.body.dnsRecords);
      await a.request("GET", `/api/e2/domains/${parent.body.id}?check=true`);
      const checked = await a.request("GET", `/api/e2/domains/${child.body.id}?check=true`);
      assert.equal(checked.body.status, "verified");
      assert.equal(checked.body.inheritsFromParent, true);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("every domain route answers under /api/v2 as under /api/e2, with the same authentication", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const created = await a.request("POST", "/api/v2/domains", { domain: "alias.example" });
    await t.step("create, retrieve, list, update and delete work through the alias", async () => {
      assert.equal(created.status, 201);
      const got = await a.request("GET", `/api/e2/domains/${created.body.id}`);
      assert.equal(got.body.domain, "alias.example");
      const list = await a.request("GET", "/api/v2/domains");
      assert.equal(list.body.pagination.total, 1);
      const patch = await a.request("PATCH", `/api/v2/domains/${created.body.id}`, {
        isCatchAllEnabled: false,
      });
      assert.equal(patch.status, 400, "still pending");
      assert.equal((await a.request("DELETE", `/api/v2/domains/${created.body.id}`)).status, 200);
    });
    await t.step("without a key the alias answers the seed's 401", async () => {
      for (const [method, path] of [["GET", "/api/v2/domains"], ["POST", "/api/v2/domains"]]) {
        const res = await ctx.app.request(path, { method });
        assert.equal(res.status, 401);
        assert.equal(res.headers.get("WWW-Authenticate"), 'Bearer realm="API", charset="UTF-8"');
        assert.equal((await res.json()).error, "Unauthorized");
      }
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("domain requests touch only their own account's keys and pointer indexes", async (t) => {
  const base = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const { kv, accesses } = recordingKv(base);
  const resolver = new FakeResolver();
  const app = createApp({ kv, clock, config: testConfig(), resolver });
  try {
    const a = await createAccountWithKey(base, clock);
    const b = await createAccountWithKey(base, clock);
    const bApp = await app.request(
      "/api/e2/domains",
      bearer(b.key, {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${b.key}` },
        body: JSON.stringify({ domain: "b.example" }),
      }),
    );
    await bApp.body?.cancel();
    await app.idle(); // B's usage counters are flushed now, not during A's requests below
    const send = async (method: string, path: string, body?: unknown) => {
      accesses.length = 0;
      const res = await app.request(path, {
        method,
        headers: {
          Authorization: `Bearer ${a.key}`,
          ...(body ? { "Content-Type": "application/json" } : {}),
        },
        body: body ? JSON.stringify(body) : undefined,
      });
      const json = await res.json();
      await app.idle();
      const stray = accesses.filter((x) =>
        x.key[0] !== a.userId && !isPointerIndexKey(x.key) && x.key[0] !== "meta"
      );
      assert.deepEqual(stray, [], `${method} ${path}`);
      assert.ok(!accesses.some((x) => x.key[0] === b.userId), "never B's keys");
      return json;
    };
    await t.step("create, retrieve with check, list with check, update and delete", async () => {
      const created = await send("POST", "/api/e2/domains", { domain: "sub.b.example" });
      await send("POST", "/api/e2/domains", { domain: "b.example" }); // 409 from the pointer
      await send("GET", `/api/e2/domains/${created.id}?check=true`);
      await send("GET", "/api/e2/domains?check=true&status=pending");
      await send("PATCH", `/api/e2/domains/${created.id}`, { isCatchAllEnabled: false });
      await send("DELETE", `/api/e2/domains/${created.id}`);
    });
  } finally {
    await app.idle();
    base.close();
  }
});
