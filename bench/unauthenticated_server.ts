/**
 * Bench-only server: the production `GET /api/e2/domains` handler (and the other routes the
 * registry marks as authenticated) mounted with NO authentication and NO rate limiter, as the
 * baseline (b) of bench/auth_throughput.ts. Everything else is the production app's: the same
 * request-context middleware (request id, deadline, logging), the same /api/v2 alias routing and
 * the same error handling, so (a)/(b) measures what authentication and the limiter cost. Each request names its account in `X-Bench-Account`;
 * the handler gets a tenant store bound to it, as it would after authentication.
 *
 * Never part of the production app: run it only from the benchmark.
 *   DENO_KV_PATH=./data/bench/x.sqlite3 PORT=0 deno run --allow-net --allow-env \
 *     --allow-read=./data --allow-write=./data bench/unauthenticated_server.ts
 */
import { Hono } from "hono";
import type { AppEnv } from "../auth/middleware.ts";
import { systemClock } from "../lib/clock.ts";
import { denoResolver } from "../lib/dns.ts";
import { errorBody, HttpError, jsonResponse } from "../lib/errors.ts";
import { registerDomainRoutes } from "../routes/domains/operations.ts";
import { apiAliasPath, RouteRegistry } from "../routes/registry.ts";
import { requestContext } from "../routes/request_context.ts";
import { type Config, loadConfig, readEnv } from "../lib/config.ts";
import { jsonLogger, silentLogger } from "../lib/log.ts";
import { openKv } from "../store/open.ts";
import { tenantStore } from "../store/tenant.ts";

/**
 * The baseline app on `kv`: the production domain routes behind the production request context,
 * each request's account named by `X-Bench-Account` instead of authenticated.
 */
export function unauthenticatedApp(kv: Deno.Kv, config: Config): Hono<AppEnv> {
  const app = new Hono<AppEnv>({ getPath: apiAliasPath });
  app.use(
    "*",
    requestContext({
      log: config.logRequests ? jsonLogger : silentLogger,
      timeoutMs: config.requestTimeoutMs,
    }),
  );
  app.use("/api/e2/*", async (c, next) => {
    const userId = c.req.header("X-Bench-Account");
    if (!userId) return jsonResponse(errorBody(400, "X-Bench-Account is required."), 400);
    c.set("principal", { userId, method: "api_key" });
    c.set("store", tenantStore(kv, userId, systemClock, { maxApiKeys: 50 }));
    await next();
  });
  const registry = new RouteRegistry();
  registerDomainRoutes(registry, { resolver: denoResolver() });
  registry.mount(app, { auth: true });
  app.notFound(() => jsonResponse(errorBody(404, "Not found."), 404));
  app.onError((err, c) => {
    if (err instanceof HttpError) return err.toResponse();
    return jsonResponse(
      errorBody(500, "An unexpected error occurred.", { requestId: c.get("requestId") }),
      500,
    );
  });
  return app;
}

if (import.meta.main) {
  const kvPath = Deno.env.get("DENO_KV_PATH");
  if (!kvPath) throw new Error("DENO_KV_PATH is required");
  const kv = await openKv(kvPath);
  const app = unauthenticatedApp(kv, loadConfig(readEnv()));
  const server = Deno.serve({
    port: Number(Deno.env.get("PORT") ?? 0),
    hostname: "127.0.0.1",
    onListen: ({ port }) => {
      console.log(JSON.stringify({ msg: "listening", server: "unauthenticated-bench", port }));
    },
  }, app.fetch);

  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, async () => {
      await server.shutdown();
      kv.close();
      Deno.exit(0);
    });
  }
}
