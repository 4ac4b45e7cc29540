/**
 * Running out of file descriptors (a flood of idle connections) must not kill the server: Deno's
 * accept loop ends on EMFILE, and lib/serve.ts listens again, so the server answers once the idle
 * connections are gone (before: the process exited with "Too many open files").
 */
import assert from "node:assert/strict";
import { removeKvFile, startTaskArgs, tempKvPath } from "../_helpers.ts";

Deno.test("a server out of file descriptors stays up and answers again once the idle connections close", async () => {
  const path = await tempKvPath();
  const args = await startTaskArgs();
  const child = new Deno.Command("bash", {
    // A low descriptor limit for this server only, so a few hundred connections exhaust it.
    args: ["-c", 'ulimit -n 128 && exec "$0" "$@"', Deno.execPath(), ...args],
    env: {
      PORT: "0",
      HOSTNAME: "127.0.0.1",
      DENO_KV_PATH: path,
      PASSWORD_HASH_COST: "10",
      NO_COLOR: "1",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const decoder = new TextDecoder();
  let exited: Deno.CommandStatus | null = null;
  child.status.then((s) => exited = s);
  const pumps = [child.stdout, child.stderr].map(async (stream) => {
    for await (const chunk of stream) output += decoder.decode(chunk, { stream: true });
  });
  const conns: Deno.Conn[] = [];
  try {
    const started = Date.now();
    let port = 0;
    while (!port && Date.now() - started < 30_000 && !exited) {
      port = Number(/"msg":"listening"[^\n]*"port":(\d+)/.exec(output)?.[1] ?? 0);
      if (!port) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(port, `server did not start:\n${output}`);

    for (let i = 0; i < 300; i++) {
      try {
        conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
      } catch {
        break; // the listener is gone for now: the descriptors are exhausted
      }
    }
    // Give the accept loop time to run into the limit.
    const until = Date.now() + 2000;
    while (Date.now() < until && !/stopped accepting/.test(output) && !exited) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.match(output, /Too many open files|stopped accepting/, "the limit was reached");
    assert.equal(exited, null, `the server exited:\n${output}`);

    for (const c of conns.splice(0)) c.close();
    let status = 0;
    const deadline = Date.now() + 20_000;
    while (status !== 200 && Date.now() < deadline && !exited) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/healthz`);
        status = res.status;
        await res.body?.cancel();
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.equal(status, 200, `no answer after the connections closed:\n${output.slice(-2000)}`);
    assert.equal(exited, null);
  } finally {
    for (const c of conns) c.close();
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await Promise.all(pumps);
    await removeKvFile(path);
  }
});
