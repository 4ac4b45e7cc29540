/**
 * TOTP two-factor authentication through the JSON API (better-auth's two-factor plugin routes):
 * enrolment, the pending second step of sign-in, replay, recovery codes, throttling, disable.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import { helpFor, runAdmin } from "../../admin/cli.ts";
import { verifyStore } from "../../admin/verify.ts";
import type { App } from "../../app.ts";
import { AUDIT_ACTIONS } from "../../store/audit_log/events.ts";
import { auditPrefix, twoFactorKey } from "../../store/keys.ts";
import { createAuthClient } from "better-auth/client";
import { twoFactorClient } from "better-auth/client/plugins";
import { makeTestApp, removeKvFile, startServer, tempKvPath, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, Jar, json } from "../sessions_helpers.ts";

type Clock = { (): number; advance(ms: number): void };

/** The current code of the secret in `totpURI`, at the app's clock. */
function codeAt(totpURI: string, nowMs: number): string {
  const totp = OTPAuth.URI.parse(totpURI) as OTPAuth.TOTP;
  return totp.generate({ timestamp: nowMs });
}

async function post(app: App, jar: Jar, path: string, body: unknown): Promise<Response> {
  return jar.take(await app.request(`${BASE}${path}`, jar.init(json(body))));
}

async function signUpJar(app: App): Promise<{ jar: Jar; email: string; userId: string }> {
  const jar = new Jar();
  const email = freshEmail();
  const res = await post(app, jar, "/api/auth/sign-up", { email, password: TEST_PASSWORD });
  assert.equal(res.status, 201);
  return { jar, email, userId: (await res.json()).user.id };
}

async function signIn(app: App, email: string): Promise<{ jar: Jar; res: Response }> {
  const jar = new Jar();
  const res = await post(app, jar, "/api/auth/sign-in/email", { email, password: TEST_PASSWORD });
  return { jar, res };
}

async function getSession(app: App, jar: Jar): Promise<unknown> {
  const res = jar.take(await app.request(`${BASE}/api/auth/get-session`, jar.init()));
  return await res.json();
}

/** Signs up and completes TOTP enrolment; returns the URI and recovery codes. */
async function enrolled(app: App, clock: Clock) {
  const account = await signUpJar(app);
  const res = await post(app, account.jar, "/api/auth/two-factor/enable", {
    password: TEST_PASSWORD,
  });
  assert.equal(res.status, 200);
  const { totpURI, backupCodes } = await res.json();
  const verify = await post(app, account.jar, "/api/auth/two-factor/verify-totp", {
    code: codeAt(totpURI, clock()),
  });
  assert.equal(verify.status, 200);
  return { ...account, totpURI: totpURI as string, backupCodes: backupCodes as string[] };
}

Deno.test("TOTP enrolment completes with the first verified code and only digests are stored", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, kv, clock } = env;
    const { jar, email, userId } = await signUpJar(app);

    let totpURI = "";
    let backupCodes: string[] = [];
    await t.step(
      "enable with the password answers { totpURI, backupCodes } (ten codes)",
      async () => {
        const wrong = await post(app, jar, "/api/auth/two-factor/enable", { password: "nope" });
        assert.equal(wrong.status, 400);
        assert.equal((await wrong.json()).code, "INVALID_PASSWORD");
        const res = await post(app, jar, "/api/auth/two-factor/enable", {
          password: TEST_PASSWORD,
        });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("Cache-Control"), "no-store");
        const body = await res.json();
        totpURI = body.totpURI;
        backupCodes = body.backupCodes;
        assert.match(totpURI, /^otpauth:\/\/totp\//);
        assert.equal(backupCodes.length, 10);
        assert.equal(new Set(backupCodes).size, 10);
      },
    );

    await t.step("the store keeps recovery-code digests, never the codes", async () => {
      const stored = JSON.stringify((await kv.get(twoFactorKey(userId))).value);
      for (const code of backupCodes) assert.ok(!stored.includes(code));
    });

    await t.step("until a code is verified, sign-in needs no second step", async () => {
      const { res } = await signIn(app, email);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).twoFactorRedirect, undefined);
    });

    await t.step("a wrong code does not complete enrolment; the right one does", async () => {
      const wrong = await post(app, jar, "/api/auth/two-factor/verify-totp", { code: "000000" });
      assert.equal(wrong.status, 401);
      assert.equal((await wrong.json()).code, "INVALID_CODE");
      const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).user.email, email);
    });

    await t.step(
      "the enrolment is in the audit log, in the same commit as the change",
      async () => {
        const events = await Array.fromAsync(
          kv.list<{ action: string }>({ prefix: auditPrefix(userId) }),
        );
        assert.ok(AUDIT_ACTIONS.includes("user.two_factor_changed"));
        assert.equal(events.filter((e) => e.value.action === "user.two_factor_changed").length, 1);
      },
    );

    await t.step("enabling again is refused while enrolled", async () => {
      const res = await post(app, jar, "/api/auth/two-factor/enable", { password: TEST_PASSWORD });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).code, "TWO_FACTOR_ALREADY_ENABLED");
    });
  } finally {
    await env.close();
  }
});

Deno.test("sign-in of an enrolled account waits for its second step and refuses replays", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;
    const { email, totpURI } = await enrolled(app, clock);
    clock.advance(30_000);

    let pending: Jar = new Jar();
    await t.step("the password answers { twoFactorRedirect: true } and no session", async () => {
      const { jar, res } = await signIn(app, email);
      pending = jar;
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { twoFactorRedirect: true, twoFactorMethods: ["totp"] });
      const cookies = res.headers.getSetCookie();
      assert.ok(cookies.some((c) => c.startsWith("inbound_two_factor=")));
      assert.ok(!cookies.some((c) => c.startsWith("inbound_session=")));
      assert.ok(cookies.some((c) => /HttpOnly/i.test(c) && /Max-Age=600/.test(c)));
    });

    await t.step("the pending state authenticates nothing", async () => {
      assert.equal(await getSession(app, pending), null);
      const keys = await app.request(`${BASE}/api/e2/api-keys`, pending.init());
      assert.equal(keys.status, 401);
      await keys.body?.cancel();
      const sessions = await app.request(`${BASE}/api/auth/list-sessions`, pending.init());
      assert.equal(sessions.status, 401);
      await sessions.body?.cancel();
    });

    await t.step("a wrong code is refused and the pending sign-in stays usable", async () => {
      const res = await post(app, pending, "/api/auth/two-factor/verify-totp", { code: "123456" });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).code, "INVALID_CODE");
    });

    let used = "";
    await t.step("the right code completes the sign-in with a real session", async () => {
      used = codeAt(totpURI, clock());
      const res = await post(app, pending, "/api/auth/two-factor/verify-totp", { code: used });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.token, null);
      assert.equal(body.user.email, email);
      assert.ok(res.headers.getSetCookie().some((c) => c.startsWith("inbound_session=")));
      assert.equal(pending.get("inbound_two_factor"), undefined);
      const session = await getSession(app, pending) as { user: { email: string } };
      assert.equal(session.user.email, email);
    });

    await t.step("the same code is refused for another sign-in in its window", async () => {
      const { jar } = await signIn(app, email);
      const res = await post(app, jar, "/api/auth/two-factor/verify-totp", { code: used });
      assert.equal(res.status, 401);
      assert.equal(await getSession(app, jar), null);
      clock.advance(30_000);
      const next = await post(app, jar, "/api/auth/two-factor/verify-totp", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(next.status, 200);
    });

    await t.step("the pending sign-in is used up by its completion", async () => {
      const { jar } = await signIn(app, email);
      const cookie = jar.get("inbound_two_factor")!;
      clock.advance(30_000);
      const ok = await post(app, jar, "/api/auth/two-factor/verify-totp", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(ok.status, 200);
      const again = new Jar();
      again.set("inbound_two_factor", cookie);
      clock.advance(30_000);
      const res = await post(app, again, "/api/auth/two-factor/verify-totp", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).code, "INVALID_TWO_FACTOR_COOKIE");
    });

    await t.step("a pending sign-in expires after ten minutes", async () => {
      const { jar } = await signIn(app, email);
      clock.advance(10 * 60_000 + 1000);
      const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).code, "INVALID_TWO_FACTOR_COOKIE");
    });
  } finally {
    await env.close();
  }
});

Deno.test("recovery codes work once each, and regenerating replaces the whole set", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock } = env;
    const { email, backupCodes, jar: owner } = await enrolled(app, clock);

    await t.step("a recovery code completes a sign-in", async () => {
      const { jar } = await signIn(app, email);
      const res = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
        code: backupCodes[0],
      });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).user.email, email);
      assert.ok(await getSession(app, jar));
    });

    await t.step("the same recovery code is refused ever after", async () => {
      const { jar } = await signIn(app, email);
      const res = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
        code: backupCodes[0],
      });
      assert.equal(res.status, 401);
      assert.equal((await res.json()).code, "INVALID_BACKUP_CODE");
      assert.equal(await getSession(app, jar), null);
    });

    let fresh: string[] = [];
    await t.step("generate-backup-codes with the password answers a new set", async () => {
      const res = await post(app, owner, "/api/auth/two-factor/generate-backup-codes", {
        password: TEST_PASSWORD,
      });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.status, true);
      fresh = body.backupCodes;
      assert.equal(fresh.length, 10);
    });

    await t.step("the old codes stop working and the new ones work", async () => {
      const { jar } = await signIn(app, email);
      const old = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
        code: backupCodes[1],
      });
      assert.equal(old.status, 401);
      const res = await post(app, jar, "/api/auth/two-factor/verify-backup-code", {
        code: fresh[0].toUpperCase(),
      });
      assert.equal(res.status, 200);
    });
  } finally {
    await env.close();
  }
});

Deno.test("wrong second-step codes are throttled per account", async (t) => {
  const env = await makeTestApp({ config: { signInThrottle: { max: 5, windowMs: 60_000 } } });
  try {
    const { app, clock } = env;
    const { email, totpURI } = await enrolled(app, clock);
    clock.advance(60_000);
    const { jar } = await signIn(app, email);

    await t.step("beyond the limit even the right code answers 429 with Retry-After", async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const res = await post(app, jar, "/api/auth/two-factor/verify-totp", { code: "000000" });
        statuses.push(res.status);
        await res.body?.cancel();
      }
      assert.equal(statuses.at(-1), 429);
      const res = await post(app, jar, "/api/auth/two-factor/verify-totp", {
        code: codeAt(totpURI, clock()),
      });
      assert.equal(res.status, 429);
      assert.ok(Number(res.headers.get("Retry-After")) > 0);
      assert.equal((await res.json()).code, "TOO_MANY_ATTEMPTS");
    });

    await t.step("guesses from another client at the same account are counted too", async () => {
      const other = await signIn(app, email);
      const res = await app.request(
        `${BASE}/api/auth/two-factor/verify-backup-code`,
        other.jar.init(json({ code: "aaaaa-bbbbb" })),
        { remoteAddr: { hostname: "198.51.100.7", port: 1, transport: "tcp" } },
      );
      assert.equal(res.status, 429);
      await res.body?.cancel();
    });
  } finally {
    await env.close();
  }
});

Deno.test("disabling two-factor needs the password and restores password-only sign-in", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock, kv } = env;
    const { email, jar, userId } = await enrolled(app, clock);

    await t.step("a wrong password leaves it enabled", async () => {
      const res = await post(app, jar, "/api/auth/two-factor/disable", { password: "wrong" });
      assert.equal(res.status, 400);
      const { res: signedIn } = await signIn(app, email);
      assert.equal((await signedIn.json()).twoFactorRedirect, true);
    });

    await t.step("the right password disables it: { status: true }, audited", async () => {
      const res = await post(app, jar, "/api/auth/two-factor/disable", { password: TEST_PASSWORD });
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: true });
      assert.equal((await kv.get(twoFactorKey(userId))).versionstamp, null);
      const events = await Array.fromAsync(kv.list<{ action: string; details?: unknown }>({
        prefix: auditPrefix(userId),
      }));
      const changes = events.filter((e) => e.value.action === "user.two_factor_changed");
      assert.deepEqual(changes.map((e) => e.value.details), [
        { change: "enabled" },
        { change: "disabled" },
      ]);
    });

    await t.step("sign-in gives a session at once again", async () => {
      const { jar: fresh, res } = await signIn(app, email);
      assert.equal(res.status, 200);
      assert.equal((await res.json()).user.email, email);
      assert.ok(await getSession(app, fresh));
    });
  } finally {
    await env.close();
  }
});

Deno.test("admin user:disable-2fa removes the second factors and signs the account out", async (t) => {
  const env = await makeTestApp();
  try {
    const { app, clock, kv } = env;
    const { email, jar, userId } = await enrolled(app, clock);
    const lines: string[] = [];
    const io = { kv, out: (l: string) => lines.push(l), passwordCost: 10, maxApiKeys: 10 };

    await t.step("its help names the flag and what it does", () => {
      const help = helpFor(["help", "user:disable-2fa"]) ?? "";
      assert.match(help, /usage: admin user:disable-2fa --email E/);
      assert.match(help, /--email E/);
      assert.match(help, /signs it out everywhere/);
    });

    await t.step("it prints what it removed and how many sessions it ended", async () => {
      await runAdmin(["user:disable-2fa", "--email", email], io);
      const printed = JSON.parse(lines.at(-1)!);
      assert.deepEqual(printed, {
        id: userId,
        email,
        totp: true,
        passkeys: 0,
        revokedSessions: 1,
      });
      assert.equal((await kv.get(twoFactorKey(userId))).versionstamp, null);
    });

    await t.step("the old session is gone and the password alone signs in", async () => {
      assert.equal(await getSession(app, jar), null);
      const { jar: fresh, res } = await signIn(app, email);
      assert.equal((await res.json()).user.email, email);
      assert.ok(await getSession(app, fresh));
    });

    await t.step("the change is in the audit log as the admin's", async () => {
      const events = await Array.fromAsync(
        kv.list<{ action: string; actor: { type: string } }>({ prefix: auditPrefix(userId) }),
      );
      const byAdmin = events.filter((e) =>
        e.value.action === "user.two_factor_changed" && e.value.actor.type === "admin"
      );
      assert.equal(byAdmin.length, 1);
    });

    await t.step("admin verify knows the two-factor keys", async () => {
      const other = await enrolled(app, clock);
      await signIn(app, other.email);
      const report = await verifyStore(kv, {});
      assert.deepEqual(report.violations, []);
    });
  } finally {
    await env.close();
  }
});

/** A fetch with a cookie jar, like one browser profile (as tests/accounts/better_auth_client_test.ts). */
function jarFetch() {
  const jar = new Map<string, string>();
  return async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    const headers = new Headers(req.headers);
    if (jar.size > 0) headers.set("Cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await fetch(new Request(req, { headers }));
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === "") jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
}

Deno.test("better-auth's client with twoFactorClient enrols, is redirected and verifies", async (t) => {
  const kvPath = await tempKvPath();
  const server = await startServer({ DENO_KV_PATH: kvPath });
  try {
    let redirected = 0;
    const client = () =>
      createAuthClient({
        baseURL: server.url,
        plugins: [twoFactorClient({ onTwoFactorRedirect: () => void redirected++ })],
        fetchOptions: { customFetchImpl: jarFetch(), disableSignal: true },
      });
    const a = client();
    const email = `ba2fa-${crypto.randomUUID()}@example.com`;
    let totp: OTPAuth.TOTP | undefined;
    const used = new Set<string>();
    const fresh = async () => {
      for (;;) {
        const code = totp!.generate();
        if (!used.has(code)) return used.add(code), code;
        await new Promise((r) => setTimeout(r, 500));
      }
    };

    await t.step(
      "twoFactor.enable answers the URI and codes; verifyTotp completes it",
      async () => {
        const up = await a.signUp.email({ name: "Ada", email, password: TEST_PASSWORD });
        assert.equal(up.error, null);
        const enabled = await a.twoFactor.enable({ password: TEST_PASSWORD });
        assert.equal(enabled.error, null);
        const data = enabled.data;
        assert.ok(data && data.method === "totp");
        assert.equal(data.backupCodes.length, 10);
        totp = OTPAuth.URI.parse(data.totpURI) as OTPAuth.TOTP;
        const verified = await a.twoFactor.verifyTotp({ code: await fresh() });
        assert.equal(verified.error, null);
      },
    );

    await t.step("signIn.email calls onTwoFactorRedirect and leaves no session", async () => {
      const b = client();
      const r = await b.signIn.email({ email, password: TEST_PASSWORD });
      assert.equal(r.error, null);
      assert.equal((r.data as { twoFactorRedirect?: boolean }).twoFactorRedirect, true);
      assert.equal(redirected, 1);
      assert.equal((await b.getSession()).data, null);
      const wrong = await b.twoFactor.verifyTotp({ code: "000000" });
      assert.equal(wrong.error?.status, 401);
      const ok = await b.twoFactor.verifyTotp({ code: await fresh() });
      assert.equal(ok.error, null);
      assert.equal((await b.getSession()).data?.user.email, email);
    });
  } finally {
    await server.stop();
    await removeKvFile(kvPath);
  }
});
