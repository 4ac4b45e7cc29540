/**
 * Issue 20 from a restricted key's side, on the domains routes:
 * - defect 8: `check=true` writes (status, `lastDnsCheck`, `updatedAt`, a verified name's
 *   claim), so it needs `domains:write`; a `domains:read` key gets 403 INSUFFICIENT_SCOPE before
 *   any DNS lookup, and nothing is stored. A plain read still needs only `domains:read`, and a
 *   session (the dashboard) still checks.
 * - defect 7: a key restricted to some domains, refused the delete of a parent, is told the names
 *   of only the subdomains it may see; the others are only counted.
 */
import assert from "node:assert/strict";
import { issueApiKey } from "../../auth/api_keys/issue.ts";
import { resetDenialGate } from "../../auth/api_keys/policy.ts";
import type { ApiScope } from "../../lib/scopes.ts";
import type { KeyGrant } from "../../store/api_keys.ts";
import { domainNameIndexKey } from "../../store/keys.ts";
import { tenantStore } from "../../store/tenant.ts";
import { bearer } from "../_helpers.ts";
import { type Account, type DomainTestApp, domainTestApp, type Res } from "../_domains.ts";
import { BASE, signUp, withCookie } from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };
const WRITE_CHALLENGE = 'Bearer realm="API", error="insufficient_scope", scope="domains:write"';

async function openCtx(): Promise<DomainTestApp & AsyncDisposable> {
  resetDenialGate();
  const ctx = await domainTestApp();
  return Object.assign(ctx, { [Symbol.asyncDispose]: () => ctx.close() });
}

/** A second key of `a`'s account with `grant`, and a client for it. */
async function keyWith(
  ctx: DomainTestApp,
  a: Account,
  grant: Partial<KeyGrant>,
): Promise<(method: string, path: string) => Promise<Res>> {
  const { key } = await issueApiKey(tenantStore(ctx.kv, a.userId, ctx.clock).apiKeys, {
    name: "restricted",
    nowMs: ctx.clock(),
    grant,
  });
  return async (method, path) => {
    const res = await ctx.app.request(`${BASE}${path}`, bearer(key, { method }));
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
  };
}

async function created(a: Account, name: string): Promise<string> {
  const res = await a.create(name);
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body.id;
}

function assertNeedsWrite(res: Res): void {
  assert.equal(res.status, 403, JSON.stringify(res.body));
  assert.equal(res.body.code, "INSUFFICIENT_SCOPE");
  assert.equal(res.body.requiredScope, "domains:write");
  assert.equal(res.headers.get("WWW-Authenticate"), WRITE_CHALLENGE);
}

Deno.test("check=true needs domains:write: a domains:read key is refused before any lookup", async (t) => {
  await using ctx = await openCtx();
  const a = await ctx.account();
  const res = await a.create("readonly-check.example");
  assert.equal(res.status, 201);
  const id = res.body.id;
  // The records are published: a check would verify the domain and claim its name.
  ctx.resolver.publish(res.body.dnsRecords);
  const before = (await a.request("GET", `/api/e2/domains/${id}`)).body;
  const reader = await keyWith(ctx, a, { scopes: ["domains:read"] });

  await t.step("GET /domains/{id}?check=true: 403 INSUFFICIENT_SCOPE, no lookup", async () => {
    assertNeedsWrite(await reader("GET", `/api/e2/domains/${id}?check=true`));
    assert.equal(ctx.resolver.lookups, 0);
  });

  await t.step("GET /domains?check=true: 403 INSUFFICIENT_SCOPE, no lookup", async () => {
    assertNeedsWrite(await reader("GET", "/api/e2/domains?check=true"));
    assertNeedsWrite(await reader("GET", "/api/e2/domains?check=true&status=pending&limit=1"));
    assert.equal(ctx.resolver.lookups, 0);
  });

  await t.step("the same under the /api/v2 alias", async () => {
    assertNeedsWrite(await reader("GET", `/api/v2/domains/${id}?check=true`));
    assertNeedsWrite(await reader("GET", "/api/v2/domains?check=true"));
    assert.equal(ctx.resolver.lookups, 0);
  });

  await t.step("nothing was stored: no status, lastDnsCheck, updatedAt or name claim", async () => {
    const after = (await a.request("GET", `/api/e2/domains/${id}`)).body;
    assert.deepEqual(after, before);
    assert.equal(after.status, "pending");
    assert.equal(after.lastDnsCheck, null);
    const claim = await ctx.kv.get(domainNameIndexKey("readonly-check.example"));
    assert.equal(claim.versionstamp, null);
  });

  await t.step("plain reads still need only domains:read", async () => {
    const one = await reader("GET", `/api/e2/domains/${id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body, before);
    assert.equal((await reader("GET", `/api/e2/domains/${id}?check=false`)).status, 200);
    const list = await reader("GET", "/api/e2/domains");
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.data.map((d: { id: string }) => d.id), [id]);
    assert.equal(ctx.resolver.lookups, 0);
  });

  await t.step("a key with domains:write checks, and the check is stored", async () => {
    const scopes: ApiScope[] = ["domains:read", "domains:write"];
    const writer = await keyWith(ctx, a, { scopes });
    const res = await writer("GET", `/api/e2/domains/${id}?check=true`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, "verified");
    assert.ok(ctx.resolver.lookups > 0);
    const list = await writer("GET", "/api/e2/domains?check=true");
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.ok(list.body.data[0].verificationCheck);
  });

  await t.step("the default key (both domain scopes) checks as before", async () => {
    assert.equal((await a.request("GET", `/api/e2/domains/${id}?check=true`)).status, 200);
  });
});

Deno.test("check=true from a session (dashboard and API) still works", async (t) => {
  await using ctx = await openCtx();
  const { cookie } = await signUp(ctx.app);
  const add = await ctx.app.request(
    `${BASE}/api/e2/domains`,
    withCookie(cookie, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...SAME_ORIGIN },
      body: JSON.stringify({ domain: "session-check.example" }),
    }),
  );
  assert.equal(add.status, 201);
  const { id } = await add.json();

  await t.step("GET …?check=true with the session cookie from this site: 200", async () => {
    const res = await ctx.app.request(
      `${BASE}/api/e2/domains/${id}?check=true`,
      withCookie(cookie, { headers: SAME_ORIGIN }),
    );
    assert.equal(res.status, 200, await res.clone().text());
    assert.ok((await res.json()).verificationCheck);
    const list = await ctx.app.request(
      `${BASE}/api/e2/domains?check=true`,
      withCookie(cookie, { headers: SAME_ORIGIN }),
    );
    assert.equal(list.status, 200);
    await list.body?.cancel();
  });

  await t.step("the dashboard's check form: 303 to the page", async () => {
    ctx.clock.advance(60_000); // past the DNS answer cache: the form's check looks up again
    const lookups = ctx.resolver.lookups;
    const res = await ctx.app.request(
      `${BASE}/settings/domains/${id}/check`,
      withCookie(cookie, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", ...SAME_ORIGIN },
        body: "",
      }),
    );
    assert.equal(res.status, 303, await res.clone().text());
    await res.body?.cancel();
    assert.ok(ctx.resolver.lookups > lookups, "the form's check ran its lookups");
  });
});

Deno.test("a domain-restricted key's 409 names only the subdomains it may see", async (t) => {
  await using ctx = await openCtx();
  const a = await ctx.account();
  const parent = await created(a, "parent.example");
  const seen = await created(a, "seen.parent.example");
  const hidden = [
    await created(a, "hidden-one.parent.example"),
    await created(a, "hidden-two.parent.example"),
  ];
  const hiddenNames = /hidden-(one|two)/;

  await t.step("a key seeing the parent and one subdomain: that one named, 2 others", async () => {
    const key = await keyWith(ctx, a, {
      scopes: ["domains:read", "domains:write"],
      domainIds: [parent, seen],
    });
    for (const h of hidden) {
      assert.equal((await key("GET", `/api/e2/domains/${h}`)).status, 404, "hidden from the key");
    }
    const res = await key("DELETE", `/api/e2/domains/${parent}`);
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.code, "DOMAIN_HAS_SUBDOMAINS");
    assert.equal(
      res.body.message,
      "The domain still has 3 subdomain(s) (seen.parent.example and 2 other(s)); " +
        "delete them first.",
    );
    const raw = JSON.stringify(res.body);
    assert.doesNotMatch(raw, hiddenNames);
    for (const h of hidden) assert.ok(!raw.includes(h), "no hidden id");
  });

  await t.step("a key seeing only the parent: no name at all, only the count", async () => {
    const key = await keyWith(ctx, a, {
      scopes: ["domains:read", "domains:write"],
      domainIds: [parent],
    });
    const res = await key("DELETE", `/api/e2/domains/${parent}`);
    assert.equal(res.status, 409, JSON.stringify(res.body));
    assert.equal(res.body.message, "The domain still has 3 subdomain(s); delete them first.");
    assert.doesNotMatch(JSON.stringify(res.body), /parent\.example/);
  });

  await t.step("an unrestricted key is told every name, as before", async () => {
    const res = await a.request("DELETE", `/api/e2/domains/${parent}`);
    assert.equal(res.status, 409);
    for (const name of ["seen", "hidden-one", "hidden-two"]) {
      assert.match(res.body.message, new RegExp(`${name}\\.parent\\.example`));
    }
    assert.doesNotMatch(res.body.message, /other/);
  });

  await t.step("a visible subdomain past the first ten hidden ones is still named", async () => {
    const more: string[] = [];
    for (let i = 0; i < 10; i++) more.push(await created(a, `m${i}.parent.example`));
    const last = await created(a, "zz.parent.example");
    const key = await keyWith(ctx, a, {
      scopes: ["domains:read", "domains:write"],
      domainIds: [parent, last],
    });
    const res = await key("DELETE", `/api/e2/domains/${parent}`);
    assert.equal(res.status, 409);
    assert.equal(
      res.body.message,
      "The domain still has 14 subdomain(s) (zz.parent.example and 13 other(s)); " +
        "delete them first.",
    );
    const unrestricted = await a.request("DELETE", `/api/e2/domains/${parent}`);
    assert.match(unrestricted.body.message, /and 4 other\(s\)/, "ten named, four counted");
    assert.equal(more.length, 10);
  });

  await t.step("nothing was deleted", async () => {
    assert.equal((await a.request("GET", `/api/e2/domains/${parent}`)).status, 200);
    await ctx.assertConsistent();
  });
});
