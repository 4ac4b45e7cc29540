/** Wiring only: read the configuration, open KV, build the app, serve it. */
import { createApp } from "./app.ts";
import { type Config, ConfigError, loadConfig, readEnv } from "./lib/config.ts";
import { openKv } from "./store/open.ts";

let config: Config;
try {
  config = loadConfig(readEnv());
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`configuration error: ${err.message}`);
  Deno.exit(1);
}
const kv = await openKv(config.kvPath);
const app = createApp({ kv, config });

const server = Deno.serve({
  port: config.port,
  hostname: config.hostname,
  onListen: ({ hostname, port }) => {
    console.log(JSON.stringify({
      time: new Date().toISOString(),
      level: "info",
      msg: "listening",
      url: `http://${hostname === "0.0.0.0" ? "localhost" : hostname}:${port}`,
      port,
      kv: config.kvPath === null
        ? "deno-deploy"
        : /^https?:/.test(config.kvPath)
        ? "kv-connect"
        : config.kvPath,
      rateLimit: config.rateLimit,
    }));
  },
}, app.fetch);

if (!config.onDeploy) {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      await server.shutdown();
      await app.idle();
      kv.close();
      Deno.exit(0);
    });
  }
}
