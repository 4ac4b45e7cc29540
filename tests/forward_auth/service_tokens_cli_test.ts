/**
 * Service tokens through the admin CLI (a process of its own on the server's KV file): created and
 * shown once, listed without secrets, revoked for every process at once; and the server refusing
 * to start, in one line, with a bad rules file.
 */
import assert from "node:assert/strict";
import { removeKvFile, runAdminCli, startServer, startTaskArgs, tempKvPath } from "../_helpers.ts";
import { createAccountWithKey } from "../_helpers.ts";
import { openFwdApp, verify } from "./_fixtures.ts";

Deno.test("admin service-token:create, :list and :revoke", async (t) => {
  const kvPath = await tempKvPath();
  const env = { DENO_KV_PATH: kvPath };
  (await Deno.openKv(kvPath)).close();
  try {
    await using ctx = await openFwdApp({ kv: await Deno.openKv(kvPath) });
    const { key } = await createAccountWithKey(ctx.kv, ctx.clock);
    let token = "";

    await t.step("create prints the token alone, once", async () => {
      const out = await runAdminCli([
        "service-token:create",
        "--name",
        "billing",
        "--may-assert-ip",
      ], env);
      assert.equal(out.code, 0, out.stderr);
      assert.match(out.stdout, /^inbsvc_[0-9A-Za-z]{43}\n$/);
      token = out.stdout.trim();
    });

    let id = "";
    await t.step("list shows it without the token", async () => {
      const out = await runAdminCli(["service-token:list"], env);
      assert.equal(out.code, 0, out.stderr);
      assert.ok(!out.stdout.includes(token));
      const lines = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(lines.length, 1);
      assert.equal(lines[0].name, "billing");
      assert.equal(lines[0].mayAssertIp, true);
      assert.ok(token.startsWith(lines[0].start));
      id = lines[0].id;
    });

    await t.step("the token authenticates the verify call", async () => {
      const r = await verify(ctx.app, token, { key });
      assert.equal(r.status, 200);
      assert.equal(r.body.valid, true);
    });

    await t.step("admin verify accepts a store holding service tokens", async () => {
      const out = await runAdminCli(["verify"], env);
      assert.equal(out.code, 0, out.stdout + out.stderr);
    });

    await t.step("revoke: the running server refuses the token on the next call", async () => {
      const out = await runAdminCli(["service-token:revoke", "--id", id], env);
      assert.equal(out.code, 0, out.stderr);
      assert.equal((await verify(ctx.app, token, { key })).status, 401);
      const again = await runAdminCli(["service-token:revoke", "--id", id], env);
      assert.equal(again.code, 1);
    });

    await t.step("bad arguments are usage errors", async () => {
      assert.equal((await runAdminCli(["service-token:create"], env)).code, 2);
      assert.equal((await runAdminCli(["service-token:revoke"], env)).code, 2);
    });
  } finally {
    await removeKvFile(kvPath);
  }
});

Deno.test("a bad FORWARD_AUTH_RULES file stops the server with one line", async (t) => {
  const kvPath = await tempKvPath();
  const rulesPath = kvPath.replace(/\.sqlite3$/, ".rules.json");
  await Deno.writeTextFile(
    rulesPath,
    JSON.stringify({
      scopes: ["orders:read"],
      rules: [{ name: "a", method: "GET", path: "/x", scope: "nope" }],
    }),
  );
  try {
    await t.step("refused: exit 1, the file and the JSON path named", async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: await startTaskArgs(),
        env: {
          DENO_KV_PATH: kvPath,
          FORWARD_AUTH_RULES: rulesPath,
          PORT: "0",
          HOSTNAME: "127.0.0.1",
        },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 1, stderr);
      assert.equal(stderr.trim().split("\n").length, 1, stderr);
      assert.match(
        stderr,
        /^configuration error: FORWARD_AUTH_RULES .*\.rules\.json: \$\.rules\[0\]\.scope: /,
      );
    });

    await t.step("a good file: the server starts and answers by it", async () => {
      await Deno.writeTextFile(
        rulesPath,
        JSON.stringify({
          rules: [{ name: "health", method: "GET", path: "/health", public: true }],
        }),
      );
      const server = await startServer({ DENO_KV_PATH: kvPath, FORWARD_AUTH_RULES: rulesPath }, {
        direct: true,
      });
      try {
        const res = await fetch(`${server.url}/api/auth/forward`, {
          headers: { "X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/health" },
        });
        await res.body?.cancel();
        assert.equal(res.status, 200);
        assert.equal(res.headers.get("X-Auth-Rule"), "health");
      } finally {
        await server.stop();
      }
    });
  } finally {
    await Deno.remove(rulesPath).catch(() => {});
    await removeKvFile(kvPath);
  }
});
