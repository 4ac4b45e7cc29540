/**
 * `admin key:create --scopes` with the operator's scopes: the CLI reads FORWARD_AUTH_RULES (the
 * same file as the server) when a key names scopes, so `--scopes orders:read` works there and is
 * refused, naming the scopes that exist, without it.
 */
import assert from "node:assert/strict";
import { removeKvFile, runAdminCli, tempKvPath } from "../_helpers.ts";
import { RULES_JSON } from "./_fixtures.ts";

Deno.test("admin key:create grants the operator's scopes of FORWARD_AUTH_RULES", async (t) => {
  const kvPath = await tempKvPath();
  const rulesPath = `./data/test/forward-auth-${crypto.randomUUID()}.json`;
  await Deno.writeTextFile(rulesPath, JSON.stringify(RULES_JSON));
  const env = { DENO_KV_PATH: kvPath, FORWARD_AUTH_RULES: rulesPath };
  const email = "operator-scopes@example.com";
  const args = ["key:create", "--email", email, "--name", "orders"];
  try {
    const made = await runAdminCli(
      ["user:create", "--email", email, "--password", "correct horse battery"],
      env,
    );
    assert.equal(made.code, 0, made.stderr);

    await t.step("with the rules file: the key holds orders:read", async () => {
      const key = await runAdminCli([...args, "--scopes", "domains:read,orders:read"], env);
      assert.equal(key.code, 0, key.stderr);
      assert.match(key.stdout.trim(), /^inb_\S+$/);
      const list = await runAdminCli(["key:list", "--email", email], env);
      assert.deepEqual(JSON.parse(list.stdout.trim()).scopes, ["domains:read", "orders:read"]);
    });

    await t.step("a scope the file does not declare is refused, listing the file's", async () => {
      const out = await runAdminCli([...args, "--scopes", "orders:delete"], env);
      assert.equal(out.code, 2);
      assert.match(
        out.stderr,
        /unknown scope orders:delete \(one or more of .*orders:read, orders:write\)/,
      );
    });

    await t.step("without FORWARD_AUTH_RULES, orders:read is unknown", async () => {
      const out = await runAdminCli([...args, "--scopes", "orders:read"], { DENO_KV_PATH: kvPath });
      assert.equal(out.code, 2);
      assert.match(out.stderr, /unknown scope orders:read/);
    });

    await t.step("a bad rules file is one line naming it, exit 1", async () => {
      await Deno.writeTextFile(rulesPath, '{"scopes": ["domains:read"], "rules": []}');
      const out = await runAdminCli([...args, "--scopes", "domains:read"], env);
      assert.equal(out.code, 1);
      assert.match(
        out.stderr,
        /^error: FORWARD_AUTH_RULES .*\$\.scopes\[0\]: "domains:read" is a built-in scope/,
      );
    });
  } finally {
    await removeKvFile(kvPath);
    await Deno.remove(rulesPath).catch(() => {});
  }
});
