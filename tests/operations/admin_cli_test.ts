/**
 * The admin CLI as an operator meets it: help for the CLI and each command, the KV it opened
 * named on stderr, a missing KV file refused instead of created, the password prompt (piped and
 * on a terminal), a KV path outside ./data, and the server's real listen address.
 */
import assert from "node:assert/strict";
import { COMMANDS } from "../../admin/commands.ts";
import { verifyStore } from "../../admin/verify.ts";
import {
  createAccountWithKey,
  makeTestApp,
  removeKvFile,
  runAdminCli,
  startServer,
  tempKvPath,
} from "../_helpers.ts";

const exists = (path: string) => Deno.stat(path).then(() => true, () => false);

Deno.test("the admin CLI explains itself and each command without opening a KV", async (t) => {
  const kvPath = await tempKvPath();
  const env = { DENO_KV_PATH: kvPath };
  try {
    for (const args of [["--help"], ["-h"], ["help"]]) {
      await t.step(`${args[0]} prints every command and the environment it reads`, async () => {
        const out = await runAdminCli(args, env);
        assert.equal(out.code, 0, out.stderr);
        for (const c of ["user:create", "key:list", "verify", "DENO_KV_PATH"]) {
          assert.match(out.stdout, new RegExp(c));
        }
      });
    }
    for (const args of [["help", "verify"], ["verify", "--help"], ["verify", "-h"]]) {
      await t.step(`${args.join(" ")} describes verify and its quota variable`, async () => {
        const out = await runAdminCli(args, env);
        assert.equal(out.code, 0, out.stderr);
        assert.match(out.stdout, /usage: admin verify/);
        assert.match(out.stdout, /MAX_DOMAINS_PER_ACCOUNT/);
      });
    }
    await t.step("user:create --help names its flags and the hashing cost variable", async () => {
      const out = await runAdminCli(["user:create", "--help"], env);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /--email/);
      assert.match(out.stdout, /--password/);
      assert.match(out.stdout, /PASSWORD_HASH_COST/);
    });
    await t.step("help for an unknown command is a usage error", async () => {
      const out = await runAdminCli(["help", "key:explode"], env);
      assert.equal(out.code, 2);
      assert.match(out.stderr, /unknown command key:explode/);
    });
    await t.step("none of that created the KV file", async () => {
      assert.equal(await exists(kvPath), false);
    });
  } finally {
    await removeKvFile(kvPath);
  }
});

Deno.test("every admin command names its KV on stderr, and only user:create creates one", async (t) => {
  const kvPath = await tempKvPath();
  const env = { DENO_KV_PATH: kvPath };
  try {
    for (const args of [["key:list", "--email", "a@example.com"], ["verify"]]) {
      await t.step(`${args[0]} refuses a KV file that does not exist`, async () => {
        const out = await runAdminCli(args, env);
        assert.equal(out.code, 1, out.stderr);
        assert.match(out.stderr, new RegExp(`no KV file at ${kvPath.replaceAll(".", "\\.")}`));
        assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
        assert.equal(out.stdout, "");
        assert.equal(await exists(kvPath), false);
      });
    }
    await t.step("user:create reads a piped password and names the KV it opened", async () => {
      const out = await runAdminCli(
        ["user:create", "--email", "piped@example.com"],
        env,
        "a piped password of some length\n",
      );
      assert.equal(out.code, 0, out.stderr);
      assert.equal(JSON.parse(out.stdout).email, "piped@example.com");
      assert.match(out.stderr, new RegExp(`kv: ${kvPath.replaceAll(".", "\\.")}`));
      assert.doesNotMatch(out.stderr + out.stdout, /piped password/);
    });
    await t.step("verify then runs on the existing file and names it", async () => {
      const out = await runAdminCli(["verify"], env);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stderr, new RegExp(`kv: ${kvPath.replaceAll(".", "\\.")}`));
      assert.equal(JSON.parse(out.stdout).scanned.accounts, 1);
    });
  } finally {
    await removeKvFile(kvPath);
  }
});

Deno.test("on a terminal user:create prompts for the password and does not echo it", async (t) => {
  const script = await Deno.stat("/usr/bin/script").then(() => true, () => false);
  if (!script) return; // util-linux's `script` gives the CLI a terminal; without it, nothing to run
  const kvPath = await tempKvPath();
  const password = "terminal-typed secret 123";
  try {
    const child = new Deno.Command("/usr/bin/script", {
      args: [
        "-qec",
        `${Deno.execPath()} task -q admin user:create --email tty@example.com`,
        "/dev/null",
      ],
      env: { DENO_KV_PATH: kvPath, PASSWORD_HASH_COST: "10", NO_COLOR: "1" },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let text = "";
    const decoder = new TextDecoder();
    const waiters: { re: RegExp; resolve: () => void }[] = [];
    const pump = (async () => {
      for await (const chunk of child.stdout) {
        text += decoder.decode(chunk, { stream: true });
        for (const w of waiters) if (w.re.test(text)) w.resolve();
      }
    })();
    const waitFor = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        if (re.test(text)) return resolve();
        waiters.push({ re, resolve });
        setTimeout(() => reject(new Error(`no ${re} in:\n${text}`)), 30_000);
      });
    const w = child.stdin.getWriter();
    const enc = new TextEncoder();
    await waitFor(/Password for tty@example\.com/);
    // Typed only once the prompt is up, so raw mode (echo off) is already on.
    await w.write(enc.encode(`${password}\r`));
    await waitFor(/again/);
    await w.write(enc.encode(`${password}\r`));
    await waitFor(/"email":"tty@example\.com"/);
    await w.close();
    const status = await child.status;
    await pump;
    await child.stderr.cancel();
    await t.step("the account is created", () => assert.equal(status.code, 0, text));
    await t.step("the typed password never appears on the terminal", () => {
      assert.equal(text.includes(password), false, text);
    });
  } finally {
    await removeKvFile(kvPath);
  }
});

Deno.test("a KV path outside ./data is refused in one line that names the flags to use", async (t) => {
  const dir = await Deno.makeTempDir();
  const env = { DENO_KV_PATH: `${dir}/kv.sqlite3`, PORT: "0", NO_COLOR: "1" };
  try {
    await t.step("deno task start", async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["task", "-q", "start"],
        env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr).trim();
      assert.equal(out.code, 1, stderr);
      assert.equal(stderr.split("\n").length, 1, stderr);
      assert.match(stderr, new RegExp(`--allow-read=${dir} --allow-write=${dir}`));
      assert.doesNotMatch(stderr, /NotCapable|^\s+at /m);
    });
    await t.step("deno task admin", async () => {
      const out = await runAdminCli(["verify"], env);
      assert.equal(out.code, 1, out.stderr);
      assert.equal(out.stderr.trim().split("\n").length, 1, out.stderr);
      assert.match(out.stderr, new RegExp(`--allow-read=${dir} --allow-write=${dir}`));
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the start-up line prints the address actually bound", async () => {
  const kvPath = await tempKvPath();
  const server = await startServer({ DENO_KV_PATH: kvPath, HOSTNAME: "127.0.0.1" });
  try {
    const line = server.output().split("\n").find((l) => l.includes('"msg":"listening"'))!;
    const { url, hostname } = JSON.parse(line);
    assert.equal(hostname, "127.0.0.1");
    assert.equal(url, `http://127.0.0.1:${server.port}`);
  } finally {
    await server.stop();
    await removeKvFile(kvPath);
  }
});

Deno.test("the dev task listens on 127.0.0.1 and the start task on every interface", async () => {
  const tasks =
    JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url))).tasks;
  assert.match(tasks.dev, /^HOSTNAME=127\.0\.0\.1 deno run /);
  assert.doesNotMatch(tasks.start, /HOSTNAME=/); // lib/config.ts's default, 0.0.0.0
});

Deno.test("verify reports progress while it walks and the walk's totals at the end", async () => {
  await using kv = await Deno.openKv(":memory:");
  const h = await makeTestApp({ kv });
  for (let i = 0; i < 3; i++) await createAccountWithKey(h.kv, h.clock);
  const seen: { entries: number; accounts: number }[] = [];
  const report = await verifyStore(h.kv, { onProgress: (s) => seen.push(s) });
  assert.deepEqual(report.violations, []);
  assert.deepEqual(seen.at(-1), {
    entries: report.scanned.entries,
    accounts: report.scanned.accounts,
  });
  assert.equal(report.scanned.accounts, 3);
  await h.app.idle();
});

// Issue 22 item 14: migrate was missing from --help, and every mistake printed all 16 usages.
Deno.test("--help lists every command; a mistake prints the command's own usage", async (t) => {
  const kvPath = await tempKvPath();
  const env = { DENO_KV_PATH: kvPath };
  try {
    await t.step("--help names every command in COMMANDS, migrate included", async () => {
      const out = await runAdminCli(["--help"], env);
      assert.equal(out.code, 0, out.stderr);
      for (const name of Object.keys(COMMANDS)) {
        assert.ok(
          out.stdout.includes(`admin ${name} `) || out.stdout.includes(`admin ${name}\n`),
          name,
        );
      }
    });
    await t.step("a bad flag prints the message and key:create's usage line only", async () => {
      const out = await runAdminCli(["key:create", "--email", "a@b.co"], env);
      assert.equal(out.code, 2);
      assert.equal(
        out.stderr,
        "error: --name is required\n" +
          `usage: ${COMMANDS["key:create"].usage}\n(admin help key:create for its flags)\n`,
      );
    });
    await t.step("an unknown command still prints the whole list", async () => {
      const out = await runAdminCli(["key:explode"], env);
      assert.equal(out.code, 2);
      assert.match(out.stderr, /unknown command key:explode/);
      assert.match(out.stderr, /admin migrate/);
      assert.match(out.stderr, /admin user:suspend/);
    });
    await t.step("an unknown scope is refused naming the scopes that exist", async () => {
      const out = await runAdminCli(
        ["key:create", "--email", "a@b.co", "--name", "n", "--scopes", "domains:read,mail:send"],
        env,
      );
      assert.equal(out.code, 2);
      assert.match(
        out.stderr,
        /unknown scope mail:send \(one or more of domains:read, domains:write, endpoints:read, endpoints:write, email-addresses:read, email-addresses:write, audit:read\)/,
      );
      assert.equal(await exists(kvPath), false, "no KV was opened for bad arguments");
    });
  } finally {
    await removeKvFile(kvPath);
  }
});

Deno.test("key:create --scopes and --expires-in-days make the key the API would make", async () => {
  const kvPath = await tempKvPath();
  const env = { DENO_KV_PATH: kvPath };
  try {
    const email = "scopes@example.com";
    const made = await runAdminCli(
      ["user:create", "--email", email, "--password", "correct horse battery"],
      env,
    );
    assert.equal(made.code, 0, made.stderr);
    const key = await runAdminCli(
      [
        "key:create",
        "--email",
        email,
        "--name",
        "read-only",
        "--scopes",
        "domains:read, audit:read",
        "--expires-in-days",
        "30",
      ],
      env,
    );
    assert.equal(key.code, 0, key.stderr);
    assert.match(key.stdout.trim(), /^inb_\S+$/);
    const list = await runAdminCli(["key:list", "--email", email], env);
    assert.equal(list.code, 0, list.stderr);
    const view = JSON.parse(list.stdout.trim());
    assert.deepEqual(view.scopes, ["domains:read", "audit:read"]);
    const days = (Date.parse(view.expiresAt) - Date.parse(view.createdAt)) / 86_400_000;
    assert.equal(Math.round(days), 30);
  } finally {
    await removeKvFile(kvPath);
  }
});

// Issue 22 item 14 asked whether verify still calls the server's own records "unrecognised"
// (usage counters were, before issue 20): every record a real server writes is recognised.
Deno.test("verify recognises every record a running server wrote", async () => {
  const kvPath = await tempKvPath();
  const kv = await Deno.openKv(kvPath);
  const owner = await createAccountWithKey(kv, Date.now);
  kv.close();
  const server = await startServer({
    DENO_KV_PATH: kvPath,
    LOG_LEVEL: "silent",
    USAGE_FLUSH_MS: "100",
  });
  try {
    const auth = { Authorization: `Bearer ${owner.key}`, "Content-Type": "application/json" };
    const created = await fetch(`${server.url}/api/e2/domains`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ domain: "verify-me.example" }),
    });
    assert.equal(created.status, 201, await created.text());
    for (const path of ["/api/e2/domains", "/api/e2/domains/dom_missing"]) {
      await (await fetch(`${server.url}${path}`, { headers: auth })).body?.cancel();
    }
    await (await fetch(`${server.url}/api/e2/domains`, {
      headers: { Authorization: "Bearer inb_wrong" },
    })).body?.cancel();
    await new Promise((r) => setTimeout(r, 300)); // a usage flush
  } finally {
    await server.stop();
  }
  try {
    await using store = await Deno.openKv(kvPath);
    const usage = await Array.fromAsync(store.list({ prefix: [owner.userId, "usage"] }));
    assert.ok(usage.length > 0, "the server recorded usage");
    const report = await verifyStore(store);
    assert.equal(report.unrecognised.count, 0, JSON.stringify(report.unrecognised));
    assert.deepEqual(report.violations, []);
  } finally {
    await removeKvFile(kvPath);
  }
});
