/**
 * Engineer X1's attack through the dashboard's form paths: an attacker's session posting every
 * endpoint and address form with a victim's endpoint, domain and address ids gets 404s and
 * leaves the victim's objects unchanged; no page shows a signing secret after its one showing.
 */
import assert from "node:assert/strict";
import { endpointTestApp } from "./_fixture.ts";
import { idOf, session } from "./_dashboard_fixture.ts";

Deno.test("attack (defended): dashboard forms with another account's ids", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const victim = await ctx.account();
    const vDomain = await victim.verifiedDomain("victim.example");
    const vHook = (await victim.webhook("Victim hook")).body;
    const vAddr = (await victim.request("POST", "/api/e2/email-addresses", {
      address: "boss@victim.example",
      domainId: vDomain,
      endpointId: vHook.id,
    })).body.id as string;
    const snapshot = async () =>
      JSON.stringify([
        (await victim.request("GET", `/api/e2/endpoints/${vHook.id}`)).body,
        (await victim.request("GET", `/api/e2/email-addresses/${vAddr}`)).body,
        (await victim.request("GET", `/api/e2/domains/${vDomain}`)).body,
      ]);
    const before = await snapshot();
    const attacker = await session(ctx);
    const own = await attacker.verifiedDomain("attacker.example");
    const ownHook = await attacker.postFollow("/settings/endpoints", {
      type: "webhook",
      name: "Mine",
      url: "https://hooks.example.net/in",
    });
    const ownHookId = idOf(ownHook.location);

    await t.step("every form with a victim id: 404, victim unchanged", async () => {
      const forms: [string, Record<string, string>][] = [
        [`/settings/endpoints/${vHook.id}/edit`, { name: "pwned" }],
        [`/settings/endpoints/${vHook.id}/test`, {}],
        [`/settings/endpoints/${vHook.id}/roll`, {}],
        [`/settings/endpoints/${vHook.id}/delete`, {}],
        [`/settings/domains/${vDomain}/addresses`, { local: "spy", endpointId: ownHookId }],
        [`/settings/domains/${vDomain}/addresses/${vAddr}/edit`, { endpointId: ownHookId }],
        [`/settings/domains/${vDomain}/addresses/${vAddr}/delete`, {}],
        [`/settings/domains/${own}/addresses/${vAddr}/edit`, { endpointId: ownHookId }],
        [`/settings/domains/${own}/addresses/${vAddr}/delete`, {}],
        [`/settings/domains/${vDomain}/catch-all`, { catchAllEndpointId: ownHookId }],
      ];
      for (const [path, fields] of forms) {
        const res = await attacker.post(path, fields);
        const html = await res.text();
        assert.ok(res.status === 404 || res.status === 403, `${path}: ${res.status}`);
        assert.ok(!html.includes("victim.example"), `${path} names the victim's domain`);
        assert.ok(!html.includes("Victim hook"), `${path} names the victim's endpoint`);
      }
      assert.equal((await attacker.get(`/settings/endpoints/${vHook.id}`)).status, 404);
      assert.equal(await snapshot(), before);
    });

    await t.step("own forms naming the victim's endpoint: refused, nothing routed", async () => {
      const add = await attacker.post(`/settings/domains/${own}/addresses`, {
        local: "x",
        endpointId: vHook.id,
      });
      assert.equal(add.status, 400, await add.text());
      const ca = await attacker.post(`/settings/domains/${own}/catch-all`, {
        catchAllEndpointId: vHook.id,
      });
      assert.equal(ca.status, 400, await ca.text());
      assert.equal(await snapshot(), before);
    });

    await t.step("the secret is shown once, then on no page", async () => {
      assert.match(ownHook.html, /whsec_/, "shown after create");
      const page = await attacker.get(`/settings/endpoints/${ownHookId}`);
      const list = await attacker.get("/settings/endpoints");
      for (const html of [page.html, list.html]) {
        assert.ok(!/whsec_/.test(html), "a secret shown again");
      }
    });
  } finally {
    await ctx.close();
  }
});
