/**
 * The outermost middleware: a request id on every response, a deadline so a stalled store cannot
 * hold a request forever (500 with the request id), response decoration (rate-limit headers) in
 * the same pass, and one JSON log line per request.
 *
 * Handlers find the deadline in `c.get("deadline")`: its `signal` (made on first use) aborts when the
 * deadline passes or the request has its answer, so work started for the request stops with it.
 * The client (address, scheme, host: lib/client.ts) is `c.get("client")`, also reachable from the
 * bare Request with `clientOf(req)`; it is resolved on first use, so a request nothing asks about
 * (a Bearer call with logging off) never parses a forwarding header.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../auth/middleware.ts";
import { bindClient, type ClientPolicy, DEFAULT_POLICY, RequestClient } from "../lib/client.ts";
import { Deadlines } from "../lib/deadline.ts";
import { errorBody, jsonResponse } from "../lib/errors.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import { nextRequestId } from "../lib/request_id.ts";
import { requestTimeout, StallableBody } from "./request_body.ts";

export type RequestContextOptions = {
  log: Logger;
  timeoutMs: number;
  /** TRUST_PROXY and PUBLIC_URL; by default nothing is trusted. */
  client?: ClientPolicy;
  /**
   * Binds per-app services to the request before any handler runs (no extra middleware layer
   * on the hot path).
   */
  prepare?: (c: Context<AppEnv>) => void;
  /** Adds headers to the final response (which may be an error response). */
  decorate?: (c: Context<AppEnv>) => void;
};

export function requestContext(opts: RequestContextOptions): MiddlewareHandler<AppEnv> {
  const { log, prepare, decorate } = opts;
  const deadlines = new Deadlines(opts.timeoutMs);
  const logging = log !== silentLogger;
  const policy = opts.client ?? DEFAULT_POLICY;
  return async (c, next) => {
    const requestId = nextRequestId();
    c.set("requestId", requestId);
    const deadline = deadlines.start();
    c.set("deadline", deadline);
    const started = logging ? performance.now() : 0;
    const body = StallableBody.wrap(c);
    // After the wrap, which may replace c.req.raw: handlers look the client up by that Request.
    const client = new RequestClient(c.req.raw, c.env, policy);
    bindClient(c.req.raw, client);
    c.set("client", client);
    prepare?.(c);
    if (await deadlines.within(next(), deadline) === "timed out") {
      if (body?.waitingOnClient) {
        // The client, not the server, is slow: stop reading its body and say so (408, not 500).
        body.cutOff();
        c.res = requestTimeout(requestId).toResponse();
      } else {
        log({ level: "error", msg: "request deadline passed", requestId });
        c.res = jsonResponse(
          errorBody(500, "The request took too long. Quote the request id when reporting it.", {
            requestId,
          }),
          500,
        );
      }
    }
    const headers = c.res.headers;
    headers.set("X-Request-Id", requestId);
    decorate?.(c);
    if (!logging) return;
    const principal = c.get("principal");
    log({
      level: c.res.status >= 500 ? "error" : "info",
      msg: "request",
      requestId,
      ip: client.address,
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      userId: principal?.userId ?? null,
      keyId: principal?.keyId ?? null,
    });
  };
}
