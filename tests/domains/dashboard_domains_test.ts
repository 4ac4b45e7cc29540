/**
 * Settings › Domains: server-rendered pages whose forms use the API's own domain rules
 * (routes/domains/operations.ts DomainActions) and Post/Redirect/Get. The DNS check uses the app's
 * injectable resolver (tests/_domains.ts FakeResolver).
 */
import assert from "node:assert/strict";
import { tenantStore } from "../../store/tenant.ts";
import { domainInput, type DomainTestApp, domainTestApp } from "../_domains.ts";
import { BASE, signUp, withCookie } from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };
const FLASH = /\?flash=fl_[0-9A-Za-z]{22}$/;

function post(
  cookie: string,
  fields: Record<string, string> = {},
  headers = SAME_ORIGIN,
) {
  return withCookie(cookie, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

async function get(ctx: DomainTestApp, cookie: string, path: string) {
  const res = await ctx.app.request(`${BASE}${path}`, withCookie(cookie));
  return { status: res.status, html: await res.text() };
}

/** Posts a form, expects the 303 of Post/Redirect/Get, and returns where it leads. */
async function postRedirect(
  ctx: DomainTestApp,
  cookie: string,
  path: string,
  fields: Record<string, string> = {},
): Promise<string> {
  const res = await ctx.app.request(`${BASE}${path}`, post(cookie, fields));
  assert.equal(res.status, 303, await res.clone().text());
  assert.equal(await res.text(), "");
  return res.headers.get("Location") ?? "";
}

const unescape = (s: string) =>
  s.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&amp;", "&");

async function apiDomain(ctx: DomainTestApp, cookie: string, id: string) {
  const res = await ctx.app.request(`${BASE}/api/e2/domains/${id}`, withCookie(cookie));
  assert.equal(res.status, 200);
  return await res.json();
}

Deno.test("Settings › Domains adds a domain with Post/Redirect/Get and shows the API's DNS records", async (t) => {
  const ctx = await domainTestApp();
  try {
    const { cookie } = await signUp(ctx.app);

    await t.step("with no domains the page says so and offers the add form", async () => {
      const page = await get(ctx, cookie, "/settings/domains");
      assert.equal(page.status, 200);
      assert.match(page.html, /No domains yet/);
      assert.match(page.html, /<label for="domain">Domain name<\/label>/);
      assert.match(page.html, /aria-current="page"[^>]*>Domains</);
    });

    let detail = "";
    await t.step("adding redirects to the domain's page with a one-time notice", async () => {
      const location = await postRedirect(ctx, cookie, "/settings/domains", {
        domain: "Mail.Example.com",
      });
      assert.match(location, /^\/settings\/domains\/dom_[0-9A-Za-z]+\?flash=fl_/);
      detail = location.replace(FLASH, "");
      const page = await get(ctx, cookie, location);
      assert.equal(page.status, 200);
      assert.match(page.html, /Added mail\.example\.com\. Publish the DNS records/);
      const again = await get(ctx, cookie, location);
      assert.doesNotMatch(again.html, /Added mail\.example\.com/, "the notice shows once");
    });

    await t.step(
      "the page shows every record the API returns, each selectable and copyable",
      async () => {
        const id = detail.split("/").at(-1)!;
        const api = await apiDomain(ctx, cookie, id);
        const page = await get(ctx, cookie, detail);
        const html = unescape(page.html);
        assert.ok(api.dnsRecords.length >= 2);
        for (const r of api.dnsRecords) {
          assert.ok(html.includes(`>${r.name}</code>`), r.name);
          assert.ok(html.includes(`>${r.value}</code>`), r.value);
        }
        const copyButtons = page.html.match(/data-copy-target="rec-\d+-(name|value)"/g) ?? [];
        assert.equal(copyButtons.length, api.dnsRecords.length * 2);
        assert.match(page.html, /Pending verification/);
        assert.match(page.html, /Not checked yet/);
      },
    );

    await t.step("reloading the list after adding does not add again", async () => {
      const list = await get(ctx, cookie, "/settings/domains");
      assert.equal((list.html.match(/data-domain-id=/g) ?? []).length, 1);
      assert.match(list.html, /mail\.example\.com/);
      assert.match(list.html, /Not receiving/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("Settings › Domains refuses an invalid or taken name with the API's message and adds nothing", async (t) => {
  const ctx = await domainTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    await t.step("an invalid name: 400 with the problem, the typed value kept", async () => {
      const res = await ctx.app.request(
        `${BASE}/settings/domains`,
        post(cookie, { domain: "not a domain" }),
      );
      assert.equal(res.status, 400);
      const html = await res.text();
      assert.match(html, /role="alert"[^>]*>Domain name: /);
      assert.match(html, /value="not a domain"/);
    });
    await t.step("the same name twice: 409 'already in your account', one domain", async () => {
      await postRedirect(ctx, cookie, "/settings/domains", { domain: "twice.example" });
      const res = await ctx.app.request(
        `${BASE}/settings/domains`,
        post(cookie, { domain: "twice.example" }),
      );
      assert.equal(res.status, 409);
      assert.match(await res.text(), /The domain twice\.example is already in your account\./);
      const list = await get(ctx, cookie, "/settings/domains");
      assert.equal((list.html.match(/data-domain-id=/g) ?? []).length, 1);
    });
    await t.step("a form from another site is refused (403) and adds nothing", async () => {
      const res = await ctx.app.request(
        `${BASE}/settings/domains`,
        post(cookie, { domain: "csrf.example" }, {
          Origin: "https://evil.example",
          "Sec-Fetch-Site": "cross-site",
        }),
      );
      assert.equal(res.status, 403);
      await res.body?.cancel();
      const list = await get(ctx, cookie, "/settings/domains");
      assert.doesNotMatch(list.html, /csrf\.example/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a DNS check from the page shows each record's result and updates the status the API reports", async (t) => {
  const ctx = await domainTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const location = await postRedirect(ctx, cookie, "/settings/domains", {
      domain: "check.example",
    });
    const detail = location.replace(FLASH, "");
    const id = detail.split("/").at(-1)!;
    const api = await apiDomain(ctx, cookie, id);
    const txt = api.dnsRecords.filter((r: { recordType: string }) => r.recordType === "TXT");
    ctx.resolver.publish(txt);

    await t.step("only the TXT records are published: found, and MX not found", async () => {
      const to = await postRedirect(ctx, cookie, `${detail}/check`);
      assert.match(to, FLASH);
      const page = await get(ctx, cookie, to);
      assert.equal(page.status, 200);
      assert.match(page.html, /Checked check\.example: /);
      const mx = /data-record="mx"[\s\S]*?<\/li>/.exec(page.html)?.[0] ?? "";
      assert.match(mx, /Not found/);
      const verification = /data-record="verification"[\s\S]*?<\/li>/.exec(page.html)?.[0] ?? "";
      assert.match(verification, /Found/);
      assert.doesNotMatch(verification, /Not found/);
      assert.match(page.html, /<span class="flag verified">Verified<\/span>/);
    });

    await t.step("the API sees the same stored outcome", async () => {
      const after = await apiDomain(ctx, cookie, id);
      assert.equal(after.status, "verified");
      assert.equal(after.canReceiveEmails, false);
    });

    await t.step("a lookup error is shown on its record", async () => {
      ctx.resolver.mxAnswers.set("check.example", new Error("SERVFAIL"));
      ctx.clock.advance(31_000); // past the 30 s DNS answer cache
      const page = await get(ctx, cookie, await postRedirect(ctx, cookie, `${detail}/check`));
      const mx = /data-record="mx"[\s\S]*?<\/li>/.exec(page.html)?.[0] ?? "";
      assert.match(mx, /SERVFAIL/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("deleting from the page follows the subdomain rule and explains it", async (t) => {
  const ctx = await domainTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const parentAt = (await postRedirect(ctx, cookie, "/settings/domains", {
      domain: "parent.example",
    })).replace(FLASH, "");
    const parentId = parentAt.split("/").at(-1)!;
    ctx.resolver.publish((await apiDomain(ctx, cookie, parentId)).dnsRecords);
    await postRedirect(ctx, cookie, `${parentAt}/check`);
    const childAt = (await postRedirect(ctx, cookie, "/settings/domains", {
      domain: "sub.parent.example",
    })).replace(FLASH, "");

    await t.step("the rule is on the page before anyone tries", async () => {
      const page = await get(ctx, cookie, parentAt);
      assert.match(page.html, /still has subdomains in this account cannot be deleted/);
    });

    await t.step(
      "the parent with a subdomain: 409 with the API's message, nothing deleted",
      async () => {
        const res = await ctx.app.request(
          `${BASE}${parentAt}/delete`,
          post(cookie),
        );
        assert.equal(res.status, 409);
        assert.match(await res.text(), /still has 1 subdomain\(s\) \(sub\.parent\.example\)/);
        assert.equal((await get(ctx, cookie, parentAt)).status, 200);
      },
    );

    await t.step("the subdomain first, then the parent: both gone", async () => {
      const to = await postRedirect(ctx, cookie, `${childAt}/delete`);
      assert.match(to, /^\/settings\/domains\?flash=/);
      assert.match((await get(ctx, cookie, to)).html, /Domain sub\.parent\.example deleted\./);
      await postRedirect(ctx, cookie, `${parentAt}/delete`);
      const list = await get(ctx, cookie, "/settings/domains");
      assert.match(list.html, /No domains yet/);
      assert.equal((await get(ctx, cookie, parentAt)).status, 404);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the domain list pages through 45 domains twenty at a time, newest first", async (t) => {
  const ctx = await domainTestApp();
  try {
    const { cookie, userId } = await signUp(ctx.app);
    const store = tenantStore(ctx.kv, userId, ctx.clock);
    for (let i = 1; i <= 45; i++) {
      await store.domains.create(domainInput(`d${String(i).padStart(2, "0")}.example`));
      ctx.clock.advance(1000);
    }
    const rows = (html: string) =>
      [...html.matchAll(/class="domain-name" href="[^"]+">([^<]+)</g)]
        .map((m) => m[1]);

    await t.step("page 1: the newest twenty and a link to page 2", async () => {
      const page = await get(ctx, cookie, "/settings/domains");
      assert.deepEqual(rows(page.html), Array.from({ length: 20 }, (_, i) => `d${45 - i}.example`));
      assert.match(page.html, /Page 1 of 3/);
      assert.match(page.html, /href="\/settings\/domains\?page=2"/);
    });
    await t.step("page 3: the oldest five and a link back", async () => {
      const page = await get(ctx, cookie, "/settings/domains?page=3");
      assert.deepEqual(rows(page.html), [
        "d05.example",
        "d04.example",
        "d03.example",
        "d02.example",
        "d01.example",
      ]);
      assert.match(page.html, /Domains 41–45 of 45/);
      assert.match(page.html, /href="\/settings\/domains\?page=2"/);
      assert.doesNotMatch(page.html, /page=4/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("another account's domain is not found from the page and cannot be checked or deleted", async () => {
  const ctx = await domainTestApp();
  try {
    const owner = await signUp(ctx.app);
    const other = await signUp(ctx.app);
    const at = (await postRedirect(ctx, owner.cookie, "/settings/domains", {
      domain: "mine.example",
    })).replace(FLASH, "");
    assert.equal((await get(ctx, other.cookie, at)).status, 404);
    for (const action of ["check", "delete"]) {
      const res = await ctx.app.request(`${BASE}${at}/${action}`, post(other.cookie));
      assert.equal(res.status, 404, action);
      await res.body?.cancel();
    }
    assert.equal((await get(ctx, owner.cookie, at)).status, 200);
    const signedOut = await ctx.app.request(`${BASE}/settings/domains`);
    assert.equal(signedOut.status, 303);
    assert.equal(signedOut.headers.get("Location"), "/sign-in");
  } finally {
    await ctx.close();
  }
});
