/**
 * Engineer X1's attack on issue 23's inputs: malformed JSON, bodies, queries and addresses sent
 * to the endpoints and e-mail-addresses routes answer a clear 4xx JSON error, never a 500.
 */
import assert from "node:assert/strict";
import { bearer } from "../_helpers.ts";
import { endpointTestApp } from "../endpoints/_fixture.ts";

type Raw = { status: number; json: Record<string, unknown> | null; text: string };

Deno.test("attack: malformed input to endpoints and addresses is a 4xx JSON error", async (t) => {
  const ctx = await endpointTestApp();
  try {
    const a = await ctx.account();
    const dom = await a.verifiedDomain("attack.example");
    const hook = (await a.webhook("Hook")).body.id as string;
    const raw = async (method: string, path: string, body?: string, type = "application/json") => {
      const res = await ctx.app.request(
        path,
        bearer(a.key, {
          method,
          headers: body === undefined ? {} : { "Content-Type": type },
          body,
        }),
      );
      const text = await res.text();
      let json: Record<string, unknown> | null = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
      return { status: res.status, json, text } as Raw;
    };
    const assertClear = (r: Raw, what: string) => {
      assert.ok(r.status >= 400 && r.status < 500, `${what}: ${r.status} ${r.text}`);
      assert.ok(r.json && typeof r.json.message === "string", `${what}: ${r.text}`);
      assert.equal(r.json!.statusCode, r.status, what);
    };

    await t.step("bad JSON and wrong shapes", async () => {
      const bodies = [
        "{",
        "null",
        "[]",
        '"x"',
        "1e309",
        '{"name":"x","type":"webhook","config":null}',
        '{"name":"x","type":"webhook","config":[]}',
        '{"name":"x","type":"webhook","config":{"url":123}}',
        '{"name":"x","type":"webhook","config":{"url":"https://a.com","headers":[]}}',
        '{"name":"x","type":"webhook","config":{"url":"https://a.com","headers":{"X":1}}}',
        '{"name":"x","type":"webhook","config":{"url":"https://a.com","timeout":1e308}}',
        '{"name":"x","type":"webhook","config":{"url":"https://a.com","headers":{"__proto__":"x"}}}',
        '{"name":"x","type":"email_group","config":{"emails":"a@b.com"}}',
        '{"name":"x","type":"nope","config":{}}',
        '{"name":["x"],"type":"webhook","config":{}}',
        '{"__proto__":{"isActive":false},"name":"x","type":"email","config":{"forwardTo":"a@b.co"}}',
      ];
      for (const b of bodies) {
        const r = await raw("POST", "/api/e2/endpoints", b);
        if (r.status === 201) continue; // accepted as valid is fine; never a 500
        assertClear(r, `POST endpoints ${b}`);
      }
      for (const b of ["{", "null", '{"config":[]}', '{"config":{"url":"javascript:x"}}']) {
        assertClear(await raw("PUT", `/api/e2/endpoints/${hook}`, b), `PUT ${b}`);
      }
      for (const b of ["{", "[]", '{"overrideUrl":5}', '{"overrideUrl":"file:///etc/passwd"}']) {
        assertClear(await raw("POST", `/api/e2/endpoints/${hook}/test`, b), `test ${b}`);
      }
    });

    await t.step("addresses: odd forms of `address`", async () => {
      const forms = [
        "",
        "@",
        "a@",
        "@attack.example",
        "a@b@attack.example",
        "ä@attack.example",
        "a@attäck.example",
        "a@xn--attck-gra.example",
        "a@ATTACK.EXAMPLE.",
        "a@attack.example\u0000",
        "a\r\nb@attack.example",
        "a@other.example",
        "x".repeat(65) + "@attack.example",
        ".a@attack.example",
        '"quoted"@attack.example',
        "a@attack.example ",
      ];
      for (const address of forms) {
        const r = await raw(
          "POST",
          "/api/e2/email-addresses",
          JSON.stringify({ address, domainId: dom }),
        );
        assertClear(r, `address ${JSON.stringify(address)}`);
      }
      const upper = await raw(
        "POST",
        "/api/e2/email-addresses",
        JSON.stringify({ address: "Boss@ATTACK.example", domainId: dom }),
      );
      assert.equal(upper.status, 201, upper.text);
      assert.equal(upper.json!.address, "Boss@attack.example");
    });

    await t.step("queries out of range and repeated", async () => {
      const queries = [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=1e3",
        "limit=abc",
        "offset=-5",
        "offset=99999999999",
        "type=webhook&type=email",
        "type=WEBHOOK",
        "active=yes",
        "sortBy=random",
        "search=" + "x".repeat(101),
      ];
      for (const q of queries) {
        const r = await raw("GET", `/api/e2/endpoints?${q}`);
        if (r.status === 200) continue;
        assertClear(r, `endpoints?${q}`);
      }
      for (const q of ["limit=0", "offset=-1", "isActive=1", "domainId=" + "d".repeat(201)]) {
        assertClear(await raw("GET", `/api/e2/email-addresses?${q}`), `addresses?${q}`);
      }
    });

    await t.step("ids in paths: long, odd, encoded", async () => {
      for (const id of ["x".repeat(201), "%00", "%2e%2e", "ep_%F0%9F%92%A9", "%ff"]) {
        for (const p of [`/api/e2/endpoints/${id}`, `/api/e2/email-addresses/${id}`]) {
          assertClear(await raw("GET", p), `GET ${p}`);
          assertClear(await raw("DELETE", p), `DELETE ${p}`);
        }
      }
    });

    await t.step("a huge body is refused (413), not parsed", async () => {
      const big = JSON.stringify({
        name: "x",
        type: "email_group",
        config: { emails: ["a@b.co"], pad: "x".repeat(3_000_000) },
      });
      const r = await raw("POST", "/api/e2/endpoints", big);
      assertClear(r, "huge body");
    });
  } finally {
    await ctx.close();
  }
});
