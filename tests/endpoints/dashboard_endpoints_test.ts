/**
 * Settings › Endpoints (issue 23) over plain HTTP: create with the signing secret shown once
 * (Post/Redirect/Get through the one-time flash), a real test against a loopback receiver that
 * verifies the signature (ALLOW_PRIVATE_WEBHOOK_TARGETS=true), a refused target's
 * WEBHOOK_TARGET_NOT_ALLOWED message, bad inputs re-shown with every value kept, edit, roll
 * (sudo mode, as the API declares it), delete saying and doing what it detaches, the shared test
 * throttle, and another account's ids answering exactly as ids that do not exist.
 */
import assert from "node:assert/strict";
import { startWebhookReceiver } from "../_webhook_receiver.ts";
import { BASE } from "../sessions_helpers.ts";
import { endpointTestApp } from "./_fixture.ts";
import { idOf, session, unescape } from "./_dashboard_fixture.ts";

const ELEVEN_MINUTES = 11 * 60_000;
const SECRET = /value="(whsec_[A-Za-z0-9+/=]+)"/;

Deno.test("Settings › Endpoints: create a webhook, its secret once, a signed test to a loopback receiver", async (t) => {
  const ctx = await endpointTestApp({ allowPrivateWebhookTargets: true });
  const receiver = await startWebhookReceiver({ body: '{"received":true}' });
  try {
    const s = await session(ctx);

    await t.step(
      "the empty page: the nav names it, the create form offers the three types",
      async () => {
        const page = await s.get("/settings/endpoints");
        assert.equal(page.status, 200);
        assert.match(page.html, /aria-current="page"[^>]*>Endpoints</);
        assert.match(page.html, /No endpoints yet/);
        for (const type of ["webhook", "email", "email_group"]) {
          assert.ok(page.html.includes(`href="/settings/endpoints?type=${type}#create"`), type);
        }
        assert.match(page.html, /<label for="create-url">Webhook URL<\/label>/);
        const forward = await s.get("/settings/endpoints?type=email");
        assert.match(forward.html, /<label for="create-forwardTo">Forward to<\/label>/);
        assert.doesNotMatch(forward.html, /create-url/);
      },
    );

    let id = "", secret = "";
    await t.step("create: 303 to its page, the secret shown once, never in the API", async () => {
      const { location, html } = await s.postFollow("/settings/endpoints", {
        type: "webhook",
        name: "Orders",
        description: "order mail",
        url: receiver.url,
        header_name_0: "X-Token",
        header_value_0: "t0k3n",
        timeout: "5",
        retryAttempts: "2",
      });
      assert.match(location, /^\/settings\/endpoints\/ep_[0-9A-Za-z]+\?flash=fl_/);
      id = idOf(location);
      secret = SECRET.exec(html)?.[1] ?? "";
      assert.match(secret, /^whsec_/);
      assert.match(html, /Created endpoint Orders/);
      assert.match(html, /won(’|&#39;|')t be shown again/);
      const again = await s.get(location);
      assert.doesNotMatch(again.html, /whsec_/, "the secret shows once");
      const api = await s.api("GET", `/api/e2/endpoints/${id}`);
      assert.equal(api.status, 200);
      assert.equal(api.body.name, "Orders");
      assert.deepEqual(api.body.config, {
        url: receiver.url,
        headers: { "X-Token": "t0k3n" },
        timeout: 5,
        retryAttempts: 2,
      });
      assert.doesNotMatch(JSON.stringify(api.body), /whsec_/);
    });

    await t.step("test: a signed delivery, and its status, time and body on the page", async () => {
      receiver.setSecret(secret);
      const { location, html } = await s.postFollow(`/settings/endpoints/${id}/test`, {
        webhookFormat: "inbound",
      });
      assert.equal(location.split("?")[0], `/settings/endpoints/${id}`);
      assert.equal(receiver.received.length, 1);
      assert.equal(receiver.received[0].verified, true, "the receiver verified the signature");
      assert.equal(receiver.received[0].headers.get("x-token"), "t0k3n");
      assert.match(html, /Test succeeded\./);
      assert.match(html, /<dd id="test-status">200<\/dd>/);
      assert.match(html, /<dd id="test-time">\d+ ms<\/dd>/);
      assert.match(unescape(html), /\{"received":true\}/);
      const api = await s.api("GET", `/api/e2/endpoints/${id}`);
      assert.equal(api.body.deliveryStats.total, 1);
      assert.equal(api.body.deliveryStats.successful, 1);
    });

    await t.step("the list: name, type, target, state and delivery counts", async () => {
      const page = await s.get("/settings/endpoints");
      assert.match(page.html, new RegExp(`<a href="/settings/endpoints/${id}">Orders</a>`));
      assert.ok(page.html.includes(receiver.url));
      assert.match(page.html, /<span class="flag good">Active<\/span>/);
      assert.match(page.html, /1 \(1 ok, 0 failed\)/);
      assert.doesNotMatch(page.html, /t0k3n|whsec_/, "no header value or secret in the list");
    });

    await t.step("the test is in the security log, made by the session", async () => {
      const log = await s.api("GET", "/api/e2/audit-log");
      const actions = (log.body.data as { action: string }[]).map((e) => e.action);
      assert.ok(actions.includes("endpoint.created"), actions.join());
      assert.ok(actions.includes("endpoint.tested"), actions.join());
    });

    await t.step("a receiver answering 500: the failure and its status are shown", async () => {
      const failing = await startWebhookReceiver({ status: 500, body: "boom" });
      try {
        const created = await s.postFollow("/settings/endpoints", {
          type: "webhook",
          name: "Failing",
          url: failing.url,
        });
        const tested = await s.postFollow(`/settings/endpoints/${idOf(created.location)}/test`);
        assert.match(tested.html, /Test failed\./);
        assert.match(tested.html, /<dd id="test-status">500<\/dd>/);
        assert.match(tested.html, /boom/);
      } finally {
        await failing.close();
      }
    });
  } finally {
    await receiver.close();
    await ctx.close();
  }
});

Deno.test("Settings › Endpoints: every bad input is the form again, its field marked, nothing lost", async (t) => {
  const ctx = await endpointTestApp({ allowPrivateWebhookTargets: true });
  try {
    const s = await session(ctx);
    const webhook = {
      type: "webhook",
      name: "Hook",
      description: "kept",
      url: "https://hooks.example.com/in",
      header_name_0: "X-One",
      header_value_0: "one",
      timeout: "30",
      retryAttempts: "3",
    };
    const cases: [string, Record<string, string>, RegExp, string][] = [
      ["an empty name", { ...webhook, name: "  " }, /Name must not be empty\./, "create-name"],
      [
        "a plain http URL to a public host",
        { ...webhook, url: "http://hooks.example.com/in" },
        /Webhook URL: URL must use https\./,
        "create-url",
      ],
      ["no URL", { ...webhook, url: "" }, /Webhook URL: URL is required\./, "create-url"],
      [
        "a Host header",
        { ...webhook, header_name_0: "Host", header_value_0: "evil.example" },
        /Header 1 name may not be set/,
        "create-header_name_0",
      ],
      [
        "a header value with a line break",
        { ...webhook, header_value_0: "a\r\nInjected: yes" },
        /Header 1 value must be at most 2048 characters with no CR, LF/,
        "create-header_value_0",
      ],
      [
        "a value without a header name",
        { ...webhook, header_name_0: "", header_value_0: "orphan" },
        /Header 1 name is required when a value is given\./,
        "create-header_name_0",
      ],
      [
        "a timeout in words",
        { ...webhook, timeout: "soon" },
        /Timeout must be a whole number\./,
        "create-timeout",
      ],
      [
        "a timeout too long",
        { ...webhook, timeout: "600" },
        /Timeout must be at most 60\./,
        "create-timeout",
      ],
      [
        "a forward to no address",
        { type: "email", name: "Fwd", forwardTo: "not-an-address" },
        /Forward to must be an email address\./,
        "create-forwardTo",
      ],
      [
        "an empty group",
        { type: "email_group", name: "Team", emails: " , " },
        /Addresses must name at least one address\./,
        "create-emails",
      ],
      [
        "a group repeating an address",
        { type: "email_group", name: "Team", emails: "a@example.com, A@example.com" },
        /Addresses must not repeat an address\./,
        "create-emails",
      ],
    ];
    for (const [name, fields, message, fieldId] of cases) {
      await t.step(name, async () => {
        const res = await s.post("/settings/endpoints", fields);
        assert.equal(res.status, 400);
        assert.match(res.headers.get("Content-Type") ?? "", /^text\/html/);
        const html = await res.text();
        assert.match(html, message);
        assert.match(html, new RegExp(`id="${fieldId}"[^>]*aria-invalid="true"`));
        for (const [k, v] of Object.entries(fields)) {
          if (k === "type" || v.trim() === "" || /[\r\n]/.test(v)) continue;
          assert.ok(unescape(html).includes(`value="${v}"`), `${k}=${v} kept`);
        }
      });
    }

    await t.step("nothing was created", async () => {
      const list = await s.api("GET", "/api/e2/endpoints");
      assert.equal(list.body.pagination.total, 0);
    });

    await t.step("a broken body is an HTML page, not a 500", async () => {
      const res = await ctx.app.request(`${BASE}/settings/endpoints`, {
        method: "POST",
        headers: {
          Cookie: s.cookie,
          Origin: BASE,
          "Content-Type": "multipart/form-data; boundary=x",
        },
        body: '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\na',
      });
      assert.equal(res.status, 415);
      assert.match(res.headers.get("Content-Type") ?? "", /^text\/html/);
      assert.match(await res.text(), /Form not accepted/);
    });

    await t.step("a form from another site is refused and creates nothing", async () => {
      const res = await ctx.app.request(`${BASE}/settings/endpoints`, {
        method: "POST",
        headers: {
          Cookie: s.cookie,
          Origin: "https://evil.example",
          "Sec-Fetch-Site": "cross-site",
          "Content-Type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams(webhook).toString(),
      });
      assert.equal(res.status, 403);
      await res.body?.cancel();
      assert.equal((await s.api("GET", "/api/e2/endpoints")).body.pagination.total, 0);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("Settings › Endpoints: a target the SSRF guard refuses shows WEBHOOK_TARGET_NOT_ALLOWED's message", async (t) => {
  // Private targets not allowed (the default): a public name that resolves to a private address.
  const ctx = await endpointTestApp();
  ctx.hosts.set("hooks.example.com", ["10.1.2.3"]);
  try {
    const s = await session(ctx);
    let id = "";
    await t.step("a loopback URL cannot even be saved", async () => {
      const res = await s.post("/settings/endpoints", {
        type: "webhook",
        name: "Local",
        url: "https://127.0.0.1/hooks",
      });
      assert.equal(res.status, 400);
      assert.match(await res.text(), /Webhook URL: URL host is a private, loopback/);
    });
    await t.step("a name resolving to a private address: refused at test time, 400", async () => {
      const created = await s.postFollow("/settings/endpoints", {
        type: "webhook",
        name: "Sneaky",
        url: "https://hooks.example.com/in",
      });
      id = idOf(created.location);
      const res = await s.post(`/settings/endpoints/${id}/test`, { webhookFormat: "slack" });
      assert.equal(res.status, 400);
      const html = await res.text();
      assert.match(html, /id="test-refused"[^>]*>The webhook target is not allowed: /);
      assert.deepEqual(ctx.lookups, ["hooks.example.com"]);
      const api = await s.api("GET", `/api/e2/endpoints/${id}`);
      assert.equal(api.body.deliveryStats.total, 0, "nothing was delivered or recorded");
      const viaApi = await s.api("POST", `/api/e2/endpoints/${id}/test`, {});
      assert.equal(viaApi.status, 400);
      assert.equal(viaApi.body.code, "WEBHOOK_TARGET_NOT_ALLOWED");
      assert.ok(unescape(html).includes(viaApi.body.message), "the page says what the API says");
    });
    await t.step("the form's optional test URL follows the API's overrideUrl rules", async () => {
      const lookups = ctx.lookups.length;
      const res = await s.post(`/settings/endpoints/${id}/test`, {
        webhookFormat: "inbound",
        overrideUrl: "https://169.254.169.254/latest",
      });
      assert.equal(res.status, 400);
      const html = unescape(await res.text());
      const viaApi = await s.api("POST", `/api/e2/endpoints/${id}/test`, {
        overrideUrl: "https://169.254.169.254/latest",
      });
      assert.equal(viaApi.body.code, "WEBHOOK_TARGET_NOT_ALLOWED");
      assert.ok(html.includes(viaApi.body.message), "the page says what the API says");
      assert.equal(ctx.lookups.length, lookups, "refused by its URL: nothing resolved or sent");
      const api = await s.api("GET", `/api/e2/endpoints/${id}`);
      assert.equal(api.body.deliveryStats.total, 0);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("Settings › Endpoints: edit, roll (sudo) and delete saying what it detaches", async (t) => {
  const ctx = await endpointTestApp({ allowPrivateWebhookTargets: true });
  try {
    const s = await session(ctx);
    const created = await s.postFollow("/settings/endpoints", {
      type: "webhook",
      name: "Inbox",
      url: "https://hooks.example.com/in",
      header_name_0: "X-A",
      header_value_0: "a",
    });
    const id = idOf(created.location);
    const first = SECRET.exec(created.html)?.[1];
    const domainId = await s.verifiedDomain("mail.example.com");

    await t.step(
      "the edit form starts from the endpoint; a bad URL keeps every value",
      async () => {
        const page = await s.get(`/settings/endpoints/${id}`);
        assert.match(page.html, /id="edit-name"[^>]*value="Inbox"/);
        assert.match(page.html, /id="edit-header_value_0"[^>]*value="a"/);
        const res = await s.post(`/settings/endpoints/${id}/edit`, {
          name: "Renamed",
          url: "ftp://hooks.example.com/in",
          header_name_0: "X-A",
          header_value_0: "changed",
          timeout: "10",
          retryAttempts: "1",
          webhookFormat: "slack",
        });
        assert.equal(res.status, 400);
        const html = unescape(await res.text());
        assert.match(html, /Webhook URL: URL must use https\./);
        assert.match(html, /id="edit-name"[^>]*value="Renamed"/);
        assert.match(html, /value="ftp:\/\/hooks\.example\.com\/in"/);
        assert.match(html, /id="edit-header_value_0"[^>]*value="changed"/);
        assert.equal((await s.api("GET", `/api/e2/endpoints/${id}`)).body.name, "Inbox");
      },
    );

    await t.step(
      "a good edit saves name, state, format, config; a removed header goes",
      async () => {
        const { html } = await s.postFollow(`/settings/endpoints/${id}/edit`, {
          name: "Renamed",
          url: "https://hooks.example.com/v2",
          timeout: "10",
          retryAttempts: "1",
          webhookFormat: "slack",
        });
        assert.match(html, /Saved endpoint Renamed\./);
        const api = await s.api("GET", `/api/e2/endpoints/${id}`);
        assert.equal(api.body.name, "Renamed");
        assert.equal(api.body.isActive, false, "the unchecked box turns it off");
        assert.equal(api.body.webhookFormat, "slack");
        assert.deepEqual(api.body.config, {
          url: "https://hooks.example.com/v2",
          headers: {},
          timeout: 10,
          retryAttempts: 1,
        });
      },
    );

    await t.step("roll: a new secret, shown once", async () => {
      const { html } = await s.postFollow(`/settings/endpoints/${id}/roll`);
      const second = SECRET.exec(html)?.[1];
      assert.match(second ?? "", /^whsec_/);
      assert.notEqual(second, first);
    });

    await t.step("the delete panel says what it detaches; delete does it", async () => {
      await s.postFollow(`/settings/domains/${domainId}/addresses`, {
        local: "support",
        endpointId: id,
        isActive: "on",
      });
      await s.postFollow(`/settings/domains/${domainId}/catch-all`, { catchAllEndpointId: id });
      const page = await s.get(`/settings/endpoints/${id}`);
      assert.ok(
        page.html.includes(
          `href="/settings/domains/${domainId}#addresses">support@mail.example.com</a>`,
        ),
        "the page links the address routed to it",
      );
      assert.match(
        page.html,
        /1 address\(es\) become store-only \(support@mail\.example\.com\); 1 domain\(s\) lose their catch-all \(mail\.example\.com\)\./,
      );
      const { location, html } = await s.postFollow(`/settings/endpoints/${id}/delete`);
      assert.equal(location.split("?")[0], "/settings/endpoints");
      assert.match(html, /Endpoint Renamed deleted\. 1 address\(es\) are now store-only\./);
      assert.match(html, /1 domain\(s\) lost their catch-all \(mail\.example\.com\)/);
      const addresses = await s.api("GET", "/api/e2/email-addresses");
      assert.equal(addresses.body.data[0].endpointId, null);
      const domain = await s.api("GET", `/api/e2/domains/${domainId}`);
      assert.equal(domain.body.isCatchAllEnabled, false);
      assert.equal(domain.body.catchAllEndpointId, null);
      await ctx.assertConsistent();
    });

    await t.step(
      "a stale session's roll asks for the password first (sudo, as declared)",
      async () => {
        const other = await s.postFollow("/settings/endpoints", {
          type: "webhook",
          name: "Later",
          url: "https://hooks.example.com/later",
        });
        ctx.clock.advance(ELEVEN_MINUTES);
        const res = await s.post(`/settings/endpoints/${idOf(other.location)}/roll`);
        assert.equal(res.status, 403);
        assert.match(await res.text(), /Confirm it(’|&#39;|')s you/);
        const edit = await s.post(`/settings/endpoints/${idOf(other.location)}/edit`, {
          name: "Later still",
          url: "https://hooks.example.com/later",
          isActive: "on",
        });
        assert.equal(edit.status, 303, "an edit needs no sudo mode, as in the API");
        await edit.body?.cancel();
      },
    );
  } finally {
    await ctx.close();
  }
});

Deno.test("Settings › Endpoints: the test throttle is the API's, per account", async () => {
  const ctx = await endpointTestApp();
  try {
    const s = await session(ctx);
    const created = await s.postFollow("/settings/endpoints", {
      type: "email",
      name: "Forward",
      forwardTo: "team@example.com",
    });
    const id = idOf(created.location);
    for (let i = 0; i < 5; i++) {
      const res = await s.api("POST", `/api/e2/endpoints/${id}/test`, {});
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    for (let i = 0; i < 5; i++) {
      const { html } = await s.postFollow(`/settings/endpoints/${id}/test`);
      assert.match(html, /Simulated only: this server sends and receives no e-mail/);
    }
    const res = await s.post(`/settings/endpoints/${id}/test`);
    assert.equal(res.status, 429);
    assert.match(res.headers.get("Retry-After") ?? "", /^\d+$/);
    const html = await res.text();
    assert.match(html, /At most 10 endpoint tests a minute per account\./);
    const api = await s.api("POST", `/api/e2/endpoints/${id}/test`, {});
    assert.equal(api.status, 429);
    assert.ok(html.includes(api.body.message), "the page says what the API says");
  } finally {
    await ctx.close();
  }
});

Deno.test("Settings › Endpoints: another account's endpoint ids answer as ids that do not exist", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await session(ctx);
    const b = await session(ctx);
    const theirs = idOf(
      (await b.postFollow("/settings/endpoints", {
        type: "webhook",
        name: "Theirs",
        url: "https://hooks.example.com/b",
      })).location,
    );
    const forms: [string, Record<string, string>][] = [
      ["edit", { name: "Mine now", url: "https://evil.example/x", isActive: "on" }],
      ["test", {}],
      ["roll", {}],
      ["delete", {}],
    ];
    for (const id of [theirs, "ep_doesNotExist0000000000", "not-an-id"]) {
      await t.step(`${id}: the page and every form answer the 404 page`, async () => {
        const page = await a.get(`/settings/endpoints/${id}`);
        assert.equal(page.status, 404);
        assert.match(page.html, /No such endpoint in this account\./);
        assert.doesNotMatch(page.html, /Theirs/);
        for (const [action, fields] of forms) {
          const res = await a.post(`/settings/endpoints/${id}/${action}`, fields);
          assert.equal(res.status, 404, action);
          const html = await res.text();
          assert.match(html, /No such endpoint in this account\./, action);
          assert.doesNotMatch(html, /Theirs/, action);
        }
      });
    }
    await t.step("their endpoint is untouched", async () => {
      const api = await b.api("GET", `/api/e2/endpoints/${theirs}`);
      assert.equal(api.status, 200);
      assert.equal(api.body.name, "Theirs");
      assert.equal(api.body.deliveryStats.total, 0);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("Settings › Endpoints: at MAX_ENDPOINTS_PER_ACCOUNT the form says so, as the API does", async () => {
  const ctx = await endpointTestApp({ maxEndpointsPerAccount: 1 });
  try {
    const s = await session(ctx);
    await s.postFollow("/settings/endpoints", {
      type: "email",
      name: "One",
      forwardTo: "a@b.example",
    });
    const page = await s.get("/settings/endpoints");
    assert.match(page.html, /This account has its 1 endpoints/);
    assert.match(page.html, /<button type="submit" disabled[^>]*>Create endpoint/);
    const fields = { type: "email", name: "Two", forwardTo: "c@d.example" };
    const res = await s.post("/settings/endpoints", fields);
    assert.equal(res.status, 403);
    const html = unescape(await res.text());
    const api = await s.api("POST", "/api/e2/endpoints", {
      type: "email",
      name: "Two",
      config: { forwardTo: "c@d.example" },
    });
    assert.equal(api.status, 403);
    assert.equal(api.body.code, "ENDPOINT_LIMIT_REACHED");
    assert.ok(html.includes(api.body.message), "the page says what the API says");
    assert.match(html, /id="create-name"[^>]*value="Two"/, "the input is kept");
    assert.equal((await s.api("GET", "/api/e2/endpoints")).body.pagination.total, 1);
  } finally {
    await ctx.close();
  }
});
