import assert from "node:assert/strict";
import { type Account, type DomainTestApp, domainTestApp } from "../_domains.ts";

/** Creates `n` domains a minute apart: d0.example (oldest) … d{n-1}.example (newest). */
async function seed(ctx: DomainTestApp, a: Account, n: number, tld = "example") {
  const created = [];
  for (let i = 0; i < n; i++) {
    ctx.clock.advance(60_000);
    const res = await a.create(`d${i}.${tld}`);
    assert.equal(res.status, 201);
    created.push(res.body);
  }
  return created;
}

const names = (body: { data: { domain: string }[] }) => body.data.map((d) => d.domain);

Deno.test("the list is newest first and pages with limit, offset and hasMore", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    await seed(ctx, a, 7);
    await t.step("defaults: limit 50, offset 0, everything, newest first", async () => {
      const res = await a.request("GET", "/api/e2/domains");
      assert.deepEqual(names(res.body), [6, 5, 4, 3, 2, 1, 0].map((i) => `d${i}.example`));
      assert.deepEqual(res.body.pagination, { limit: 50, offset: 0, total: 7, hasMore: false });
    });
    await t.step("pages of three walk the list without gaps or repeats", async () => {
      const seen: string[] = [];
      const flags: boolean[] = [];
      for (let offset = 0; offset < 9; offset += 3) {
        const res = await a.request("GET", `/api/e2/domains?limit=3&offset=${offset}`);
        seen.push(...names(res.body));
        flags.push(res.body.pagination.hasMore);
        assert.equal(res.body.pagination.total, 7);
        assert.equal(res.body.pagination.offset, offset);
        assert.equal(res.body.pagination.limit, 3);
      }
      assert.deepEqual(seen, [6, 5, 4, 3, 2, 1, 0].map((i) => `d${i}.example`));
      assert.deepEqual(flags, [true, true, false]);
    });
    await t.step(
      "every page, read from either end of the index, is the slice of the full list",
      async () => {
        const all = [6, 5, 4, 3, 2, 1, 0].map((i) => `d${i}.example`);
        for (let offset = 0; offset <= 8; offset++) {
          for (let limit = 1; limit <= 8; limit++) {
            const res = await a.request("GET", `/api/e2/domains?limit=${limit}&offset=${offset}`);
            assert.deepEqual(
              names(res.body),
              all.slice(offset, offset + limit),
              `${offset}/${limit}`,
            );
          }
        }
      },
    );
    await t.step("an offset past the end is an empty page, not an error", async () => {
      const res = await a.request("GET", "/api/e2/domains?offset=100");
      assert.deepEqual(res.body.data, []);
      assert.deepEqual(res.body.pagination, { limit: 50, offset: 100, total: 7, hasMore: false });
    });
    await t.step("list items carry the SDK's list fields and no verificationCheck", async () => {
      const res = await a.request("GET", "/api/e2/domains?limit=1");
      const item = res.body.data[0];
      assert.deepEqual(item.stats, {
        activeEmailAddresses: 0,
        hasCatchAll: false,
        totalEmailAddresses: 0,
      });
      assert.equal(item.catchAllEndpoint, null);
      assert.equal(item.userId, a.userId);
      assert.equal("verificationCheck" in item, false);
      assert.equal("dnsRecords" in item, false);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("status and canReceive filter the list, and totals follow the filter", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const b = await ctx.account();
    const domains = await seed(ctx, a, 6);
    await seed(ctx, b, 2, "other");
    // d1: verified without MX; d3, d5: verified with MX (can receive); d0: failed; d2, d4 pending.
    for (const i of [1, 3, 5]) {
      ctx.resolver.publish(domains[i].dnsRecords.filter((d: { type: string }) => d.type === "TXT"));
      if (i !== 1) {
        ctx.resolver.publish(
          domains[i].dnsRecords.filter((d: { type: string }) => d.type === "MX"),
        );
      }
      await a.request("GET", `/api/e2/domains/${domains[i].id}?check=true`);
    }
    ctx.clock.advance(73 * 3600_000);
    const failed = await a.request("GET", `/api/e2/domains/${domains[0].id}?check=true`);
    assert.equal(failed.body.status, "failed");
    const cases: [string, number[]][] = [
      ["status=verified", [5, 3, 1]],
      ["status=pending", [4, 2]],
      ["status=failed", [0]],
      ["canReceive=true", [5, 3]],
      ["canReceive=false", [4, 2, 1, 0]],
      ["status=verified&canReceive=false", [1]],
      ["status=verified&canReceive=true", [5, 3]],
      ["status=pending&canReceive=true", []],
      ["status=failed&canReceive=false", [0]],
    ];
    for (const [query, expected] of cases) {
      await t.step(query, async () => {
        const res = await a.request("GET", `/api/e2/domains?${query}`);
        assert.deepEqual(names(res.body), expected.map((i) => `d${i}.example`));
        assert.equal(res.body.pagination.total, expected.length);
      });
    }
    await t.step("a filtered page has its own hasMore", async () => {
      const res = await a.request("GET", "/api/e2/domains?canReceive=false&limit=3&offset=1");
      assert.deepEqual(names(res.body), ["d2.example", "d1.example", "d0.example"]);
      assert.deepEqual(res.body.pagination, { limit: 3, offset: 1, total: 4, hasMore: false });
      const first = await a.request("GET", "/api/e2/domains?canReceive=false&limit=3");
      assert.equal(first.body.pagination.hasMore, true);
    });
    await t.step("the other account's list is its own", async () => {
      const res = await b.request("GET", "/api/e2/domains");
      assert.deepEqual(names(res.body), ["d1.other", "d0.other"]);
    });
    await ctx.assertConsistent();
  } finally {
    await ctx.close();
  }
});

Deno.test("list with check=true re-checks the page's domains and reports each check", async (t) => {
  const ctx = await domainTestApp();
  try {
    const a = await ctx.account();
    const domains = await seed(ctx, a, 3);
    ctx.resolver.publish(domains[2].dnsRecords);
    const lookupsBefore = ctx.resolver.lookups;
    const res = await a.request("GET", "/api/e2/domains?check=true&limit=2");
    await t.step("only the page's domains were looked up", () => {
      // Two domains, each: one TXT for verification, MX, TXT at the apex, DMARC TXT.
      assert.equal(ctx.resolver.lookups - lookupsBefore, 8);
    });
    await t.step("each item carries its verificationCheck and its new status", () => {
      const [newest, middle] = res.body.data;
      assert.equal(newest.domain, "d2.example");
      assert.equal(newest.status, "verified");
      assert.equal(newest.canReceiveEmails, true);
      assert.equal(newest.verificationCheck.isFullyVerified, true);
      assert.equal(newest.verificationCheck.sesStatus, "Success");
      assert.equal(middle.status, "pending");
      assert.equal(middle.verificationCheck.isFullyVerified, false);
      assert.equal(middle.verificationCheck.dnsRecords.length, 4);
      assert.ok(middle.verificationCheck.dnsRecords.every((d: { error?: string }) => d.error));
    });
    await t.step(
      "the total is the count before the check; the counts after follow it",
      async () => {
        assert.equal(res.body.pagination.total, 3);
        const verified = await a.request("GET", "/api/e2/domains?status=verified");
        assert.equal(verified.body.pagination.total, 1);
        await ctx.assertConsistent();
      },
    );
  } finally {
    await ctx.close();
  }
});
