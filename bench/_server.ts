/** For the benchmark scripts: spawn a server, read its CPU time, run wrk and read its figures. */
const ROOT = new URL("..", import.meta.url).pathname;

export type Server = { port: number; pid: number; stop(): Promise<void> };

/** Clock ticks per second of /proc's CPU times (`getconf CLK_TCK`; 100 on Linux as a rule). */
let clockTicks: number | undefined;

async function ticksPerSecond(): Promise<number> {
  if (clockTicks === undefined) {
    const out = await new Deno.Command("getconf", { args: ["CLK_TCK"] }).output().catch(() => null);
    const n = out?.success ? Number(new TextDecoder().decode(out.stdout).trim()) : NaN;
    clockTicks = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return clockTicks;
}

/**
 * CPU time (user + system) the process has used, in microseconds: /proc/<pid>/stat's utime and
 * stime, which count every thread of the process (the live ones and those that have exited), in
 * clock ticks (`getconf CLK_TCK`, 10 ms at 100 Hz: measure over enough requests).
 */
export async function cpuMicros(pid: number): Promise<number> {
  // Through `cat`: Deno reads /proc/<pid> only with --allow-all, which the bench does not take.
  const out = await new Deno.Command("cat", { args: [`/proc/${pid}/stat`] }).output();
  const stat = new TextDecoder().decode(out.stdout);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of proc(5), utime and stime.
  return (Number(fields[11]) + Number(fields[12])) * (1e6 / await ticksPerSecond());
}

/** Spawns a server and waits for its `"msg":"listening"` line with the port. */
export async function spawn(args: string[], env: Record<string, string>): Promise<Server> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { PORT: "0", HOSTNAME: "127.0.0.1", NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${text}`)), 30_000);
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) {
        text += decoder.decode(chunk, { stream: true });
        const m = /"msg":"listening"[^\n]*"port":(\d+)/.exec(text);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
        if (text.length > 100_000) text = text.slice(-10_000);
      }
    };
    pump(child.stdout);
    pump(child.stderr);
    child.status.then((s) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${s.code}:\n${text}`));
    });
  });
  return {
    port,
    pid: child.pid,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
      await child.status;
    },
  };
}

/** `deno task start`'s arguments after `deno`, from deno.json. */
export async function startTaskArgs(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const [deno, ...args] = String(config.tasks.start).split(/\s+/);
  if (deno !== "deno") throw new Error("the start task does not begin with `deno`");
  return args;
}

/** The line the bench Lua scripts print in `done` (bench/*.lua). */
export type WrkResult = {
  requests: number;
  duration_us: number;
  non2xx: number;
  socket_errors: number;
  p50_us: number;
  p99_us: number;
  max_us: number;
};

/** Runs wrk with one of the bench Lua scripts and returns its figures (and req/s). */
export async function runWrk(opts: {
  url: string;
  lua: string;
  seconds: number;
  connections: number;
  threads?: number;
  timeoutS?: number;
  env?: Record<string, string>;
}): Promise<WrkResult & { rps: number }> {
  const out = await new Deno.Command("wrk", {
    args: [
      `-t${opts.threads ?? 1}`,
      `-c${opts.connections}`,
      `-d${opts.seconds}s`,
      "--timeout",
      `${opts.timeoutS ?? 5}s`,
      "-s",
      opts.lua,
      opts.url,
    ],
    env: opts.env ?? {},
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const m = /WRK_RESULT (\{.*\})/.exec(text);
  if (!out.success || !m) throw new Error(`wrk failed:\n${text}`);
  const r: WrkResult = JSON.parse(m[1]);
  return { ...r, rps: r.requests / (r.duration_us / 1e6) };
}

/** Removes a SQLite KV file and its -shm and -wal companions (missing ones are fine). */
export async function removeKvFiles(path: string): Promise<void> {
  for (const suffix of ["", "-shm", "-wal"]) await Deno.remove(path + suffix).catch(() => {});
}
