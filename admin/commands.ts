/**
 * The admin CLI's commands, each declared once: its help (usage, what it does, flags, the
 * environment it reads), the check of its flags made before any KV is opened, and what it does.
 * admin/cli.ts parses the command line, prints help from these entries and runs them.
 */
import {
  issueServiceToken,
  listServiceTokens,
  revokeServiceToken,
  serviceTokenNameProblem,
} from "../auth/service_tokens.ts";
import { issueApiKey, MAX_EXPIRES_IN_DAYS } from "../auth/api_keys/issue.ts";
import { hashPassword, passwordProblem } from "../auth/passwords/hash.ts";
import { DEFAULT_RESET_PATH, resetLink } from "../auth/accounts/service.ts";
import { systemClock } from "../lib/clock.ts";
import { parseDomainName } from "../lib/domain_name.ts";
import {
  API_SCOPES,
  BUILT_IN_VOCABULARY,
  DEFAULT_SCOPES,
  type KeyScope,
  type ScopeVocabulary,
} from "../lib/scopes.ts";
import { keyNameSchema } from "../routes/api_keys/operations.ts";
import { deleteAccount } from "../store/accounts/deletion.ts";
import { apiKeyView } from "../store/api_keys.ts";
import { ADMIN_AUDIT_CONTEXT, type AuditStamp } from "../store/audit_log/events.ts";
import { releaseDomainName } from "../store/domains/store.ts";
import { markEmailVerified } from "../store/email_verification.ts";
import { migrateStore } from "../store/migrate.ts";
import { issuePasswordReset } from "../store/accounts/password_reset.ts";
import { deleteAllSessions, listSessions, sessionView } from "../store/sessions.ts";
import { type TenantStore, tenantStore } from "../store/tenant.ts";
import { removeSecondFactors } from "../store/two_factor.ts";
import { createUser, findUserIdByEmail, getUser, setUserStatus } from "../store/accounts/users.ts";
import { verifyStore } from "./verify.ts";

/** Bad arguments: exit 2, with the usage. */
export class UsageError extends Error {}
/** The operation failed (unknown account, …): exit 1. */
export class CommandError extends Error {}

export type Args = Record<string, string | undefined>;

/** What the commands work on and where they print. */
export type AdminIo = {
  kv: Deno.Kv;
  out: (line: string) => void;
  passwordCost: number;
  maxApiKeys: number;
  /** MAX_DOMAINS_PER_ACCOUNT, for verify's quota check (default: store/domains/store.ts's). */
  maxDomains?: number;
  /** verify's progress, called every few thousand entries (the CLI: on a terminal only). */
  progress?: (scanned: { entries: number; accounts: number }) => void;
  /** The origin of reset links (PUBLIC_URL; default http://localhost:8000). */
  publicUrl?: string | null;
  /** AUDIT_RETENTION_DAYS for the events the commands record (store/audit_log/events.ts default). */
  auditRetentionDays?: number;
  /**
   * The scopes a key may be granted: the built-in ones and FORWARD_AUTH_RULES's (read when first
   * asked: admin/cli.ts); default: the built-in ones.
   */
  scopes?: () => ScopeVocabulary;
};

/** What a command's flag check may consult before any KV is opened. */
export type CheckContext = {
  /** As AdminIo's `scopes`: the rules file is read only by the commands that ask. */
  scopes: () => ScopeVocabulary;
};

/** One run of a command: its name (two commands share a `run`), flags, io and the time. */
export type CommandRun = { command: string; values: Args; io: AdminIo; now: number };

export type AdminCommand = {
  usage: string;
  about: string;
  flags: string;
  env?: string;
  /** Throws UsageError for bad flags; runs before the KV is opened. */
  check?: (values: Args, ctx: CheckContext) => void;
  run: (r: CommandRun) => Promise<void>;
};

export function required(args: Args, name: string): string {
  const v = args[name];
  if (v === undefined || v.trim() === "") throw new UsageError(`--${name} is required`);
  return v;
}

/** The operator acted: user.suspended, user.unsuspended and session.revoked name "admin". */
function adminStamp(io: AdminIo): AuditStamp {
  return {
    ctx: { ...ADMIN_AUDIT_CONTEXT, retentionDays: io.auditRetentionDays },
    nowMs: systemClock(),
  };
}

/** The account with `email`, or CommandError. */
async function userIdOf(io: AdminIo, email: string): Promise<string> {
  const userId = await findUserIdByEmail(io.kv, email);
  if (!userId) throw new CommandError(`no account with email ${email}`);
  return userId;
}

/** The account's store; the operator's key changes are audited as actor admin (store/audit_log/events.ts). */
async function storeOf(io: AdminIo, email: string): Promise<TenantStore> {
  return tenantStore(io.kv, await userIdOf(io, email), systemClock, {
    maxApiKeys: io.maxApiKeys,
    audit: ADMIN_AUDIT_CONTEXT,
    auditRetentionDays: io.auditRetentionDays,
  });
}

const emailOnly = (values: Args) => void required(values, "email");

/** user:create's email and, when given, password. */
function userCreateInput(values: Args): { email: string; password?: string } {
  const email = required(values, "email");
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new UsageError("--email is not valid");
  if (values.password !== undefined) {
    const problem = passwordProblem(values.password);
    if (problem) throw new UsageError(problem);
  }
  return { email, password: values.password };
}

/**
 * --scopes "a,b": the key's scopes, as the API's `scopes` (absent: the API's default), each one
 * of `vocab` (the built-in scopes and the operator's, FORWARD_AUTH_RULES). Checked here so a typo
 * is refused before any KV is opened, naming the scopes that exist.
 */
function scopesInput(raw: string | undefined, vocab: ScopeVocabulary): KeyScope[] | undefined {
  if (raw === undefined) return undefined;
  const scopes = [...new Set(raw.split(",").map((s) => s.trim()).filter((s) => s !== ""))];
  if (scopes.length === 0) throw new UsageError("--scopes names no scope");
  const unknown = scopes.filter((s) => !vocab.has(s));
  if (unknown.length > 0) {
    throw new UsageError(
      `--scopes: unknown scope ${unknown.join(", ")} (one or more of ${vocab.all.join(", ")})`,
    );
  }
  return scopes;
}

/** key:create's flags, checked. */
function keyCreateInput(
  values: Args,
  vocab: ScopeVocabulary,
): { email: string; name: string; days: number | null; scopes?: KeyScope[] } {
  const email = required(values, "email");
  const parsedName = keyNameSchema.safeParse(required(values, "name"));
  if (!parsedName.success) {
    throw new UsageError(`--name ${parsedName.error.issues[0].message}`);
  }
  let days: number | null = null;
  if (values["expires-in-days"] !== undefined) {
    days = Number(values["expires-in-days"]);
    if (!Number.isInteger(days) || days < 1 || days > MAX_EXPIRES_IN_DAYS) {
      throw new UsageError(`--expires-in-days must be a whole number 1..${MAX_EXPIRES_IN_DAYS}`);
    }
  }
  return { email, name: parsedName.data, days, scopes: scopesInput(values.scopes, vocab) };
}

/** user:delete takes exactly one of --email and --id (an account id). */
function checkUserDelete(values: Args): void {
  if ((values.email === undefined) === (values.id === undefined)) {
    throw new UsageError("give either --email or --id");
  }
  if (values.email !== undefined) required(values, "email");
  else if (!/^usr_[A-Za-z0-9_-]{1,64}$/.test(values.id ?? "")) {
    throw new UsageError("--id must be an account id (usr_…)");
  }
}

/** domain:release's name, normalised. */
function releaseName(values: Args): string {
  const parsed = parseDomainName(required(values, "name"));
  if (!parsed.ok) throw new UsageError(`--name ${parsed.problem}`);
  return parsed.value.name;
}

async function userCreate({ values, io, now }: CommandRun): Promise<void> {
  const { email, password: given } = userCreateInput(values);
  const password = given ?? await readPassword(email);
  const problem = passwordProblem(password);
  if (problem) throw new UsageError(problem);
  try {
    const user = await createUser(io.kv, {
      email,
      passwordHash: await hashPassword(password, io.passwordCost),
      nowMs: now,
      emailVerified: true,
    });
    io.out(JSON.stringify({
      id: user.id,
      email: user.email,
      createdAt: user.createdAt,
      emailVerified: true,
    }));
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) throw new CommandError(err.message);
    throw err;
  }
}

async function userVerifyEmail({ values, io, now }: CommandRun): Promise<void> {
  const email = required(values, "email");
  const userId = await findUserIdByEmail(io.kv, email);
  if (!userId || !(await markEmailVerified(io.kv, userId, now, adminStamp(io)))) {
    throw new CommandError(`no account with email ${email}`);
  }
  io.out(JSON.stringify({ id: userId, email, emailVerified: true }));
}

/** user:suspend and user:unsuspend. */
async function userStatus({ command, values, io }: CommandRun): Promise<void> {
  const userId = await userIdOf(io, required(values, "email"));
  const status = command === "user:suspend" ? "suspended" : "active";
  const user = await setUserStatus(io.kv, userId, status, undefined, adminStamp(io));
  io.out(JSON.stringify({ id: user.id, email: user.email, status: user.status }));
}

async function userSessions({ values, io, now }: CommandRun): Promise<void> {
  const userId = await userIdOf(io, required(values, "email"));
  for (const r of await listSessions(io.kv, userId, now)) io.out(JSON.stringify(sessionView(r)));
}

async function userRevokeSessions({ values, io }: CommandRun): Promise<void> {
  const email = required(values, "email");
  const userId = await userIdOf(io, email);
  const revokedSessions = await deleteAllSessions(io.kv, userId, adminStamp(io));
  io.out(JSON.stringify({ id: userId, email, revokedSessions }));
}

async function userDisable2fa({ values, io }: CommandRun): Promise<void> {
  const email = required(values, "email");
  const userId = await userIdOf(io, email);
  const removed = await removeSecondFactors(io.kv, userId, adminStamp(io));
  const revokedSessions = await deleteAllSessions(io.kv, userId, adminStamp(io));
  io.out(JSON.stringify({ id: userId, email, ...removed, revokedSessions }));
}

async function userResetLink({ values, io, now }: CommandRun): Promise<void> {
  const email = required(values, "email");
  const userId = await findUserIdByEmail(io.kv, email);
  const user = userId ? await getUser(io.kv, userId) : null;
  if (!user) throw new CommandError(`no account with email ${email}`);
  if (user.status !== "active") throw new CommandError(`${email} is suspended`);
  const issued = await issuePasswordReset(io.kv, user.id, now);
  if (!issued) throw new CommandError(`no account with email ${email}`);
  const origin = io.publicUrl ?? "http://localhost:8000";
  io.out(resetLink(origin, DEFAULT_RESET_PATH, issued.token));
}

async function userDelete({ values, io, now }: CommandRun): Promise<void> {
  const userId = values.email !== undefined ? await userIdOf(io, values.email) : values.id!;
  const summary = await deleteAccount(io.kv, userId, { nowMs: now });
  if (!summary) throw new CommandError(`no account ${userId}, and no deletion to finish`);
  io.out(JSON.stringify({ deleted: summary }));
}

async function keyCreate({ values, io, now }: CommandRun): Promise<void> {
  const vocab = io.scopes?.() ?? BUILT_IN_VOCABULARY;
  const { email, name, days, scopes } = keyCreateInput(values, vocab);
  const store = await storeOf(io, email);
  const { key } = await issueApiKey(store.apiKeys, {
    name,
    expiresInDays: days,
    nowMs: now,
    grant: scopes ? { scopes } : undefined,
  });
  io.out(key);
}

async function keyList({ values, io }: CommandRun): Promise<void> {
  const store = await storeOf(io, required(values, "email"));
  for (const record of await store.apiKeys.list()) io.out(JSON.stringify(apiKeyView(record)));
}

async function keyDelete({ values, io }: CommandRun): Promise<void> {
  const email = required(values, "email");
  const id = required(values, "id");
  const store = await storeOf(io, email);
  try {
    await store.apiKeys.delete(id);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new CommandError(`no key ${id} on ${email}`);
    throw err;
  }
  io.out(JSON.stringify({ deleted: id }));
}

async function serviceTokenCreate({ values, io, now }: CommandRun): Promise<void> {
  const name = serviceTokenName(values);
  const { token } = await issueServiceToken(io.kv, () => now, {
    name,
    mayAssertIp: (values["may-assert-ip"] as unknown) === true,
  });
  io.out(token);
}

function serviceTokenName(values: Args): string {
  const name = required(values, "name");
  const problem = serviceTokenNameProblem(name);
  if (problem) throw new UsageError(`--name ${problem}`);
  return name;
}

async function serviceTokenList({ io }: CommandRun): Promise<void> {
  for (const r of await listServiceTokens(io.kv)) {
    io.out(JSON.stringify({ ...r, createdAt: new Date(r.createdAt).toISOString() }));
  }
}

async function serviceTokenRevoke({ values, io }: CommandRun): Promise<void> {
  const id = required(values, "id");
  const revoked = await revokeServiceToken(io.kv, id);
  if (!revoked) throw new CommandError(`no service token ${id}`);
  io.out(JSON.stringify({ revoked: id, name: revoked.name }));
}

async function domainRelease({ values, io }: CommandRun): Promise<void> {
  const name = releaseName(values);
  const released = await releaseDomainName(io.kv, name, systemClock);
  if (!released) throw new CommandError(`no account has verified ${name}`);
  io.out(JSON.stringify({ released: name, ...released, status: "failed" }));
}

async function migrate({ io }: CommandRun): Promise<void> {
  io.out(JSON.stringify(await migrateStore(io.kv)));
}

async function verify({ io }: CommandRun): Promise<void> {
  const report = await verifyStore(io.kv, { maxDomains: io.maxDomains, onProgress: io.progress });
  io.out(JSON.stringify(report, null, 2));
  if (!report.ok) throw new CommandError(`${report.violationCount} invariant violation(s)`);
}

export const COMMANDS: Readonly<Record<string, AdminCommand>> = {
  "user:create": {
    usage: "admin user:create --email E [--password P]",
    about: "Creates an active account, its address verified (the operator vouches for it). " +
      "Prints {id, email, createdAt, emailVerified} as JSON.",
    flags: `  --email E      the account's email (unique)
  --password P   at least 12 characters. Without it: on a terminal, prompts twice without
                 echoing; otherwise reads the password from stdin (one line)`,
    env: "  PASSWORD_HASH_COST    log2 of scrypt's N for the hash (default 17)",
    check: (values) => void userCreateInput(values),
    run: userCreate,
  },
  "user:verify-email": {
    usage: "admin user:verify-email --email E",
    about: "Marks the account's email address verified (EMAIL_VERIFICATION=required lets it " +
      "create API keys, add domains and enrol second factors from then on). Prints {id, email, " +
      "emailVerified}. Confirm the address is the owner's first.",
    flags: "  --email E      the account",
    check: emailOnly,
    run: userVerifyEmail,
  },
  "user:suspend": {
    usage: "admin user:suspend --email E",
    about: "Suspends an account: signs it out everywhere; its keys answer 403 within 1 s.",
    flags: "  --email E      the account",
    check: emailOnly,
    run: userStatus,
  },
  "user:unsuspend": {
    usage: "admin user:unsuspend --email E",
    about: "Makes a suspended account active again; its keys work again, old sessions stay ended.",
    flags: "  --email E      the account",
    check: emailOnly,
    run: userStatus,
  },
  "key:create": {
    usage: "admin key:create --email E --name N [--scopes S,S] [--expires-in-days D]",
    about: "Creates an API key and prints the key alone on stdout (shown this once).",
    flags: `  --email E                the account
  --name N                 a label for the key
  --scopes S,S             what the key may do, comma-separated: ${API_SCOPES.join(", ")},
                           and the scopes of FORWARD_AUTH_RULES when it is set;
                           without it ${DEFAULT_SCOPES.join(", ")} (as the API's default)
  --expires-in-days D      1..${MAX_EXPIRES_IN_DAYS}; without it the key does not expire`,
    check: (values, ctx) => void keyCreateInput(values, ctx.scopes()),
    run: keyCreate,
  },
  "key:list": {
    usage: "admin key:list --email E",
    about: "Lists an account's keys, one JSON line each (id, name, start, dates; never the key).",
    flags: "  --email E      the account",
    check: emailOnly,
    run: keyList,
  },
  "key:delete": {
    usage: "admin key:delete --email E --id ID",
    about: "Deletes one API key of an account; it stops working at once.",
    flags: `  --email E      the account
  --id ID        the key's id (key_…, from key:list)`,
    check: (values) => {
      required(values, "email");
      required(values, "id");
    },
    run: keyDelete,
  },
  "user:sessions": {
    usage: "admin user:sessions --email E",
    about: "Lists an account's live sessions, one JSON line each (id, createdAt, lastSeenAt, " +
      "expiresAt, ip, userAgent; never a token or digest).",
    flags: "  --email E      the account",
    check: emailOnly,
    run: userSessions,
  },
  "user:revoke-sessions": {
    usage: "admin user:revoke-sessions --email E",
    about: "Signs an account out everywhere: deletes every session. Prints {id, email, " +
      "revokedSessions}. Its API keys keep working.",
    flags: "  --email E      the account",
    check: emailOnly,
    run: userRevokeSessions,
  },
  "user:disable-2fa": {
    usage: "admin user:disable-2fa --email E",
    about: "For a locked-out user: removes the account's second factors (the authenticator app, " +
      "its recovery codes and every passkey) and signs it out everywhere. Prints {id, email, " +
      "totp, passkeys, revokedSessions}. Confirm who is asking first: afterwards the password " +
      "alone signs in.",
    flags: "  --email E      the account",
    check: emailOnly,
    run: userDisable2fa,
  },
  "user:reset-link": {
    usage: "admin user:reset-link --email E",
    about: "Prints a password-reset link for the account alone on stdout: valid 1 hour, works " +
      "once (earlier links keep working until one is used), and using it signs the account " +
      "out everywhere; any credential change revokes it. It " +
      "carries a secret token: hand it only to the account's owner.",
    flags: "  --email E      the account",
    env:
      "  PUBLIC_URL            the site's origin for the link (default http://localhost:PORT)\n" +
      "  PORT                  the port for the default origin (default 8000)",
    check: emailOnly,
    run: userResetLink,
  },
  "user:delete": {
    usage: "admin user:delete --email E | --id usr_…",
    about: "Deletes an account and everything it holds, without asking: API keys, sessions, " +
      "domains (their verified names become free) and the email. Its keys and sessions stop " +
      "at once. Prints what was deleted as JSON.\nWith --id, also finishes a deletion that " +
      "was interrupted (admin verify reports it as deletion_unfinished; its email is gone).",
    flags: `  --email E      the account
  --id usr_…     the account's id (for an interrupted deletion)`,
    check: checkUserDelete,
    run: userDelete,
  },
  "service-token:create": {
    usage: "admin service-token:create --name N [--may-assert-ip]",
    about: "Creates a service token for POST /api/e2/keys/verify and prints it alone on stdout " +
      "(shown this once; stored as its SHA-256). It authenticates nothing else.",
    flags: `  --name N          a label (the service that will use it)
  --may-assert-ip   the verify call may pass the client's address (ip) for keys restricted to
                    some addresses; without it such a call is refused (403)`,
    check: (values) => void serviceTokenName(values),
    run: serviceTokenCreate,
  },
  "service-token:list": {
    usage: "admin service-token:list",
    about: "Lists the service tokens, one JSON line each (id, name, start, mayAssertIp, " +
      "createdAt; never the token).",
    flags: "  (none)",
    run: serviceTokenList,
  },
  "service-token:revoke": {
    usage: "admin service-token:revoke --id svc_…",
    about: "Revokes a service token: every server refuses it from the next call on.",
    flags: "  --id svc_…     the token's id (from service-token:list)",
    check: (values) => void required(values, "id"),
    run: serviceTokenRevoke,
  },
  "domain:release": {
    usage: "admin domain:release --name N",
    about: "Makes a verified domain name available again: the verified owner's copy turns " +
      "failed, and any account may verify N.",
    flags: "  --name N       the domain name",
    check: (values) => void releaseName(values),
    run: domainRelease,
  },
  "migrate": {
    usage: "admin migrate",
    about: "Brings a store written by an earlier version up to the current layout: domain " +
      "counters become Deno.KvU64 (moved by sum), and pending or failed domains give up the " +
      "name pointers they claimed at creation (a name is exclusive once verified), and API " +
      "keys that store scopes other than the default get them written into their pointer (so " +
      "none gains the endpoints and email-addresses scopes silently). Idempotent; " +
      "prints what it changed as JSON. Run it once after upgrading, then admin verify.",
    flags: "  (none)",
    run: migrate,
  },
  "verify": {
    usage: "admin verify",
    about: "Checks every index, record and counter of the store; prints a JSON report and exits " +
      "1 on any violation.\nStreams the store with bounded memory; shows progress on a terminal. " +
      "Run it on a store no server is writing to (or run it again to confirm a violation).",
    flags: "  (none)",
    env: "  MAX_DOMAINS_PER_ACCOUNT  the domain quota to check against (default 1000)",
    run: verify,
  },
};

async function readStdin(): Promise<string> {
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

/**
 * Reads one line from the terminal, which the caller has put in raw mode (echo off) before the
 * prompt is shown, so nothing typed ahead is echoed. Backspace erases, Ctrl-C and Ctrl-D cancel.
 */
async function readHidden(prompt: string): Promise<string> {
  const enc = new TextEncoder();
  await Deno.stderr.write(enc.encode(prompt));
  const bytes: number[] = [];
  const buf = new Uint8Array(256);
  try {
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) throw new CommandError("no password given");
      for (const b of buf.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) return new TextDecoder().decode(new Uint8Array(bytes));
        if (b === 0x03 || b === 0x04) throw new CommandError("cancelled");
        if (b === 0x7f || b === 0x08) {
          // Drop the last character: its UTF-8 continuation bytes, then its lead byte.
          while (bytes.length > 0 && (bytes[bytes.length - 1] & 0xc0) === 0x80) bytes.pop();
          bytes.pop();
        } else if (b >= 0x20 || b === 0x09) bytes.push(b);
      }
    }
  } finally {
    buf.fill(0);
    await Deno.stderr.write(enc.encode("\n"));
  }
}

/** The new account's password: prompted twice without echo on a terminal, else read from stdin. */
async function readPassword(email: string): Promise<string> {
  if (!Deno.stdin.isTerminal()) return await readStdin();
  // Echo off for both prompts at once, restored in any case.
  Deno.stdin.setRaw(true);
  try {
    const password = await readHidden(`Password for ${email} (at least 12 characters): `);
    const problem = passwordProblem(password);
    if (problem) throw new UsageError(problem);
    if (await readHidden("Same password again: ") !== password) {
      throw new CommandError("the two passwords differ; nothing was created");
    }
    return password;
  } finally {
    Deno.stdin.setRaw(false);
  }
}
