/** The README's copies of things the code owns must not drift from the code. */
import assert from "node:assert/strict";
import { ENV_NAMES } from "../lib/config.ts";

const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("the README's KV key layout is store/keys.ts's header, line for line", async () => {
  const source = await Deno.readTextFile(new URL("../store/keys.ts", import.meta.url));
  const header = source.slice(source.indexOf("/**") + 3, source.indexOf("*/"))
    .split("\n")
    .map((l) => l.replace(/^ \* ?/, "").replace(/^ \*$/, ""))
    .join("\n")
    .trim();
  const start = readme.indexOf("```text\nThe KV key layout.");
  assert.ok(start >= 0, "README has the key layout block");
  const block = readme.slice(start + "```text\n".length, readme.indexOf("\n```", start + 8)).trim();
  assert.equal(block, header);
});

Deno.test("every environment variable the server reads is in the README's table and the tasks", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url))).tasks;
  for (const name of ENV_NAMES) {
    assert.ok(readme.includes(`| \`${name}\``), `${name} in the README's configuration table`);
    for (const task of ["dev", "start", "serve", "admin"]) {
      assert.ok(tasks[task].includes(name), `${name} allowed in the ${task} task`);
    }
  }
});
