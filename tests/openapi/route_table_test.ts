/**
 * Issue 13, one route table: each authenticated route declares its scope (or that it is session
 * only) where it is defined; the check and the OpenAPI `security` both come from it.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../../auth/middleware.ts";
import type { Principal } from "../../auth/principal.ts";
import { HttpError, jsonResponse } from "../../lib/errors.ts";
import { buildOpenApi } from "../../routes/openapi/document.ts";
import { RouteRegistry } from "../../routes/registry.ts";
import { makeTestApp } from "../_helpers.ts";
import { BASE } from "../sessions_helpers.ts";

type Operation = { operationId: string; security: Record<string, string[]>[] };

async function servedDocument(): Promise<Record<string, Record<string, Operation>>> {
  const ctx = await makeTestApp();
  try {
    const res = await ctx.app.request(`${BASE}/api/e2/openapi.json`);
    return (await res.json()).paths;
  } finally {
    await ctx.close();
  }
}

const ok = { 200: { description: "ok", schema: z.object({ ok: z.boolean() }) } };

Deno.test("an authenticated route that declares neither a scope nor security is refused", async (t) => {
  await t.step("by add", () => {
    assert.throws(
      () =>
        new RouteRegistry().add({
          method: "get",
          path: "/api/e2/things",
          operationId: "listThings",
          summary: "Things",
          responses: ok,
          handler: () => jsonResponse({ ok: true }),
        }),
      /GET \/api\/e2\/things declares neither a scope nor security/,
    );
  });

  await t.step("an open route (auth: false) needs neither", () => {
    new RouteRegistry().add({
      method: "get",
      path: "/open",
      operationId: "open",
      summary: "Open",
      auth: false,
      responses: ok,
      handler: () => jsonResponse({ ok: true }),
    });
  });
});

Deno.test("every operation's OpenAPI security comes from its route's declaration", async (t) => {
  const paths = await servedDocument();
  const ops = Object.entries(paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({ path, method, op }))
  );

  await t.step("the domain routes name the scope a Bearer key needs", () => {
    const security = (id: string) => ops.find((o) => o.op.operationId === id)?.op.security;
    assert.deepEqual(security("listDomains"), [
      { bearerAuth: ["domains:read"] },
      { sessionCookie: [] },
    ]);
    assert.deepEqual(security("createDomain"), [
      { bearerAuth: ["domains:write"] },
      { sessionCookie: [] },
    ]);
    for (const id of ["retrieveDomain"]) {
      assert.deepEqual(security(id)?.[0], { bearerAuth: ["domains:read"] });
    }
    for (const id of ["updateDomain", "deleteDomain"]) {
      assert.deepEqual(security(id)?.[0], { bearerAuth: ["domains:write"] });
    }
  });

  await t.step("the key-management routes are in the table, session only", () => {
    for (
      const [path, method] of [
        ["/api/e2/api-keys", "get"],
        ["/api/e2/api-keys", "post"],
        ["/api/e2/api-keys/{id}", "patch"],
        ["/api/e2/api-keys/{id}", "delete"],
        ["/api/e2/api-keys/{id}/roll", "post"],
      ]
    ) {
      assert.deepEqual(paths[path]?.[method]?.security, [{ sessionCookie: [] }], path);
    }
  });

  await t.step("every operation a Bearer key may call names its scope, but revoke-key", () => {
    for (const { path, method, op } of ops) {
      // Besides revoke-key (the key acts on itself), the 501s of the resources this server does
      // not provide (issue 22 item 15) need any valid key and no scope: they read nothing.
      // Forward auth's scope is the matched rule's (FORWARD_AUTH_RULES), not the route's.
      const anyKey = op.operationId === "revokeKey" || op.operationId.startsWith("notProvided") ||
        op.operationId === "forwardAuth";
      for (const requirement of op.security) {
        if (!("bearerAuth" in requirement) || anyKey) continue;
        assert.equal(requirement.bearerAuth.length, 1, `${method.toUpperCase()} ${path}`);
      }
    }
  });

  await t.step("the document built from a registry says the same", () => {
    const registry = new RouteRegistry().add({
      method: "get",
      path: "/api/e2/things",
      operationId: "listThings",
      summary: "Things",
      scope: "audit:read",
      responses: ok,
      handler: () => jsonResponse({ ok: true }),
    });
    const doc = buildOpenApi(registry) as { paths: Record<string, Record<string, Operation>> };
    assert.deepEqual(doc.paths["/api/e2/things"].get.security, [
      { bearerAuth: ["audit:read"] },
      { sessionCookie: [] },
    ]);
  });
});

Deno.test("the scope check runs from the route's declaration", async (t) => {
  const registry = new RouteRegistry()
    .add({
      method: "get",
      path: "/api/e2/things",
      operationId: "listThings",
      summary: "Things",
      scope: "audit:read",
      responses: ok,
      handler: () => jsonResponse({ ok: true }),
    })
    .add({
      method: "post",
      path: "/api/e2/things",
      operationId: "createThing",
      summary: "Thing",
      security: ["session"],
      body: z.strictObject({ name: z.string() }),
      responses: ok,
      handler: () => jsonResponse({ ok: true }),
    });
  const app = new Hono<AppEnv>();
  app.onError((err) =>
    err instanceof HttpError ? err.toResponse() : new Response(null, { status: 500 })
  );
  app.use("*", async (c, next) => {
    const who = c.req.header("X-Test-Principal");
    const principal: Principal = who === "session"
      ? { userId: "usr_1", method: "session", sessionId: "ses_1" }
      : who === "auditor"
      ? {
        userId: "usr_1",
        method: "api_key",
        keyId: "key_1",
        access: { scopes: ["audit:read"], domainIds: null, allowedIps: null, rateLimit: null },
      }
      : { userId: "usr_1", method: "api_key", keyId: "key_2" };
    c.set("principal", principal);
    await next();
  });
  registry.mount(app, { auth: true });
  const request = (method: string, who: string, body?: string) =>
    app.request("/api/e2/things", {
      method,
      headers: { "X-Test-Principal": who, "Content-Type": "application/json" },
      body,
    });

  await t.step("a key with the scope passes; a default key lacks audit:read", async () => {
    assert.equal((await request("GET", "auditor")).status, 200);
    const res = await request("GET", "default");
    assert.equal(res.status, 403);
    assert.equal((await res.json()).requiredScope, "audit:read");
  });

  await t.step("a session passes every scope", async () => {
    assert.equal((await request("GET", "session")).status, 200);
  });

  await t.step("session-only refuses keys before reading the body", async () => {
    const res = await request("POST", "auditor", "{broken");
    assert.equal(res.status, 403);
    assert.equal((await res.json()).code, "SESSION_REQUIRED");
    assert.equal((await request("POST", "session", '{"name":"a"}')).status, 200);
  });
});
