/**
 * The outermost middleware: a request id on every response, a deadline so a stalled store cannot
 * hold a request forever (500 with the request id), response decoration (rate-limit headers) in
 * the same pass, and one JSON log line per request.
 *
 * Handlers find the deadline in `c.var.deadline`: its `signal` (made on first use) aborts when the
 * deadline passes or the request has its answer, so work started for the request stops with it.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../auth/middleware.ts";
import { Deadlines } from "../lib/deadline.ts";
import { errorBody, jsonResponse } from "../lib/errors.ts";
import { type Logger, silentLogger } from "../lib/log.ts";
import { nextRequestId } from "../lib/request_id.ts";
import { requestTimeout, StallableBody } from "./request_body.ts";

export type RequestContextOptions = {
  log: Logger;
  timeoutMs: number;
  /** Adds headers to the final response (which may be an error response). */
  decorate?: (c: Context<AppEnv>) => void;
};

export function requestContext(opts: RequestContextOptions): MiddlewareHandler<AppEnv> {
  const { log, decorate } = opts;
  const deadlines = new Deadlines(opts.timeoutMs);
  const logging = log !== silentLogger;
  return async (c, next) => {
    const requestId = nextRequestId();
    c.set("requestId", requestId);
    const deadline = deadlines.start();
    c.set("deadline", deadline);
    const started = logging ? performance.now() : 0;
    const body = StallableBody.wrap(c);
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
      method: c.req.method,
      route: c.req.routePath,
      status: c.res.status,
      durationMs: Math.round((performance.now() - started) * 100) / 100,
      userId: principal?.userId ?? null,
      keyId: principal?.keyId ?? null,
    });
  };
}
