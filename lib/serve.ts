/**
 * `Deno.serve` that survives running out of file descriptors. In Deno 2.9.6, when accepting a
 * connection fails with EMFILE ("Too many open files"), the server's accept loop ends: its
 * `finished` promise rejects and nothing listens any more, and with nobody handling that rejection
 * the process dies (measured: a server under `ulimit -n 256` exited after 224 idle connections
 * from one client; BENCHMARKS.md "Slow clients"). Here the loop is restarted on the same port
 * after a short pause instead, repeatedly while descriptors stay exhausted, so the server answers
 * again as soon as the idle connections are gone (connections already open keep being served by
 * the old loop's handlers). A reverse proxy's connection limit is still the real defence
 * (README "Slow clients and reverse proxies").
 */

export type ResilientServeOptions = {
  port: number;
  hostname: string;
  /** Called once, for the first listen (a re-listen after EMFILE is reported through `log`). */
  onListen?: (addr: { hostname: string; port: number }) => void;
  log?: (entry: Record<string, unknown>) => void;
  /** Pause before listening again; doubles up to 5 s while listening keeps failing. */
  relistenDelayMs?: number;
};

export type ResilientServer = {
  /** Stops listening for good and resolves when the current server has shut down. */
  shutdown(): Promise<void>;
};

const MAX_RELISTEN_DELAY_MS = 5000;

export function serveResilient(
  opts: ResilientServeOptions,
  handler: Deno.ServeHandler,
): ResilientServer {
  let current: Deno.HttpServer<Deno.NetAddr>;
  let stopping = false;
  let port = opts.port;
  const firstDelay = opts.relistenDelayMs ?? 200;

  const listen = (first: boolean) => {
    current = Deno.serve({
      port,
      hostname: opts.hostname,
      onListen: (addr) => {
        port = addr.port;
        if (first) opts.onListen?.(addr);
        else opts.log?.({ level: "warn", msg: "accepting connections again", port });
      },
    }, handler);
    current.finished.catch(async (err) => {
      if (stopping) return;
      opts.log?.({
        level: "error",
        msg: "stopped accepting connections; listening again shortly",
        error: err instanceof Error ? err.message : String(err),
      });
      for (let delay = firstDelay;; delay = Math.min(MAX_RELISTEN_DELAY_MS, delay * 2)) {
        await new Promise((r) => setTimeout(r, delay));
        if (stopping) return;
        try {
          listen(false);
          return;
        } catch (e) {
          opts.log?.({
            level: "error",
            msg: "listening again failed",
            error: e instanceof Error ? e.message : String(e),
          });
        }
      }
    });
  };
  listen(true);

  return {
    async shutdown() {
      stopping = true;
      await current.shutdown();
    },
  };
}
