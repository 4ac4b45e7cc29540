/**
 * Issue 22 item 7, a new user's first start: the start-up line says where to open the site, a
 * port in use is one line naming PORT (not a stack trace), "/" sends a browser that never signed
 * in here to sign up, and SIGTERM ends `deno task dev` with its file watcher.
 */
import assert from "node:assert/strict";
import { listenProblem, startHint } from "../../lib/serve.ts";
import { makeTestApp, removeKvFile, startServer, tempKvPath, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, Jar, json } from "../sessions_helpers.ts";

const decoder = new TextDecoder();

Deno.test("the start-up hint names the page to open", async (t) => {
  await t.step("a fresh server: sign up, on the address a browser can open", () => {
    const hint = startHint({ hostname: "0.0.0.0", port: 8000, publicUrl: null, signUpOpen: true });
    assert.equal(
      hint,
      "Inbound is running: open http://localhost:8000/sign-up to create an account " +
        "(or http://localhost:8000/sign-in with one you have)",
    );
  });
  await t.step("PUBLIC_URL wins; closed sign-up points at sign-in and the admin CLI", () => {
    const hint = startHint({
      hostname: "127.0.0.1",
      port: 8000,
      publicUrl: "https://mail.example.com",
      signUpOpen: false,
    });
    assert.match(hint, /open https:\/\/mail\.example\.com\/sign-in \(sign-up is closed/);
    assert.match(hint, /deno task admin user:create/);
  });
  await t.step("an IPv6 address is bracketed", () => {
    const hint = startHint({ hostname: "::1", port: 9, publicUrl: null, signUpOpen: true });
    assert.match(hint, /open http:\/\/\[::1\]:9\/sign-up/);
  });
  await t.step("the real server prints it after the JSON start-up lines", async () => {
    const kvPath = await tempKvPath();
    const server = await startServer({ DENO_KV_PATH: kvPath, LOG_LEVEL: "silent" });
    try {
      const deadline = Date.now() + 5000;
      while (!server.output().includes("Inbound is running") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      const lines = server.output().split("\n");
      const json = lines.findIndex((l) => l.includes('"msg":"listening"'));
      // A JSON line like every other the server prints (log collectors parse them all).
      const hint = lines.findIndex((l) => l.includes('"msg":"Inbound is running: '));
      assert.ok(json >= 0 && hint > json, server.output());
      assert.equal(
        JSON.parse(lines[hint]).msg,
        `Inbound is running: open ${server.url}/sign-up to create an account ` +
          `(or ${server.url}/sign-in with one you have)`,
      );
    } finally {
      await server.stop();
      await removeKvFile(kvPath);
    }
  });
});

Deno.test("a port in use is one line naming the port and PORT, exit 1", async (t) => {
  await t.step("listenProblem names the port; other errors keep their trace", () => {
    const inUse = new Deno.errors.AddrInUse("Address already in use (os error 98)");
    assert.equal(
      listenProblem(inUse, { hostname: "127.0.0.1", port: 8000 }),
      "port 8000 is in use on 127.0.0.1: stop the other server, or set PORT to a free port " +
        "(e.g. PORT=8001)",
    );
    assert.equal(listenProblem(new Error("other"), { hostname: "127.0.0.1", port: 8000 }), null);
  });
  await t.step("deno task start on a taken port", async () => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    const kvPath = await tempKvPath();
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "start"],
        env: { PORT: String(port), HOSTNAME: "127.0.0.1", DENO_KV_PATH: kvPath, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = decoder.decode(out.stderr);
      assert.equal(out.code, 1, stderr);
      assert.equal(
        stderr,
        `error: port ${port} is in use on 127.0.0.1: stop the other server, or set PORT to a ` +
          `free port (e.g. PORT=${port + 1})\n`,
      );
      assert.doesNotMatch(decoder.decode(out.stdout), /listening/);
    } finally {
      taken.close();
      await removeKvFile(kvPath);
    }
  });
});

Deno.test("/ sends a browser that never signed in here to sign up, a returning one to sign in", async (t) => {
  const ctx = await makeTestApp();
  const closed = await makeTestApp({ config: { signUp: { open: false, emailDomains: null } } });
  const home = async (app = ctx.app, jar?: Jar) => {
    const res = await app.request(`${BASE}/`, jar?.init() ?? {});
    await res.body?.cancel();
    assert.equal(res.status, 303);
    return res.headers.get("Location");
  };
  try {
    const jar = new Jar();
    await t.step("a first visit goes to sign up", async () => {
      assert.equal(await home(), "/sign-up");
    });
    await t.step("signed in, to the dashboard", async () => {
      const res = jar.take(
        await ctx.app.request(
          `${BASE}/api/auth/sign-up`,
          json({ email: freshEmail(), password: TEST_PASSWORD }),
        ),
      );
      assert.equal(res.status, 201, await res.text());
      assert.equal(await home(ctx.app, jar), "/settings/api-keys");
    });
    await t.step("signed out, the device cookie remembers: to sign in", async () => {
      const res = jar.take(await ctx.app.request(`${BASE}/api/auth/sign-out`, jar.init(json({}))));
      const body = await res.text();
      assert.ok(res.status < 300, `${res.status} ${body}`);
      assert.equal(await home(ctx.app, jar), "/sign-in");
    });
    await t.step("with sign-up closed, to sign in", async () => {
      assert.equal(await home(closed.app), "/sign-in");
    });
  } finally {
    await ctx.close();
    await closed.close();
  }
});

/** `pid` and every process below it, from `ps` (Linux). */
function processTree(pid: number): number[] {
  const out = new Deno.Command("ps", { args: ["-eo", "pid=,ppid="] }).outputSync();
  const rows = decoder.decode(out.stdout).trim().split("\n").map((l) =>
    l.trim().split(/\s+/).map(Number)
  );
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) {
    for (const [child, parent] of rows) if (parent === tree[i]) tree.push(child);
  }
  return tree;
}

/** Still running: present in /proc and not a zombie waiting to be reaped. */
function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

Deno.test("SIGTERM ends deno task dev, file watcher included", async () => {
  const kvPath = await tempKvPath();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["task", "dev"],
    env: {
      PORT: "0",
      DENO_KV_PATH: kvPath,
      NO_COLOR: "1",
      PASSWORD_HASH_COST: "10",
      LOG_LEVEL: "silent",
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const pump = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) text += decoder.decode(c, { stream: true });
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let tree: number[] = [];
  try {
    const deadline = Date.now() + 30_000;
    while (!text.includes('"msg":"listening"')) {
      assert.ok(Date.now() < deadline, `dev task did not start:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    tree = processTree(child.pid);
    assert.ok(tree.length >= 2, "deno task and its deno run --watch");
    child.kill("SIGTERM");
    const gone = Date.now() + 5000;
    while (tree.some(alive) && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(tree.filter(alive), [], `still running after 5 s:\n${text}`);
    await child.status;
  } finally {
    for (const pid of tree.filter(alive).reverse()) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await pumps;
    await removeKvFile(kvPath);
  }
});
