/**
 * Password reset by e-mail over SMTP (issue 11, item 5). The app's real SMTP client (nodemailer)
 * delivers to an in-process SMTP server (npm smtp-server) over TCP; the tests read the link from
 * the received message and follow it.
 */
import assert from "node:assert/strict";
import { makeTestApp, removeKvFile, runAdminCli, tempKvPath, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, cookieFrom, fromIp, json, signUp, withCookie } from "../sessions_helpers.ts";
import { linkIn, type ReceivedMail, startSmtpSink } from "../_smtp_sink.ts";
import type { App } from "../../app.ts";
import type { LogEntry } from "../../lib/log.ts";
import { parseSmtpUrl } from "../../lib/config.ts";
import { PASSWORD_RESET_TTL_MS } from "../../store/accounts/password_reset.ts";
import { RESET_MAIL_INTERVAL_MS } from "../../auth/accounts/service.ts";
import { passwordResetKey } from "../../store/keys.ts";

const NEW_PASSWORD = "a brand new passphrase 42";
let ipCounter = 0;
/** A fresh client address per call site, so the per-address throttle does not interfere. */
const freshIp = () => fromIp(`198.51.100.${++ipCounter}`);

async function requestReset(app: App, email: string, redirectTo?: string) {
  const body = redirectTo === undefined ? { email } : { email, redirectTo };
  const res = await app.request(
    `${BASE}/api/auth/request-password-reset`,
    json(body),
    freshIp(),
  );
  return { status: res.status, text: await res.text() };
}

async function resetPassword(app: App, token: string, newPassword = NEW_PASSWORD) {
  const res = await app.request(
    `${BASE}/api/auth/reset-password`,
    json({ token, newPassword }),
    freshIp(),
  );
  return { status: res.status, body: await res.json() };
}

async function signIn(app: App, email: string, password: string) {
  return await app.request(`${BASE}/api/auth/sign-in`, json({ email, password }), freshIp());
}

const tokenOf = (mail: ReceivedMail) => linkIn(mail).searchParams.get("token") ?? "";

Deno.test("password reset by e-mail over SMTP", async (t) => {
  await using smtp = await startSmtpSink();
  const logs: LogEntry[] = [];
  const h = await makeTestApp({
    config: { smtp: smtp.config, mailFrom: "Inbound <no-reply@example.test>" },
    logger: (e) => logs.push(e),
  });
  try {
    const { app, clock } = h;
    const account = await signUp(app);

    await t.step("a known and an unknown email get the identical answer", async () => {
      const known = await requestReset(app, account.email);
      const unknown = await requestReset(app, "nobody-here@example.com");
      assert.equal(known.status, 200);
      assert.deepEqual(
        { status: unknown.status, text: unknown.text },
        { status: known.status, text: known.text },
      );
      assert.deepEqual(JSON.parse(known.text), {
        status: true,
        message: "If this email exists in our system, check your email for the reset link",
      });
      await app.idle();
      assert.equal(smtp.received.length, 1, "one mail, for the known account only");
      const mail = smtp.received[0];
      assert.deepEqual(mail.to, [account.email]);
      assert.equal(mail.from, "no-reply@example.test");
      const link = linkIn(mail);
      assert.equal(link.origin, BASE);
      assert.equal(link.pathname, "/reset-password");
      assert.match(tokenOf(mail), /^usr_[0-9A-Za-z]+\.[A-Za-z0-9_-]{43}$/);
    });

    await t.step("only the token's SHA-256 is stored", async () => {
      const token = tokenOf(smtp.received[0]);
      const stored = await h.kv.get(passwordResetKey(account.userId));
      const text = JSON.stringify(stored.value);
      assert.ok(!text.includes(token) && !text.includes(token.split(".")[1]));
      assert.match(text, /"digest":"[0-9a-f]{64}"/);
    });

    const second = await signIn(app, account.email, TEST_PASSWORD);
    assert.equal(second.status, 200);
    const otherCookie = cookieFrom(second);

    await t.step("the link's token resets the password and signs every session out", async () => {
      const r = await resetPassword(app, tokenOf(smtp.received[0]));
      assert.deepEqual({ status: r.status, body: r.body }, { status: 200, body: { status: true } });
      for (const cookie of [account.cookie, otherCookie]) {
        const s = await app.request(`${BASE}/api/auth/session`, withCookie(cookie));
        assert.equal(s.status, 401);
      }
      assert.equal((await signIn(app, account.email, TEST_PASSWORD)).status, 401);
      assert.equal((await signIn(app, account.email, NEW_PASSWORD)).status, 200);
    });

    await t.step("a token works once", async () => {
      const again = await resetPassword(app, tokenOf(smtp.received[0]), "yet another passphrase");
      assert.equal(again.status, 400);
      assert.equal(again.body.code, "INVALID_TOKEN");
      assert.equal((await signIn(app, account.email, NEW_PASSWORD)).status, 200);
    });

    // Issue 20 changed this rule: a newer link used to kill the older one, so anyone could kill
    // the link its owner was about to use. Now links are mailed at most once per
    // RESET_MAIL_INTERVAL_MS, a newer one leaves the older working, and a reset spends them all.
    await t.step("a newer link leaves the older one working; a reset spends both", async () => {
      await requestReset(app, account.email);
      const older = tokenOf(await smtp.waitFor(2));
      clock.advance(RESET_MAIL_INTERVAL_MS);
      await requestReset(app, account.email);
      const newer = tokenOf(await smtp.waitFor(3));
      assert.notEqual(older, newer);
      assert.equal((await resetPassword(app, older, "older token passphrase")).status, 200);
      assert.equal((await resetPassword(app, newer, "newer token passphrase")).status, 400);
      assert.equal((await signIn(app, account.email, "older token passphrase")).status, 200);
    });

    await t.step("a token expires after one hour", async () => {
      await requestReset(app, account.email);
      const token = tokenOf(await smtp.waitFor(4));
      clock.advance(PASSWORD_RESET_TTL_MS - 1000);
      const page = await app.request(
        `${BASE}/reset-password?token=${encodeURIComponent(token)}`,
      );
      assert.equal(page.status, 200);
      clock.advance(1000);
      const r = await resetPassword(app, token, "too late passphrase");
      assert.equal(r.status, 400);
      assert.equal(r.body.code, "INVALID_TOKEN");
    });

    await t.step("a forged or malformed token is refused", async () => {
      for (const token of [`${account.userId}.${"A".repeat(43)}`, "nonsense", "usr_x.y"]) {
        const r = await resetPassword(app, token);
        assert.equal(r.status, 400, token);
        assert.equal(r.body.code, "INVALID_TOKEN");
      }
    });

    await t.step("redirectTo is a path on this site or its origin, never elsewhere", async () => {
      const ok = await requestReset(app, account.email, "/custom/reset?from=mail");
      assert.equal(ok.status, 200);
      const link = linkIn(await smtp.waitFor(5));
      assert.equal(link.origin, BASE);
      assert.equal(link.pathname, "/custom/reset");
      assert.equal(link.searchParams.get("from"), "mail");
      clock.advance(RESET_MAIL_INTERVAL_MS); // one mail per account per interval
      assert.equal((await requestReset(app, account.email, `${BASE}/other`)).status, 200);
      assert.equal(linkIn(await smtp.waitFor(6)).pathname, "/other");
      for (
        const bad of [
          "https://evil.example/reset",
          "//evil.example/reset",
          "/\\evil.example",
          "javascript:alert(1)",
          "http://localhost.evil.example/",
        ]
      ) {
        const r = await requestReset(app, account.email, bad);
        assert.equal(r.status, 400, bad);
        assert.equal(JSON.parse(r.text).code, "INVALID_REDIRECT", bad);
      }
      await app.idle();
      assert.equal(smtp.received.length, 6);
    });

    await t.step("requests are throttled per email, the same for an unknown one", async () => {
      const answers = async (email: string) => {
        const statuses: number[] = [];
        for (let i = 0; i < 11; i++) statuses.push((await requestReset(app, email)).status);
        return statuses;
      };
      clock.advance(120_000);
      const known = await answers(account.email);
      const unknown = await answers("still-nobody@example.com");
      assert.deepEqual(known, [...Array(10).fill(200), 429]);
      assert.deepEqual(unknown, known);
      await app.idle();
    });

    await t.step(
      "the dashboard's forms refuse another origin and answer Post/Redirect/Get",
      async () => {
        const form = (path: string, body: Record<string, string>, site: string) =>
          app.request(`${BASE}${path}`, {
            method: "POST",
            headers: {
              "Content-Type": "application/x-www-form-urlencoded",
              "Sec-Fetch-Site": site,
            },
            body: new URLSearchParams(body),
          }, freshIp());
        for (const path of ["/forgot-password", "/reset-password"]) {
          const res = await form(
            path,
            { email: account.email, token: "x", password: "y" },
            "cross-site",
          );
          assert.equal(res.status, 403, path);
          await res.body?.cancel();
        }
        clock.advance(RESET_MAIL_INTERVAL_MS); // past the throttle window and the mail interval
        await app.idle();
        const mailsBefore = smtp.received.length;
        const sent = await form("/forgot-password", { email: account.email }, "same-origin");
        assert.equal(sent.status, 303);
        assert.equal(sent.headers.get("Location"), "/forgot-password?notice=reset-sent");
        const token = tokenOf(await smtp.waitFor(mailsBefore + 1));
        const done = await form(
          "/reset-password",
          { token, password: "set from the form page" },
          "same-origin",
        );
        assert.equal(done.status, 303);
        assert.equal(done.headers.get("Location"), "/sign-in?notice=password-reset");
        assert.equal((await signIn(app, account.email, "set from the form page")).status, 200);
        const signInPage = await (await app.request(`${BASE}/sign-in`)).text();
        assert.match(signInPage, /href="\/forgot-password"[^>]*>Forgot password\?</);
      },
    );

    await t.step("the SMTP credentials appear in no log line", () => {
      const text = JSON.stringify(logs);
      assert.ok(!text.includes(smtp.pass));
    });
  } finally {
    await h.close();
  }
});

Deno.test("SMTP credentials never appear in logs or errors", async (t) => {
  await using smtp = await startSmtpSink();

  await t.step("a rejected login is logged by code only", async () => {
    const logs: LogEntry[] = [];
    const wrongPass = `wrong-${crypto.randomUUID()}`;
    const h = await makeTestApp({
      config: { smtp: { ...smtp.config, pass: wrongPass } },
      logger: (e) => logs.push(e),
    });
    try {
      const account = await signUp(h.app);
      const r = await requestReset(h.app, account.email);
      assert.equal(r.status, 200);
      await h.app.idle();
      assert.equal(smtp.received.length, 0);
      const failure = logs.find((e) => e.level === "error");
      assert.match(String(failure?.error), /mail delivery failed: EAUTH/);
      const text = JSON.stringify(logs) + r.text;
      assert.ok(!text.includes(wrongPass) && !text.includes(smtp.pass));
    } finally {
      await h.close();
    }
  });

  await t.step("a malformed SMTP_URL is a one-line error without the value", () => {
    const secret = `pw-${crypto.randomUUID()}`;
    for (const raw of [`http://u:${secret}@host`, `smtp://u:${secret}@host/path`, `::${secret}`]) {
      assert.throws(() => parseSmtpUrl(raw), (err: Error) => {
        assert.equal(err.name, "ConfigError");
        assert.ok(!err.message.includes(secret), err.message);
        assert.ok(!err.message.includes("\n"));
        return true;
      });
    }
    assert.deepEqual(parseSmtpUrl(`smtps://me%40x:${secret}@mail.example.com`), {
      host: "mail.example.com",
      port: 465,
      secure: true,
      user: "me@x",
      pass: secret,
    });
    assert.equal(parseSmtpUrl("smtp://mail.example.com:2525")?.port, 2525);
    assert.equal(parseSmtpUrl(undefined), null);
  });
});

Deno.test("without SMTP_URL the link goes to the log at warn level (development)", async () => {
  const logs: LogEntry[] = [];
  const h = await makeTestApp({ logger: (e) => logs.push(e) });
  try {
    const account = await signUp(h.app);
    assert.equal((await requestReset(h.app, account.email)).status, 200);
    await h.app.idle();
    const line = logs.find((e) => e.level === "warn" && typeof e.text === "string");
    assert.ok(line, "a warn line with the mail");
    const token = /token=([^\s&]+)/.exec(String(line.text))?.[1] ?? "";
    const r = await resetPassword(h.app, decodeURIComponent(token));
    assert.equal(r.status, 200);
  } finally {
    await h.close();
  }
});

Deno.test("admin user:reset-link prints a link whose token resets the password", async (t) => {
  const path = await tempKvPath();
  try {
    const env = { DENO_KV_PATH: path, PUBLIC_URL: "https://auth.example.test" };
    const email = `reset-cli-${crypto.randomUUID().slice(0, 8)}@example.com`;
    const created = await runAdminCli(["user:create", "--email", email], env, TEST_PASSWORD);
    assert.equal(created.code, 0, created.stderr);

    await t.step("the help names the command", async () => {
      const help = await runAdminCli(["user:reset-link", "--help"], env);
      assert.equal(help.code, 0);
      assert.match(help.stdout, /usage: admin user:reset-link --email E/);
    });

    await t.step("an unknown account exits 1", async () => {
      const r = await runAdminCli(["user:reset-link", "--email", "nobody@example.com"], env);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /no account with email nobody@example.com/);
    });

    let link: URL;
    await t.step("the link alone on stdout, on PUBLIC_URL's origin", async () => {
      const r = await runAdminCli(["user:reset-link", "--email", email], env);
      assert.equal(r.code, 0, r.stderr);
      link = new URL(r.stdout.trim());
      assert.equal(link.origin, "https://auth.example.test");
      assert.equal(link.pathname, "/reset-password");
    });

    await t.step("admin verify accepts a store holding a reset token", async () => {
      const r = await runAdminCli(["verify"], env);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(JSON.parse(r.stdout).unrecognised, { count: 0, sample: [] });
    });

    await t.step("its token resets the password once", async () => {
      await using kv = await Deno.openKv(path);
      const h = await makeTestApp({ kv });
      const token = link.searchParams.get("token") ?? "";
      assert.equal((await resetPassword(h.app, token)).status, 200);
      assert.equal((await resetPassword(h.app, token)).status, 400);
      assert.equal((await signIn(h.app, email, NEW_PASSWORD)).status, 200);
      await h.app.idle();
    });
  } finally {
    await removeKvFile(path);
  }
});
