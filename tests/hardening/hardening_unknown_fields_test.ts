/**
 * Unknown body fields (issue 6): every JSON-body route refuses a field it does not know with the
 * documented 400, whose `field` names the unknown field (unless the name is empty, long or shaped
 * like a secret: then it is not repeated), and writes nothing. The table covers the
 * routes of the OpenAPI document that take a body (a new one fails the coverage check until it
 * has an entry) and the /api/auth bodies. Then API key names: control characters are refused
 * with a 400 that says so, and names are trimmed to 1..100 characters, on the API and the
 * dashboard form alike.
 */
import assert from "node:assert/strict";
import { VALIDATION_MESSAGE } from "../../lib/errors.ts";
import { generateApiKey } from "../../auth/api_keys/format.ts";
import {
  UNKNOWN_FIELD_MESSAGE,
  UNNAMED_FIELD,
  UNNAMED_FIELD_MESSAGE,
} from "../../routes/validation.ts";
import { dumpDiff, dumpKv } from "../_faulty_kv.ts";
import { createAccountWithKey, makeTestApp, type TestApp } from "../_helpers.ts";
import { errorShapeProblems, seedVerifiedDomain, type Seen, seen, Tally } from "../_hardening.ts";
import { BASE, cookieFrom, fromIp, json, signUp, withCookie } from "../sessions_helpers.ts";
import { seedEndpoint } from "../endpoints/_seed.ts";
import { issueServiceToken } from "../../auth/service_tokens.ts";

/** The fake clock never moves, so one rate-limit window would cover the whole test. */
const UNLIMITED = { max: 1_000_000_000, windowMs: 1000, failOpen: false };

type BodyRoute = {
  method: string;
  /** As the OpenAPI document writes it ({id}); null for routes outside the document. */
  documented: string | null;
  /** A request (path, headers) and a valid body, fresh per call. */
  target(): Promise<{ path: string; headers: HeadersInit; valid: Record<string, unknown> }>;
  okStatus: number;
};

async function bodyRoutes(h: TestApp): Promise<BodyRoute[]> {
  const a = await createAccountWithKey(h.kv, h.clock);
  const session = await signUp(h.app);
  const bearer = { Authorization: `Bearer ${a.key}` };
  let n = 0;
  const password = "correct horse battery staple";
  // One endpoint for every call (the account holds at most MAX_ENDPOINTS_PER_ACCOUNT).
  let seeded: Promise<string> | undefined;
  const endpoint = () => seeded ??= seedEndpoint(h.kv, a.userId, h.clock);
  // One service token for the verify call, written straight to the store.
  let token: Promise<string> | undefined;
  const serviceToken = () =>
    token ??= issueServiceToken(h.kv, h.clock, { name: "hardening", mayAssertIp: false })
      .then((t) => t.token);
  return [
    {
      method: "POST",
      documented: "/api/e2/domains",
      target: () =>
        Promise.resolve({
          path: "/api/e2/domains",
          headers: bearer,
          valid: { domain: `unknown-${++n}-${crypto.randomUUID().slice(0, 6)}.com` },
        }),
      okStatus: 201,
    },
    {
      method: "PATCH",
      documented: "/api/e2/domains/{id}",
      target: async () => {
        const d = await seedVerifiedDomain(h.kv, a.userId, h.clock, `patch-${++n}.com`);
        return {
          path: `/api/e2/domains/${d.id}`,
          headers: bearer,
          // Issue 23: the catch-all names a real endpoint of the account.
          valid: { isCatchAllEnabled: true, catchAllEndpointId: await endpoint() },
        };
      },
      okStatus: 200,
    },
    ...routingBodyRoutes(h, a.userId, bearer, endpoint, () => ++n),
    {
      method: "POST",
      documented: "/api/e2/api-keys",
      target: () =>
        Promise.resolve({
          path: "/api/e2/api-keys",
          headers: { Cookie: session.cookie },
          valid: { name: `key ${++n}` },
        }),
      okStatus: 201,
    },
    {
      method: "POST",
      documented: "/api/e2/api-keys/{id}/roll",
      target: async () => {
        const res = await h.app.request(
          `${BASE}/api/e2/api-keys`,
          withCookie(session.cookie, json({ name: `to roll ${++n}` })),
        );
        const { id } = await res.json();
        return {
          path: `/api/e2/api-keys/${id}/roll`,
          headers: { Cookie: session.cookie },
          valid: { expiresInHours: 1 },
        };
      },
      okStatus: 201,
    },
    {
      method: "PATCH",
      documented: "/api/e2/api-keys/{id}",
      target: async () => {
        const res = await h.app.request(
          `${BASE}/api/e2/api-keys`,
          withCookie(session.cookie, json({ name: `to edit ${++n}` })),
        );
        const { id } = await res.json();
        return {
          path: `/api/e2/api-keys/${id}`,
          headers: { Cookie: session.cookie },
          valid: { name: `edited ${n}`, scopes: ["domains:read"] },
        };
      },
      okStatus: 200,
    },
    {
      // Issue 25: a service checks a key, authenticated by a service token (not the key).
      method: "POST",
      documented: "/api/e2/keys/verify",
      target: async () => ({
        path: "/api/e2/keys/verify",
        headers: { Authorization: `Bearer ${await serviceToken()}` },
        valid: { key: a.key, scope: "domains:read" },
      }),
      okStatus: 200,
    },
    {
      method: "POST",
      documented: "/api/auth/sign-up",
      target: () =>
        Promise.resolve({
          path: "/api/auth/sign-up",
          headers: {},
          valid: { email: `new-${++n}-${crypto.randomUUID().slice(0, 6)}@example.com`, password },
        }),
      okStatus: 201,
    },
    {
      method: "POST",
      documented: "/api/auth/sign-in",
      target: () =>
        Promise.resolve({
          path: "/api/auth/sign-in",
          headers: {},
          valid: { email: session.email, password },
        }),
      okStatus: 200,
    },
    ...authBodyRoutes(h, session, password, () => ++n),
  ];
}

/** Issue 23's JSON-body routes: endpoints and e-mail addresses. */
function routingBodyRoutes(
  h: TestApp,
  userId: string,
  bearer: HeadersInit,
  endpoint: () => Promise<string>,
  next: () => number,
): BodyRoute[] {
  let domain: Promise<string> | undefined;
  const domainId = () =>
    domain ??= seedVerifiedDomain(h.kv, userId, h.clock, "addresses.example").then((d) => d.id);
  let address: Promise<string> | undefined;
  const addressId = () =>
    address ??= (async () => {
      const res = await h.app.request(`${BASE}/api/e2/email-addresses`, {
        ...json({ address: "seed@addresses.example", domainId: await domainId() }, {
          headers: bearer,
        }),
      });
      return (await res.json()).id as string;
    })();
  const at = (
    method: string,
    documented: string,
    okStatus: number,
    target: BodyRoute["target"],
  ) => ({
    method,
    documented,
    target,
    okStatus,
  });
  return [
    at("POST", "/api/e2/endpoints", 201, () =>
      Promise.resolve({
        path: "/api/e2/endpoints",
        headers: bearer,
        valid: { name: `e${next()}`, type: "email", config: { forwardTo: "a@example.com" } },
      })),
    at("PUT", "/api/e2/endpoints/{id}", 200, async () => ({
      path: `/api/e2/endpoints/${await endpoint()}`,
      headers: bearer,
      valid: { name: `renamed ${next()}` },
    })),
    at("POST", "/api/e2/endpoints/{id}/test", 200, async () => ({
      path: `/api/e2/endpoints/${await endpoint()}/test`,
      headers: bearer,
      valid: { webhookFormat: "inbound" },
    })),
    at("POST", "/api/e2/email-addresses", 201, async () => ({
      path: "/api/e2/email-addresses",
      headers: bearer,
      valid: { address: `a${next()}@addresses.example`, domainId: await domainId() },
    })),
    at("PUT", "/api/e2/email-addresses/{id}", 200, async () => ({
      path: `/api/e2/email-addresses/${await addressId()}`,
      headers: bearer,
      valid: { isActive: true },
    })),
  ];
}

/** Passkey bodies of the right shape (routes/passkeys/docs.ts); no authenticator made them. */
const PASSKEY_ID = "pky_" + "A".repeat(22);
const CREDENTIAL = { id: "cred", rawId: "cred", type: "public-key", clientExtensionResults: {} };
const REGISTRATION = {
  ...CREDENTIAL,
  response: { clientDataJSON: "e30", attestationObject: "oA" },
};
const ASSERTION = {
  ...CREDENTIAL,
  response: { clientDataJSON: "e30", authenticatorData: "AA", signature: "AA", userHandle: null },
};

/** better-auth's JSON-body routes; those that change an account get a fresh one per call. */
function authBodyRoutes(
  h: TestApp,
  session: { cookie: string; email: string },
  password: string,
  next: () => number,
): BodyRoute[] {
  const route = (
    path: string,
    okStatus: number,
    target: () => Promise<{ headers: HeadersInit; valid: Record<string, unknown> }>,
  ): BodyRoute => ({
    method: "POST",
    documented: path,
    target: async () => ({ path, ...(await target()) }),
    okStatus,
  });
  /** A new account's session, signed up from its own address (sign-up is throttled by address). */
  const fresh = async () => {
    const n = next();
    const res = await h.app.request(
      `${BASE}/api/auth/sign-up`,
      json({ email: `fresh-${n}-${crypto.randomUUID().slice(0, 6)}@example.com`, password }),
      fromIp(`198.51.${n >> 8 & 255}.${n & 255}`),
    );
    assert.equal(res.status, 201, await res.clone().text());
    return { Cookie: cookieFrom(res) };
  };
  return [
    route("/api/auth/sign-up/email", 200, () =>
      Promise.resolve({
        headers: {},
        valid: {
          name: "New",
          email: `ba-${next()}-${crypto.randomUUID().slice(0, 6)}@example.com`,
          password,
        },
      })),
    route(
      "/api/auth/sign-in/email",
      200,
      () => Promise.resolve({ headers: {}, valid: { email: session.email, password } }),
    ),
    route(
      "/api/auth/update-user",
      200,
      () =>
        Promise.resolve({ headers: { Cookie: session.cookie }, valid: { name: `Name ${next()}` } }),
    ),
    route("/api/auth/change-password", 200, async () => ({
      headers: await fresh(),
      valid: { currentPassword: password, newPassword: `${password} ${next()}` },
    })),
    route("/api/auth/revoke-session", 200, async () => ({
      headers: await fresh(),
      valid: { token: "ses_none" },
    })),
    route(
      "/api/auth/request-password-reset",
      200,
      () => Promise.resolve({ headers: {}, valid: { email: `nobody-${next()}@example.com` } }),
    ),
    // E-mail verification is off in the test config: the valid shape is refused as such (400).
    route(
      "/api/auth/send-verification-email",
      400,
      () => Promise.resolve({ headers: {}, valid: { email: `nobody-${next()}@example.com` } }),
    ),
    // No reset token here: the valid shape reaches the token check, which refuses it (400).
    route(
      "/api/auth/reset-password",
      400,
      () =>
        Promise.resolve({ headers: {}, valid: { newPassword: `${password}!`, token: "unknown" } }),
    ),
    // Passkeys: no ceremony was started, so a valid shape reaches the challenge check (400);
    // an unknown passkey id is a 404.
    ...[
      ["/api/auth/passkey/verify-registration", { name: "Laptop", response: REGISTRATION }],
      ["/api/auth/passkey/verify-authentication", { response: ASSERTION }],
      ["/api/auth/passkey/reauthenticate", { response: ASSERTION }],
    ].map(([path, valid]) =>
      route(path as string, 400, async () => ({
        headers: await fresh(),
        valid: valid as Record<string, unknown>,
      }))
    ),
    route("/api/auth/passkey/update-passkey", 404, async () => ({
      headers: await fresh(),
      valid: { id: PASSKEY_ID, name: "Laptop" },
    })),
    route("/api/auth/passkey/delete-passkey", 404, async () => ({
      headers: await fresh(),
      valid: { id: PASSKEY_ID },
    })),
    // Two-factor (routes/two_factor/operations.ts) on an account that never completes enrolment: enable
    // starts one (200) and disable cancels it (200), a wrong code is refused (400), no pending
    // sign-in is a 401, new backup codes need an enrolled account (400).
    route("/api/auth/reauthenticate", 200, async () => ({
      headers: await fresh(),
      valid: { password },
    })),
    route("/api/auth/two-factor/enable", 200, async () => ({
      headers: await fresh(),
      valid: { password },
    })),
    route("/api/auth/two-factor/verify-totp", 400, async () => ({
      headers: await fresh(),
      valid: { code: "000000" },
    })),
    route(
      "/api/auth/two-factor/verify-backup-code",
      401,
      () => Promise.resolve({ headers: {}, valid: { code: "abcde-fghij" } }),
    ),
    route("/api/auth/two-factor/disable", 200, async () => ({
      headers: await fresh(),
      valid: { password },
    })),
    route("/api/auth/two-factor/generate-backup-codes", 400, async () => ({
      headers: await fresh(),
      valid: { password },
    })),
    route("/api/auth/delete-user", 200, async () => ({
      headers: await fresh(),
      valid: { password },
    })),
  ];
}

/**
 * Unknown fields, as JSON text spliced into a valid body (so `__proto__` stays a real key), and
 * the `field` the 400 must name: the field itself, or UNNAMED_FIELD when its name must not be
 * repeated (empty, long, or shaped like a secret).
 */
const KEY_AS_NAME = generateApiKey();
const UNKNOWN: { name: string; field: string; json: string }[] = [
  { name: "isAdmin", field: "isAdmin", json: '"isAdmin":true' },
  { name: "userId of another account", field: "userId", json: '"userId":"usr_x"' },
  { name: "id", field: "id", json: '"id":"dom_chosenbytheclient000000"' },
  { name: "status", field: "status", json: '"status":"verified"' },
  { name: "__proto__", field: "__proto__", json: '"__proto__":{"isAdmin":true}' },
  { name: "constructor", field: "constructor", json: '"constructor":{"prototype":{}}' },
  { name: "a misspelt field", field: "Domain", json: '"Domain":"x.com"' },
  { name: "a null value", field: "extra", json: '"extra":null' },
  { name: "a 32-character name", field: "f".repeat(32), json: `"${"f".repeat(32)}":1` },
  { name: "an empty name", field: UNNAMED_FIELD, json: '"":1' },
  { name: "a 33-character name", field: UNNAMED_FIELD, json: `"${"g".repeat(33)}":1` },
  { name: "an API key as the name", field: UNNAMED_FIELD, json: `"${KEY_AS_NAME}":1` },
  {
    name: "a key prefix as the name",
    field: UNNAMED_FIELD,
    json: `"${KEY_AS_NAME.slice(0, 12)}":1`,
  },
  { name: "a name with a space", field: UNNAMED_FIELD, json: '"is admin":1' },
];

function spliced(valid: Record<string, unknown>, extra: string): string {
  return `{${extra},${JSON.stringify(valid).slice(1)}`;
}

function unknownFieldProblems(r: Seen, field: string): string[] {
  const p = errorShapeProblems(r, [400]);
  try {
    const b = JSON.parse(r.body);
    if (b.message !== VALIDATION_MESSAGE) p.push(`message ${JSON.stringify(b.message)}`);
    if (b.field !== field) {
      p.push(`field ${JSON.stringify(b.field)}, want ${JSON.stringify(field)}`);
    }
    const detail = b.details?.find((d: { path: string }) => d.path === field);
    const message = field === UNNAMED_FIELD ? UNNAMED_FIELD_MESSAGE : UNKNOWN_FIELD_MESSAGE;
    if (detail?.message !== message) p.push(`details ${JSON.stringify(b.details)}`);
    if (field === UNNAMED_FIELD && r.body.includes(KEY_AS_NAME.slice(0, 12))) {
      p.push("the answer repeats a key sent as a field name");
    }
  } catch { /* reported */ }
  return p;
}

Deno.test("every JSON-body route refuses an unknown field with a 400 that names it, and writes nothing", async (t) => {
  const h = await makeTestApp({ config: { rateLimit: UNLIMITED, maxApiKeysPerAccount: 1000 } });
  const tally = new Tally("unknown-fields");
  try {
    const routes = await bodyRoutes(h);

    await t.step(
      "the table covers every documented route that takes a body, each documented as closed",
      async () => {
        const doc = await (await h.app.request(`${BASE}/api/e2/openapi.json`)).json();
        const withBody: string[] = [];
        for (const [path, ops] of Object.entries(doc.paths as Record<string, object>)) {
          for (
            const [method, op] of Object.entries(ops as Record<string, { requestBody?: unknown }>)
          ) {
            if (!op.requestBody) continue;
            withBody.push(`${method.toUpperCase()} ${path}`);
            // The document says so too: the body schema allows no other property.
            const body = op.requestBody as {
              content: Record<string, { schema: { $ref?: string } }>;
            };
            let schema = body.content["application/json"].schema as Record<string, unknown>;
            if (typeof schema.$ref === "string") {
              schema = doc.components.schemas[schema.$ref.split("/").pop()!];
            }
            assert.equal(schema.additionalProperties, false, `${method} ${path}`);
          }
        }
        const covered = routes.filter((r) => r.documented).map((r) =>
          `${r.method} ${r.documented}`
        );
        assert.deepEqual(withBody.sort(), covered.sort());
      },
    );

    await t.step(
      "a valid body is accepted, the same body with an unknown field is not",
      async () => {
        for (const route of routes) {
          const ok = await route.target();
          const res = await seen(
            await h.app.request(`${BASE}${ok.path}`, {
              ...json(ok.valid, { headers: ok.headers }),
              method: route.method,
            }),
          );
          tally.record(
            `${route.method} ${ok.path}: the valid body (control)`,
            res.status === route.okStatus
              ? []
              : [`status ${res.status}: ${res.body.slice(0, 160)}`],
          );
          for (const u of UNKNOWN) {
            const target = await route.target();
            // A field this route knows (better-auth's passkey routes take an `id`) is no test.
            if (Object.hasOwn(target.valid, u.field)) continue;
            const before = await dumpKv(h.kv);
            const headers = new Headers(target.headers);
            headers.set("Content-Type", "application/json");
            const r = await seen(
              await h.app.request(`${BASE}${target.path}`, {
                method: route.method,
                headers,
                body: spliced(target.valid, u.json),
              }),
            );
            const p = unknownFieldProblems(r, u.field);
            const changed = dumpDiff(before, await dumpKv(h.kv)).filter((k) =>
              !k.includes('"throttle"') && !k.includes('"rate"')
            );
            if (changed.length) p.push(`the store changed: ${changed.slice(0, 3).join(", ")}`);
            tally.record(`${route.method} ${target.path} with ${u.name}`, p);
          }
        }
      },
    );

    await t.step("several unknown fields are all named, the first in `field`", async () => {
      const route = routes[0];
      const target = await route.target();
      const r = await seen(
        await h.app.request(`${BASE}${target.path}`, {
          ...json({ ...target.valid, zeta: 1, alpha: 2 }, { headers: target.headers }),
          method: route.method,
        }),
      );
      const p = errorShapeProblems(r, [400]);
      const b = JSON.parse(r.body);
      if (b.field !== "zeta") p.push(`field ${b.field}`);
      const paths = b.details.map((d: { path: string }) => d.path);
      if (!paths.includes("zeta") || !paths.includes("alpha")) p.push(`details ${paths}`);
      tally.record("two unknown fields", p);
    });
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});

/** Names a key may not have, and why. */
const BAD_NAMES: [string, string, RegExp][] = [
  ["a newline inside", "prod\nkey", /control characters/],
  ["a carriage return inside", "prod\rkey", /control characters/],
  ["a tab inside", "prod\tkey", /control characters/],
  ["a NUL", "prod\u0000", /control characters/],
  ["an escape sequence", "\u001b[31mred", /control characters/],
  ["DEL", "prod\u007f", /control characters/],
  ["a C1 control", "prod\u0085key", /control characters/],
  ["a line separator", "prod\u2028key", /control characters/],
  ["a right-to-left override", "key\u202egnp.exe", /control characters/],
  ["a bidirectional isolate", "key\u2066x\u2069", /control characters/],
  ["only spaces", "    ", /is required/],
  ["empty", "", /is required/],
  ["101 characters", "x".repeat(101), /at most 100/],
  ["101 characters after trimming", ` ${"x".repeat(101)} `, /at most 100/],
];

/** Names accepted, and what is stored. */
const GOOD_NAMES: [string, string, string][] = [
  ["plain", "production", "production"],
  ["surrounding spaces are trimmed", "  ci  ", "ci"],
  ["a trailing newline is trimmed", "deploy\n", "deploy"],
  ["100 characters", "y".repeat(100), "y".repeat(100)],
  ["100 characters after trimming", ` ${"z".repeat(100)} `, "z".repeat(100)],
  ["non-ASCII letters and emoji", "clé 🔑 ключ", "clé 🔑 ключ"],
];

Deno.test("API key names with control characters are refused with a clear 400; names are trimmed to 1..100 characters", async (t) => {
  const h = await makeTestApp({ config: { rateLimit: UNLIMITED, maxApiKeysPerAccount: 1000 } });
  const tally = new Tally("key-names");
  try {
    const session = await signUp(h.app);
    await t.step("the JSON API", async () => {
      for (const [label, name, why] of BAD_NAMES) {
        const r = await seen(
          await h.app.request(
            `${BASE}/api/e2/api-keys`,
            withCookie(session.cookie, json({ name })),
          ),
        );
        const p = errorShapeProblems(r, [400]);
        const b = JSON.parse(r.body);
        if (b.field !== "name") p.push(`field ${b.field}`);
        if (!why.test(b.details?.[0]?.message ?? "")) {
          p.push(`details ${JSON.stringify(b.details)}`);
        }
        tally.record(`API: a name with ${label}`, p);
      }
      for (const [label, name, stored] of GOOD_NAMES) {
        const res = await h.app.request(
          `${BASE}/api/e2/api-keys`,
          withCookie(session.cookie, json({ name })),
        );
        const b = await res.json();
        tally.record(
          `API: ${label}`,
          res.status === 201 && b.name === stored
            ? []
            : [`${res.status} ${JSON.stringify(b.name)}`],
        );
      }
    });
    await t.step("the dashboard form", async () => {
      for (const [label, name, why] of BAD_NAMES) {
        const res = await h.app.request(`${BASE}/settings/api-keys`, {
          method: "POST",
          headers: {
            Cookie: session.cookie,
            "Content-Type": "application/x-www-form-urlencoded",
            Origin: "http://localhost",
          },
          body: new URLSearchParams({ name, expiresInDays: "" }).toString(),
        });
        const page = await res.text();
        const p: string[] = [];
        if (res.status !== 400) p.push(`status ${res.status}`);
        if (!why.test(page)) p.push("the page does not say why");
        tally.record(`form: a name with ${label}`, p);
      }
    });
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});
