/**
 * Accounts prove their e-mail (EMAIL_VERIFICATION=required) and operators choose who may sign up
 * (SIGN_UP, SIGN_UP_EMAIL_DOMAINS): auth/email_verification.ts.
 */
import assert from "node:assert/strict";
import * as OTPAuth from "otpauth";
import {
  UNVERIFIED_HOLD_MS,
  VERIFICATION_MAIL_INTERVAL_MS,
} from "../../auth/email_verification.ts";
import { loadConfig } from "../../lib/config.ts";
import type { Mailer, MailMessage } from "../../lib/mailer.ts";
import { getUser } from "../../store/accounts/users.ts";
import { makeTestApp, removeKvFile, runAdminCli, tempKvPath, TEST_PASSWORD } from "../_helpers.ts";
import {
  BASE,
  createKeyViaSession,
  freshEmail,
  json,
  signUp,
  withCookie,
} from "../sessions_helpers.ts";

/** A mailer that keeps what it is asked to send. */
function captureMailer(): Mailer & { sent: MailMessage[] } {
  const sent: MailMessage[] = [];
  return { kind: "smtp", sent, send: (m) => Promise.resolve(void sent.push(m)), close() {} };
}

function linkIn(mail: MailMessage): URL {
  const m = /https?:\/\/\S+/.exec(mail.text);
  if (!m) throw new Error("no link in the mail");
  return new URL(m[0]);
}

async function requiredApp(config: Parameters<typeof makeTestApp>[0] = {}) {
  const mailer = captureMailer();
  const ctx = await makeTestApp({
    ...config,
    config: { emailVerification: "required", ...config.config },
    mailer,
  });
  return { ...ctx, mailer };
}

Deno.test("EMAIL_VERIFICATION and SIGN_UP settings", async (t) => {
  await t.step("required by default with SMTP_URL, off without", () => {
    assert.equal(loadConfig({}).emailVerification, "off");
    assert.equal(loadConfig({ SMTP_URL: "smtp://127.0.0.1:2525" }).emailVerification, "required");
    assert.equal(
      loadConfig({ SMTP_URL: "smtp://127.0.0.1:2525", EMAIL_VERIFICATION: "off" })
        .emailVerification,
      "off",
    );
  });
  await t.step("bad values are one-line errors naming the variable", () => {
    assert.throws(() => loadConfig({ EMAIL_VERIFICATION: "maybe" }), /EMAIL_VERIFICATION must/);
    assert.throws(() => loadConfig({ SIGN_UP: "invite" }), /SIGN_UP must be one of open, closed/);
    assert.throws(
      () => loadConfig({ SIGN_UP_EMAIL_DOMAINS: "example.com,not a domain" }),
      /SIGN_UP_EMAIL_DOMAINS/,
    );
    assert.deepEqual(loadConfig({ SIGN_UP_EMAIL_DOMAINS: " Example.com, example.org " }).signUp, {
      open: true,
      emailDomains: ["example.com", "example.org"],
    });
  });
});

Deno.test("an unverified account signs in but creates no keys, domains or factors until it verifies", async (t) => {
  const ctx = await requiredApp();
  try {
    const { cookie, userId, email } = await signUp(ctx.app);
    await ctx.app.idle();

    await t.step("sign-up mails a link; the user object says emailVerified: false", async () => {
      assert.equal(ctx.mailer.sent.length, 1);
      assert.equal(ctx.mailer.sent[0].to, email);
      const link = linkIn(ctx.mailer.sent[0]);
      assert.equal(link.pathname, "/api/auth/verify-email");
      assert.equal(link.searchParams.get("callbackURL"), "/email-verified");
      const res = await ctx.app.request(`${BASE}/api/auth/get-session`, withCookie(cookie));
      assert.equal((await res.json()).user.emailVerified, false);
    });

    await t.step("API keys, domains and second factors answer 403 EMAIL_NOT_VERIFIED", async () => {
      const key = await createKeyViaSession(ctx.app, cookie);
      assert.equal(key.res.status, 403);
      assert.equal(key.body.code, "EMAIL_NOT_VERIFIED");
      const domain = await ctx.app.request(
        `${BASE}/api/e2/domains`,
        withCookie(cookie, json({ domain: "example.com" })),
      );
      assert.equal(domain.status, 403);
      assert.equal((await domain.json()).code, "EMAIL_NOT_VERIFIED");
      const totp = await ctx.app.request(
        `${BASE}/api/auth/two-factor/enable`,
        withCookie(cookie, json({ password: TEST_PASSWORD })),
      );
      assert.equal(totp.status, 403);
      assert.equal((await totp.json()).code, "EMAIL_NOT_VERIFIED");
      const passkey = await ctx.app.request(
        `${BASE}/api/auth/passkey/generate-register-options`,
        withCookie(cookie),
      );
      assert.equal(passkey.status, 403);
      assert.equal((await passkey.json()).code, "EMAIL_NOT_VERIFIED");
      assert.equal((await getUser(ctx.kv, userId))?.emailVerified, undefined);
    });

    await t.step("the link verifies once and returns to its page", async () => {
      const link = linkIn(ctx.mailer.sent[0]);
      const res = await ctx.app.request(link.href);
      assert.equal(res.status, 302);
      assert.equal(res.headers.get("Location"), "/email-verified");
      assert.equal((await getUser(ctx.kv, userId))?.emailVerified, true);
      const again = await ctx.app.request(link.href);
      assert.equal(again.headers.get("Location"), "/email-verified?error=INVALID_TOKEN");
      const log = await ctx.app.request(`${BASE}/api/e2/audit-log`, withCookie(cookie));
      const actions = (await log.json()).data.map((e: { action: string }) => e.action);
      assert.ok(actions.includes("user.email_verified"));
    });

    await t.step("verified, the same session creates a key", async () => {
      const key = await createKeyViaSession(ctx.app, cookie);
      assert.equal(key.res.status, 201);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("verification links: wrong, expired and JSON answers", async (t) => {
  const ctx = await requiredApp();
  try {
    const { userId } = await signUp(ctx.app);
    await ctx.app.idle();
    const link = linkIn(ctx.mailer.sent[0]);
    const token = link.searchParams.get("token") ?? "";
    await t.step("a wrong token without callbackURL is 401 INVALID_TOKEN", async () => {
      const res = await ctx.app.request(`${BASE}/api/auth/verify-email?token=${token}x`);
      assert.equal(res.status, 401);
      assert.equal((await res.json()).code, "INVALID_TOKEN");
    });
    await t.step("a callbackURL off this site is refused (400), nothing verified", async () => {
      const res = await ctx.app.request(
        `${BASE}/api/auth/verify-email?token=${token}&callbackURL=https://evil.example/`,
      );
      assert.equal(res.status, 400);
      assert.equal((await res.json()).code, "INVALID_REDIRECT");
      assert.equal((await getUser(ctx.kv, userId))?.emailVerified, undefined);
    });
    await t.step("after an hour the link is dead", async () => {
      ctx.clock.advance(60 * 60 * 1000);
      const res = await ctx.app.request(`${BASE}/api/auth/verify-email?token=${token}`);
      assert.equal(res.status, 401);
      assert.equal((await getUser(ctx.kv, userId))?.emailVerified, undefined);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("resending: one mail per account per 5 minutes, the same answer for any address", async (t) => {
  const ctx = await requiredApp();
  try {
    const { cookie, email } = await signUp(ctx.app);
    await ctx.app.idle();
    assert.equal(ctx.mailer.sent.length, 1);
    const resend = (body: unknown, init: RequestInit = {}) =>
      ctx.app.request(`${BASE}/api/auth/send-verification-email`, json(body, init));

    await t.step("anonymous: known and unknown addresses get the same answer", async () => {
      const known = await resend({ email });
      const unknown = await resend({ email: freshEmail() });
      assert.equal(known.status, 200);
      assert.deepEqual(await known.json(), await unknown.json());
      await ctx.app.idle();
      assert.equal(ctx.mailer.sent.length, 1, "inside 5 minutes nothing new is sent");
    });

    await t.step(
      "after 5 minutes a new link goes out, and the first one stops working",
      async () => {
        ctx.clock.advance(VERIFICATION_MAIL_INTERVAL_MS);
        const res = await resend({ email }, withCookie(cookie));
        assert.equal(res.status, 200);
        await ctx.app.idle();
        assert.equal(ctx.mailer.sent.length, 2);
        const old = await ctx.app.request(linkIn(ctx.mailer.sent[0]).href);
        assert.equal(old.headers.get("Location"), "/email-verified?error=INVALID_TOKEN");
      },
    );

    await t.step("a session asks for its own address only", async () => {
      const other = await resend({ email: freshEmail() }, withCookie(cookie));
      assert.equal(other.status, 400);
      assert.equal((await other.json()).code, "EMAIL_MISMATCH");
    });

    await t.step("verified: 400 EMAIL_ALREADY_VERIFIED", async () => {
      await ctx.app.request(linkIn(ctx.mailer.sent[1]).href);
      const res = await resend({ email }, withCookie(cookie));
      assert.equal(res.status, 400);
      assert.equal((await res.json()).code, "EMAIL_ALREADY_VERIFIED");
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("the owner of an address wins over an unverified squatter", async (t) => {
  const ctx = await requiredApp();
  try {
    const email = freshEmail();
    const squatter = await signUp(ctx.app, email, "squatter password 1");
    await t.step(
      "while its first link could still be opened, the address is taken (409)",
      async () => {
        const res = await ctx.app.request(
          `${BASE}/api/auth/sign-up`,
          json({ email, password: TEST_PASSWORD }),
        );
        assert.equal(res.status, 409);
      },
    );
    await t.step("after that, a new sign-up replaces the unverified account", async () => {
      ctx.clock.advance(UNVERIFIED_HOLD_MS);
      const owner = await signUp(ctx.app, email);
      assert.notEqual(owner.userId, squatter.userId);
      assert.equal(await getUser(ctx.kv, squatter.userId), null);
      const old = await ctx.app.request(`${BASE}/api/auth/session`, withCookie(squatter.cookie));
      assert.equal(old.status, 401, "the squatter's session is gone");
    });
    await t.step("a verified account is never replaced", async () => {
      await ctx.app.idle();
      const mail = ctx.mailer.sent.filter((m) => m.to === email).at(-1)!;
      await ctx.app.request(linkIn(mail).href);
      ctx.clock.advance(UNVERIFIED_HOLD_MS * 2);
      const res = await ctx.app.request(
        `${BASE}/api/auth/sign-up`,
        json({ email, password: "another password 2" }),
      );
      assert.equal(res.status, 409);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("accounts made while verification was off are not replaceable", async () => {
  const ctx = await makeTestApp({ config: { emailVerification: "off" } });
  try {
    const email = freshEmail();
    await signUp(ctx.app, email);
    ctx.clock.advance(UNVERIFIED_HOLD_MS * 2);
    // The same KV under `required`: the old account keeps its address.
    const later = await makeTestApp({
      kv: ctx.kv,
      clock: ctx.clock,
      config: { emailVerification: "required" },
    });
    const res = await later.app.request(
      `${BASE}/api/auth/sign-up`,
      json({ email, password: TEST_PASSWORD }),
    );
    assert.equal(res.status, 409);
    await later.app.idle();
  } finally {
    await ctx.close();
  }
});

Deno.test("SIGN_UP=closed and SIGN_UP_EMAIL_DOMAINS", async (t) => {
  await t.step("closed: 403 SIGN_UP_CLOSED on the API, a clear page in the dashboard", async () => {
    const ctx = await makeTestApp({ config: { signUp: { open: false, emailDomains: null } } });
    try {
      const res = await ctx.app.request(
        `${BASE}/api/auth/sign-up/email`,
        json({ name: "Ada", email: freshEmail(), password: TEST_PASSWORD }),
      );
      assert.equal(res.status, 403);
      assert.equal((await res.json()).code, "SIGN_UP_CLOSED");
      const page = await ctx.app.request(`${BASE}/sign-up`);
      assert.equal(page.status, 403);
      const html = await page.text();
      assert.match(html, /Sign-up is closed/);
      assert.doesNotMatch(html, /<form[^>]*action="\/sign-up"/);
      const post = await ctx.app.request(`${BASE}/sign-up`, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: BASE },
        body: new URLSearchParams({ email: freshEmail(), password: TEST_PASSWORD }),
      });
      assert.equal(post.status, 403);
      assert.match(await post.text(), /Sign-up is closed/);
    } finally {
      await ctx.close();
    }
  });
  await t.step("domains: other addresses get 403 SIGN_UP_DOMAIN_NOT_ALLOWED", async () => {
    const ctx = await makeTestApp({
      config: { signUp: { open: true, emailDomains: ["example.org"] } },
    });
    try {
      const no = await ctx.app.request(
        `${BASE}/api/auth/sign-up`,
        json({ email: "ada@example.com", password: TEST_PASSWORD }),
      );
      assert.equal(no.status, 403);
      assert.equal((await no.json()).code, "SIGN_UP_DOMAIN_NOT_ALLOWED");
      const yes = await ctx.app.request(
        `${BASE}/api/auth/sign-up`,
        json({ email: `ada-${crypto.randomUUID()}@Example.org`, password: TEST_PASSWORD }),
      );
      assert.equal(yes.status, 201);
    } finally {
      await ctx.close();
    }
  });
});

Deno.test("the dashboard: a banner with resend, the landing page, the key form explains", async (t) => {
  const ctx = await requiredApp();
  try {
    const { cookie } = await signUp(ctx.app);
    await ctx.app.idle();
    await t.step("every settings page shows the banner and its resend button", async () => {
      for (const path of ["/settings/api-keys", "/settings/domains", "/settings/security"]) {
        const res = await ctx.app.request(`${BASE}${path}`, withCookie(cookie));
        assert.equal(res.status, 200, path);
        const html = await res.text();
        assert.match(html, /Verify your email address/, path);
        assert.match(html, /action="\/settings\/verify-email"/, path);
      }
    });
    await t.step("the key form says why it cannot create a key", async () => {
      const res = await ctx.app.request(`${BASE}/settings/api-keys`, {
        method: "POST",
        headers: {
          Cookie: cookie,
          Origin: BASE,
          "Content-Type": "application/x-www-form-urlencoded",
        },
        body: new URLSearchParams({ name: "first key" }),
      });
      assert.equal(res.status, 403);
      assert.match(res.headers.get("Content-Type") ?? "", /^text\/html/);
      assert.match(await res.text(), /Verify your email address before you create API keys/);
    });
    await t.step("resend from the banner", async () => {
      ctx.clock.advance(VERIFICATION_MAIL_INTERVAL_MS);
      const res = await ctx.app.request(`${BASE}/settings/verify-email`, {
        method: "POST",
        headers: { Cookie: cookie, Origin: BASE },
      });
      assert.equal(res.status, 303);
      await ctx.app.idle();
      assert.equal(ctx.mailer.sent.length, 2);
    });
    await t.step("the landing page, then no banner", async () => {
      const bad = await ctx.app.request(`${BASE}/email-verified?error=INVALID_TOKEN`);
      assert.match(await bad.text(), /invalid, used or expired/);
      const link = linkIn(ctx.mailer.sent[1]);
      const res = await ctx.app.request(link.href);
      const page = await ctx.app.request(`${BASE}${res.headers.get("Location")}`);
      assert.match(await page.text(), /Your email address is verified/);
      const keys = await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie));
      assert.doesNotMatch(await keys.text(), /Verify your email address/);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("admin: user:create makes verified accounts, user:verify-email marks one", async () => {
  const kvPath = await tempKvPath();
  try {
    const email = freshEmail();
    const made = await runAdminCli(
      ["user:create", "--email", email, "--password", TEST_PASSWORD],
      { DENO_KV_PATH: kvPath },
    );
    assert.equal(made.code, 0, made.stderr);
    assert.equal(JSON.parse(made.stdout).emailVerified, true);
    const ctx = await makeTestApp({ kv: await Deno.openKv(kvPath) });
    const other = freshEmail();
    await signUp(ctx.app, other);
    await ctx.close();
    const marked = await runAdminCli(["user:verify-email", "--email", other], {
      DENO_KV_PATH: kvPath,
    });
    assert.equal(marked.code, 0, marked.stderr);
    assert.equal(JSON.parse(marked.stdout).emailVerified, true);
    const kv = await Deno.openKv(kvPath);
    try {
      const id = JSON.parse(marked.stdout).id;
      assert.equal((await getUser(kv, id))?.emailVerified, true);
    } finally {
      kv.close();
    }
    const unknown = await runAdminCli(["user:verify-email", "--email", freshEmail()], {
      DENO_KV_PATH: kvPath,
    });
    assert.equal(unknown.code, 1);
  } finally {
    await removeKvFile(kvPath);
  }
});

Deno.test("a completed password reset proves the mailbox: the address is verified", async () => {
  const ctx = await requiredApp();
  try {
    const { userId, email } = await signUp(ctx.app);
    await ctx.app.request(`${BASE}/api/auth/request-password-reset`, json({ email }));
    await ctx.app.idle();
    const mail = ctx.mailer.sent.find((m) => /reset the password/.test(m.text));
    assert.ok(mail, "the reset mail went out");
    const token = linkIn(mail).searchParams.get("token") ?? "";
    const res = await ctx.app.request(
      `${BASE}/api/auth/reset-password`,
      json({ token, newPassword: "a brand new password 1" }),
    );
    assert.equal(res.status, 200);
    const user = await getUser(ctx.kv, userId);
    assert.equal(user?.emailVerified, true);
    // The verification link mailed at sign-up is spent with it.
    const link = linkIn(ctx.mailer.sent.find((m) => /confirm the address/.test(m.text))!);
    const again = await ctx.app.request(link.href);
    assert.equal(again.headers.get("Location"), "/email-verified?error=INVALID_TOKEN");
  } finally {
    await ctx.close();
  }
});

Deno.test("an enrolment begun while verification was off cannot be completed unverified", async () => {
  const off = await makeTestApp({ config: { emailVerification: "off" } });
  try {
    const { cookie } = await signUp(off.app);
    const begun = await off.app.request(
      `${BASE}/api/auth/two-factor/enable`,
      withCookie(cookie, json({ password: TEST_PASSWORD })),
    );
    assert.equal(begun.status, 200);
    const uri = new URL((await begun.json()).totpURI);
    const code = new OTPAuth.TOTP({
      secret: uri.searchParams.get("secret")!,
      digits: 6,
      period: 30,
    })
      .generate({ timestamp: off.clock() });
    await off.app.idle();
    // The same store under EMAIL_VERIFICATION=required.
    const required = await makeTestApp({
      kv: off.kv,
      clock: off.clock,
      config: { emailVerification: "required" },
    });
    const res = await required.app.request(
      `${BASE}/api/auth/two-factor/verify-totp`,
      withCookie(cookie, json({ code })),
    );
    assert.equal(res.status, 403);
    assert.equal((await res.json()).code, "EMAIL_NOT_VERIFIED");
    await required.app.idle();
  } finally {
    await off.close();
  }
});
