/**
 * Issue 22 item 15: the Inbound e2 resources this server does not serve answer 501 with the one
 * error body, under /api/e2 and /api/v2 and with any method, declared once in the registry and
 * documented; a wrong id on a served resource stays 404, and an unknown path stays 404.
 */
import assert from "node:assert/strict";
import { Inbound } from "inboundemail";
import { NOT_PROVIDED_RESOURCES } from "../../routes/not_implemented.ts";
import { bearer, createAccountWithKey, makeTestApp } from "../_helpers.ts";

const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"];

Deno.test("the SDK's other resources answer 501 Not Implemented, not a bare 404", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
    const paths = NOT_PROVIDED_RESOURCES.flatMap((r) => [
      `/api/e2/${r}`,
      `/api/v2/${r}/abc123`,
      `/api/e2/${r}/abc123/reply`,
    ]);
    await t.step("without a key: the specified 401, as on every /api/e2 route", async () => {
      for (const path of paths) {
        for (const method of METHODS) {
          const res = await ctx.app.request(path, { method });
          assert.equal(res.status, 401, `${method} ${path}`);
          await res.body?.cancel();
        }
      }
    });

    await t.step("every method with a key, under /api/e2 and /api/v2", async () => {
      for (const path of paths) {
        for (const method of METHODS) {
          for (const init of [bearer(key, { method })]) {
            const res = await ctx.app.request(path, init);
            assert.equal(res.status, 501, `${method} ${path}`);
            assert.match(res.headers.get("Content-Type") ?? "", /^application\/json/);
            const body = await res.json();
            assert.deepEqual(Object.keys(body), ["error", "message", "statusCode"]);
            assert.equal(body.error, "Not Implemented");
            assert.equal(body.statusCode, 501);
            assert.match(body.message, /is not provided by this server/);
            assert.match(body.message, /does not handle mail/);
            assert.ok(body.message.startsWith(path), body.message);
          }
        }
      }
    });

    await t.step("the SDK surfaces the 501 with its message", async () => {
      // The SDK as shipped, its requests answered by the app in-process.
      const inProcess = (input: RequestInfo | URL, init?: RequestInit) =>
        Promise.resolve(ctx.app.request(new Request(input, init)));
      const sdk = new Inbound({
        apiKey: key,
        baseURL: "http://inbound.test",
        fetch: inProcess as typeof fetch,
        maxRetries: 0,
      });
      await assert.rejects(() => sdk.emails.list(), (err: Error & { status?: number }) => {
        assert.equal(err.status, 501);
        assert.match(err.message, /not provided by this server/);
        return true;
      });
    });

    await t.step("endpoints and email-addresses are served now (issue 23), not 501", async () => {
      assert.deepEqual([...NOT_PROVIDED_RESOURCES], ["emails", "mail", "threads", "attachments"]);
      for (const path of ["/api/e2/endpoints", "/api/v2/email-addresses"]) {
        const res = await ctx.app.request(path, bearer(key));
        assert.equal(res.status, 200, path);
        await res.body?.cancel();
      }
      for (const path of ["/api/e2/endpoints/ep_nope", "/api/e2/email-addresses/ea_nope"]) {
        const res = await ctx.app.request(path, bearer(key));
        assert.equal(res.status, 404, path);
        await res.body?.cancel();
      }
    });

    await t.step("a wrong id on a served resource and an unknown path stay 404", async () => {
      const cases = [
        ["GET", "/api/e2/domains/dom_nope"],
        ["DELETE", "/api/v2/domains/dom_nope"],
        ["GET", "/api/e2/emailsx"],
        ["POST", "/api/e2/webhooks"],
      ];
      for (const [method, path] of cases) {
        const res = await ctx.app.request(path, bearer(key, { method }));
        assert.equal(res.status, 404, path);
        await res.body?.cancel();
      }
    });

    await t.step("the operation is documented once per method with its 501 example", async () => {
      const doc = await (await ctx.app.request("/api/e2/openapi.json")).json();
      const ops = doc.paths["/api/e2/emails"];
      assert.deepEqual(Object.keys(ops).sort(), ["delete", "get", "patch", "post", "put"]);
      for (const op of Object.values(ops) as { responses: Record<string, unknown> }[]) {
        assert.deepEqual(op.responses["501"], { $ref: "#/components/responses/Error501" });
      }
      const example = doc.components.responses.Error501.content["application/json"].example;
      assert.equal(example.statusCode, 501);
    });
  } finally {
    await ctx.close();
  }
});
