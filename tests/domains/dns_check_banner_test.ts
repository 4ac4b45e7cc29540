/**
 * Issue 22 item 12: the DNS check's banner on a domain's page is green only when every record
 * was found; "0 of N records found" is a warning, not a success.
 */
import assert from "node:assert/strict";
import { domainTestApp } from "../_domains.ts";
import { BASE, signUp, withCookie } from "../sessions_helpers.ts";

const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

Deno.test("the DNS check banner warns until every record is found", async (t) => {
  const ctx = await domainTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const post = async (path: string, fields: Record<string, string> = {}) => {
      const res = await ctx.app.request(
        `${BASE}${path}`,
        withCookie(cookie, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded", ...SAME_ORIGIN },
          body: new URLSearchParams(fields).toString(),
        }),
      );
      assert.equal(res.status, 303, await res.clone().text());
      await res.body?.cancel();
      return res.headers.get("Location")!.replace(BASE, "");
    };
    const page = async (path: string) =>
      await (await ctx.app.request(`${BASE}${path}`, withCookie(cookie))).text();
    const detail = (await post("/settings/domains", { domain: "banner.example" }))
      .replace(/\?flash=.*$/, "");
    const banner = (html: string) =>
      /<div class="alert [^"]*"[^>]*>[^<]*Checked[^<]*<\/div>/
        .exec(html)?.[0] ?? "";

    await t.step("nothing published: 0 of N found is a warning, not green", async () => {
      const html = await page(await post(`${detail}/check`));
      const b = banner(html);
      assert.match(b, /Checked banner\.example: 0 of \d+ records found/);
      assert.match(b, /class="alert warn"/);
      assert.doesNotMatch(b, /alert ok/);
    });

    await t.step("every record published: the banner is green", async () => {
      const res = await ctx.app.request(
        `${BASE}/api/e2/domains/${detail.split("/").at(-1)}`,
        withCookie(cookie),
      );
      ctx.resolver.publish((await res.json()).dnsRecords);
      ctx.clock.advance(31_000); // past the 30 s DNS answer cache
      const b = banner(await page(await post(`${detail}/check`)));
      assert.match(b, /Checked banner\.example: (\d+) of \1 records found/);
      assert.match(b, /class="alert ok"/);
    });
  } finally {
    await ctx.close();
  }
});
