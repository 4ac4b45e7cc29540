/**
 * For the in-process benchmarks (auth_in_process.ts, auth_breakdown.ts): the command line, the
 * seeded KV file under ./data/bench, the app configuration and the request loop they share. The
 * apps are called with `app.fetch`, 32 requests in flight, client address 127.0.0.1.
 */
import { parseArgs } from "node:util";
import { type Config, loadConfig } from "../lib/config.ts";
import { openKv } from "../store/open.ts";
import { removeKvFiles } from "./_server.ts";
import type { SeededKey } from "./_seed.ts";

export const IN_FLIGHT = 32;
/** Rounds left out of the figures (warm-up). */
export const SKIPPED = 3;

export type Fetch = (
  req: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

const INFO: Deno.ServeHandlerInfo<Deno.NetAddr> = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 40000 },
  completed: Promise.resolve(),
};

export type InProcessArgs = { rounds: number; requests: number; accounts: number; keys: number };

/** `--rounds` (default `defaultRounds`), `--requests`, `--accounts`, `--keys`. */
export function inProcessArgs(defaultRounds: number): InProcessArgs {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: String(defaultRounds) },
      requests: { type: "string", default: "2000" },
      accounts: { type: "string", default: "20" },
      keys: { type: "string", default: "1000" },
    },
  });
  const args = {
    rounds: Number(values.rounds),
    requests: Number(values.requests),
    accounts: Number(values.accounts),
    keys: Number(values.keys),
  };
  if (!(args.rounds > SKIPPED)) throw new Error(`--rounds must be more than ${SKIPPED}`);
  return args;
}

/** Default configuration on `kvPath`, silent, with a rate limit that never refuses. */
export function benchConfig(kvPath: string): Config {
  return {
    ...loadConfig({ DENO_KV_PATH: kvPath, LOG_LEVEL: "silent" }),
    rateLimit: { max: 1_000_000, windowMs: 1000, failOpen: false },
  };
}

/** Runs `body` with a fresh KV file under ./data/bench, closed and removed afterwards. */
export async function withBenchKv(body: (kv: Deno.Kv, path: string) => Promise<void>) {
  const root = new URL("..", import.meta.url).pathname;
  await Deno.mkdir(`${root}/data/bench`, { recursive: true });
  const kvPath = `${root}/data/bench/${crypto.randomUUID()}.sqlite3`;
  const kv = await openKv(kvPath);
  try {
    await body(kv, kvPath);
  } finally {
    kv.close();
    await removeKvFiles(kvPath);
  }
}

/**
 * `requests` GETs of /api/e2/domains, IN_FLIGHT at a time, cycling through `creds` (each sent
 * with the headers `headersOf` makes); throws on any answer but 200.
 */
export async function fireRequests(
  fetch: Fetch,
  creds: SeededKey[],
  requests: number,
  headersOf: (cred: SeededKey) => Record<string, string> = bearer,
): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < requests) {
      const headers = headersOf(creds[next++ % creds.length]);
      const res = await fetch(new Request("http://127.0.0.1/api/e2/domains", { headers }), INFO);
      if (res.status !== 200) throw new Error(`answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }
  }));
}

/** A Bearer key's headers (X-Bench-Account: the account, for the baseline app). */
export function bearer({ key, userId }: SeededKey): Record<string, string> {
  return { Authorization: `Bearer ${key}`, "X-Bench-Account": userId };
}

export function median(xs: number[]): number {
  return [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
}
