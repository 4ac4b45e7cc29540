/**
 * A domain's e-mail addresses on its page (issue 23) over plain HTTP: add (the local part, the
 * domain's name as suffix, an endpoint of this account), change routing and state, delete, the
 * catch-all endpoint; bad inputs re-shown with the input kept; the domain-deletion rule; and
 * another account's ids (domain, address, endpoint) answering exactly as ids that do not exist.
 */
import assert from "node:assert/strict";
import { endpointTestApp } from "../endpoints/_fixture.ts";
import { idOf, type Session, session, unescape } from "../endpoints/_dashboard_fixture.ts";

async function webhook(s: Session, name: string): Promise<string> {
  const created = await s.postFollow("/settings/endpoints", {
    type: "webhook",
    name,
    url: `https://hooks.example.com/${name.toLowerCase()}`,
  });
  return idOf(created.location);
}

Deno.test("a domain's page adds, re-routes and deletes addresses and sets its catch-all", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const s = await session(ctx);
    const ep = await webhook(s, "Support");
    const domainId = await s.verifiedDomain("mail.example.com");
    const page = `/settings/domains/${domainId}`;

    await t.step(
      "the section: none yet, the suffix shown, this account's endpoints offered",
      async () => {
        const { html } = await s.get(page);
        assert.match(html, /<h2 id="addresses-title">Email addresses<\/h2>/);
        assert.match(html, /No addresses on mail\.example\.com yet\./);
        assert.match(
          html,
          /<span id="address-suffix" class="domain-name">@mail\.example\.com<\/span>/,
        );
        assert.match(html, new RegExp(`<option value="${ep}" ?>Support \\(webhook\\)</option>`));
      },
    );

    let addressId = "";
    await t.step(
      "add: 303 back to the page, the address listed, routed and receiving",
      async () => {
        const { location, html } = await s.postFollow(`${page}/addresses`, {
          local: "Help",
          endpointId: ep,
          isActive: "on",
        });
        assert.match(location, new RegExp(`^${page}\\?flash=fl_[0-9A-Za-z]+#addresses$`));
        assert.match(html, /Added Help@mail\.example\.com\./);
        assert.match(html, new RegExp(`<a href="/settings/endpoints/${ep}">Support</a>`));
        assert.match(html, /<span class="flag good">Receiving<\/span>/);
        const api = await s.api("GET", "/api/e2/email-addresses");
        assert.equal(api.body.pagination.total, 1);
        const a = api.body.data[0];
        addressId = a.id;
        assert.equal(a.address, "Help@mail.example.com");
        assert.equal(a.endpointId, ep);
        assert.equal(a.isReceiptRuleConfigured, true);
        const endpoint = await s.api("GET", `/api/e2/endpoints/${ep}`);
        assert.deepEqual(endpoint.body.associatedEmails.map((x: { id: string }) => x.id), [a.id]);
      },
    );

    await t.step("edit: store only and inactive", async () => {
      const { html } = await s.postFollow(`${page}/addresses/${addressId}/edit`, {
        endpointId: "",
      });
      assert.match(html, /Saved Help@mail\.example\.com\./);
      assert.match(html, /Store only \(no endpoint\)/);
      assert.match(html, /<span class="flag off">Inactive<\/span>/);
      const a = await s.api("GET", `/api/e2/email-addresses/${addressId}`);
      assert.equal(a.body.endpointId, null);
      assert.equal(a.body.webhookId, null);
      assert.equal(a.body.isActive, false);
      assert.equal(a.body.routing.type, "none");
    });

    await t.step("catch-all on with an endpoint, then off", async () => {
      const on = await s.postFollow(`${page}/catch-all`, { catchAllEndpointId: ep });
      assert.match(on.html, /Catch-all on/);
      assert.match(on.html, new RegExp(`<option value="${ep}" selected>Support`));
      const d = await s.api("GET", `/api/e2/domains/${domainId}`);
      assert.equal(d.body.isCatchAllEnabled, true);
      assert.equal(d.body.catchAllEndpointId, ep);
      await s.postFollow(`${page}/catch-all`, { catchAllEndpointId: "" });
      const off = await s.api("GET", `/api/e2/domains/${domainId}`);
      assert.equal(off.body.isCatchAllEnabled, false);
      assert.equal(off.body.catchAllEndpointId, null);
    });

    await t.step(
      "a domain with addresses cannot be deleted: 409 with the API's message",
      async () => {
        const res = await s.post(`${page}/delete`);
        assert.equal(res.status, 409);
        assert.match(await res.text(), /still has 1 email address\(es\); delete them first\./);
      },
    );

    await t.step("delete the address; the domain can go then", async () => {
      const { html } = await s.postFollow(`${page}/addresses/${addressId}/delete`);
      assert.match(html, /Deleted Help@mail\.example\.com\./);
      assert.equal((await s.api("GET", "/api/e2/email-addresses")).body.pagination.total, 0);
      const gone = await s.postFollow(`${page}/delete`);
      assert.match(gone.html, /Domain mail\.example\.com deleted\./);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("address forms: a bad input is the page again with the input kept", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const s = await session(ctx);
    const ep = await webhook(s, "Hook");
    const domainId = await s.verifiedDomain("in.example.com");
    const page = `/settings/domains/${domainId}`;

    await t.step(
      "a local part with a space: 400, the field marked, both choices kept",
      async () => {
        const res = await s.post(`${page}/addresses`, { local: "bad local", endpointId: ep });
        assert.equal(res.status, 400);
        const html = unescape(await res.text());
        assert.match(html, /id="address-local"[^>]*value="bad local"[^>]*aria-invalid="true"/);
        assert.match(html, /The address local part must be an RFC 5321 dot-atom/);
        assert.match(html, new RegExp(`<option value="${ep}" selected>Hook`));
        assert.match(html, /id="address-active"[^>]*>/);
        assert.doesNotMatch(html, /id="address-active"[^>]*checked/, "unchecked stays unchecked");
      },
    );

    await t.step("an endpoint id that is not this account's: 400 naming the endpoint", async () => {
      const other = await session(ctx);
      const theirs = await webhook(other, "Theirs");
      const pages: string[] = [];
      for (const endpointId of [theirs, "ep_doesNotExist0000000000"]) {
        const res = await s.post(`${page}/addresses`, { local: "x", endpointId, isActive: "on" });
        assert.equal(res.status, 400);
        const html = await res.text();
        assert.match(html, /The endpoint names no endpoint of this account\./);
        assert.doesNotMatch(html, /Theirs/);
        pages.push(/id="address-endpoint-problem">([^<]*)</.exec(html)?.[1] ?? "");
      }
      assert.equal(pages[0], pages[1], "another account's id reads as one that does not exist");
      assert.equal((await s.api("GET", "/api/e2/email-addresses")).body.pagination.total, 0);
    });

    await t.step("the same address twice: 409, the input kept", async () => {
      await s.postFollow(`${page}/addresses`, { local: "sales", isActive: "on" });
      const res = await s.post(`${page}/addresses`, { local: "sales", isActive: "on" });
      assert.equal(res.status, 409);
      const html = await res.text();
      assert.match(html, /The address sales@in\.example\.com is already in your account\./);
      assert.match(html, /id="address-local"[^>]*value="sales"/);
      const api = await s.api("POST", "/api/e2/email-addresses", {
        address: "sales@in.example.com",
        domainId,
      });
      assert.equal(api.status, 409);
      assert.ok(html.includes(api.body.message), "the page says what the API says");
    });

    await t.step("a pending domain: no catch-all form, and a posted one is refused", async () => {
      const pending = idOf(
        (await s.postFollow("/settings/domains", { domain: "wait.example" })).location,
      );
      await s.postFollow(`/settings/domains/${pending}/addresses`, { local: "hi", isActive: "on" });
      const { html } = await s.get(`/settings/domains/${pending}`);
      assert.match(html, /Not receiving: domain not verified/);
      assert.match(html, /can be set once the domain is\s+verified/);
      assert.doesNotMatch(html, /action="[^"]*\/catch-all"/);
      const res = await s.post(`/settings/domains/${pending}/catch-all`, {
        catchAllEndpointId: ep,
      });
      assert.equal(res.status, 400);
      assert.match(await res.text(), /must be verified before catch-all can be changed/);
    });

    await t.step("a broken body is an HTML page", async () => {
      const res = await ctx.app.request(`http://localhost${page}/addresses`, {
        method: "POST",
        headers: { Cookie: s.cookie, Origin: "http://localhost", "Content-Type": "text/plain" },
        body: "local=x",
      });
      assert.equal(res.status, 415);
      assert.match(res.headers.get("Content-Type") ?? "", /^text\/html/);
      await res.body?.cancel();
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("address forms: another account's domain and address ids answer as ids that do not exist", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await session(ctx);
    const b = await session(ctx);
    const mine = await a.verifiedDomain("a.example.com");
    const myOther = await a.verifiedDomain("a2.example.com");
    await a.postFollow(`/settings/domains/${myOther}/addresses`, { local: "x", isActive: "on" });
    const myOtherAddress = (await a.api("GET", "/api/e2/email-addresses")).body.data[0].id;
    const theirDomain = await b.verifiedDomain("b.example.com");
    await b.postFollow(`/settings/domains/${theirDomain}/addresses`, {
      local: "b",
      isActive: "on",
    });
    const theirAddress = (await b.api("GET", "/api/e2/email-addresses")).body.data[0].id;

    for (const domainId of [theirDomain, "dom_doesNotExist00000000", "nope"]) {
      await t.step(`domain ${domainId}: every form is the 404 page`, async () => {
        for (
          const [path, fields] of [
            ["addresses", { local: "evil", isActive: "on" }],
            [`addresses/${theirAddress}/edit`, { endpointId: "" }],
            [`addresses/${theirAddress}/delete`, {}],
            ["catch-all", { catchAllEndpointId: "" }],
          ] as const
        ) {
          const res = await a.post(`/settings/domains/${domainId}/${path}`, fields);
          assert.equal(res.status, 404, path);
          const html = await res.text();
          assert.match(html, /No such domain in this account\./, path);
          assert.doesNotMatch(html, /b\.example\.com/, path);
        }
      });
    }
    for (const addressId of [theirAddress, myOtherAddress, "ea_doesNotExist000000000"]) {
      await t.step(`address ${addressId} under my domain: the 404 page`, async () => {
        for (const action of ["edit", "delete"]) {
          const res = await a.post(`/settings/domains/${mine}/addresses/${addressId}/${action}`, {
            endpointId: "",
          });
          assert.equal(res.status, 404, action);
          assert.match(await res.text(), /No such email address on this domain\./, action);
        }
      });
    }
    await t.step("nothing of theirs (or my other domain's) changed", async () => {
      const theirs = await b.api("GET", `/api/e2/email-addresses/${theirAddress}`);
      assert.equal(theirs.status, 200);
      assert.equal(theirs.body.isActive, true);
      const d = await b.api("GET", `/api/e2/domains/${theirDomain}`);
      assert.equal(d.body.status, "verified");
      const other = await a.api("GET", `/api/e2/email-addresses/${myOtherAddress}`);
      assert.equal(other.body.isActive, true);
      await ctx.assertConsistent();
    });
  } finally {
    await ctx.close();
  }
});
