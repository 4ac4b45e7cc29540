/**
 * Graceful shutdown with a bound. `Deno.HttpServer.shutdown()` closes idle and half-sent
 * connections at once but waits for every connection with a request in flight, and a connection
 * whose client announced a body and stopped sending it never finishes: the answer goes out, yet
 * Deno keeps the connection until the client sends the rest or hangs up (measured on Deno 2.9.6,
 * see BENCHMARKS.md "Slow clients"). So SIGTERM waits at most the request deadline plus a second
 * for answers to be written; every handler has answered by then, and what is still open is a slow
 * client, cut off by the process exit.
 *
 * (Aborting `Deno.serve`'s `signal` once `shutdown()` has begun throws an uncaught BadResource
 * in 2.9.6, so the bound is a race, not an abort.)
 */

/** Time after the request deadline for answers already made to reach their clients. */
export const SHUTDOWN_FLUSH_MS = 1000;

export function shutdownGraceMs(requestTimeoutMs: number): number {
  return requestTimeoutMs + SHUTDOWN_FLUSH_MS;
}

/** "drained" when every connection closed in time, "cut off" when the grace period ran out. */
export async function shutdownWithin(
  server: Pick<Deno.HttpServer, "shutdown">,
  graceMs: number,
): Promise<"drained" | "cut off"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cutOff = new Promise<"cut off">((resolve) => {
    timer = setTimeout(() => resolve("cut off"), graceMs);
  });
  try {
    return await Promise.race([server.shutdown().then(() => "drained" as const), cutOff]);
  } finally {
    clearTimeout(timer);
  }
}
