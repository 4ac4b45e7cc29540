/**
 * Operator CLI on the same KV as the server:
 *   deno task admin user:create --email E [--password P | password on stdin]
 *   deno task admin user:suspend --email E        (signs it out; its keys answer 403 within 1 s)
 *   deno task admin user:unsuspend --email E      (its keys work again; old sessions stay ended)
 *   deno task admin key:create --email E --name N [--expires-in-days D]   (prints the key alone)
 *   deno task admin key:list --email E
 *   deno task admin key:delete --email E --id ID
 *   deno task admin domain:release --name N   (the name stops being exclusive: its verified copy
 *                                             turns failed, and any account may verify it)
 *   deno task admin verify          (checks KV invariants; prints a JSON report; exit 1 on any violation)
 * Exit codes: 0 ok, 1 operation failed (unknown account, …), 2 bad arguments.
 */
import { parseArgs } from "node:util";
import { issueApiKey, MAX_EXPIRES_IN_DAYS } from "../auth/issue_api_key.ts";
import { hashPassword, passwordProblem } from "../auth/password.ts";
import { systemClock } from "../lib/clock.ts";
import { loadConfig, readEnv } from "../lib/config.ts";
import { apiKeyView } from "../store/api_keys.ts";
import { openKv } from "../store/open.ts";
import { tenantStore } from "../store/tenant.ts";
import { createUser, findUserIdByEmail, setUserStatus } from "../store/users.ts";
import { keyNameSchema } from "../routes/api_keys.ts";
import { verifyStore } from "./verify.ts";
import { parseDomainName } from "../lib/domain_name.ts";
import { releaseDomainName } from "../store/domains.ts";

class UsageError extends Error {}
class CommandError extends Error {}

const USAGE = `usage:
  admin user:create --email E [--password P]   (without --password, reads it from stdin)
  admin user:suspend   --email E
  admin user:unsuspend --email E
  admin key:create  --email E --name N [--expires-in-days D]
  admin key:list    --email E
  admin key:delete  --email E --id ID
  admin domain:release --name N   (the verified owner's copy turns failed; anyone may verify N)
  admin verify`;

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

export async function runAdmin(
  argv: string[],
  io: {
    kv: Deno.Kv;
    out: (line: string) => void;
    passwordCost: number;
    maxApiKeys: number;
    /** MAX_DOMAINS_PER_ACCOUNT, for verify's quota check (default: store/domains.ts's). */
    maxDomains?: number;
  },
): Promise<void> {
  const [command, ...rest] = argv;
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
  const now = systemClock();
  const storeOf = async (email: string) => {
    const userId = await findUserIdByEmail(io.kv, email);
    if (!userId) throw new CommandError(`no account with email ${email}`);
    return tenantStore(io.kv, userId, systemClock, { maxApiKeys: io.maxApiKeys });
  };

  switch (command) {
    case "user:create": {
      const email = required(values, "email");
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) throw new UsageError("--email is not valid");
      const password = values.password ?? await readStdin();
      const problem = passwordProblem(password);
      if (problem) throw new UsageError(problem);
      try {
        const user = await createUser(io.kv, {
          email,
          passwordHash: await hashPassword(password, io.passwordCost),
          nowMs: now,
        });
        io.out(JSON.stringify({ id: user.id, email: user.email, createdAt: user.createdAt }));
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
    case "user:suspend":
    case "user:unsuspend": {
      const email = required(values, "email");
      const userId = await findUserIdByEmail(io.kv, email);
      if (!userId) throw new CommandError(`no account with email ${email}`);
      const user = await setUserStatus(
        io.kv,
        userId,
        command === "user:suspend" ? "suspended" : "active",
      );
      io.out(JSON.stringify({ id: user.id, email: user.email, status: user.status }));
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
    case "verify": {
      const report = await verifyStore(io.kv, { maxDomains: io.maxDomains });
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
    const config = loadConfig(readEnv());
    kv = await openKv(config.kvPath);
    await runAdmin(Deno.args, {
      kv,
      out: (line) => console.log(line),
      passwordCost: config.passwordHashCost,
      maxApiKeys: config.maxApiKeysPerAccount,
      maxDomains: config.maxDomainsPerAccount,
    });
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`error: ${err.message}\n${USAGE}`);
      code = 2;
    } else if (err instanceof CommandError) {
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
