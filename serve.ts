/**
 * The entry for `deno serve --parallel` (`deno task serve`): every core of one machine. Deno runs
 * this module once per worker (DENO_JOBS, default the number of CPUs), each worker an isolate of
 * its own with its own KV handle (the same retrying wrapper as main.ts) and its own caches; the
 * runtime shares one listening socket between them. Whatever must hold across workers lives in KV
 * and already holds across processes: the rate limit is exact, revocation reaches every worker
 * within 1 s (README "Several instances, one KV").
 *
 * `deno serve` ignores PORT and HOSTNAME (it takes --port and --host), so each worker sets
 * DENO_SERVE_ADDRESS (`deno --help`) from them before the runtime starts serving: the same
 * variables, defaults and validation as main.ts. main.ts stays the single-process entry (it also
 * re-listens after EMFILE). Both drain on SIGTERM: here every worker (lib/shutdown.ts).
 */
import { createApp } from "./app.ts";
import { drainWorkersOnSignal, shutdownGraceMs } from "./lib/shutdown.ts";
import { type ForwardAuthRules, loadForwardAuthRules } from "./auth/forward_auth/rules.ts";
import { type Config, ConfigError, loadConfig, readEnv, withStoreRtt } from "./lib/config.ts";
import {
  describeKvPath,
  KvPathNotAllowedError,
  KvUrlNotAllowedError,
  openKv,
  storeRttMs,
} from "./store/open.ts";

let config: Config;
let kv: Deno.Kv;
let forwardAuth: ForwardAuthRules;
try {
  config = loadConfig(readEnv());
  forwardAuth = loadForwardAuthRules(config.forwardAuthRules);
  kv = await openKv(config.kvPath);
} catch (err) {
  if (
    !(err instanceof ConfigError || err instanceof KvPathNotAllowedError ||
      err instanceof KvUrlNotAllowedError)
  ) throw err;
  console.error(`configuration error: ${err.message}`);
  Deno.exit(1);
}

const host = config.hostname.includes(":") ? `[${config.hostname}]` : config.hostname;
Deno.env.set("DENO_SERVE_ADDRESS", `tcp:${host}:${config.port}`);

// The limiter's lease timeout and the request deadline allow for the store's round trip.
config = withStoreRtt(config, await storeRttMs(kv, config.kvPath));
const app = createApp({ kv, config, forwardAuth });

// SIGTERM/SIGINT drain as `deno task start` does (lib/shutdown.ts drainWorkersOnSignal): every
// worker finishes its requests, writes its usage counts and lastUsedAt, then the process exits.
let inFlight = 0;
if (!config.onDeploy) {
  drainWorkersOnSignal({
    inFlight: () => inFlight,
    graceMs: shutdownGraceMs(config.requestTimeoutMs),
    log: (entry) => console.log(JSON.stringify({ time: new Date().toISOString(), ...entry })),
    drain: async () => {
      await app.idle();
      kv.close();
    },
  });
}

/** app.fetch, counting the requests being answered (a response carries its usage count). */
function fetch(req: Request, info: Deno.ServeHandlerInfo) {
  inFlight++;
  const res = app.fetch(req, info);
  if (res instanceof Promise) return res.finally(() => inFlight--);
  inFlight--;
  return res;
}

export default {
  fetch,
  // Called in the first worker only: one line for the whole pool.
  onListen(addr: Deno.Addr) {
    const { hostname, port } = addr as Deno.NetAddr;
    console.log(JSON.stringify({
      time: new Date().toISOString(),
      level: "info",
      msg: "listening",
      url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
      hostname,
      port,
      mode: "deno serve --parallel",
      // A KV Connect URL by its origin only; the token is never printed.
      kv: describeKvPath(config.kvPath),
      rateLimit: config.rateLimit,
      requestTimeoutMs: config.requestTimeoutMs,
      mail: config.smtp ? "smtp" : "log",
    }));
  },
} satisfies Deno.ServeDefaultExport;
