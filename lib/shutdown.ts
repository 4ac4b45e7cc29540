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

/**
 * Ends the process after a graceful shutdown on `signal`. Under `deno run --watch` (the dev task
 * passes `--watched` to say so: Deno 2.9.6 tells a program nothing about it) the program and its
 * file watcher are one process, and `Deno.exit` ends only the program's run: the watcher prints
 * "Process finished. Restarting on file change..." and stays, so SIGTERM from a supervisor, an
 * editor or `kill` left `deno task dev` running. There the listener is removed and the signal
 * raised again, and its default action ends the whole process (exit status 128 + signal, as for
 * any process a signal ends). Otherwise exit 0: the server shut down as asked.
 */
export function exitAfterShutdown(
  signal: Deno.Signal,
  listener: () => void,
  watched: boolean,
): void {
  if (!watched) Deno.exit(0);
  Deno.removeSignalListener(signal, listener);
  Deno.kill(Deno.pid, signal);
}
