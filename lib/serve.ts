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

/**
 * The one line to print when the first listen fails for a reason the operator can fix, or null
 * for anything else (which keeps its stack trace). An address already in use is the usual one:
 * a second `deno task dev`, or another program on 8000; Deno's raw `AddrInUse` trace names
 * neither the port nor the setting that moves it.
 */
export function listenProblem(
  err: unknown,
  addr: { hostname: string; port: number },
): string | null {
  if (err instanceof Deno.errors.AddrInUse) {
    return `port ${addr.port} is in use on ${addr.hostname}: stop the other server, or set ` +
      `PORT to a free port (e.g. PORT=${addr.port === 65535 ? 8001 : addr.port + 1})`;
  }
  if (err instanceof Deno.errors.AddrNotAvailable) {
    return `cannot listen on ${addr.hostname}: no network interface has that address ` +
      "(set HOSTNAME to one of this machine's addresses, or 0.0.0.0 for every interface)";
  }
  return null;
}

/**
 * The human line printed after the JSON start-up line: where to point a browser. An address
 * bound on every interface (0.0.0.0, ::) is shown as localhost, which a browser can open;
 * PUBLIC_URL wins when set, as that is where the site is reached.
 */
export function startHint(opts: {
  hostname: string;
  port: number;
  publicUrl: string | null;
  signUpOpen: boolean;
}): string {
  const host = opts.hostname === "0.0.0.0" || opts.hostname === "::"
    ? "localhost"
    : opts.hostname.includes(":")
    ? `[${opts.hostname}]`
    : opts.hostname;
  const origin = (opts.publicUrl ?? `http://${host}:${opts.port}`).replace(/\/$/, "");
  if (!opts.signUpOpen) {
    return `Inbound is running: open ${origin}/sign-in (sign-up is closed: create accounts ` +
      "with `deno task admin user:create`)";
  }
  return `Inbound is running: open ${origin}/sign-up to create an account ` +
    `(or ${origin}/sign-in with one you have)`;
}
