/**
 * Outgoing mail (password-reset links). Two implementations:
 *   - `smtpMailer`: nodemailer over SMTP (`SMTP_URL`), STARTTLS when the server offers it on
 *     smtp://, TLS from the start on smtps://.
 *   - `logMailer`: when `SMTP_URL` is unset. It writes the message, link included, to the
 *     server log at warn level. The link carries a secret token, so this is for development
 *     only: set `SMTP_URL` anywhere the log is read by anyone but the account's owner.
 * Neither lets the SMTP credentials reach a log line or an error: failures are reported by
 * nodemailer's error code and the server's reply code only.
 */
import nodemailer from "nodemailer";
import type { SmtpConfig } from "./config.ts";
import type { Logger } from "./log.ts";

export type MailMessage = { to: string; subject: string; text: string };

export interface Mailer {
  /** "smtp" or "log", as the start-up line reports it (never the URL). */
  readonly kind: "smtp" | "log";
  send(msg: MailMessage): Promise<void>;
  close(): void;
}

/** An SMTP failure without the message text (it may quote the server's greeting or auth). */
export class MailError extends Error {
  constructor(readonly code: string, readonly responseCode: number | null) {
    super(`mail delivery failed: ${code}${responseCode ? ` (SMTP ${responseCode})` : ""}`);
    this.name = "MailError";
  }
}

type NodemailerError = { code?: unknown; responseCode?: unknown };

/**
 * `opts.name`: the name this client gives in EHLO (default "localhost"; given, so nodemailer does
 * not ask the OS for the host name, which the tasks do not allow).
 */
export function smtpMailer(
  smtp: SmtpConfig,
  from: string,
  opts: { timeoutMs?: number; name?: string } = {},
) {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const transport = nodemailer.createTransport({
    name: opts.name ?? "localhost",
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    ...(smtp.user !== null ? { auth: { user: smtp.user, pass: smtp.pass ?? "" } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    logger: false,
    debug: false,
  });
  const mailer: Mailer = {
    kind: "smtp",
    async send(msg) {
      try {
        await transport.sendMail({ from, to: msg.to, subject: msg.subject, text: msg.text });
      } catch (err) {
        const e = (err ?? {}) as NodemailerError;
        throw new MailError(
          typeof e.code === "string" ? e.code : "EMAIL",
          typeof e.responseCode === "number" ? e.responseCode : null,
        );
      }
    },
    close() {
      transport.close();
    },
  };
  return mailer;
}

/** Development only: the message, secret link included, goes to the log at warn level. */
export function logMailer(log: Logger): Mailer {
  return {
    kind: "log",
    send(msg) {
      log({
        level: "warn",
        msg: "SMTP_URL is not set: this mail was not sent, it is written here instead " +
          "(development only: it carries a secret link)",
        to: msg.to,
        subject: msg.subject,
        text: msg.text,
      });
      return Promise.resolve();
    },
    close() {},
  };
}
