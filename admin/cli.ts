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
 *   deno task admin key:create --email E --name N [--scopes S,S] [--expires-in-days D]
 *                                             (prints the key alone)
 *   deno task admin key:list --email E
 *   deno task admin key:delete --email E --id ID
 *   deno task admin service-token:create --name N [--may-assert-ip]   (prints the token alone)
 *   deno task admin service-token:list | service-token:revoke --id svc_…
 *   deno task admin domain:release --name N   (the name stops being exclusive: its verified copy
 *                                             turns failed, and any account may verify it)
 *   deno task admin migrate         (after an upgrade: brings the store to the current layout)
 *   deno task admin verify          (checks KV invariants; prints a JSON report; exit 1 on any violation)
 *   deno task admin --help | -h | help [command]     (what each command does, flags, environment)
 * Every command names the KV it opened on stderr; all but user:create refuse a KV file that does
 * not exist instead of creating an empty one.
 * Exit codes: 0 ok, 1 operation failed (unknown account, …), 2 bad arguments (printed with the
 * command's own usage line; the whole list only when the command itself is unknown).
 */
import { parseArgs } from "node:util";
import { systemClock } from "../lib/clock.ts";
import { loadForwardAuthRules } from "../auth/forward_auth/rules.ts";
import { BUILT_IN_VOCABULARY, type ScopeVocabulary, scopeVocabulary } from "../lib/scopes.ts";
import { loadConfig, readEnv } from "../lib/config.ts";
import { isKvFile, kvFileExists, KvPathNotAllowedError, openKv } from "../store/open.ts";
import {
  type AdminCommand,
  type AdminIo,
  type Args,
  type CheckContext,
  CommandError,
  COMMANDS,
  UsageError,
} from "./commands.ts";

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
  admin key:create  --email E --name N [--scopes S,S] [--expires-in-days D]
  admin key:list    --email E
  admin key:delete  --email E --id ID
  admin domain:release --name N   (the verified owner's copy turns failed; anyone may verify N)
  admin service-token:create --name N [--may-assert-ip]   (prints the token alone, once)
  admin service-token:list
  admin service-token:revoke --id svc_…
  admin migrate   (after upgrading: brings the store to the current layout; then verify)
  admin verify    (checks every index, record and counter; exit 1 on any violation)
  admin help [command]   (also --help, -h, and <command> --help)`;

const KV_ENV =
  `  DENO_KV_PATH          the KV: a SQLite file (default ./data/kv.sqlite3), :memory:, or a
                        KV Connect URL; use the server's. deno task admin may read and write
                        only ./data
  DENO_KV_ACCESS_TOKEN  the token for a KV Connect URL
  DENO_DEPLOYMENT_ID    on Deno Deploy with no DENO_KV_PATH: the platform's KV`;

const HELP_WORDS = new Set(["--help", "-h", "help"]);

/** The command named `name`; never an Object.prototype member ("toString", "constructor"). */
function commandOf(name: string): AdminCommand | undefined {
  return Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
}

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
  const c = commandOf(command);
  if (!c) throw new UsageError(`unknown command ${command}`);
  return `usage: ${c.usage}\n\n${c.about}\n\nflags:\n${c.flags}\n  -h, --help     this help\n\n` +
    `environment:\n${KV_ENV}${c.env ? `\n${c.env}` : ""}`;
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
export function parseCommand(
  argv: string[],
  ctx: CheckContext = { scopes: () => BUILT_IN_VOCABULARY },
): { command: string; values: Args } {
  const [command, ...rest] = argv;
  if (command === undefined) throw new UsageError("no command given");
  const entry = commandOf(command);
  if (!entry) throw new UsageError(`unknown command ${command}`);
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
        scopes: { type: "string" },
        "may-assert-ip": { type: "boolean" },
      },
      strict: true,
      allowPositionals: false,
    }).values as Args;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  entry.check?.(values, ctx);
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

/**
 * What a usage error prints: the message, then the usage of the command it is about (one line
 * and where to read more), or the whole list when no known command was named. The whole list
 * after every mistyped flag buried the one line that mattered.
 */
export function usageErrorText(argv: string[], err: UsageError): string {
  const c = argv[0] === undefined ? undefined : commandOf(argv[0]);
  if (!c) return `error: ${err.message}\n${USAGE}`;
  return `error: ${err.message}\nusage: ${c.usage}\n(admin help ${argv[0]} for its flags)`;
}

/**
 * Runs one command line against `io.kv`: help when asked for, else the command's entry in
 * COMMANDS (admin/commands.ts). Throws UsageError for bad arguments, CommandError when the
 * operation fails.
 */
export async function runAdmin(argv: string[], io: AdminIo): Promise<void> {
  const help = helpFor(argv);
  if (help !== null) {
    io.out(help);
    return;
  }
  const { command, values } = parseCommand(argv, {
    scopes: () => io.scopes?.() ?? BUILT_IN_VOCABULARY,
  });
  await COMMANDS[command].run({ command, values, io, now: systemClock() });
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
    // The operator's scopes (FORWARD_AUTH_RULES), read only by a command that asks (key:create).
    let vocab: ScopeVocabulary | undefined;
    const scopes = () =>
      vocab ??= scopeVocabulary(
        loadForwardAuthRules(loadConfig(readEnv()).forwardAuthRules).scopes,
      );
    const { command, values } = parseCommand(Deno.args, { scopes });
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
      scopes,
    });
    if (progress && command === "verify") Deno.stderr.writeSync(enc.encode("\r\x1b[K"));
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(usageErrorText(Deno.args, err));
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
