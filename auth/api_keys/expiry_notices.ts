/**
 * Expiry notices (issue 22 item 19): the account is mailed 7 days and 1 day before one of its keys
 * expires, so an integration is not found broken by its first 401.
 *
 *   - A periodic sweep (an unref'd timer: it never keeps the process alive) reads the key pointer
 *     index, which carries each key's expiry, and picks the keys inside a window. A full scan
 *     every hour is cheap for a self-hosted server's key count; an expiry-ordered index would be
 *     the next step if it is not.
 *   - Each notice is claimed in the key record (`expiryNotified`) by a commit checked against the
 *     record's versionstamp, and mailed only by whoever won that commit: several instances sweep
 *     the same keys and still send each mail once. A mail that then fails is logged, not retried
 *     (at most once rather than twice).
 *   - Only with a real mailer (`kind: "smtp"`): the log mailer is development only, so no timer is
 *     started without SMTP. A key rolled with a grace period (`replacedBy`) is skipped: its end was
 *     chosen a moment ago and its replacement carries on.
 *   - `stop()` (called by app.idle()) clears the timer and waits for a sweep in flight; the clock
 *     is the app's, so tests move time instead of waiting.
 */
import type { Clock } from "../../lib/clock.ts";
import type { Logger } from "../../lib/log.ts";
import { type Mailer, MailError } from "../../lib/mailer.ts";
import { getUser } from "../../store/accounts/users.ts";
import type { ApiKeyPointer, ApiKeyRecord } from "../../store/api_keys.ts";
import { apiKeyKey, indexPrefix } from "../../store/keys.ts";

const DAY_MS = 86_400_000;
/** How often a running server sweeps; the first sweep comes sooner, so restarts do not starve it. */
export const EXPIRY_SWEEP_MS = 3_600_000;
const FIRST_SWEEP_MS = 60_000;

export type ExpiryStage = "7d" | "1d";

export type ExpiryNoticeDeps = {
  kv: Deno.Kv;
  clock: Clock;
  mailer: Mailer;
  log: Logger;
  /** The dashboard's address for the link in the mail; null: the path alone. */
  publicUrl: string | null;
  /** Sweep period (EXPIRY_SWEEP_MS by default). */
  everyMs?: number;
};

/** The notice a key is due at `nowMs`: "1d" within a day of expiry, "7d" within a week. */
export function expiryStage(expiresAtMs: number, nowMs: number): ExpiryStage | null {
  const left = expiresAtMs - nowMs;
  if (left <= 0) return null;
  if (left <= DAY_MS) return "1d";
  return left <= 7 * DAY_MS ? "7d" : null;
}

/** True when `stage` has not been mailed yet ("1d" also covers a "7d" never sent in time). */
function due(stage: ExpiryStage, notified: ExpiryStage | undefined): boolean {
  return stage === "1d" ? notified !== "1d" : notified === undefined;
}

/** The mail: which key, when, what happens then and what to do. Never a secret (prefix only). */
export function expiryNoticeText(
  key: Pick<ApiKeyRecord, "name" | "start" | "expiresAt">,
  email: string,
  nowMs: number,
  publicUrl: string | null,
): { subject: string; text: string } {
  const at = key.expiresAt ?? "";
  const days = Math.max(1, Math.round((Date.parse(at) - nowMs) / DAY_MS));
  const when = days === 1 ? "within a day" : `in ${days} days`;
  const link = `${publicUrl ? publicUrl.replace(/\/+$/, "") : ""}/settings/api-keys`;
  return {
    subject: `Your API key "${key.name}" expires ${when}`,
    text: [
      `Your API key "${key.name}" (${key.start}…) on the account ${email} expires ${when}, ` +
      `at ${at.slice(0, 16).replace("T", " ")} UTC.`,
      "",
      "After that, requests made with it are refused (401).",
      "To keep an integration working, roll the key (a replacement with the same permissions) " +
      `or create a new one: ${link}`,
      "If the key is no longer needed, there is nothing to do.",
    ].join("\n"),
  };
}

export class ExpiryNotices {
  #deps: ExpiryNoticeDeps;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<number> | undefined;

  constructor(deps: ExpiryNoticeDeps) {
    this.#deps = deps;
  }

  /** Starts the periodic sweep when mail is on (SMTP); returns itself for wiring in one line. */
  start(): this {
    if (this.#deps.mailer.kind === "smtp") this.#schedule(FIRST_SWEEP_MS);
    return this;
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.sweep().catch((err) => {
        this.#deps.log({ level: "error", msg: "expiry notices: sweep failed", error: String(err) });
        return 0;
      });
      this.#running.finally(() => {
        this.#running = undefined;
        this.#schedule(this.#deps.everyMs ?? EXPIRY_SWEEP_MS);
      });
    }, ms);
    Deno.unrefTimer(this.#timer);
  }

  /** Clears the timer and waits for a sweep in flight: nothing is left running. */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** One pass: mails every due notice (nothing without SMTP); returns how many were sent. */
  async sweep(): Promise<number> {
    const { kv, clock, mailer } = this.#deps;
    if (mailer.kind !== "smtp") return 0;
    const nowMs = clock();
    let sent = 0;
    for await (const e of kv.list<ApiKeyPointer>({ prefix: indexPrefix("api_key") })) {
      const p = e.value;
      if (p.expiresAt === null || expiryStage(p.expiresAt, nowMs) === null) continue;
      if (await this.#notify(p.userId, p.keyId, nowMs)) sent++;
    }
    return sent;
  }

  /** Claims the key's due notice in a checked commit, then mails it; false when none was due. */
  async #notify(userId: string, keyId: string, nowMs: number): Promise<boolean> {
    const { kv, mailer, log, publicUrl } = this.#deps;
    const entry = await kv.get<ApiKeyRecord>(apiKeyKey(userId, keyId));
    const key = entry.value;
    if (!key || key.expiresAt === null || key.replacedBy) return false;
    const stage = expiryStage(Date.parse(key.expiresAt), nowMs);
    if (!stage || !due(stage, key.expiryNotified)) return false;
    const user = await getUser(kv, userId);
    if (!user) return false;
    const claimed = await kv.atomic().check(entry)
      .set(entry.key, { ...key, expiryNotified: stage }).commit();
    // Lost the race (another instance, or a use of the key just now): the next sweep looks again.
    if (!claimed.ok) return false;
    const { subject, text } = expiryNoticeText(key, user.email, nowMs, publicUrl);
    try {
      await mailer.send({ to: user.email, subject, text });
      return true;
    } catch (err) {
      log({
        level: "warn",
        msg: "expiry notices: mail not sent",
        keyId,
        error: err instanceof MailError ? err.message : err instanceof Error ? err.name : "error",
      });
      return false;
    }
  }
}
