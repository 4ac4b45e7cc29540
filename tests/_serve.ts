/**
 * `deno task serve` (deno serve --parallel) as a child process, for the tests that drive it
 * (tests/operations/serve_parallel_test.ts, tests/api_keys/attack_hotpath_drain_test.ts).
 */

/** A free loopback port (deno serve takes PORT; it cannot report an ephemeral one per worker). */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = l.addr as Deno.NetAddr;
  l.close();
  return port;
}

export type Serve = {
  url: string;
  port: number;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, without waiting (the drain starts). */
  kill(): void;
  /** Resolves with the exit status once the process and its output have ended. */
  exited: Promise<Deno.CommandStatus>;
  /** SIGTERM, then the exit status. */
  stop(): Promise<Deno.CommandStatus>;
};

/** Runs `deno task serve` and waits for its "listening" line. */
export async function startServe(env: Record<string, string>): Promise<Serve> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "serve"],
    env: { HOSTNAME: "127.0.0.1", PASSWORD_HASH_COST: "10", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const { promise: listening, resolve, reject } = Promise.withResolvers<number>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      const m = /"msg":"listening"[^\n]*"port":(\d+)/.exec(text);
      if (m) resolve(Number(m[1]));
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const exited = child.status.then(async (s) => {
    reject(new Error(`deno task serve exited with ${s.code} before listening:\n${text}`));
    await pumps;
    return s;
  });
  const timer = setTimeout(
    () => reject(new Error(`deno task serve did not start:\n${text}`)),
    30_000,
  );
  let port: number;
  try {
    port = await listening;
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const kill = () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
  };
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    output: () => text,
    kill,
    exited,
    stop: () => {
      kill();
      return exited;
    },
  };
}
