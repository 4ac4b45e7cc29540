/**
 * `deno task kv-connect-test-server`: the KV Connect test backend as a process.
 *
 * Env: PORT (0 = any free port), KV_CONNECT_TOKEN (required), KV_CONNECT_RTT_MS (default 0),
 * DENO_KV_PATH (local KV file, default ":memory:"). Prints one JSON line `{"url","port"}` when
 * listening; SIGTERM or SIGINT closes it.
 */
import { startKvConnectServer } from "./server.ts";

function intEnv(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`${name} must be a non-negative integer`);
    Deno.exit(2);
  }
  return n;
}

const token = Deno.env.get("KV_CONNECT_TOKEN");
if (!token) {
  console.error("KV_CONNECT_TOKEN is required");
  Deno.exit(2);
}

const server = await startKvConnectServer({
  path: Deno.env.get("DENO_KV_PATH") || ":memory:",
  token,
  rttMs: intEnv("KV_CONNECT_RTT_MS", 0),
  port: intEnv("PORT", 0),
});
console.log(JSON.stringify({ url: server.url, port: server.port }));

const stop = async () => {
  await server.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGTERM", stop);
Deno.addSignalListener("SIGINT", stop);
