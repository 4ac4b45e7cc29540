/** Wiring only: read the configuration, open KV, build the app, serve it. */
import { createApp } from "./app.ts";
import { type ForwardAuthRules, loadForwardAuthRules } from "./auth/forward_auth/rules.ts";
import {
  type Config,
  ConfigError,
  loadConfig,
  passwordHashMemoryBytes,
  readEnv,
  withStoreRtt,
} from "./lib/config.ts";
import { describeTrustProxy, isLoopbackOrigin } from "./lib/client.ts";
import { exitAfterShutdown, shutdownGraceMs, shutdownWithin } from "./lib/shutdown.ts";
import { listenProblem, type ResilientServer, serveResilient, startHint } from "./lib/serve.ts";
import {
  describeKvPath,
  KvPathNotAllowedError,
  KvUrlNotAllowedError,
  openKv,
  storeRttMs,
} from "./store/open.ts";

let config: Config;
let forwardAuth: ForwardAuthRules;
try {
  config = loadConfig(readEnv());
  // FORWARD_AUTH_RULES, validated now: a bad file is one line and exit 1, like a bad variable.
  forwardAuth = loadForwardAuthRules(config.forwardAuthRules);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`configuration error: ${err.message}`);
  Deno.exit(1);
}
let kv: Deno.Kv;
try {
  kv = await openKv(config.kvPath);
} catch (err) {
  if (!(err instanceof KvPathNotAllowedError || err instanceof KvUrlNotAllowedError)) throw err;
  console.error(`configuration error: ${err.message}`);
  Deno.exit(1);
}
// The limiter's lease timeout and the request deadline allow for the store's round trip.
config = withStoreRtt(config, await storeRttMs(kv, config.kvPath));
const app = createApp({ kv, config, forwardAuth });

const log = (entry: Record<string, unknown>) =>
  console.log(JSON.stringify({ time: new Date().toISOString(), ...entry }));

let server: ResilientServer;
try {
  server = serveResilient({
    port: config.port,
    hostname: config.hostname,
    log,
    onListen: ({ hostname, port }) => {
      console.log(JSON.stringify({
        time: new Date().toISOString(),
        level: "info",
        msg: "listening",
        // The address actually bound: 0.0.0.0 (every interface) is not "localhost".
        url: `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`,
        hostname,
        port,
        // A KV Connect URL by its origin only; the token is never printed.
        kv: describeKvPath(config.kvPath),
        rateLimit: config.rateLimit,
        requestTimeoutMs: config.requestTimeoutMs,
        maxDomainsPerAccount: config.maxDomainsPerAccount,
        usageFlushMs: config.usageFlushMs,
        trustProxy: describeTrustProxy(config.trustProxy),
        publicUrl: config.publicUrl,
        // Only which kind: SMTP_URL carries credentials and is never printed.
        mail: config.smtp ? "smtp" : "log",
        emailVerification: config.emailVerification,
        signUp: config.signUp.open ? (config.signUp.emailDomains ?? "open") : "closed",
        passwordHashing: {
          cost: config.passwordHashCost,
          concurrency: config.passwordHashConcurrency,
          worstCaseMemoryMiB: config.passwordHashConcurrency *
            passwordHashMemoryBytes(config.passwordHashCost) / 2 ** 20,
        },
      }));
      if (config.publicUrl?.startsWith("http:") && !isLoopbackOrigin(config.publicUrl)) {
        log({
          level: "warn",
          msg:
            `PUBLIC_URL is plain HTTP (${config.publicUrl}): session cookies travel unencrypted ` +
            "and anyone on the network can read and reuse them. Use it only on a private network " +
            "you trust; anywhere else, serve HTTPS.",
        });
      }
      if (
        config.emailVerification === "off" && config.signUp.open && config.publicUrl &&
        !isLoopbackOrigin(config.publicUrl)
      ) {
        log({
          level: "warn",
          msg: `EMAIL_VERIFICATION is off on ${config.publicUrl}: anyone can sign up with an ` +
            "address they do not own. Set SMTP_URL (verification is then required by default), " +
            "or SIGN_UP=closed and make accounts with `deno task admin user:create`.",
        });
      }
      if (!config.smtp) {
        log({
          level: "warn",
          msg: "SMTP_URL is not set: password-reset links are written to this log instead of " +
            "being mailed (development only)",
        });
      }
      if (config.allowPrivateWebhookTargets) {
        log({
          level: "warn",
          msg: "ALLOW_PRIVATE_WEBHOOK_TARGETS is on: endpoint tests may call loopback and " +
            "private addresses (this machine, its network, cloud metadata). Development and " +
            "tests only; never on a server others can reach.",
        });
      }
      // Last: the line a person starting it looks for, a JSON line like every other (log
      // collectors parse them all), its message readable as it stands.
      log({
        level: "info",
        msg: startHint({
          hostname,
          port,
          publicUrl: config.publicUrl,
          signUpOpen: config.signUp.open,
        }),
      });
    },
  }, app.fetch);
} catch (err) {
  const problem = listenProblem(err, { hostname: config.hostname, port: config.port });
  if (problem === null) throw err;
  console.error(`error: ${problem}`);
  kv.close();
  Deno.exit(1);
}

/** Set by the dev task: running under `deno run --watch` (lib/shutdown.ts exitAfterShutdown). */
const watched = Deno.args.includes("--watched");

if (!config.onDeploy) {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    const onSignal = async () => {
      // Bounded: a client that stops sending a body would otherwise hold the exit forever.
      const drained = await shutdownWithin(server, shutdownGraceMs(config.requestTimeoutMs));
      if (drained === "cut off") {
        log({
          level: "warn",
          msg: "shutdown: connections still open after the grace period are closed",
        });
      }
      await app.idle();
      kv.close();
      exitAfterShutdown(signal, onSignal, watched);
    };
    Deno.addSignalListener(signal, onSignal);
  }
}
