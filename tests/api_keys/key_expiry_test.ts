/**
 * Issue 22 item 19: a key's expiry as a date (`expiresAt`, the alternative to `expiresInDays`),
 * and the mail to the account 7 days and 1 day before a key expires: once each, also with two
 * instances sweeping at once, never with the log mailer, never carrying the key.
 */
import assert from "node:assert/strict";
import { ExpiryNotices } from "../../auth/api_keys/expiry_notices.ts";
import { silentLogger } from "../../lib/log.ts";
import type { Mailer, MailMessage } from "../../lib/mailer.ts";
import { makeTestApp, type TestApp } from "../_helpers.ts";
import { BASE, createKeyViaSession, json, signUp, withCookie } from "../sessions_helpers.ts";

const DAY = 86_400_000;

/** A mailer that keeps what it is asked to send; `kind` "log" stands for mail being off. */
function captureMailer(kind: "smtp" | "log" = "smtp"): Mailer & { sent: MailMessage[] } {
  const sent: MailMessage[] = [];
  return { kind, sent, send: (m) => Promise.resolve(void sent.push(m)), close() {} };
}

const isoDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);

async function create(ctx: TestApp, cookie: string, body: unknown) {
  const res = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie, json(body)));
  return { status: res.status, body: await res.json() };
}

Deno.test("POST /api/e2/api-keys takes expiresAt as a date or a date-time instead of expiresInDays", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const now = ctx.clock();
    await t.step("a date alone is 00:00 UTC that day", async () => {
      const day = isoDay(now + 30 * DAY);
      const r = await create(ctx, cookie, { name: "by date", expiresAt: day });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(r.body.expiresAt, `${day}T00:00:00.000Z`);
    });
    await t.step("a date-time with an offset is that instant", async () => {
      const at = new Date(now + 2 * DAY).toISOString().slice(0, 19) + "+02:00";
      const r = await create(ctx, cookie, { name: "by instant", expiresAt: at });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      assert.equal(Date.parse(r.body.expiresAt), Date.parse(at));
    });
    const refused: [string, Record<string, unknown>, string][] = [
      ["in the past", { expiresAt: isoDay(now - DAY) }, "must be in the future"],
      ["beyond 3650 days", { expiresAt: isoDay(now + 3652 * DAY) }, "at most 3650 days"],
      ["not a date", { expiresAt: "next week" }, "ISO 8601"],
      ["a day that does not exist", { expiresAt: "2030-02-31" }, "ISO 8601"],
      ["a date-time without an offset", { expiresAt: "2030-01-01T10:00" }, "ISO 8601"],
      ["both ways at once", { expiresAt: isoDay(now + 9 * DAY), expiresInDays: 9 }, "not both"],
    ];
    for (const [what, body, says] of refused) {
      await t.step(`refused, naming expiresAt: ${what}`, async () => {
        const r = await create(ctx, cookie, { name: "n", ...body });
        assert.equal(r.status, 400);
        assert.equal(r.body.field, "expiresAt");
        assert.match(JSON.stringify(r.body.details), new RegExp(says));
      });
    }
  } finally {
    await ctx.close();
  }
});

Deno.test("the account is mailed 7 days and 1 day before a key expires, once each", async (t) => {
  const mailer = captureMailer();
  const ctx = await makeTestApp({ mailer });
  try {
    const { cookie } = await signUp(ctx.app);
    const { key } = await createKeyViaSession(ctx.app, cookie, { name: "ci", expiresInDays: 10 });
    await createKeyViaSession(ctx.app, cookie, { name: "forever" });
    const deps = { kv: ctx.kv, clock: ctx.clock, mailer, log: silentLogger, publicUrl: null };
    const notices = new ExpiryNotices(deps);
    const expiryMails = () => mailer.sent.filter((m) => /expires/.test(m.subject));
    await t.step("nothing while more than 7 days are left", async () => {
      assert.equal(await notices.sweep(), 0);
      assert.equal(expiryMails().length, 0);
    });
    await t.step("7 days before: one mail naming the key, never the key itself", async () => {
      ctx.clock.advance(3 * DAY);
      assert.equal(await notices.sweep(), 1);
      assert.equal(await notices.sweep(), 0);
      const [mail] = expiryMails();
      assert.equal(mail.subject, 'Your API key "ci" expires in 7 days');
      assert.match(mail.text, /\/settings\/api-keys/);
      assert.ok(!mail.text.includes(key) && !mail.subject.includes(key));
    });
    await t.step("the marker is not part of the API's view of the key", async () => {
      const res = await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie));
      assert.doesNotMatch(await res.text(), /expiryNotified/);
    });
    await t.step("1 day before: one more, even with two instances sweeping at once", async () => {
      ctx.clock.advance(6 * DAY + 1);
      const other = new ExpiryNotices(deps);
      const counts = await Promise.all([notices.sweep(), other.sweep()]);
      assert.equal(counts[0] + counts[1], 1);
      assert.equal(await notices.sweep(), 0);
      assert.equal(expiryMails().length, 2);
      assert.equal(expiryMails()[1].subject, 'Your API key "ci" expires within a day');
    });
    await t.step("nothing once it has expired", async () => {
      ctx.clock.advance(DAY);
      assert.equal(await notices.sweep(), 0);
      assert.equal(expiryMails().length, 2);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("a key made 3 days before its end gets the 7-day notice at once, then the 1-day one", async () => {
  const mailer = captureMailer();
  const ctx = await makeTestApp({ mailer });
  try {
    const { cookie } = await signUp(ctx.app);
    await createKeyViaSession(ctx.app, cookie, { name: "short", expiresInDays: 3 });
    const notices = new ExpiryNotices({
      kv: ctx.kv,
      clock: ctx.clock,
      mailer,
      log: silentLogger,
      publicUrl: "https://inbound.example/",
    });
    assert.equal(await notices.sweep(), 1);
    // The security notice of the key's creation (auth/accounts/notifications.ts) goes out in the
    // background too: pick the expiry mail by its subject, not by arrival order.
    const expiry = mailer.sent.filter((m) => /expires/.test(m.subject));
    assert.equal(expiry.length, 1);
    assert.match(expiry[0].subject, /expires in 3 days/);
    assert.match(expiry[0].text, /https:\/\/inbound\.example\/settings\/api-keys/);
    ctx.clock.advance(2 * DAY + 1);
    assert.equal(await notices.sweep(), 1);
    assert.equal(await notices.sweep(), 0);
  } finally {
    await ctx.close();
  }
});

Deno.test("with mail off (the log mailer) no expiry mail is sent and no sweep is scheduled", async () => {
  const mailer = captureMailer("log");
  const ctx = await makeTestApp({ mailer });
  try {
    const { cookie } = await signUp(ctx.app);
    await createKeyViaSession(ctx.app, cookie, { name: "soon", expiresInDays: 1 });
    const notices = new ExpiryNotices({
      kv: ctx.kv,
      clock: ctx.clock,
      mailer,
      log: silentLogger,
      publicUrl: null,
    }).start();
    assert.equal(await notices.sweep(), 0);
    await notices.stop();
    assert.equal(mailer.sent.filter((m) => /expires/.test(m.subject)).length, 0);
  } finally {
    await ctx.close();
  }
});

/** Posts the dashboard's create form as a browser would. */
function postForm(ctx: TestApp, cookie: string, fields: Record<string, string>) {
  return ctx.app.request(
    `${BASE}/settings/api-keys`,
    withCookie(cookie, {
      method: "POST",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Origin: BASE,
        "Sec-Fetch-Site": "same-origin",
      },
      body: new URLSearchParams(fields).toString(),
    }),
  );
}

Deno.test("the create form takes the expiry as a date (Expires: On a date)", async (t) => {
  const ctx = await makeTestApp();
  try {
    const { cookie } = await signUp(ctx.app);
    const page = await (await ctx.app.request(`${BASE}/settings/api-keys`, withCookie(cookie)))
      .text();
    await t.step("the form has the option and a labelled date field", () => {
      assert.match(page, /<option value="date" ?>On a date<\/option>/);
      assert.match(page, /<label for="key-expiry-date">Expiry date<\/label>/);
      assert.match(page, /<input type="date" id="key-expiry-date" name="expiresAt"/);
    });
    await t.step("a future date makes a key expiring 00:00 UTC that day", async () => {
      const day = isoDay(ctx.clock() + 20 * DAY);
      const res = await postForm(ctx, cookie, {
        name: "dated",
        expiresInDays: "date",
        expiresAt: day,
      });
      assert.equal(res.status, 303, await res.clone().text());
      await res.body?.cancel();
      const list = await (await ctx.app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie)))
        .json();
      const dated = list.data.find((k: { name: string }) => k.name === "dated");
      assert.equal(dated.expiresAt, `${day}T00:00:00.000Z`);
    });
    await t.step("a past date is refused at the date field, the input kept", async () => {
      const day = isoDay(ctx.clock() - DAY);
      const res = await postForm(ctx, cookie, {
        name: "old",
        expiresInDays: "date",
        expiresAt: day,
      });
      const html = await res.text();
      assert.equal(res.status, 400);
      assert.match(html, /id="key-expiry-date-error">Expiry date must be in the future\.</);
      assert.match(html, new RegExp(`name="expiresAt" value="${day}"[^>]*aria-invalid="true"`));
    });
  } finally {
    await ctx.close();
  }
});
