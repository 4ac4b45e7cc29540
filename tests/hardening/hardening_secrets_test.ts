/**
 * Secrets never leak (issue 6). A whole run against the real server: accounts and keys issued by
 * the admin CLI and over HTTP, sign-up and sign-in (session tokens, passwords, a wrong password),
 * keys used, rolled, revoked and misused, errors triggered. Then:
 *   - none of the keys, their random parts, their SHA-256 digests (hex and base64), the session
 *     tokens and their digests, the passwords, or the stored password hashes appears in anything
 *     the server printed, nor in any response body except the one create/roll that shows a key
 *     once;
 *   - every line the server printed is JSON, and each request line has time, requestId, method,
 *     route, status, durationMs, userId and keyId, one line per request.
 * To cover a new secret-bearing flow, add its secrets to `secrets` and its requests to the run.
 */
import assert from "node:assert/strict";
import { findUserIdByEmail, getUser } from "../../store/accounts/users.ts";
import { generateApiKey, isWellFormedApiKey } from "../../auth/api_keys/format.ts";
import { generateSessionToken } from "../../auth/sessions/manager.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import {
  bearer,
  makeTestApp,
  removeKvFile,
  runAdminCli,
  startServer,
  tempKvPath,
  TEST_PASSWORD,
} from "../_helpers.ts";
import { BASE, createKeyViaSession, signUp, withCookie } from "../sessions_helpers.ts";
import { Tally } from "../_hardening.ts";
import { linkIn, startSmtpSink } from "../_smtp_sink.ts";

type Secret = { label: string; value: string };

function secretForms(label: string, value: string): Secret[] {
  const hex = sha256Hex(value);
  const bytes = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
  const out: Secret[] = [
    { label, value },
    { label: `${label} sha256 hex`, value: hex },
    { label: `${label} sha256 HEX`, value: hex.toUpperCase() },
    { label: `${label} sha256 base64`, value: btoa(String.fromCharCode(...bytes)) },
  ];
  if (value.startsWith("inb_")) {
    out.push({ label: `${label} random part`, value: value.slice(4, 40) });
  }
  return out;
}

const REQUEST_FIELDS = [
  "time",
  "requestId",
  "method",
  "route",
  "status",
  "durationMs",
  "userId",
  "keyId",
] as const;

Deno.test("no key, session token, password or digest of them reaches the logs or a response it should not", async () => {
  const path = await tempKvPath();
  const tally = new Tally("secrets");
  const secrets: Secret[] = [];
  const bodies: { label: string; body: string; mayShow?: string }[] = [];
  let requests = 0;
  // Reset mail goes over SMTP, so its credentials are secrets the output must not show either.
  await using smtp = await startSmtpSink();
  const smtpUrl = `smtp://${smtp.user}:${smtp.pass}@127.0.0.1:${smtp.config.port}`;
  const server = await startServer({ DENO_KV_PATH: path, SMTP_URL: smtpUrl }, { direct: true });
  const url = server.url;
  const call = async (label: string, p: string, init: RequestInit = {}, mayShow?: string) => {
    requests++;
    const res = await fetch(`${url}${p}`, init);
    const body = await res.text();
    bodies.push({ label, body, mayShow });
    return { status: res.status, body, headers: res.headers };
  };
  const jsonPost = (body: unknown, headers: Record<string, string> = {}): RequestInit => ({
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const addSecret = (label: string, value: string) => {
    assert.ok(value && value.length >= 12, `${label} is empty`);
    secrets.push(...secretForms(label, value));
  };

  const emailCli = `cli-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const emailWeb = `web-${crypto.randomUUID().slice(0, 8)}@example.com`;
  const passwordCli = `cli pass ${crypto.randomUUID()}`;
  const passwordWeb = `web pass ${crypto.randomUUID()}`;
  const wrongPassword = `wrong pass ${crypto.randomUUID()}`;
  addSecret("CLI password", passwordCli);
  addSecret("web password", passwordWeb);
  addSecret("wrong password", wrongPassword);
  addSecret("SMTP password", smtp.pass);
  addSecret("SMTP_URL", smtpUrl);
  const env = { DENO_KV_PATH: path };
  try {
    // Through the admin CLI.
    const created = await runAdminCli(["user:create", "--email", emailCli], env, passwordCli);
    assert.equal(created.code, 0, created.stderr);
    const k1 = (await runAdminCli(["key:create", "--email", emailCli, "--name", "one"], env))
      .stdout.trim();
    const k2 = (await runAdminCli(["key:create", "--email", emailCli, "--name", "two"], env))
      .stdout.trim();
    addSecret("CLI key 1", k1);
    addSecret("CLI key 2", k2);
    const listed = await runAdminCli(["key:list", "--email", emailCli], env);
    bodies.push({ label: "admin key:list output", body: listed.stdout + listed.stderr });
    const k2Id = listed.stdout.trim().split("\n").map((l) => JSON.parse(l))
      .find((k) => k.name === "two").id;
    assert.equal(
      (await runAdminCli(["key:delete", "--email", emailCli, "--id", k2Id], env)).code,
      0,
    );

    // Sessions and key management over HTTP.
    const up = await call(
      "sign-up",
      "/api/auth/sign-up",
      jsonPost({ email: emailWeb, password: passwordWeb }),
    );
    assert.equal(up.status, 201, up.body);
    const s1 = /inbound_session=([^;]+)/.exec(up.headers.get("Set-Cookie") ?? "")![1];
    addSecret("sign-up session token", s1);
    const wrong = await call(
      "wrong sign-in",
      "/api/auth/sign-in",
      jsonPost({ email: emailWeb, password: wrongPassword }),
    );
    assert.equal(wrong.status, 401);
    const inn = await call(
      "sign-in",
      "/api/auth/sign-in",
      jsonPost({ email: emailWeb, password: passwordWeb }),
    );
    assert.equal(inn.status, 200, inn.body);
    const s2 = /inbound_session=([^;]+)/.exec(inn.headers.get("Set-Cookie") ?? "")![1];
    addSecret("sign-in session token", s2);
    const cookie = { Cookie: `inbound_session=${s2}` };
    // With SMTP_URL, EMAIL_VERIFICATION is required: the mailed link first (its token is a
    // secret too), then keys.
    const verifyLink = linkIn(await smtp.waitForMatching(/confirm the address/));
    const verifyToken = verifyLink.searchParams.get("token")!;
    addSecret("verification token", verifyToken);
    addSecret("verification token random part", verifyToken.split(".")[1]);
    const verified = await call("verify email", `${verifyLink.pathname}${verifyLink.search}`, {
      redirect: "manual",
    });
    assert.equal(verified.status, 302, verified.body);
    const made = JSON.parse(
      (await call("key create", "/api/e2/api-keys", jsonPost({ name: "web" }, cookie))).body,
    );
    bodies[bodies.length - 1].mayShow = made.key;
    addSecret("web key", made.key);
    const rolled = await call(
      "key roll",
      `/api/e2/api-keys/${made.id}/roll`,
      jsonPost({ expiresInHours: 0 }, cookie),
    );
    const k4 = JSON.parse(rolled.body).key;
    bodies[bodies.length - 1].mayShow = k4;
    addSecret("rolled key", k4);
    await call("key list", "/api/e2/api-keys", { headers: cookie });
    await call("session", "/api/auth/session", { headers: cookie });
    // The public documentation, fetched while the account's keys and sessions exist.
    await call("OpenAPI document", "/api/e2/openapi.json");
    await call("API reference page", "/api/e2/docs");
    await call("OpenAPI document, signed in", "/api/e2/openapi.json", { headers: cookie });

    // Use keys, good and bad, and trigger errors with secrets in the request.
    const bearer = (k: string) => ({ Authorization: `Bearer ${k}` });
    assert.equal((await call("k1 list", "/api/e2/domains", { headers: bearer(k1) })).status, 200);
    assert.equal((await call("k4 list", "/api/e2/domains", { headers: bearer(k4) })).status, 200);
    assert.equal((await call("session list", "/api/e2/domains", { headers: cookie })).status, 200);
    const tampered = k1.slice(0, 20) + (k1[20] === "a" ? "b" : "a") + k1.slice(21);
    for (
      const [label, k] of [["deleted key", k2], ["rolled-away key", made.key], [
        "tampered key",
        tampered,
      ]]
    ) {
      assert.equal((await call(label, "/api/e2/domains", { headers: bearer(k) })).status, 401);
    }
    await call("session token as Bearer", "/api/e2/domains", { headers: bearer(s2) });
    await call("key in the query", `/api/e2/domains?api_key=${k1}&limit=${k1}`, {
      headers: bearer(k1),
    });
    await call("key as a domain", "/api/e2/domains", jsonPost({ domain: k1 }, bearer(k1)));
    await call(
      "key as an unknown field",
      "/api/e2/domains",
      jsonPost({ domain: "x.com", [k1]: k1 }, bearer(k1)),
    );
    await call(
      "password as a domain",
      "/api/e2/domains",
      jsonPost({ domain: passwordWeb }, bearer(k1)),
    );
    await call("key in a path", `/api/e2/domains/${k1}`, { headers: bearer(k1) });
    await call("key in an unknown path", `/api/e2/${k1}`, { headers: bearer(k1) });
    await call("key in a key id", `/api/e2/api-keys/${k1}`, { method: "DELETE", headers: cookie });
    await call(
      "password as key name",
      "/api/e2/api-keys",
      jsonPost({ name: passwordWeb, expiresInDays: "x" }, cookie),
    );
    await call("405", "/api/e2/domains", { method: "PUT", headers: bearer(k1) });
    await call("malformed JSON with a key", "/api/e2/domains", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...bearer(k1) },
      body: `{"domain": "${k1}"`,
    });
    await call(
      "sign-in with a key as password",
      "/api/auth/sign-in",
      jsonPost({ email: emailWeb, password: k1 }),
    );
    assert.equal(
      (await call("revoke", "/api/e2/auth/revoke-key", { method: "POST", headers: bearer(k4) }))
        .status,
      200,
    );
    assert.equal(
      (await call("revoked key", "/api/e2/domains", { headers: bearer(k4) })).status,
      401,
    );
    await call("sign-out", "/api/auth/sign-out", { method: "POST", headers: cookie });

    // Password reset by e-mail: the token and the new password.
    for (const email of [emailWeb, "nobody-at-all@example.com"]) {
      const r = await call(
        "reset request",
        "/api/auth/request-password-reset",
        jsonPost({ email }),
      );
      assert.equal(r.status, 200, r.body);
    }
    const resetToken = linkIn(await smtp.waitForMatching(/reset the password/)).searchParams
      .get("token")!;
    addSecret("reset token", resetToken);
    addSecret("reset token random part", resetToken.split(".")[1]);
    const passwordReset = `reset pass ${crypto.randomUUID()}`;
    addSecret("reset password", passwordReset);
    for (const label of ["reset", "reset again (spent token)"]) {
      await call(
        label,
        "/api/auth/reset-password",
        jsonPost({ token: resetToken, newPassword: passwordReset }),
      );
    }
    await call("reset page", `/reset-password?token=${encodeURIComponent(resetToken)}`);
  } finally {
    await server.stop();
  }

  // The password hashes, as stored.
  const kv = await Deno.openKv(path);
  for (const email of [emailCli, emailWeb]) {
    const user = await getUser(kv, (await findUserIdByEmail(kv, email))!);
    secrets.push({ label: `${email} password hash`, value: user!.passwordHash });
    const parts = user!.passwordHash.split("$");
    secrets.push({ label: `${email} password salt`, value: parts[4] });
    secrets.push({ label: `${email} derived key`, value: parts[5] });
  }
  kv.close();
  await removeKvFile(path);

  const output = server.output();
  for (const s of secrets) {
    tally.record(`server output free of ${s.label}`, output.includes(s.value) ? ["found"] : []);
  }
  for (const b of bodies) {
    const found = secrets.filter((s) =>
      b.body.includes(s.value) && s.value !== b.mayShow &&
      !(b.mayShow && b.mayShow.includes(s.value))
    );
    tally.record(`response "${b.label}" free of secrets`, found.map((s) => `has ${s.label}`));
  }

  const lines = output.split("\n").filter((l) => l.trim() !== "");
  const parsed: Record<string, unknown>[] = [];
  for (const line of lines) {
    try {
      parsed.push(JSON.parse(line));
      tally.record("output line is JSON", []);
    } catch {
      tally.record("output line is JSON", [JSON.stringify(line.slice(0, 120))]);
    }
  }
  const requestLines = parsed.filter((l) => l.msg === "request");
  tally.record(
    "one log line per request",
    requestLines.length === requests ? [] : [`${requestLines.length} lines, ${requests} requests`],
  );
  for (const l of requestLines) {
    const p: string[] = [];
    for (const f of REQUEST_FIELDS) if (!(f in l)) p.push(`no ${f}`);
    if (typeof l.time !== "string" || Number.isNaN(Date.parse(l.time))) p.push("bad time");
    if (!/^req_[0-9A-Za-z]{22}$/.test(String(l.requestId))) p.push("bad requestId");
    if (typeof l.status !== "number" || typeof l.durationMs !== "number") p.push("bad numbers");
    if (l.userId !== null && !/^usr_/.test(String(l.userId))) p.push("bad userId");
    if (l.keyId !== null && !/^key_/.test(String(l.keyId))) p.push("bad keyId");
    if (l.status === 200 && l.route === "/api/e2/domains" && l.userId === null) {
      p.push("an authenticated request logged without its userId");
    }
    tally.record(`request line ${l.method} ${l.route} ${l.status}`, p);
  }
  assert.ok(requestLines.some((l) => typeof l.keyId === "string"), "no keyId logged at all");
  assert.ok(secrets.length >= 40, `${secrets.length} secret forms`);
  assert.deepEqual(tally.report(), []);
});

/** A token of the session cookie's shape: 32 random bytes, base64url, no padding. */
const SESSION_TOKEN_SHAPE = /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}(?![A-Za-z0-9_-])/g;
/** Anything shaped like an API key; real-looking when its checksum is right. */
const KEY_SHAPE = /inb_[0-9A-Za-z]{42}/g;

/**
 * What in a published document looks like a secret: a key with a valid checksum, a string of the
 * session token's shape, a known password, or any value given for a password field (example,
 * examples, default, const).
 */
function secretsIn(text: string, passwords: string[]): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(KEY_SHAPE)) {
    if (isWellFormedApiKey(m[0])) {
      found.push(`an API key with a valid checksum (${m[0].slice(0, 10)}…)`);
    }
  }
  for (const m of text.matchAll(SESSION_TOKEN_SHAPE)) {
    found.push(`a session-token-shaped string (${m[0].slice(0, 6)}…)`);
  }
  for (const p of passwords) if (text.includes(p)) found.push("a password");
  let doc: unknown = null;
  try {
    doc = JSON.parse(text);
  } catch { /* an HTML page: scanned as text only */ }
  const walk = (node: unknown, path: string) => {
    if (!node || typeof node !== "object") return;
    for (const [k, v] of Object.entries(node)) {
      if (/password/i.test(k) && v && typeof v === "object") {
        for (const given of ["example", "examples", "default", "const", "enum"]) {
          if (given in v) found.push(`a value for ${path}.${k} (${given})`);
        }
      }
      walk(v, `${path}.${k}`);
    }
  };
  walk(doc, "$");
  return found;
}

Deno.test("the OpenAPI document and the reference page hold no real-looking key, session token or password", async (t) => {
  const tally = new Tally("secrets-docs");
  const h = await makeTestApp();
  const passwords = [TEST_PASSWORD];
  try {
    // Live secrets while the documents are served: a signed-in session with a key.
    const session = await signUp(h.app);
    const made = await createKeyViaSession(h.app, session.cookie, { name: "docs" });
    assert.equal(made.res.status, 201);
    const live = [made.key, session.cookie.split("=")[1]];
    const documents: [string, string, RequestInit][] = [
      ["/api/e2/openapi.json", "OpenAPI document", {}],
      ["/api/e2/docs", "API reference page", {}],
      ["/api/v2/openapi.json", "OpenAPI document (v2 alias)", {}],
      ["/api/e2/openapi.json", "OpenAPI document, signed in", withCookie(session.cookie)],
      ["/api/e2/docs", "API reference page, signed in", bearer(made.key)],
    ];
    await t.step("the documents are free of secrets", async () => {
      for (const [path, label, init] of documents) {
        const res = await h.app.request(`${BASE}${path}`, init);
        const text = await res.text();
        const p = res.status === 200 && text.length > 1000 ? [] : [`status ${res.status}`];
        p.push(...secretsIn(text, passwords));
        for (const s of live) if (text.includes(s)) p.push("a live secret of this run");
        tally.record(label, p);
      }
    });
    await t.step("controls: the scanner finds each kind of secret when it is there", () => {
      const planted: [string, string][] = [
        ["a real key", JSON.stringify({ example: generateApiKey() })],
        ["a session token", JSON.stringify({ example: generateSessionToken() })],
        ["a known password", JSON.stringify({ description: TEST_PASSWORD })],
        [
          "a password example",
          JSON.stringify({ properties: { password: { example: "hunter2" } } }),
        ],
      ];
      for (const [label, text] of planted) {
        tally.record(
          `control: ${label} is found`,
          secretsIn(text, passwords).length ? [] : ["missed"],
        );
      }
      const fake = "inb_" + "A".repeat(42);
      tally.record(
        "control: a key-shaped string with a wrong checksum is not a real key",
        secretsIn(JSON.stringify({ example: fake }), passwords).length ? ["flagged"] : [],
      );
    });
  } finally {
    await h.close();
  }
  assert.deepEqual(tally.report(), []);
});
