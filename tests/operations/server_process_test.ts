/**
 * The real thing: `deno task start` as a child process, `deno task admin` on the same KV file,
 * and the seed's examples over HTTP.
 */
import assert from "node:assert/strict";
import { removeKvFile, runAdminCli, startServer, tempKvPath } from "../_helpers.ts";

Deno.test("the seed's walk-through works against the real server process", async (t) => {
  const kvPath = await tempKvPath();
  const env = { DENO_KV_PATH: kvPath };
  const server = await startServer(env);
  try {
    let key = "";
    await t.step("the admin CLI creates an account and prints a key alone on stdout", async () => {
      const user = await runAdminCli(
        ["user:create", "--email", "seed@example.com"],
        env,
        "a long enough password\n",
      );
      assert.equal(user.code, 0, user.stderr);
      assert.equal(JSON.parse(user.stdout).email, "seed@example.com");
      const created = await runAdminCli(
        ["key:create", "--email", "seed@example.com", "--name", "production"],
        env,
      );
      assert.equal(created.code, 0, created.stderr);
      key = created.stdout.trim();
      assert.match(key, /^inb_[0-9A-Za-z]{42}$/);
    });

    await t.step(
      "curl's example: GET /api/e2/domains with the key answers the success body",
      async () => {
        const res = await fetch(`${server.url}/api/e2/domains`, {
          headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
        });
        assert.equal(res.status, 200);
        assert.ok(res.headers.get("X-Request-Id"));
        assert.deepEqual(await res.json(), {
          data: [],
          pagination: { limit: 50, offset: 0, total: 0, hasMore: false },
        });
      },
    );

    await t.step("a missing header answers the seed's 401 with its headers", async () => {
      const res = await fetch(`${server.url}/api/e2/domains`);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("WWW-Authenticate"), 'Bearer realm="API", charset="UTF-8"');
      assert.equal(res.headers.get("Content-Type"), "application/json; charset=utf-8");
      assert.deepEqual(await res.json(), {
        error: "Unauthorized",
        message: "Authentication required. Provide a valid session cookie or Bearer token.",
        statusCode: 401,
      });
    });

    await t.step("key:list shows the key's start but never the key or its hash", async () => {
      const list = await runAdminCli(["key:list", "--email", "seed@example.com"], env);
      assert.equal(list.code, 0, list.stderr);
      const rows = list.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assert.equal(rows.length, 1);
      assert.equal(rows[0].name, "production");
      assert.equal(rows[0].start, key.slice(0, 10));
      assert.ok(!list.stdout.includes(key));
      assert.equal("hash" in rows[0], false);
    });

    await t.step("key:delete revokes the key for the running server", async () => {
      const list = await runAdminCli(["key:list", "--email", "seed@example.com"], env);
      const id = JSON.parse(list.stdout.trim()).id;
      const deleted = await runAdminCli(
        ["key:delete", "--email", "seed@example.com", "--id", id],
        env,
      );
      assert.equal(deleted.code, 0, deleted.stderr);
      // Another process deleted it; the server must refuse within a second.
      let status = 0;
      for (let i = 0; i < 20; i++) {
        const res = await fetch(`${server.url}/api/e2/domains`, {
          headers: { Authorization: `Bearer ${key}` },
        });
        await res.body?.cancel();
        status = res.status;
        if (status === 401) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.equal(status, 401);
    });

    await t.step("healthz answers without credentials", async () => {
      const res = await fetch(`${server.url}/healthz`);
      assert.deepEqual(await res.json(), { status: "ok", kv: "ok" });
    });
  } finally {
    await server.stop();
    await removeKvFile(kvPath);
  }
});

Deno.test("the admin CLI refuses bad arguments and unknown accounts with a clear message", async (t) => {
  const kvPath = await tempKvPath();
  const env = { DENO_KV_PATH: kvPath };
  try {
    const cases: [string, string[], number, RegExp][] = [
      ["no command", [], 2, /no command given/],
      ["unknown command", ["key:explode"], 2, /unknown command/],
      ["unknown flag", ["key:list", "--email", "a@b.co", "--colour", "red"], 2, /colour/],
      ["missing name", ["key:create", "--email", "a@b.co"], 2, /--name is required/],
      [
        "bad expiry",
        ["key:create", "--email", "a@b.co", "--name", "n", "--expires-in-days", "0"],
        2,
        /expires-in-days/,
      ],
      [
        "unknown account",
        ["key:create", "--email", "nobody@example.com", "--name", "n"],
        1,
        /no account/,
      ],
      [
        "short password",
        ["user:create", "--email", "x@example.com", "--password", "short"],
        2,
        /at least 12/,
      ],
    ];
    for (const [name, args, code, message] of cases) {
      await t.step(name, async () => {
        const out = await runAdminCli(args, env);
        assert.equal(out.code, code, out.stderr);
        assert.match(out.stderr, message);
        assert.equal(out.stdout, "");
      });
    }
    await t.step("a second account with the same email is refused", async () => {
      const args = [
        "user:create",
        "--email",
        "dup@example.com",
        "--password",
        "long enough password",
      ];
      assert.equal((await runAdminCli(args, env)).code, 0);
      const again = await runAdminCli(args, env);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already exists/);
    });
  } finally {
    await removeKvFile(kvPath);
  }
});
