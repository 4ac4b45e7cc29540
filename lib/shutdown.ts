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

/**
 * Graceful SIGINT/SIGTERM for `deno serve --parallel` (serve.ts), where the runtime owns the
 * listening socket and each worker is an isolate of one process. A signal reaches every worker;
 * each one waits for its requests in flight (up to `graceMs`), then `drain()`s (app.idle(): the
 * usage counts and lastUsedAt of the last interval are written, KV closed). `Deno.exit` in any
 * worker ends the whole process, so the workers tell each other over a BroadcastChannel: each
 * announces itself at start (and answers a newcomer's announcement), announces when it has
 * drained, and the process exits 0 once every worker it knows of has drained, or when `graceMs`
 * more have passed (a worker that cannot drain must not keep the process alive).
 */
export function drainWorkersOnSignal(opts: {
  drain: () => Promise<void>;
  /** Requests this worker is answering now. */
  inFlight: () => number;
  graceMs: number;
  log: (entry: Record<string, unknown>) => void;
  /** The channel's name (tests run several servers in one process). */
  channel?: string;
}): void {
  const me: string = crypto.randomUUID();
  const channel = new BroadcastChannel(opts.channel ?? "inbound-auth-server:drain");
  const known = new Set<string>([me]);
  const drained = new Set<string>();
  let started = false;
  const exitIfAllDrained = () => {
    if (!drained.has(me)) return;
    for (const worker of known) if (!drained.has(worker)) return;
    Deno.exit(0);
  };
  channel.onmessage = (e: MessageEvent<{ kind: "hello" | "drained"; from: string }>) => {
    const { kind, from } = e.data;
    if (!known.has(from)) {
      known.add(from);
      if (kind === "hello") channel.postMessage({ kind: "hello", from: me });
    }
    if (kind === "drained") drained.add(from);
    exitIfAllDrained();
  };
  // A channel with a listener keeps the event loop alive; that is what a server does anyway.
  channel.postMessage({ kind: "hello", from: me });
  const onSignal = async () => {
    if (started) return;
    started = true;
    const deadline = Date.now() + opts.graceMs;
    setTimeout(() => Deno.exit(0), 2 * opts.graceMs);
    while (opts.inFlight() > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    try {
      await opts.drain();
    } catch (err) {
      opts.log({ level: "error", msg: "shutdown: drain failed", error: String(err) });
    }
    drained.add(me);
    channel.postMessage({ kind: "drained", from: me });
    exitIfAllDrained();
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, onSignal);
}
