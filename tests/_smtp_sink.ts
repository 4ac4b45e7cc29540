/**
 * An in-process SMTP server (npm `smtp-server`) on 127.0.0.1:0 that requires AUTH and keeps
 * every message it receives, for the password-reset tests. The app's real SMTP client
 * (nodemailer, lib/mailer.ts) delivers to it over a real TCP connection.
 */
import { SMTPServer } from "smtp-server";
import type { SmtpConfig } from "../lib/config.ts";

export type ReceivedMail = { from: string; to: string[]; raw: string; text: string };

type Address = { address: string };

/** RFC 2045 quoted-printable, enough for nodemailer's text bodies. */
function decodeQuotedPrintable(s: string): string {
  const bytes: number[] = [];
  const flat = s.replace(/=\r?\n/g, "");
  for (let i = 0; i < flat.length; i++) {
    const m = flat[i] === "=" ? /^[0-9A-F]{2}$/i.exec(flat.slice(i + 1, i + 3)) : null;
    if (m) {
      bytes.push(parseInt(m[0], 16));
      i += 2;
    } else bytes.push(...new TextEncoder().encode(flat[i]));
  }
  return new TextDecoder().decode(new Uint8Array(bytes));
}

function bodyText(raw: string): string {
  const split = raw.indexOf("\r\n\r\n");
  const headers = raw.slice(0, split);
  const body = raw.slice(split + 4);
  if (/content-transfer-encoding:\s*quoted-printable/i.test(headers)) {
    return decodeQuotedPrintable(body);
  }
  if (/content-transfer-encoding:\s*base64/i.test(headers)) {
    return new TextDecoder().decode(
      Uint8Array.from(atob(body.replace(/\s+/g, "")), (c) => c.charCodeAt(0)),
    );
  }
  return body;
}

export type SmtpSink = {
  /** An SmtpConfig for the app: this server, with its credentials. */
  config: SmtpConfig;
  user: string;
  pass: string;
  received: ReceivedMail[];
  /**
   * Security notices (subject "[Inbound] …", auth/accounts/notifications.ts), kept apart from
   * `received` so tests of other mail count only their own.
   */
  notices: ReceivedMail[];
  /** Resolves with the `n`th message (1-based) once it has arrived (polls, bounded). */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMail>;
  /**
   * Resolves with the `n`th message (1-based) whose text matches `re`, once it has arrived: a
   * server with SMTP_URL also mails verification links at sign-up (EMAIL_VERIFICATION).
   */
  waitForMatching(re: RegExp, n?: number, timeoutMs?: number): Promise<ReceivedMail>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

export async function startSmtpSink(): Promise<SmtpSink> {
  const user = "mailer";
  const pass = `smtp-secret-${crypto.randomUUID()}`;
  const received: ReceivedMail[] = [];
  const notices: ReceivedMail[] = [];
  const server = new SMTPServer({
    logger: false,
    disabledCommands: ["STARTTLS"],
    allowInsecureAuth: true,
    authMethods: ["PLAIN", "LOGIN"],
    onAuth(auth, _session, cb) {
      if (auth.username === user && auth.password === pass) cb(null, { user });
      else cb(new Error("Invalid username or password"));
    },
    onData(stream, session, cb) {
      (async () => {
        const chunks: Uint8Array[] = [];
        for await (const chunk of stream) chunks.push(chunk as Uint8Array);
        const raw = new TextDecoder().decode(
          Uint8Array.from(chunks.flatMap((c) => Array.from(c))),
        );
        (/^Subject: \[Inbound\] /m.test(raw) ? notices : received).push({
          from: (session.envelope.mailFrom as Address | false)
            ? (session.envelope.mailFrom as Address).address
            : "",
          to: (session.envelope.rcptTo as Address[]).map((r) => r.address),
          raw,
          text: bodyText(raw),
        });
        cb();
      })().catch((err) => cb(err));
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.server.address();
      if (address && typeof address === "object") resolve(address.port);
      else reject(new Error("smtp-server has no port"));
    });
  });
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    config: { host: "127.0.0.1", port, secure: false, user, pass },
    user,
    pass,
    received,
    notices,
    async waitFor(n, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`mail ${n} did not arrive`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return received[n - 1];
    },
    async waitForMatching(re, n = 1, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = received.filter((m) => re.test(m.text));
        if (found.length >= n) return found[n - 1];
        if (Date.now() > deadline) throw new Error(`mail ${n} matching ${re} did not arrive`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** The reset link in a mail's text. */
export function linkIn(mail: ReceivedMail): URL {
  const m = /https?:\/\/\S+token=\S+/.exec(mail.text);
  if (!m) throw new Error(`no reset link in: ${mail.text}`);
  return new URL(m[0]);
}
