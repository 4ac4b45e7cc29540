import assert from "node:assert/strict";
import { openApiPath } from "../../routes/openapi/document.ts";
import { bearer, createAccountWithKey } from "../_helpers.ts";
import { domainTestApp } from "../_domains.ts";
import { assertMatchesDocument, deref, type OpenApiDoc } from "../_openapi.ts";

type Json = Record<string, unknown>;
const METHODS = ["get", "post", "put", "patch", "delete"];
/** Operations that need no credential; every other one names its scheme and answers 401. */
const PUBLIC_OPERATIONS = [
  "get /api/e2/openapi.json",
  "get /api/e2/docs",
  "get /healthz",
  "post /api/auth/sign-up",
  "post /api/auth/sign-in",
  "post /api/auth/sign-out",
  "post /api/auth/sign-up/email",
  "post /api/auth/sign-in/email",
  "get /api/auth/get-session",
  "post /api/auth/request-password-reset",
  "post /api/auth/reset-password",
  "post /api/auth/send-verification-email",
  "get /api/auth/verify-email",
  "get /api/auth/passkey/generate-authenticate-options",
  "post /api/auth/passkey/verify-authentication",
  "post /api/auth/two-factor/verify-totp",
  "post /api/auth/two-factor/verify-backup-code",
];

Deno.test("the OpenAPI document is served without authentication as OpenAPI 3.1 JSON", async () => {
  const ctx = await domainTestApp();
  try {
    for (const path of ["/api/e2/openapi.json", "/api/v2/openapi.json"]) {
      const res = await ctx.app.request(path);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
      const doc = await res.json();
      assert.equal(doc.openapi, "3.1.0");
      assert.equal(typeof doc.info.title, "string");
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("every API route the app serves (/api/e2, /api/auth, /healthz) is in the document, and nothing else", async (t) => {
  const ctx = await domainTestApp();
  try {
    const served = new Set<string>();
    for (const r of ctx.app.routes) {
      const method = r.method.toLowerCase();
      const api = r.path.startsWith("/api/e2/") || r.path.startsWith("/api/auth/") ||
        r.path === "/healthz";
      if (!METHODS.includes(method) || !api || r.path.includes("*")) continue;
      served.add(`${method} ${openApiPath(r.path)}`);
    }
    const documented = new Set<string>();
    for (const [path, ops] of Object.entries(ctx.doc.paths)) {
      for (const method of Object.keys(ops)) documented.add(`${method} ${path}`);
    }
    await t.step("served routes are all documented", () => {
      assert.deepEqual([...served].filter((r) => !documented.has(r)), []);
    });
    await t.step("documented routes are all served", () => {
      assert.deepEqual([...documented].filter((r) => !served.has(r)), []);
    });
    await t.step("the domain, key and revoke routes are among them", () => {
      for (
        const op of [
          "get /api/e2/domains",
          "post /api/e2/domains",
          "get /api/e2/domains/{id}",
          "patch /api/e2/domains/{id}",
          "delete /api/e2/domains/{id}",
          "get /api/e2/openapi.json",
          "get /api/e2/docs",
          "post /api/e2/auth/revoke-key",
          "get /api/e2/api-keys",
          "get /healthz",
          "post /api/auth/sign-in",
          "post /api/auth/sign-up/email",
          "get /api/auth/get-session",
          "post /api/auth/delete-user",
        ]
      ) assert.ok(documented.has(op), op);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the document names both security schemes and every error response", async (t) => {
  const ctx = await domainTestApp();
  try {
    const doc = ctx.doc as OpenApiDoc & { components: Json };
    const schemes = doc.components.securitySchemes as Record<string, Json>;
    await t.step("Bearer and session cookie schemes", () => {
      assert.deepEqual(schemes.bearerAuth, {
        type: "http",
        scheme: "bearer",
        description: schemes.bearerAuth.description,
      });
      assert.equal(schemes.sessionCookie.type, "apiKey");
      assert.equal(schemes.sessionCookie.in, "cookie");
    });
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        await t.step(`${method.toUpperCase()} ${path}`, () => {
          const responses = op.responses as Record<string, Json>;
          const security = op.security as Json[];
          const open = PUBLIC_OPERATIONS.includes(`${method} ${path}`);
          if (open) {
            assert.deepEqual(security, []);
          } else {
            assert.ok(security.length >= 1);
            // The verify call (service token) has no limit of its own: the verified key's
            // limit is reported in its 200 body, so it documents 401 and 503 only.
            const byServiceToken = security.some((s) => "serviceToken" in s);
            const required = byServiceToken ? ["401", "503"] : ["401", "429", "503"];
            for (const s of required) assert.ok(responses[s], `${s} documented`);
          }
          assert.ok(responses["500"]);
          for (const [status, r] of Object.entries(responses)) {
            if (Number(status) < 400) continue;
            const resolved = deref(doc, r) as Json;
            const schema = ((resolved.content as Json)["application/json"] as Json).schema as Json;
            assert.deepEqual(
              (schema.required as string[]).slice().sort(),
              ["error", "message", "statusCode"],
            );
          }
          for (const p of (op.parameters as Json[]) ?? []) {
            if (p.in === "path") assert.ok(path.includes(`{${p.name}}`));
          }
        });
      }
    }
    await t.step("domain operations document their own errors", () => {
      const ops = doc.paths["/api/e2/domains/{id}"];
      assert.ok((ops.get.responses as Json)["404"]);
      assert.ok((ops.patch.responses as Json)["400"]);
      assert.ok((ops.delete.responses as Json)["409"]);
      assert.ok((doc.paths["/api/e2/domains"].post.responses as Json)["409"]);
    });
    await t.step("request schemas are the validating ones", () => {
      const body = deref(doc, doc.paths["/api/e2/domains"].post.requestBody) as Json;
      const schema = ((body.content as Json)["application/json"] as Json).schema as Json;
      assert.deepEqual(schema.required, ["domain"]);
      const params = doc.paths["/api/e2/domains"].get.parameters as Json[];
      assert.deepEqual(params.map((p) => p.name), [
        "limit",
        "offset",
        "status",
        "canReceive",
        "check",
      ]);
      const status = params.find((p) => p.name === "status")!.schema as Json;
      assert.deepEqual(status.enum, ["pending", "verified", "failed"]);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("real error responses validate against the document", async (t) => {
  const ctx = await domainTestApp();
  try {
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
    const cases: [string, string, RequestInit, number][] = [
      ["GET", "/api/e2/domains", {}, 401],
      ["POST", "/api/e2/domains", {}, 401],
      ["GET", "/api/e2/domains/dom_x", bearer(key), 404],
      ["GET", "/api/e2/domains?limit=0", bearer(key), 400],
      [
        "POST",
        "/api/e2/domains",
        bearer(key, { body: "x", headers: { "Content-Type": "text/plain" } }),
        415,
      ],
      ["POST", "/api/e2/auth/revoke-key", {}, 401],
      ["POST", "/api/e2/auth/revoke-key", bearer(key), 200],
      ["GET", "/healthz", {}, 200],
      ["GET", "/api/auth/get-session", {}, 200],
      ["GET", "/api/auth/session", {}, 401],
      ["GET", "/api/auth/list-sessions", {}, 401],
    ];
    for (const [method, path, init, status] of cases) {
      await t.step(`${method} ${path} -> ${status}`, async () => {
        const res = await ctx.app.request(path, { ...init, method });
        assert.equal(res.status, status);
        assertMatchesDocument(
          ctx.doc,
          method,
          path,
          res.status,
          res.headers.get("Content-Type"),
          await res.json(),
        );
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("the plain docs view is the endpoint reference, rendered from the document, with nothing fetched", async () => {
  const ctx = await domainTestApp();
  try {
    // The interactive reference (tests/openapi/api_docs_page_test.ts) links this view for no-JS
    // readers. Issue 21: one renderer of the document besides Swagger UI, the Markdown reference
    // (routes/openapi/reference.ts) that docs/api-reference.md is written with, served as text.
    const res = await ctx.app.request("/api/e2/docs?view=plain");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("Content-Type") ?? "", /^text\/plain; charset=utf-8/);
    assert.match(res.headers.get("Content-Security-Policy") ?? "", /default-src 'none'/);
    const text = await res.text();
    assert.ok(!/<script|<link|src=|@import|url\(/i.test(text), "no external resources");
    assert.ok(!/\]\(https?:/i.test(text), "no links off the server");
    for (const [path, ops] of Object.entries(ctx.doc.paths)) {
      assert.ok(text.includes(path), path);
      for (const op of Object.values(ops)) assert.ok(text.includes(String(op.summary)));
    }
    assert.ok(text.includes("Bearer key") && text.includes("session"));
    assert.ok(text.includes("DOMAIN_ALREADY_REGISTERED"), "route descriptions are rendered");
  } finally {
    await ctx.close();
  }
});
