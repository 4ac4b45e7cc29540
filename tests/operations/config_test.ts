import assert from "node:assert/strict";
import { ConfigError, loadConfig } from "../../lib/config.ts";

Deno.test("with no environment the server listens on 8000 with a local KV file and 100 req/s", () => {
  const c = loadConfig({});
  assert.equal(c.port, 8000);
  assert.equal(c.kvPath, "./data/kv.sqlite3");
  assert.equal(c.onDeploy, false);
  assert.deepEqual(c.rateLimit, { max: 100, windowMs: 1000, failOpen: false });
  assert.equal(c.passwordHashCost, 17);
});

Deno.test("on Deno Deploy without DENO_KV_PATH the platform KV is used, with no file path", () => {
  const c = loadConfig({ DENO_DEPLOYMENT_ID: "abc123" });
  assert.equal(c.onDeploy, true);
  assert.equal(c.kvPath, null);
});

Deno.test("DENO_KV_PATH wins everywhere: a file, :memory: or a KV Connect URL", () => {
  for (const path of ["/var/lib/kv.sqlite3", ":memory:", "https://kv.example.internal"]) {
    assert.equal(loadConfig({ DENO_KV_PATH: path }).kvPath, path);
    assert.equal(loadConfig({ DENO_KV_PATH: path, DENO_DEPLOYMENT_ID: "x" }).kvPath, path);
  }
});

Deno.test("rate-limit settings are read and a bad value is refused with the variable's name", () => {
  const c = loadConfig({
    RATE_LIMIT_MAX: "10",
    RATE_LIMIT_WINDOW_MS: "60000",
    RATE_LIMIT_FAIL_OPEN: "true",
  });
  assert.deepEqual(c.rateLimit, { max: 10, windowMs: 60000, failOpen: true });
  for (
    const [name, value] of [
      ["RATE_LIMIT_MAX", "0"],
      ["RATE_LIMIT_MAX", "ten"],
      ["RATE_LIMIT_WINDOW_MS", "1.5"],
      ["RATE_LIMIT_FAIL_OPEN", "maybe"],
      ["PORT", "70000"],
    ] as const
  ) {
    assert.throws(
      () => loadConfig({ [name]: value }),
      (err: Error) => err instanceof ConfigError && err.message.startsWith(name),
    );
  }
});

// Issue 22 item 14: "verbose" used to be read as "info" without a word.
Deno.test("LOG_LEVEL is info or silent; any other value is refused naming both", () => {
  assert.equal(loadConfig({}).logRequests, true);
  assert.equal(loadConfig({ LOG_LEVEL: "info" }).logRequests, true);
  assert.equal(loadConfig({ LOG_LEVEL: "silent" }).logRequests, false);
  assert.equal(loadConfig({ LOG_LEVEL: "SILENT" }).logRequests, false);
  for (const bad of ["verbose", "debug", "off"]) {
    assert.throws(
      () => loadConfig({ LOG_LEVEL: bad }),
      (err: unknown) =>
        err instanceof ConfigError &&
        err.message === `LOG_LEVEL must be one of info, silent, got "${bad}"`,
    );
  }
});
