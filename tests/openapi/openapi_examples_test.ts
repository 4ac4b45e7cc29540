/**
 * The OpenAPI document as tools read it: every operation carries examples that validate against
 * their own schemas, query numbers are integers, and `@redocly/cli lint` finds nothing.
 */
import assert from "node:assert/strict";
import { Validator } from "@cfworker/json-schema";
import type { Schema } from "@cfworker/json-schema";
import { bearer, createAccountWithKey } from "../_helpers.ts";
import { domainTestApp } from "../_domains.ts";
import { deref } from "../_openapi.ts";

type Json = Record<string, unknown>;

/** The pinned linter; its version is the one the document was last checked clean with. */
const REDOCLY = "@redocly/cli@2.2.0";

function assertValid(schema: unknown, value: unknown, what: string): void {
  const result = new Validator(schema as Schema, "2020-12", false).validate(value);
  assert.ok(
    result.valid,
    `${what}: example does not match its schema:\n${
      JSON.stringify(result.errors.slice(0, 5), null, 2)
    }`,
  );
}

Deno.test("every operation has request and response examples that validate against their schemas", async (t) => {
  const ctx = await domainTestApp();
  try {
    const doc = ctx.doc as unknown as Json;
    for (const [path, ops] of Object.entries(ctx.doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        await t.step(`${method.toUpperCase()} ${path}`, () => {
          const what = `${method.toUpperCase()} ${path}`;
          for (const p of (op.parameters as Json[]) ?? []) {
            // Issue 22 item 4: a required parameter carries `example`; an optional one carries
            // its example in `schema.examples` only, since Swagger UI's try-it sends a
            // parameter's `example` as though the user had set that filter.
            const schema = deref(doc, p.schema) as Json;
            const sample = p.required ? p.example : (schema.examples as unknown[] | undefined)?.[0];
            if (!p.required) {
              assert.equal(p.example, undefined, `${what}: optional ${p.name} has no example`);
              assert.equal(schema.default, undefined, `${what}: optional ${p.name} no default`);
            }
            assert.ok(sample !== undefined, `${what}: parameter ${p.name} has an example`);
            assertValid(schema, sample, `${what} parameter ${p.name}`);
          }
          if (op.requestBody) {
            const body = deref(doc, op.requestBody) as Json;
            for (const [type, media] of Object.entries(body.content as Record<string, Json>)) {
              assert.ok(media.example !== undefined, `${what}: ${type} request has an example`);
              assertValid(deref(doc, media.schema), media.example, `${what} request`);
            }
          }
          const responses = op.responses as Record<string, Json>;
          for (const [status, ref] of Object.entries(responses)) {
            const res = deref(doc, ref) as Json;
            for (
              const [type, media] of Object.entries((res.content ?? {}) as Record<string, Json>)
            ) {
              assert.ok(media.example !== undefined, `${what}: ${status} ${type} has an example`);
              assertValid(deref(doc, media.schema), media.example, `${what} ${status}`);
            }
          }
        });
      }
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("limit and offset are documented as bounded integers and still arrive as query strings", async (t) => {
  const ctx = await domainTestApp();
  try {
    const params = ctx.doc.paths["/api/e2/domains"].get.parameters as Json[];
    await t.step("the document types them as integers with their bounds", () => {
      // Without `examples` (the documented sample, issue 22 item 4).
      const schema = (name: string) => {
        const { examples: _sample, ...rest } = params.find((p) => p.name === name)!.schema as Json;
        return rest;
      };
      assert.deepEqual(schema("limit"), { type: "integer", minimum: 1, maximum: 100 });
      assert.deepEqual(schema("offset"), { type: "integer", minimum: 0, maximum: 1_000_000_000 });
    });
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
    const cases: [string, number][] = [
      ["limit=10&offset=0", 200],
      ["limit=100", 200],
      ["limit=0", 400],
      ["limit=101", 400],
      ["limit=1.5", 400],
      ["limit=1e1", 400],
      ["offset=-1", 400],
      ["offset=abc", 400],
    ];
    for (const [query, status] of cases) {
      await t.step(`?${query} answers ${status}`, async () => {
        const res = await ctx.app.request(`/api/e2/domains?${query}`, bearer(key));
        await res.body?.cancel();
        assert.equal(res.status, status);
      });
    }
  } finally {
    await ctx.close();
  }
});

async function hasNpx(): Promise<boolean> {
  try {
    const out = await new Deno.Command("npx", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    })
      .output();
    return out.success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "@redocly/cli lint reports no errors and no warnings on the served document",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    if (!(await hasNpx())) {
      assert.ok(!Deno.env.get("CI"), "npx is required in CI");
      console.log(`skipped: npx is not installed, so ${REDOCLY} lint did not run`);
      return;
    }
    const ctx = await domainTestApp();
    const dir = await Deno.makeTempDir();
    try {
      const res = await ctx.app.request("/api/e2/openapi.json");
      const file = `${dir}/openapi.json`;
      await Deno.writeTextFile(file, await res.text());
      const config = new URL("../../redocly.yaml", import.meta.url).pathname;
      const out = await new Deno.Command("npx", {
        args: ["-y", REDOCLY, "lint", "--config", config, "--format=stylish", file],
        env: { NO_COLOR: "1", REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(240_000),
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.ok(out.success, `redocly lint failed:\n${text}`);
      assert.ok(
        !/\b(warning|error)\b\s+[a-z0-9-]+\s/.test(text),
        `redocly lint reported:\n${text}`,
      );
      assert.match(text, /Your API description is valid/);
      assert.ok(!/You have \d+ warning/.test(text), `redocly lint reported warnings:\n${text}`);
    } finally {
      await ctx.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
