/**
 * The real `better-auth/client` (npm better-auth, pinned in deno.json) against the real server:
 * each "browser" is a client with its own cookie jar (a custom fetch that stores Set-Cookie and
 * sends Cookie), as two browsers of one person would be.
 */
import assert from "node:assert/strict";
import { createAuthClient } from "better-auth/client";
import { removeKvFile, startServer, tempKvPath, TEST_PASSWORD } from "../_helpers.ts";
import { linkIn, startSmtpSink } from "../_smtp_sink.ts";

/** A fetch with a cookie jar, like one browser profile. */
function jarFetch(userAgent: string) {
  const jar = new Map<string, string>();
  const fetchWithJar = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    const headers = new Headers(req.headers);
    if (jar.size > 0) headers.set("Cookie", [...jar].map(([k, v]) => `${k}=${v}`).join("; "));
    headers.set("User-Agent", userAgent);
    const res = await fetch(new Request(req, { headers }));
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === "";
      if (expired) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
  return { fetch: fetchWithJar, jar };
}

function browser(baseURL: string, userAgent: string) {
  const { fetch, jar } = jarFetch(userAgent);
  const client = createAuthClient({
    baseURL,
    // No session signal timers left behind by the client between steps.
    fetchOptions: { customFetchImpl: fetch, disableSignal: true },
  });
  return { client, jar };
}

const CHROME_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 " +
  "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

Deno.test("the better-auth client signs up, in and out, manages sessions and changes the password", async (t) => {
  const kvPath = await tempKvPath();
  const server = await startServer({ DENO_KV_PATH: kvPath });
  try {
    const email = `ba-${crypto.randomUUID()}@example.com`;
    const a = browser(server.url, CHROME_MAC);
    const b = browser(server.url, FIREFOX_LINUX);
    const newPassword = TEST_PASSWORD + "-changed";

    await t.step(
      "sign-up with a name answers { token, user } and sets the session cookie",
      async () => {
        const r = await a.client.signUp.email({
          name: "  Ada Lovelace  ",
          email,
          password: TEST_PASSWORD,
        });
        assert.equal(r.error, null, JSON.stringify(r.error));
        assert.equal(r.data?.user.email, email);
        assert.equal(r.data?.user.name, "Ada Lovelace");
        assert.equal(r.data?.token, null, "no session token in a response body");
        assert.ok(a.jar.has("inbound_session"));
      },
    );

    await t.step("get-session answers { session, user } while signed in", async () => {
      const r = await a.client.getSession();
      assert.equal(r.error, null);
      assert.equal(r.data?.user.email, email);
      assert.equal(r.data?.user.name, "Ada Lovelace");
      assert.match(r.data?.session.id ?? "", /^ses_/);
      assert.equal(r.data?.session.userAgent, "Chrome on macOS");
      assert.equal(r.data?.session.ipAddress, "127.0.0.1");
    });

    await t.step("sign-out ends the session, and get-session then answers null", async () => {
      const r = await a.client.signOut();
      assert.equal(r.error, null);
      assert.equal(r.data?.success, true);
      const after = await a.client.getSession();
      assert.equal(after.error, null);
      assert.equal(after.data, null);
    });

    await t.step("sign-in in two browsers gives two sessions", async () => {
      for (const br of [a, b]) {
        const r = await br.client.signIn.email({ email, password: TEST_PASSWORD });
        assert.equal(r.error, null, JSON.stringify(r.error));
        assert.equal(r.data?.user.email, email);
      }
      const mine = await a.client.getSession();
      const theirs = await b.client.getSession();
      assert.ok(mine.data && theirs.data);
      assert.notEqual(mine.data.session.id, theirs.data.session.id);
    });

    await t.step(
      "list-sessions shows both, by id and not by token, this device marked",
      async () => {
        const r = await a.client.listSessions();
        assert.equal(r.error, null);
        const list = r.data ?? [];
        assert.equal(list.length, 2);
        const own = (await a.client.getSession()).data?.session.id;
        const tokens = [a.jar.get("inbound_session"), b.jar.get("inbound_session")];
        for (const s of list) {
          assert.equal(s.token, s.id);
          for (const token of tokens) assert.ok(token && !JSON.stringify(s).includes(token));
        }
        const agents = list.map((s) => s.userAgent).sort();
        assert.deepEqual(agents, ["Chrome on macOS", "Firefox on Linux"]);
        const marked = list.filter((s) => (s as { current?: boolean }).current);
        assert.deepEqual(marked.map((s) => s.id), [own]);
      },
    );

    await t.step("update-user changes the name", async () => {
      const r = await b.client.updateUser({ name: "Ada King" });
      assert.equal(r.error, null, JSON.stringify(r.error));
      assert.equal(r.data?.status, true);
      assert.equal((await a.client.getSession()).data?.user.name, "Ada King");
    });

    await t.step("change-password with the wrong current password changes nothing", async () => {
      const r = await a.client.changePassword({
        currentPassword: "not-the-password",
        newPassword,
      });
      assert.equal(r.error?.status, 400);
      assert.ok((await b.client.getSession()).data);
    });

    await t.step(
      "change-password revoking other sessions signs the other browser out",
      async () => {
        const r = await a.client.changePassword({
          currentPassword: TEST_PASSWORD,
          newPassword,
          revokeOtherSessions: true,
        });
        assert.equal(r.error, null, JSON.stringify(r.error));
        assert.equal(r.data?.user.email, email);
        assert.ok((await a.client.getSession()).data, "this browser stays signed in");
        assert.equal((await b.client.getSession()).data, null, "the other is signed out");
        const old = await b.client.signIn.email({ email, password: TEST_PASSWORD });
        assert.equal(old.error?.status, 401);
        const fresh = await b.client.signIn.email({ email, password: newPassword });
        assert.equal(fresh.error, null);
      },
    );

    await t.step("revoke-session by id signs that browser out", async () => {
      const other = (await b.client.getSession()).data?.session.id;
      assert.ok(other);
      const r = await a.client.revokeSession({ token: other });
      assert.equal(r.error, null);
      assert.equal(r.data?.status, true);
      assert.equal((await b.client.getSession()).data, null);
      assert.ok((await a.client.getSession()).data);
    });

    await t.step("revoke-other-sessions leaves only this browser signed in", async () => {
      assert.equal((await b.client.signIn.email({ email, password: newPassword })).error, null);
      const r = await a.client.revokeOtherSessions();
      assert.equal(r.data?.status, true);
      assert.equal((await b.client.getSession()).data, null);
      assert.equal((await a.client.listSessions()).data?.length, 1);
    });

    await t.step("the older routes keep working", async () => {
      const res = await fetch(`${server.url}/api/auth/session`, {
        headers: { Cookie: `inbound_session=${a.jar.get("inbound_session")}` },
      });
      assert.equal(res.status, 200);
      const body = await res.json();
      assert.equal(body.user.email, email);
      assert.equal(body.user.name, "Ada King");
    });

    await t.step("delete-user needs the password, then deletes the account", async () => {
      const wrong = await a.client.deleteUser({ password: "not-the-password" });
      assert.equal(wrong.error?.status, 400);
      assert.ok((await a.client.getSession()).data, "a wrong password deletes nothing");
      const r = await a.client.deleteUser({ password: newPassword });
      assert.equal(r.error, null, JSON.stringify(r.error));
      assert.deepEqual(r.data, { success: true, message: "User deleted" });
      assert.equal((await a.client.getSession()).data, null);
      const again = await b.client.signIn.email({ email, password: newPassword });
      assert.equal(again.error?.status, 401);
    });
  } finally {
    await server.stop();
    await removeKvFile(kvPath);
  }
});

Deno.test("the better-auth client resets a password by e-mail over SMTP", async (t) => {
  await using smtp = await startSmtpSink();
  const kvPath = await tempKvPath();
  const server = await startServer({
    DENO_KV_PATH: kvPath,
    SMTP_URL: `smtp://${smtp.user}:${smtp.pass}@127.0.0.1:${smtp.config.port}`,
  });
  try {
    const email = `ba-reset-${crypto.randomUUID()}@example.com`;
    const a = browser(server.url, CHROME_MAC);
    const b = browser(server.url, FIREFOX_LINUX);
    const resetTo = TEST_PASSWORD + "-reset";
    assert.equal(
      (await a.client.signUp.email({ name: "Grace", email, password: TEST_PASSWORD })).error,
      null,
    );
    assert.equal((await b.client.signIn.email({ email, password: TEST_PASSWORD })).error, null);

    let token = "";
    await t.step("request-password-reset answers the same for any email", async () => {
      const known = await b.client.requestPasswordReset({ email, redirectTo: "/reset-password" });
      const unknown = await b.client.requestPasswordReset({
        email: "no-such-account@example.com",
        redirectTo: "/reset-password",
      });
      assert.equal(known.error, null, JSON.stringify(known.error));
      assert.deepEqual(unknown.data, known.data);
      assert.equal(known.data?.status, true);
      const link = linkIn(await smtp.waitForMatching(/reset the password/));
      assert.equal(link.origin, server.url);
      token = link.searchParams.get("token") ?? "";
    });

    await t.step("reset-password sets the password and signs every browser out", async () => {
      const r = await b.client.resetPassword({ newPassword: resetTo, token });
      assert.equal(r.error, null, JSON.stringify(r.error));
      assert.deepEqual(r.data, { status: true });
      assert.equal((await a.client.getSession()).data, null);
      assert.equal((await b.client.getSession()).data, null);
      const old = await a.client.signIn.email({ email, password: TEST_PASSWORD });
      assert.equal(old.error?.status, 401);
      assert.equal((await a.client.signIn.email({ email, password: resetTo })).error, null);
    });

    await t.step("the token works once", async () => {
      const again = await b.client.resetPassword({ newPassword: "another new password", token });
      assert.equal(again.error?.status, 400);
      assert.equal(again.error?.code, "INVALID_TOKEN");
    });
  } finally {
    await server.stop();
    await removeKvFile(kvPath);
  }
});

Deno.test("the better-auth client verifies an e-mail address over SMTP before keys and domains", async (t) => {
  await using smtp = await startSmtpSink();
  const kvPath = await tempKvPath();
  // SMTP_URL set and EMAIL_VERIFICATION unset: verification is required (the default with mail).
  const server = await startServer({
    DENO_KV_PATH: kvPath,
    SMTP_URL: `smtp://${smtp.user}:${smtp.pass}@127.0.0.1:${smtp.config.port}`,
  });
  try {
    const email = `ba-verify-${crypto.randomUUID()}@example.com`;
    const a = browser(server.url, CHROME_MAC);
    type Answer = { data: unknown; error: { status: number; code?: string } | null };
    const api = async (path: string, body: unknown): Promise<Answer> =>
      await a.client.$fetch(`${server.url}${path}`, {
        method: "POST",
        body,
        throw: false,
      }) as Answer;

    await t.step("sign-up answers emailVerified: false and mails a link", async () => {
      const r = await a.client.signUp.email({
        name: "Ada",
        email,
        password: TEST_PASSWORD,
        callbackURL: "/settings/api-keys",
      });
      assert.equal(r.error, null, JSON.stringify(r.error));
      assert.equal(r.data?.user.emailVerified, false);
    });

    await t.step("before verification: API keys and domains are refused", async () => {
      const key = await api("/api/e2/api-keys", { name: "first" });
      assert.equal(key.error?.status, 403);
      assert.equal(key.error?.code, "EMAIL_NOT_VERIFIED");
      const domain = await api("/api/e2/domains", { domain: "example.com" });
      assert.equal(domain.error?.status, 403);
      assert.equal(domain.error?.code, "EMAIL_NOT_VERIFIED");
    });

    let token = "";
    await t.step("the mail arrived over SMTP, with a link to this server", async () => {
      const mail = await smtp.waitForMatching(/confirm the address/);
      assert.deepEqual(mail.to, [email]);
      const link = linkIn(mail);
      assert.equal(link.origin, server.url);
      assert.equal(link.pathname, "/api/auth/verify-email");
      assert.equal(link.searchParams.get("callbackURL"), "/settings/api-keys");
      token = link.searchParams.get("token") ?? "";
    });

    await t.step("verifyEmail marks the account, and get-session says so", async () => {
      const r = await a.client.verifyEmail({ query: { token } });
      assert.equal(r.error, null, JSON.stringify(r.error));
      assert.equal(r.data?.status, true);
      const session = await a.client.getSession();
      assert.equal(session.data?.user.emailVerified, true);
      const again = await a.client.verifyEmail({ query: { token } });
      assert.equal(again.error?.status, 401);
    });

    await t.step("verified: the same session creates a key", async () => {
      const key = await api("/api/e2/api-keys", { name: "first" });
      assert.equal(key.error, null, JSON.stringify(key.error));
      assert.match((key.data as { key: string }).key, /^inb_/);
    });

    await t.step(
      "sendVerificationEmail for a verified address: EMAIL_ALREADY_VERIFIED",
      async () => {
        const r = await a.client.sendVerificationEmail({ email });
        assert.equal(r.error?.status, 400);
        assert.equal(r.error?.code, "EMAIL_ALREADY_VERIFIED");
      },
    );
  } finally {
    await server.stop();
    await removeKvFile(kvPath);
  }
});
