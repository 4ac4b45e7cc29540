/**
 * Hostile bodies and query strings (issue 6). Every answer is JSON in the error shape with a clear
 * message and the right status, never a 5xx, and never much larger than a normal error (an error
 * must not echo a megabyte of input back).
 *   - query: GET /api/e2/domains with out-of-range, repeated, non-numeric and huge parameters;
 *   - bodies: routes/validation.ts's parseJsonBody behind a tiny app with a strict schema
 *     (malformed JSON, wrong Content-Type, > 1 MB -> 413, unknown fields, wrong types, deep
 *     nesting, very long strings), then the same table against every real JSON-body route that
 *     exists (BODY_ROUTES; every body schema is strict, see also
 *     hardening_unknown_fields_test.ts);
 *   - a sample over real HTTP where transport matters (a lying Content-Length, chunked bodies).
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { z } from "zod";
import { errorBody, HttpError, jsonResponse, VALIDATION_MESSAGE } from "../../lib/errors.ts";
import { MAX_BODY_BYTES, parseJsonBody } from "../../routes/validation.ts";
import {
  bearer,
  createAccountWithKey,
  makeTestApp,
  removeKvFile,
  startServer,
  tempKvPath,
  TEST_PASSWORD,
} from "../_helpers.ts";
import { signUp } from "../sessions_helpers.ts";
import { errorShapeProblems, rawRequest, type Seen, seen, Tally } from "../_hardening.ts";

/** The fake clock never moves, so one rate-limit window would cover the whole test. */
const UNLIMITED = { max: 1_000_000_000, windowMs: 1000, failOpen: false };

/** The largest error body any of these cases may produce. */
const MAX_ERROR_BYTES = 8 * 1024;

type QueryCase = { query: string; status: number; field?: string };

const QUERY_CASES: QueryCase[] = [
  ...[
    "0",
    "101",
    "-1",
    "1.5",
    "abc",
    "1e2",
    "",
    " 1",
    "0x10",
    "99999999999999999999",
    "%00",
    "1%00",
    "%D9%A1",
    "+1",
    "Infinity",
    "NaN",
    "true",
    "[]",
    "1,2",
    "10%20",
  ].map((v) => ({
    query: `limit=${v}`,
    status: 400,
    field: "limit",
  })),
  { query: "limit=1&limit=2", status: 400, field: "limit" },
  { query: "limit=50&limit=50", status: 400, field: "limit" },
  ...["-1", "1000000001", "abc", "1.0", "", "9".repeat(10_000)].map((v) => ({
    query: `offset=${v}`,
    status: 400,
    field: "offset",
  })),
  { query: "offset=0&offset=0", status: 400, field: "offset" },
  ...["PENDING", "unknown", "", "pending,verified", "verified%00", "x".repeat(100_000)].map((
    v,
  ) => ({
    query: `status=${v}`,
    status: 400,
    field: "status",
  })),
  { query: "status=pending&status=verified", status: 400, field: "status" },
  ...["yes", "1", "TRUE", "", "false "].map((v) => ({
    query: `canReceive=${encodeURIComponent(v)}`,
    status: 400,
    field: "canReceive",
  })),
  { query: "canReceive=true&canReceive=false", status: 400, field: "canReceive" },
  { query: "check=maybe", status: 400, field: "check" },
  { query: "check=true&check=true", status: 400, field: "check" },
  { query: "limit=0&offset=-1&status=x", status: 400 },
  // Accepted by design: in range, or a parameter the route does not know (ignored, as the
  // public service does).
  { query: "limit=1", status: 200 },
  { query: "limit=100&offset=100000", status: 200 },
  { query: "status=verified&canReceive=false&check=false", status: 200 },
  { query: "limit=%31%30", status: 200 },
  { query: "foo=bar", status: 200 },
  { query: Array.from({ length: 1000 }, (_, i) => `p${i}=${i}`).join("&"), status: 200 },
  { query: `${"n".repeat(50_000)}=1`, status: 200 },
];

function queryProblems(c: QueryCase, r: Seen): string[] {
  if (c.status === 200) {
    return r.status === 200 ? [] : [`status ${r.status}, want 200: ${r.body.slice(0, 160)}`];
  }
  const p = errorShapeProblems(r, [c.status]);
  try {
    const b = JSON.parse(r.body);
    if (b.message !== VALIDATION_MESSAGE) p.push(`message ${JSON.stringify(b.message)}`);
    if (c.field && b.field !== c.field) p.push(`field ${JSON.stringify(b.field)}, want ${c.field}`);
  } catch { /* reported */ }
  if (r.body.length > MAX_ERROR_BYTES) p.push(`error body of ${r.body.length} bytes`);
  return p;
}

Deno.test("hostile query strings on GET /api/e2/domains get a 400 naming the parameter, never a 5xx", async () => {
  const h = await makeTestApp({ config: { rateLimit: UNLIMITED } });
  const tally = new Tally("query");
  try {
    const a = await createAccountWithKey(h.kv, h.clock);
    for (const c of QUERY_CASES) {
      for (const prefix of ["/api/e2/domains", "/api/v2/domains"]) {
        const res = await h.app.request(`http://localhost${prefix}?${c.query}`, bearer(a.key));
        tally.record(`${prefix}?${c.query.slice(0, 60)}`, queryProblems(c, await seen(res)));
      }
    }
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});

type BodyCase = {
  name: string;
  body: () => BodyInit | null;
  /** null: no Content-Type header at all. */
  contentType?: string | null;
  status: number;
  /** For 400s: the parameter the answer must name. */
  field?: string;
  /** Valid only for the tiny app's schema (fields the real routes do not have). */
  tinyOnly?: boolean;
};

const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
const deepObject = (n: number) => '{"a":'.repeat(n) + "1" + "}".repeat(n);

function streamOf(bytes: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= bytes) return controller.close();
      const chunk = new Uint8Array(Math.min(64 * 1024, bytes - sent)).fill(0x20);
      sent += chunk.length;
      controller.enqueue(chunk);
    },
  });
}

/** The body table. `valid` is a body the route accepts (a fresh one per call). */
function bodyCases(valid: () => Record<string, unknown>, stringField: string): BodyCase[] {
  const v = () => JSON.stringify(valid());
  const withField = (value: unknown) => JSON.stringify({ ...valid(), [stringField]: value });
  return [
    ...[
      "{",
      "}",
      "{'x':'y'}",
      '{"a":1,}',
      "",
      "   ",
      "nul",
      "NaN",
      '{"a": undefined}',
      "\ufeff{}",
      "{}garbage",
      '{"a":"b"',
      "[1,2",
      '"unterminated',
      "\u0000",
    ].map((b, i) => ({
      name: `malformed JSON #${i} ${JSON.stringify(b.slice(0, 12))}`,
      body: () => b,
      status: 400,
    })),
    {
      name: "invalid UTF-8",
      body: () => new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
      status: 400,
    },
    {
      name: "UTF-16 JSON",
      body: () => new Uint8Array([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]),
      status: 400,
    },
    ...["null", "[]", "1", "true", '"text"', `[${v()}]`].map((b) => ({
      name: `JSON that is not an object: ${b.slice(0, 20)}`,
      body: () => b,
      status: 400,
    })),
    ...[
      null,
      "text/plain",
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/jsonx",
      "application/json-patch+json",
      "text/json",
      "application/javascript",
      "json",
      "*/*",
      "application/xml",
      "text/html; charset=utf-8",
    ].map((ct) => ({
      name: `Content-Type ${ct ?? "(none)"}`,
      body: v,
      contentType: ct,
      status: 415,
    })),
    { name: "body over 1 MB", body: () => " ".repeat(MAX_BODY_BYTES + 1) + v(), status: 413 },
    { name: "body of 5 MB", body: () => "x".repeat(5 * MAX_BODY_BYTES), status: 413 },
    { name: "streamed body over 1 MB", body: () => streamOf(MAX_BODY_BYTES + 10), status: 413 },
    {
      name: "valid body padded to exactly 1 MB is not too large",
      body: () => {
        const t = v();
        return " ".repeat(MAX_BODY_BYTES - new TextEncoder().encode(t).length) + t;
      },
      status: 0, // the route's own success status, checked by the caller
    },
    {
      name: "unknown field",
      body: () => JSON.stringify({ ...valid(), extra: 1 }),
      status: 400,
    },
    {
      name: "__proto__ field",
      body: () => `{"__proto__":{"admin":true},${v().slice(1)}`,
      status: 400,
    },
    {
      name: "constructor field",
      body: () => JSON.stringify({ ...valid(), constructor: { prototype: {} } }),
      status: 400,
    },
    {
      name: "50 000 unknown fields",
      body: () =>
        JSON.stringify({
          ...valid(),
          ...Object.fromEntries(Array.from({ length: 50_000 }, (_, i) => [`f${i}`, i])),
        }),
      status: 400,
    },
    {
      name: "a 500 000-character field name",
      body: () => JSON.stringify({ ...valid(), ["k".repeat(500_000)]: 1 }),
      status: 400,
    },
    ...[123, true, null, [], {}, 1.5, -1, ["a"], { a: 1 }].map((x) => ({
      name: `${stringField} of type ${JSON.stringify(x)}`,
      body: () => withField(x),
      status: 400,
      field: stringField,
    })),
    { name: `empty ${stringField}`, body: () => withField(""), status: 400, field: stringField },
    {
      name: `${stringField} of 1 MB`,
      body: () => withField("a".repeat(MAX_BODY_BYTES - 100)),
      status: 400,
      field: stringField,
    },
    {
      name: `${stringField} of 10 000 characters`,
      body: () => withField("b".repeat(10_000)),
      status: 400,
      field: stringField,
    },
    { name: "arrays nested 10 000 deep", body: () => deep(10_000), status: 400 },
    { name: "arrays nested 500 000 deep", body: () => deep(500_000), status: 400 },
    { name: "objects nested 100 000 deep", body: () => deepObject(100_000), status: 400 },
    {
      name: `${stringField} nested 10 000 deep`,
      body: () => withField(JSON.parse(deep(5000))),
      status: 400,
      field: stringField,
    },
    {
      name: "tags: 100 000 wrong-typed items",
      body: () => JSON.stringify({ ...valid(), tags: Array(100_000).fill(1) }),
      status: 400,
      field: "tags",
      tinyOnly: true,
    },
    {
      name: "nested.a of the wrong type",
      body: () => JSON.stringify({ ...valid(), nested: { a: "1" } }),
      status: 400,
      field: "nested.a",
      tinyOnly: true,
    },
  ];
}

function bodyProblems(c: BodyCase, r: Seen, okStatus: number): string[] {
  if (c.status === 0) {
    return r.status === okStatus
      ? []
      : [`status ${r.status}, want ${okStatus}: ${r.body.slice(0, 160)}`];
  }
  const p = errorShapeProblems(r, [c.status]);
  try {
    const b = JSON.parse(r.body);
    if (c.field && b.field !== c.field) p.push(`field ${JSON.stringify(b.field)}, want ${c.field}`);
  } catch { /* reported */ }
  if (r.body.length > MAX_ERROR_BYTES) p.push(`error body of ${r.body.length} bytes`);
  return p;
}

function requestInit(c: BodyCase, headers: Record<string, string>): RequestInit {
  const h = new Headers(headers);
  if (c.contentType !== null) h.set("Content-Type", c.contentType ?? "application/json");
  return { method: "POST", headers: h, body: c.body() };
}

/** A tiny app that parses its body with parseJsonBody and a strict schema, as routes should. */
function tinyApp() {
  const schema = z.object({
    domain: z.string().min(1).max(253),
    tags: z.array(z.string().max(50)).max(10).optional(),
    nested: z.object({ a: z.number() }).strict().optional(),
  }).strict();
  const app = new Hono();
  app.post("/echo", async (c) => {
    const body = await parseJsonBody(c, schema);
    return jsonResponse({ ok: true, domain: body.domain.length }, 200);
  });
  app.onError((err) =>
    err instanceof HttpError ? err.toResponse() : jsonResponse(errorBody(500, "unexpected"), 500)
  );
  return app;
}

Deno.test("parseJsonBody refuses hostile bodies with the right JSON error, bounded in size", async () => {
  const tally = new Tally("bodies");
  const app = tinyApp();
  for (const c of bodyCases(() => ({ domain: "example.com" }), "domain")) {
    const started = performance.now();
    const r = await seen(await app.request("http://localhost/echo", requestInit(c, {})));
    const p = bodyProblems(c, r, 200);
    const ms = performance.now() - started;
    if (ms > 5000) p.push(`took ${Math.round(ms)} ms`);
    tally.record(c.name, p);
  }
  assert.deepEqual(tally.report(), []);
});

type BodyRoute = {
  name: string;
  path: string;
  okStatus: number;
  valid: () => Record<string, unknown>;
  stringField: string;
  auth: "bearer" | "session" | "none";
};

/** The account the sign-in route's valid body signs in to. */
const SIGN_IN_EMAIL = `input-${crypto.randomUUID()}@example.com`;

/** Real JSON-body routes (POST). A new route: one entry. */
const BODY_ROUTES: BodyRoute[] = [
  {
    name: "POST /api/e2/domains",
    path: "/api/e2/domains",
    okStatus: 201,
    valid: () => ({ domain: `input-${crypto.randomUUID().slice(0, 8)}.com` }),
    stringField: "domain",
    auth: "bearer",
  },
  {
    name: "POST /api/e2/api-keys",
    path: "/api/e2/api-keys",
    okStatus: 201,
    valid: () => ({ name: `key ${crypto.randomUUID().slice(0, 8)}` }),
    stringField: "name",
    auth: "session",
  },
  {
    name: "POST /api/auth/sign-up",
    path: "/api/auth/sign-up",
    okStatus: 201,
    valid: () => ({
      email: `up-${crypto.randomUUID().slice(0, 8)}@example.com`,
      password: TEST_PASSWORD,
    }),
    stringField: "email",
    auth: "none",
  },
  {
    name: "POST /api/auth/sign-in",
    path: "/api/auth/sign-in",
    okStatus: 200,
    valid: () => ({ email: SIGN_IN_EMAIL, password: TEST_PASSWORD }),
    stringField: "email",
    auth: "none",
  },
];

Deno.test("every real JSON-body route refuses the hostile body table with JSON errors, never a 5xx", async () => {
  const tally = new Tally("route-bodies");
  const h = await makeTestApp({ config: { maxApiKeysPerAccount: 1000, rateLimit: UNLIMITED } });
  try {
    const a = await createAccountWithKey(h.kv, h.clock);
    const { cookie } = await signUp(h.app, SIGN_IN_EMAIL);
    for (const route of BODY_ROUTES) {
      const headers: Record<string, string> = route.auth === "bearer"
        ? { Authorization: `Bearer ${a.key}` }
        : route.auth === "session"
        ? { Cookie: cookie }
        : {};
      for (const c of bodyCases(route.valid, route.stringField)) {
        if (c.tinyOnly) continue;
        const r = await seen(
          await h.app.request(`http://localhost${route.path}`, requestInit(c, headers)),
        );
        tally.record(`${route.name}: ${c.name}`, bodyProblems(c, r, route.okStatus));
      }
    }
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});

Deno.test("over real HTTP: lying and streamed bodies get a 413 JSON, bad queries a 400, and the server stays up", async () => {
  const path = await tempKvPath();
  const kv = await Deno.openKv(path);
  const a = await createAccountWithKey(kv, () => Date.now());
  kv.close();
  const server = await startServer({ DENO_KV_PATH: path }, { direct: true });
  const tally = new Tally("http-input");
  try {
    const auth = { Authorization: `Bearer ${a.key}` };
    for (const q of ["limit=abc", "limit=1&limit=2", `status=${"x".repeat(4000)}`]) {
      const r = await seen(await fetch(`${server.url}/api/e2/domains?${q}`, { headers: auth }));
      tally.record(`query ${q.slice(0, 30)}`, errorShapeProblems(r, [400]));
    }
    const big = await seen(
      await fetch(`${server.url}/api/e2/domains`, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: "x".repeat(2 * MAX_BODY_BYTES),
      }),
    );
    tally.record("2 MB body", errorShapeProblems(big, [413]));
    const streamed = await seen(
      await fetch(`${server.url}/api/e2/domains`, {
        method: "POST",
        headers: { ...auth, "Content-Type": "application/json" },
        body: streamOf(2 * MAX_BODY_BYTES),
      }),
    );
    tally.record("2 MB chunked body", errorShapeProblems(streamed, [413]));
    const head = (len: string) =>
      `POST /api/e2/domains HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${a.key}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${len}\r\nConnection: close`;
    const lying = await rawRequest(
      server.port,
      head("99999999999"),
      new TextEncoder().encode("{}"),
      5000,
    );
    tally.record(
      "Content-Length of 99 999 999 999 with a 2-byte body",
      errorShapeProblems(lying, [413]),
    );
    const justOver = await rawRequest(
      server.port,
      head(String(MAX_BODY_BYTES + 1)),
      new Uint8Array(10),
      5000,
    );
    tally.record("declared 1 MB + 1, sent 10 bytes", errorShapeProblems(justOver, [413]));
    const health = await fetch(`${server.url}/healthz`);
    await health.body?.cancel();
    tally.record(
      "server healthy afterwards",
      health.status === 200 ? [] : [`healthz ${health.status}`],
    );
  } finally {
    await server.stop();
    await removeKvFile(path);
  }
  assert.deepEqual(tally.report(), []);
});
