/** Shared test fixtures: an app on an in-memory KV, accounts with keys, a real server process. */
import { type App, createApp } from "../app.ts";
import type { AccountEventSink } from "../auth/accounts/service.ts";
import { issueApiKey } from "../auth/api_keys/issue.ts";
import { hashPassword } from "../auth/passwords/hash.ts";
import { type Clock, fakeClock } from "../lib/clock.ts";
import { type Config, testConfig } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import type { Mailer } from "../lib/mailer.ts";
import { tenantStore } from "../store/tenant.ts";
import { createUser } from "../store/accounts/users.ts";

export const TEST_PASSWORD = "correct horse battery staple";

export type TestApp = {
  app: App;
  kv: Deno.Kv;
  clock: ReturnType<typeof fakeClock>;
  config: Config;
  close(): Promise<void>;
};

/** An app on a fresh `:memory:` KV with a fake clock. Close it at the end of the test. */
export async function makeTestApp(
  opts: {
    config?: Partial<Config>;
    kv?: Deno.Kv;
    clock?: Clock;
    logger?: Logger;
    mailer?: Mailer;
    accountEvents?: AccountEventSink;
  } = {},
): Promise<TestApp> {
  const kv = opts.kv ?? await Deno.openKv(":memory:");
  const clock = (opts.clock as ReturnType<typeof fakeClock>) ?? fakeClock(Date.now());
  const config = testConfig(opts.config);
  const app = createApp({
    kv,
    clock,
    config,
    logger: opts.logger,
    mailer: opts.mailer,
    accountEvents: opts.accountEvents,
  });
  return {
    app,
    kv,
    clock,
    config,
    async close() {
      await app.idle();
      kv.close();
    },
  };
}

let accountCounter = 0;

/** A new account and one API key for it, written straight to the store. */
export async function createAccountWithKey(
  kv: Deno.Kv,
  clock: Clock,
  opts: { email?: string; keyName?: string; expiresInDays?: number } = {},
): Promise<{ userId: string; email: string; key: string; keyId: string }> {
  const email = opts.email ?? `user${++accountCounter}-${crypto.randomUUID()}@example.com`;
  const user = await createUser(kv, {
    email,
    passwordHash: await hashPassword(TEST_PASSWORD, 10),
    nowMs: clock(),
  });
  const store = tenantStore(kv, user.id, clock);
  const { key, record } = await issueApiKey(store.apiKeys, {
    name: opts.keyName ?? "test",
    expiresInDays: opts.expiresInDays ?? null,
    nowMs: clock(),
  });
  return { userId: user.id, email, key, keyId: record.id };
}

export function bearer(key: string, init: RequestInit = {}): RequestInit {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `Bearer ${key}`);
  return { ...init, headers };
}

export type ServerProcess = {
  url: string;
  port: number;
  /** The spawned process: the server itself with `direct`, else the `deno task` process. */
  pid: number;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends the signal, then waits for the process to exit and its output to drain. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
};

/**
 * The arguments of deno.json's `start` task after `deno` (`run <flags> main.ts`), so a direct
 * start has exactly the task's permissions.
 */
export async function startTaskArgs(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const task: string = config.tasks.start;
  const args = task.split(/\s+/).filter(Boolean);
  if (args[0] !== "deno" || args[1] !== "run" || args.at(-1) !== "main.ts") {
    throw new Error(`unexpected start task: ${task}`);
  }
  return args.slice(1);
}

/**
 * Starts the real server on a free port and waits for its "listening" line. `env` adds to the
 * environment (e.g. DENO_KV_PATH); the KV path must be under ./data because the task's
 * permissions allow only that folder.
 *
 * By default it runs `deno task start`, as an operator would. That runs the server as a
 * grandchild: a SIGKILL to the task process leaves the server running, orphaned. With
 * `{ direct: true }` it runs `deno <the start task's own arguments>` as a direct child, so
 * `stop("SIGKILL")` kills the server itself (crash tests).
 */
export async function startServer(
  env: Record<string, string> = {},
  opts: { direct?: boolean } = {},
): Promise<ServerProcess> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: opts.direct ? await startTaskArgs() : ["task", "start"],
    env: { PORT: "0", HOSTNAME: "127.0.0.1", PASSWORD_HASH_COST: "10", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  });
  const child = cmd.spawn();
  let text = "";
  const decoder = new TextDecoder();
  let resolvePort: (port: number) => void;
  let rejectPort: (err: Error) => void;
  const portPromise = new Promise<number>((res, rej) => {
    resolvePort = res;
    rejectPort = rej;
  });
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      const m = /"msg":"listening"[^\n]*"port":(\d+)/.exec(text);
      if (m) resolvePort(Number(m[1]));
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then((s) => {
    rejectPort(new Error(`server exited with ${s.code} before listening:\n${text}`));
    return s;
  });
  const timer = setTimeout(() => rejectPort(new Error(`server did not start:\n${text}`)), 30_000);
  let port: number;
  try {
    port = await portPromise;
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await exited;
    await pumps;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    output: () => text,
    async stop(signal: Deno.Signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const status = await exited;
      await pumps;
      return status;
    },
  };
}

/** Runs `deno task admin ...` and returns its exit code and output. */
export async function runAdminCli(
  args: string[],
  env: Record<string, string> = {},
  stdin?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "-q", "admin", ...args],
    env: { PASSWORD_HASH_COST: "10", NO_COLOR: "1", ...env },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

/** A fresh KV file path under ./data (where the tasks may read and write). */
export async function tempKvPath(): Promise<string> {
  await Deno.mkdir("./data/test", { recursive: true });
  return `./data/test/${crypto.randomUUID()}.sqlite3`;
}

export async function removeKvFile(path: string): Promise<void> {
  for (const suffix of ["", "-shm", "-wal"]) {
    await Deno.remove(path + suffix).catch(() => {});
  }
}
