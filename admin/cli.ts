/**
 * Operator CLI on the same KV as the server:
 *   deno task admin user:create --email E [--password P | password on stdin]
 *   deno task admin user:verify-email --email E   (marks the address verified)
 *   deno task admin user:suspend --email E        (signs it out; its keys answer 403 within 1 s)
 *   deno task admin user:unsuspend --email E      (its keys work again; old sessions stay ended)
 *   deno task admin user:sessions --email E       (one JSON line per live session; never a token)
 *   deno task admin user:revoke-sessions --email E   (signs the account out everywhere)
 *   deno task admin user:disable-2fa --email E   (removes TOTP, recovery codes and passkeys; signs
 *                                             the account out everywhere)
 *   deno task admin user:reset-link --email E   (prints a password-reset link, valid 1 hour)
 *   deno task admin user:delete --email E | --id usr_…   (deletes the account and all it holds,
 *                                             or finishes an interrupted deletion; prints JSON)
 *   deno task admin key:create --email E --name N [--expires-in-days D]   (prints the key alone)
 *   deno task admin key:list --email E
 *   deno task admin key:delete --email E --id ID
 *   deno task admin domain:release --name N   (the name stops being exclusive: its verified copy
 *                                             turns failed, and any account may verify it)
 *   deno task admin verify          (checks KV invariants; prints a JSON report; exit 1 on any violation)
 *   deno task admin --help | -h | help [command]     (what each command does, flags, environment)
 * Every command names the KV it opened on stderr; all but user:create refuse a KV file that does
 * not exist instead of creating an empty one.
 * Exit codes: 0 ok, 1 operation failed (unknown account, …), 2 bad arguments.
 */
import { parseArgs } from "node:util";
import { issueApiKey, MAX_EXPIRES_IN_DAYS } from "../auth/issue_api_key.ts";
import { hashPassword, passwordProblem } from "../auth/password.ts";
import { systemClock } from "../lib/clock.ts";
import { loadConfig, readEnv } from "../lib/config.ts";
import { apiKeyView } from "../store/api_keys.ts";
import { isKvFile, kvFileExists, KvPathNotAllowedError, openKv } from "../store/open.ts";
import { tenantStore } from "../store/tenant.ts";
import { createUser, findUserIdByEmail, setUserStatus } from "../store/users.ts";
import { keyNameSchema } from "../routes/api_keys.ts";
import { verifyStore } from "./verify.ts";
import { migrateStore } from "../store/migrate.ts";
import { parseDomainName } from "../lib/domain_name.ts";
import { releaseDomainName } from "../store/domains.ts";
import { deleteAccount } from "../store/account_deletion.ts";
import { deleteAllSessions, listSessions, sessionView } from "../store/sessions.ts";
import { DEFAULT_RESET_PATH, resetLink } from "../auth/accounts.ts";
import { issuePasswordReset } from "../store/password_reset.ts";
import { getUser } from "../store/users.ts";
import { ADMIN_AUDIT_CONTEXT, type AuditStamp } from "../store/audit.ts";
import { removeSecondFactors } from "../store/two_factor.ts";
import { markEmailVerified } from "../store/email_verification.ts";

class UsageError extends Error {}
class CommandError extends Error {}

const USAGE = `usage:
  admin user:create --email E [--password P]   (without --password: prompts, or reads stdin)
  admin user:verify-email --email E   (marks the account's address verified)
  admin user:suspend   --email E
  admin user:unsuspend --email E
  admin user:sessions --email E
  admin user:revoke-sessions --email E
  admin user:disable-2fa --email E   (removes every second factor; signs the account out)
  admin user:reset-link --email E   (prints a password-reset link alone on stdout)
  admin user:delete --email E | --id usr_…   (asks nothing: deletes the account and all it holds)
  admin key:create  --email E --name N [--expires-in-days D]
  admin key:list    --email E
  admin key:delete  --email E --id ID
  admin domain:release --name N   (the verified owner's copy turns failed; anyone may verify N)
  admin verify
  admin help [command]   (also --help, -h, and <command> --help)`;

const KV_ENV =
  `  DENO_KV_PATH          the KV: a SQLite file (default ./data/kv.sqlite3), :memory:, or a
                        KV Connect URL; use the server's. deno task admin may read and write
                        only ./data
  DENO_KV_ACCESS_TOKEN  the token for a KV Connect URL
  DENO_DEPLOYMENT_ID    on Deno Deploy with no DENO_KV_PATH: the platform's KV`;

type CommandHelp = { usage: string; about: string; flags: string; env?: string };
const COMMANDS: Record<string, CommandHelp> = {
  "user:create": {
    usage: "admin user:create --email E [--password P]",
    about: "Creates an active account, its address verified (the operator vouches for it). " +
      "Prints {id, email, createdAt, emailVerified} as JSON.",
    flags: `  --email E      the account's email (unique)
  --password P   at least 12 characters. Without it: on a terminal, prompts twice without
                 echoing; otherwise reads the password from stdin (one line)`,
    env: "  PASSWORD_HASH_COST    log2 of scrypt's N for the hash (default 17)",
  },
  "user:verify-email": {
    usage: "admin user:verify-email --email E",
    about: "Marks the account's email address verified (EMAIL_VERIFICATION=required lets it " +
      "create API keys, add domains and enrol second factors from then on). Prints {id, email, " +
      "emailVerified}. Confirm the address is the owner's first.",
    flags: "  --email E      the account",
  },
  "user:suspend": {
    usage: "admin user:suspend --email E",
    about: "Suspends an account: signs it out everywhere; its keys answer 403 within 1 s.",
    flags: "  --email E      the account",
  },
  "user:unsuspend": {
    usage: "admin user:unsuspend --email E",
    about: "Makes a suspended account active again; its keys work again, old sessions stay ended.",
    flags: "  --email E      the account",
  },
  "key:create": {
    usage: "admin key:create --email E --name N [--expires-in-days D]",
    about: "Creates an API key and prints the key alone on stdout (shown this once).",
    flags: `  --email E                the account
  --name N                 a label for the key
  --expires-in-days D      1..${MAX_EXPIRES_IN_DAYS}; without it the key does not expire`,
  },
  "key:list": {
    usage: "admin key:list --email E",
    about: "Lists an account's keys, one JSON line each (id, name, start, dates; never the key).",
    flags: "  --email E      the account",
  },
  "key:delete": {
    usage: "admin key:delete --email E --id ID",
    about: "Deletes one API key of an account; it stops working at once.",
    flags: `  --email E      the account
  --id ID        the key's id (key_…, from key:list)`,
  },
  "user:sessions": {
    usage: "admin user:sessions --email E",
    about: "Lists an account's live sessions, one JSON line each (id, createdAt, lastSeenAt, " +
      "expiresAt, ip, userAgent; never a token or digest).",
    flags: "  --email E      the account",
  },
  "user:revoke-sessions": {
    usage: "admin user:revoke-sessions --email E",
    about: "Signs an account out everywhere: deletes every session. Prints {id, email, " +
      "revokedSessions}. Its API keys keep working.",
    flags: "  --email E      the account",
  },
  "user:disable-2fa": {
    usage: "admin user:disable-2fa --email E",
    about: "For a locked-out user: removes the account's second factors (the authenticator app, " +
      "its recovery codes and every passkey) and signs it out everywhere. Prints {id, email, " +
      "totp, passkeys, revokedSessions}. Confirm who is asking first: afterwards the password " +
      "alone signs in.",
    flags: "  --email E      the account",
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
  },
  "user:delete": {
    usage: "admin user:delete --email E | --id usr_…",
    about: "Deletes an account and everything it holds, without asking: API keys, sessions, " +
      "domains (their verified names become free) and the email. Its keys and sessions stop " +
      "at once. Prints what was deleted as JSON.\nWith --id, also finishes a deletion that " +
      "was interrupted (admin verify reports it as deletion_unfinished; its email is gone).",
    flags: `  --email E      the account
  --id usr_…     the account's id (for an interrupted deletion)`,
  },
  "domain:release": {
    usage: "admin domain:release --name N",
    about: "Makes a verified domain name available again: the verified owner's copy turns " +
      "failed, and any account may verify N.",
    flags: "  --name N       the domain name",
  },
  "migrate": {
    usage: "admin migrate",
    about: "Brings a store written by an earlier version up to the current layout: domain " +
      "counters become Deno.KvU64 (moved by sum), and pending or failed domains give up the " +
      "name pointers they claimed at creation (a name is exclusive once verified). Idempotent; " +
      "prints what it changed as JSON. Run it once after upgrading, then admin verify.",
    flags: "  (none)",
  },
  "verify": {
    usage: "admin verify",
    about: "Checks every index, record and counter of the store; prints a JSON report and exits " +
      "1 on any violation.\nStreams the store with bounded memory; shows progress on a terminal. " +
      "Run it on a store no server is writing to (or run it again to confirm a violation).",
    flags: "  (none)",
    env: "  MAX_DOMAINS_PER_ACCOUNT  the domain quota to check against (default 1000)",
  },
};

const HELP_WORDS = new Set(["--help", "-h", "help"]);

/**
 * The help text `argv` asks for (`--help`, `-h`, `help`, `help <command>`, `<command> --help`),
 * or null when it asks for none. An unknown command named for help is a usage error.
 */
export function helpFor(argv: string[]): string | null {
  const [first, ...rest] = argv;
  let command: string | undefined;
  if (first !== undefined && HELP_WORDS.has(first)) command = rest[0];
  else if (rest.some((a) => a === "--help" || a === "-h")) command = first;
  else return null;
  if (command === undefined) {
    return `Operator commands on the server's KV.\n\n${USAGE}\n\n` +
      `environment:\n${KV_ENV}\n  (and per command: admin help <command>)\n\n` +
      "exit codes: 0 ok, 1 the operation failed, 2 bad arguments";
  }
  const c = COMMANDS[command];
  if (!c) throw new UsageError(`unknown command ${command}`);
  return `usage: ${c.usage}\n\n${c.about}\n\nflags:\n${c.flags}\n  -h, --help     this help\n\n` +
    `environment:\n${KV_ENV}${c.env ? `\n${c.env}` : ""}`;
}

type Args = Record<string, string | undefined>;

function required(args: Args, name: string): string {
  const v = args[name];
  if (v === undefined || v.trim() === "") throw new UsageError(`--${name} is required`);
  return v;
}

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

/** How the admin names the KV it opened (stderr), never with a token. */
export function describeKv(kvPath: string | null): string {
  if (kvPath === null) return "Deno Deploy's KV";
  if (kvPath === ":memory:") return ":memory: (empty; nothing is kept)";
  if (/^https?:\/\//.test(kvPath)) return `KV Connect ${new URL(kvPath).origin}`;
  return kvPath;
}

/**
 * Parses and checks the arguments without touching the KV, so bad arguments never open (or
 * create) a store. Returns the command and its flags.
 */
export function parseCommand(argv: string[]): { command: string; values: Args } {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError("no command given");
  if (!COMMANDS[command]) throw new UsageError(`unknown command ${command}`);
  let values: Args;
  try {
    values = parseArgs({
      args: rest,
      options: {
        email: { type: "string" },
        password: { type: "string" },
        name: { type: "string" },
        id: { type: "string" },
        "expires-in-days": { type: "string" },
      },
      strict: true,
      allowPositionals: false,
    }).values as Args;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  switch (command) {
    case "user:create": {
      const email = required(values, "email");
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new UsageError("--email is not valid");
      if (values.password !== undefined) {
        const problem = passwordProblem(values.password);
        if (problem) throw new UsageError(problem);
      }
      break;
    }
    case "key:create": {
      required(values, "email");
      const parsedName = keyNameSchema.safeParse(required(values, "name"));
      if (!parsedName.success) {
        throw new UsageError(`--name ${parsedName.error.issues[0].message}`);
      }
      if (values["expires-in-days"] !== undefined) {
        const days = Number(values["expires-in-days"]);
        if (!Number.isInteger(days) || days < 1 || days > MAX_EXPIRES_IN_DAYS) {
          throw new UsageError(
            `--expires-in-days must be a whole number 1..${MAX_EXPIRES_IN_DAYS}`,
          );
        }
      }
      break;
    }
    case "user:verify-email":
    case "user:suspend":
    case "user:unsuspend":
    case "user:sessions":
    case "user:revoke-sessions":
    case "user:disable-2fa":
    case "user:reset-link":
    case "key:list":
      required(values, "email");
      break;
    case "user:delete":
      if ((values.email === undefined) === (values.id === undefined)) {
        throw new UsageError("give either --email or --id");
      }
      if (values.email !== undefined) required(values, "email");
      else if (!/^usr_[A-Za-z0-9_-]{1,64}$/.test(values.id ?? "")) {
        throw new UsageError("--id must be an account id (usr_…)");
      }
      break;
    case "key:delete":
      required(values, "email");
      required(values, "id");
      break;
    case "domain:release": {
      const parsed = parseDomainName(required(values, "name"));
      if (!parsed.ok) throw new UsageError(`--name ${parsed.problem}`);
      break;
    }
  }
  return { command, values };
}

/**
 * Before opening a local KV file: every command but user:create needs an existing store, so a
 * missing file (a wrong or unset DENO_KV_PATH) is refused instead of created empty.
 */
export async function refuseMissingKv(
  command: string,
  values: Args,
  kvPath: string | null,
): Promise<void> {
  if (command === "user:create" || !isKvFile(kvPath) || await kvFileExists(kvPath)) return;
  const where = `no KV file at ${kvPath} (DENO_KV_PATH; nothing was created)`;
  throw new CommandError(values.email ? `no account with email ${values.email}: ${where}` : where);
}

export async function runAdmin(
  argv: string[],
  io: {
    kv: Deno.Kv;
    out: (line: string) => void;
    passwordCost: number;
    maxApiKeys: number;
    /** MAX_DOMAINS_PER_ACCOUNT, for verify's quota check (default: store/domains.ts's). */
    maxDomains?: number;
    /** verify's progress, called every few thousand entries (the CLI: on a terminal only). */
    progress?: (scanned: { entries: number; accounts: number }) => void;
    /** The origin of reset links (PUBLIC_URL; default http://localhost:8000). */
    publicUrl?: string | null;
    /** AUDIT_RETENTION_DAYS for the events the commands record (store/audit.ts default). */
    auditRetentionDays?: number;
  },
): Promise<void> {
  const help = helpFor(argv);
  if (help !== null) {
    io.out(help);
    return;
  }
  const { command, values } = parseCommand(argv);
  const now = systemClock();
  /** The operator acted: user.suspended, user.unsuspended and session.revoked name "admin". */
  const adminStamp = (): AuditStamp => ({
    ctx: { ...ADMIN_AUDIT_CONTEXT, retentionDays: io.auditRetentionDays },
    nowMs: systemClock(),
  });
  const storeOf = async (email: string) => {
    const userId = await findUserIdByEmail(io.kv, email);
    if (!userId) throw new CommandError(`no account with email ${email}`);
    // The operator's key changes are audited as actor admin (store/audit.ts).
    return tenantStore(io.kv, userId, systemClock, {
      maxApiKeys: io.maxApiKeys,
      audit: ADMIN_AUDIT_CONTEXT,
      auditRetentionDays: io.auditRetentionDays,
    });
  };

  switch (command) {
    case "user:create": {
      const email = required(values, "email");
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new UsageError("--email is not valid");
      const password = values.password ?? await readPassword(email);
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
      return;
    }
    case "key:create": {
      const email = required(values, "email");
      const parsedName = keyNameSchema.safeParse(required(values, "name"));
      if (!parsedName.success) {
        throw new UsageError(`--name ${parsedName.error.issues[0].message}`);
      }
      const name = parsedName.data;
      let days: number | null = null;
      if (values["expires-in-days"] !== undefined) {
        days = Number(values["expires-in-days"]);
        if (!Number.isInteger(days) || days < 1 || days > MAX_EXPIRES_IN_DAYS) {
          throw new UsageError(
            `--expires-in-days must be a whole number 1..${MAX_EXPIRES_IN_DAYS}`,
          );
        }
      }
      const store = await storeOf(email);
      const { key } = await issueApiKey(store.apiKeys, { name, expiresInDays: days, nowMs: now });
      io.out(key);
      return;
    }
    case "user:verify-email": {
      const email = required(values, "email");
      const userId = await findUserIdByEmail(io.kv, email);
      if (!userId || !(await markEmailVerified(io.kv, userId, now, adminStamp()))) {
        throw new CommandError(`no account with email ${email}`);
      }
      io.out(JSON.stringify({ id: userId, email, emailVerified: true }));
      return;
    }
    case "user:suspend":
    case "user:unsuspend": {
      const email = required(values, "email");
      const userId = await findUserIdByEmail(io.kv, email);
      if (!userId) throw new CommandError(`no account with email ${email}`);
      const user = await setUserStatus(
        io.kv,
        userId,
        command === "user:suspend" ? "suspended" : "active",
        undefined,
        adminStamp(),
      );
      io.out(JSON.stringify({ id: user.id, email: user.email, status: user.status }));
      return;
    }
    case "user:sessions":
    case "user:revoke-sessions": {
      const email = required(values, "email");
      const userId = await findUserIdByEmail(io.kv, email);
      if (!userId) throw new CommandError(`no account with email ${email}`);
      if (command === "user:sessions") {
        for (const r of await listSessions(io.kv, userId, now)) {
          io.out(JSON.stringify(sessionView(r)));
        }
      } else {
        const revokedSessions = await deleteAllSessions(io.kv, userId, adminStamp());
        io.out(JSON.stringify({ id: userId, email, revokedSessions }));
      }
      return;
    }
    case "user:disable-2fa": {
      const email = required(values, "email");
      const userId = await findUserIdByEmail(io.kv, email);
      if (!userId) throw new CommandError(`no account with email ${email}`);
      const removed = await removeSecondFactors(io.kv, userId, adminStamp());
      const revokedSessions = await deleteAllSessions(io.kv, userId, adminStamp());
      io.out(JSON.stringify({ id: userId, email, ...removed, revokedSessions }));
      return;
    }
    case "user:reset-link": {
      const email = required(values, "email");
      const userId = await findUserIdByEmail(io.kv, email);
      const user = userId ? await getUser(io.kv, userId) : null;
      if (!user) throw new CommandError(`no account with email ${email}`);
      if (user.status !== "active") throw new CommandError(`${email} is suspended`);
      const issued = await issuePasswordReset(io.kv, user.id, now);
      if (!issued) throw new CommandError(`no account with email ${email}`);
      const origin = io.publicUrl ?? "http://localhost:8000";
      io.out(resetLink(origin, DEFAULT_RESET_PATH, issued.token));
      return;
    }
    case "user:delete": {
      let userId = values.id;
      if (values.email !== undefined) {
        userId = await findUserIdByEmail(io.kv, values.email) ?? undefined;
        if (!userId) throw new CommandError(`no account with email ${values.email}`);
      }
      const summary = await deleteAccount(io.kv, userId!, { nowMs: now });
      if (!summary) throw new CommandError(`no account ${userId}, and no deletion to finish`);
      io.out(JSON.stringify({ deleted: summary }));
      return;
    }
    case "key:list": {
      const store = await storeOf(required(values, "email"));
      for (const record of await store.apiKeys.list()) io.out(JSON.stringify(apiKeyView(record)));
      return;
    }
    case "key:delete": {
      const email = required(values, "email");
      const id = required(values, "id");
      const store = await storeOf(email);
      try {
        await store.apiKeys.delete(id);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) throw new CommandError(`no key ${id} on ${email}`);
        throw err;
      }
      io.out(JSON.stringify({ deleted: id }));
      return;
    }
    case "domain:release": {
      const parsed = parseDomainName(required(values, "name"));
      if (!parsed.ok) throw new UsageError(`--name ${parsed.problem}`);
      const released = await releaseDomainName(io.kv, parsed.value.name, systemClock);
      if (!released) throw new CommandError(`no account has verified ${parsed.value.name}`);
      io.out(JSON.stringify({ released: parsed.value.name, ...released, status: "failed" }));
      return;
    }
    case "migrate": {
      io.out(JSON.stringify(await migrateStore(io.kv)));
      return;
    }
    case "verify": {
      const report = await verifyStore(io.kv, {
        maxDomains: io.maxDomains,
        onProgress: io.progress,
      });
      io.out(JSON.stringify(report, null, 2));
      if (!report.ok) throw new CommandError(`${report.violationCount} invariant violation(s)`);
      return;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : "no command given");
  }
}

if (import.meta.main) {
  let code = 0;
  let kv: Deno.Kv | undefined;
  try {
    const help = helpFor(Deno.args);
    if (help !== null) {
      console.log(help);
      Deno.exit(0);
    }
    const { command, values } = parseCommand(Deno.args);
    const config = loadConfig(readEnv());
    await refuseMissingKv(command, values, config.kvPath);
    kv = await openKv(config.kvPath);
    console.error(`kv: ${describeKv(config.kvPath)}`);
    const enc = new TextEncoder();
    const progress = Deno.stderr.isTerminal()
      ? ({ entries, accounts }: { entries: number; accounts: number }) =>
        Deno.stderr.writeSync(
          enc.encode(`\rverify: ${entries} entries, ${accounts} accounts checked…`),
        )
      : undefined;
    await runAdmin(Deno.args, {
      kv,
      out: (line) => console.log(line),
      passwordCost: config.passwordHashCost,
      maxApiKeys: config.maxApiKeysPerAccount,
      maxDomains: config.maxDomainsPerAccount,
      progress,
      publicUrl: config.publicUrl ?? `http://localhost:${config.port || 8000}`,
      auditRetentionDays: config.auditRetentionDays,
    });
    if (progress && command === "verify") Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n${USAGE}`);
      code = 2;
    } else if (err instanceof CommandError || err instanceof KvPathNotAllowedError) {
      console.error(`error: ${err.message}`);
      code = 1;
    } else {
      console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
      code = 1;
    }
  } finally {
    kv?.close();
  }
  Deno.exit(code);
}
