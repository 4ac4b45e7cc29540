/**
 * Issue 22 item 20: security notifications by e-mail (auth/accounts/notifications.ts). Each
 * event sends one mail naming what, when and from which address, with how to react; none
 * carries a secret; at most MAX_PER_HOUR per account per hour; nothing without SMTP.
 */
import assert from "node:assert/strict";
import { MAX_PER_HOUR, noticeOfAudit } from "../../auth/accounts/notifications.ts";
import type { Logger } from "../../lib/log.ts";
import type { Mailer, MailMessage } from "../../lib/mailer.ts";
import type { AuditEvent } from "../../store/audit_log/events.ts";
import { makeTestApp, TEST_PASSWORD } from "../_helpers.ts";
import {
  BASE,
  cookieFrom,
  createKeyViaSession,
  freshEmail,
  fromIp,
  json,
  withCookie,
} from "../sessions_helpers.ts";

const IP = "203.0.113.9";

function captureMailer(kind: "smtp" | "log" = "smtp"): Mailer & { sent: MailMessage[] } {
  const sent: MailMessage[] = [];
  return { kind, sent, send: (m) => Promise.resolve(void sent.push(m)), close() {} };
}

/** The device cookie pair (`name=value`) among a response's Set-Cookie lines. */
function deviceCookieOf(res: Response): string {
  const line = res.headers.getSetCookie().find((c) => /device/i.test(c.split("=")[0]));
  if (!line) throw new Error("no device cookie");
  return line.split(";")[0];
}

async function setUp(mailer: Mailer, logger?: Logger) {
  const h = await makeTestApp({ mailer, logger });
  const email = freshEmail();
  const up = await h.app.request(
    `${BASE}/api/auth/sign-up`,
    json({ email, password: TEST_PASSWORD }),
    fromIp(IP),
  );
  assert.equal(up.status, 201);
  const signIn = (cookie?: string) =>
    h.app.request(
      `${BASE}/api/auth/sign-in/email`,
      json({ email, password: TEST_PASSWORD }, cookie ? { headers: { Cookie: cookie } } : {}),
      fromIp(IP),
    );
  return { h, email, session: cookieFrom(up), device: deviceCookieOf(up), signIn };
}

/** Everything a mail must never contain, gathered as the test makes them. */
function assertNoSecret(mail: MailMessage, secrets: string[]) {
  for (const s of secrets) assert.ok(!mail.text.includes(s) && !mail.subject.includes(s));
  assert.doesNotMatch(mail.text, /inb_|token|password:/i);
}

Deno.test("security notifications by e-mail", async (t) => {
  await t.step("a key created, a password changed: one mail each, what/when/where", async () => {
    const mailer = captureMailer();
    const { h, email, session } = await setUp(mailer);
    try {
      const created = await createKeyViaSession(h.app, session, { name: "deploy bot" });
      await h.app.idle();
      assert.equal(mailer.sent.length, 1);
      const [mail] = mailer.sent;
      assert.equal(mail.to, email);
      assert.equal(mail.subject, "[Inbound] A new API key was created");
      assert.match(mail.text, /"deploy bot"/);
      assert.match(mail.text, /When: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
      assert.match(mail.text, /If it was not: sign in/);
      assertNoSecret(mail, [created.key, TEST_PASSWORD]);

      const res = await h.app.request(
        `${BASE}/api/auth/change-password`,
        withCookie(session, json({ currentPassword: TEST_PASSWORD, newPassword: "new pass 123" })),
        fromIp(IP),
      );
      assert.equal(res.status, 200);
      await h.app.idle();
      assert.equal(mailer.sent.length, 2);
      assert.equal(mailer.sent[1].subject, "[Inbound] Your password was changed");
      assertNoSecret(mailer.sent[1], [TEST_PASSWORD, "new pass 123"]);
    } finally {
      await h.close();
    }
  });

  await t.step("a sign-in from a new device mails; from a known device it does not", async () => {
    const mailer = captureMailer();
    const { h, device, signIn } = await setUp(mailer);
    try {
      const known = await signIn(device);
      assert.equal(known.status, 200);
      await h.app.idle();
      assert.equal(mailer.sent.length, 0);
      const fresh = await signIn();
      assert.equal(fresh.status, 200);
      await h.app.idle();
      assert.equal(mailer.sent.length, 1);
      assert.equal(mailer.sent[0].subject, "[Inbound] New sign-in from a device not seen before");
      assert.match(mailer.sent[0].text, new RegExp(`From address: ${IP.replaceAll(".", "\\.")}`));
      assertNoSecret(mailer.sent[0], [TEST_PASSWORD, device.split("=")[1]]);
    } finally {
      await h.close();
    }
  });
});

Deno.test("security notifications: throttled, off without SMTP, one per change", async (t) => {
  await t.step(`at most ${MAX_PER_HOUR} per account per hour`, async () => {
    const mailer = captureMailer();
    const logged: string[] = [];
    const { h, session, signIn } = await setUp(
      mailer,
      (e) => void logged.push(String(e.error)),
    );
    try {
      for (let i = 0; i < MAX_PER_HOUR + 3; i++) {
        await createKeyViaSession(h.app, session, { name: `k${i}` });
      }
      await h.app.idle();
      assert.equal(mailer.sent.length, MAX_PER_HOUR);
      assert.ok(logged.includes("HOURLY_LIMIT"));
      h.clock.advance(60 * 60 * 1000);
      // The next hour's window: a new-device sign-in is mailed again.
      assert.equal((await signIn()).status, 200);
      await h.app.idle();
      assert.equal(mailer.sent.length, MAX_PER_HOUR + 1);
    } finally {
      await h.close();
    }
  });

  await t.step("without SMTP (the log mailer) nothing is sent or logged", async () => {
    const mailer = captureMailer("log");
    const logged: unknown[] = [];
    const { h, session, signIn } = await setUp(mailer, (e) => void logged.push(e));
    try {
      await createKeyViaSession(h.app, session, { name: "quiet" });
      assert.equal((await signIn()).status, 200);
      await h.app.idle();
      assert.equal(mailer.sent.length, 0);
      assert.ok(!JSON.stringify(logged).includes("[Inbound]"));
    } finally {
      await h.close();
    }
  });

  await t.step("rolled, reset, two-factor off, passkey added: each its notice", () => {
    const event = (action: AuditEvent["action"], details?: AuditEvent["details"]): AuditEvent => ({
      id: "evt_1",
      time: "2026-01-02T03:04:05.000Z",
      action,
      actor: { type: "session", id: "s" },
      target: { type: "api_key", id: "key_1", name: "ci" },
      ip: IP,
      userAgent: "Firefox on Linux",
      outcome: "success",
      ...(details ? { details } : {}),
      expiresAtMs: 0,
    });
    const what = (e: AuditEvent) => noticeOfAudit("usr_1", e)?.what ?? null;
    assert.equal(what(event("api_key.rolled")), "An API key was rolled");
    assert.equal(what(event("user.password_reset")), "Your password was reset");
    assert.equal(
      what(event("user.two_factor_changed", { change: "disabled" })),
      "Two-factor authentication was turned off",
    );
    assert.equal(
      what(event("user.two_factor_changed", { method: "passkey", change: "added" })),
      "A passkey was added",
    );
    assert.equal(what(event("user.two_factor_changed", { change: "enabled" })), null);
    assert.equal(what(event("api_key.denied")), null);
  });
});
