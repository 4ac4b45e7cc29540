/**
 * The docs' copies of things the code owns must not drift from the code: the KV key layout, the
 * settings (README table, the tasks' `--allow-env` lists, the "KV file elsewhere" commands, which
 * must also work as printed), the generated endpoint reference, and the links between the pages.
 */
import assert from "node:assert/strict";
import { ENV_NAMES, SETTINGS } from "../../lib/config.ts";
import { generatedSettingsFiles, KV_FOLDER_EXAMPLE } from "../../admin/generate_settings.ts";
import { generatedReference, REFERENCE_PATH } from "../../admin/generate_api_reference.ts";
import { anchor } from "../../routes/openapi/reference.ts";

const ROOT = new URL("../../", import.meta.url);
const read = (path: string) => Deno.readTextFile(new URL(path, ROOT));
const readme = await read("README.md");

/** README.md and every page under docs/, by path relative to the root. */
async function markdownFiles(): Promise<Map<string, string>> {
  const files = new Map([["README.md", readme]]);
  for await (const entry of Deno.readDir(new URL("docs/", ROOT))) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      files.set(`docs/${entry.name}`, await read(`docs/${entry.name}`));
    }
  }
  return files;
}

Deno.test("docs/architecture.md's KV key layout is store/keys.ts's header, line for line", async () => {
  const source = await read("store/keys.ts");
  const header = source.slice(source.indexOf("/**") + 3, source.indexOf("*/"))
    .split("\n")
    .map((l) => l.replace(/^ \* ?/, "").replace(/^ \*$/, ""))
    .join("\n")
    .trim();
  const doc = await read("docs/architecture.md");
  const start = doc.indexOf("```text\nThe KV key layout.");
  assert.ok(start >= 0, "docs/architecture.md has the key layout block");
  const block = doc.slice(start + "```text\n".length, doc.indexOf("\n```", start + 8)).trim();
  assert.equal(block, header);
});

Deno.test("every environment variable the server reads is in the README's table and the tasks", async () => {
  assert.deepEqual([...ENV_NAMES], SETTINGS.map((s) => s.name));
  const tasks = JSON.parse(await read("deno.json")).tasks;
  for (const name of ENV_NAMES) {
    assert.ok(readme.includes(`| \`${name}\``), `${name} in the README's configuration table`);
    for (const task of ["dev", "start", "serve", "admin"]) {
      assert.ok(tasks[task].includes(name), `${name} allowed in the ${task} task`);
    }
  }
});

Deno.test("the parts generated from SETTINGS are up to date (deno task settings)", async () => {
  for (const [path, expected] of await generatedSettingsFiles()) {
    assert.equal(await read(path), expected, `${path} is stale: run deno task settings`);
  }
});

Deno.test(`${REFERENCE_PATH} is the served OpenAPI document's (deno task docs)`, async () => {
  assert.equal(
    await read(REFERENCE_PATH),
    await generatedReference(),
    `${REFERENCE_PATH} is stale: run deno task docs`,
  );
});

/** The commands of docs/deploying.md's "A KV file elsewhere" block: env and args after `deno`. */
async function kvElsewhereCommands(): Promise<{ env: Record<string, string>; args: string[] }[]> {
  const doc = await read("docs/deploying.md");
  const start = doc.indexOf("<!-- generated: kv-elsewhere");
  const open = doc.indexOf("```sh\n", start) + "```sh\n".length;
  const block = doc.slice(open, doc.indexOf("\n```", open));
  return block.replace(/ \\\n\s*/g, " ").split("\n")
    .filter((line) => line.trim() !== "" && !line.startsWith("#"))
    .map((line) => {
      const words = line.trim().split(/\s+/);
      const env: Record<string, string> = {};
      while (/^[A-Z_]+=/.test(words[0])) {
        const [name, ...value] = words.shift()!.split("=");
        env[name] = value.join("=");
      }
      assert.equal(words.shift(), "deno", line);
      return { env, args: words };
    });
}

/** Runs the printed server command until its "listening" line; answers its /healthz. */
async function healthOfPrintedServer(env: Record<string, string>, args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { ...env, PORT: "0", HOSTNAME: "127.0.0.1", PASSWORD_HASH_COST: "10", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  const port = new Promise<number>((resolve, reject) => {
    const pump = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) {
        text += decoder.decode(chunk, { stream: true });
        const m = /"msg":"listening"[^\n]*"port":(\d+)/.exec(text);
        if (m) resolve(Number(m[1]));
      }
      reject(new Error(`the printed command stopped before listening:\n${text}`));
    };
    pump(child.stdout);
    pump(child.stderr);
  });
  try {
    const res = await fetch(`http://127.0.0.1:${await port}/healthz`);
    return { status: res.status, body: await res.json() };
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

Deno.test('the "KV file elsewhere" commands work as printed, in a folder outside ./data', async () => {
  const commands = await kvElsewhereCommands();
  assert.equal(commands.length, 2, "the server's command and the admin CLI's");
  const tmp = await Deno.makeTempDir();
  // A folder that does not exist yet: the server creates it.
  const folder = `${tmp}/inbound`;
  const swap = (s: string) => s.replaceAll(KV_FOLDER_EXAMPLE, folder);
  const [server, admin] = commands.map(({ env, args }) => ({
    env: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, swap(v)])),
    args: args.map(swap),
  }));
  try {
    assert.equal(server.env.DENO_KV_PATH, `${folder}/kv.sqlite3`);
    assert.deepEqual(await healthOfPrintedServer(server.env, server.args), {
      status: 200,
      body: { status: "ok", kv: "ok" },
    });
    const out = await new Deno.Command(Deno.execPath(), {
      args: admin.args,
      cwd: ROOT,
      env: { ...admin.env, NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `admin verify on the KV elsewhere:\n${stderr}`);
    assert.match(stderr, new RegExp(`kv: ${folder}/kv\\.sqlite3`));
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("the README stays a front page: at most 300 lines", () => {
  const lines = readme.split("\n").length;
  assert.ok(lines <= 300, `README.md has ${lines} lines; move detail under docs/`);
});

Deno.test('the docs never use "the seed" as a term', async () => {
  for (const [path, text] of await markdownFiles()) {
    const hits = text.split("\n").filter((l) => /\bthe seed\b|\bseed's\b/i.test(l));
    assert.deepEqual(hits, [], `${path} says "the seed"; say "the specification" or the behaviour`);
  }
});

Deno.test("every relative link in the README and docs/ reaches a file and heading", async () => {
  const files = await markdownFiles();
  const headings = (text: string) =>
    new Set(
      text.replace(/```[\s\S]*?```/g, "").split("\n")
        .filter((l) => /^#{1,6} /.test(l))
        .map((l) => anchor(l.replace(/^#+ /, "").replace(/`/g, ""))),
    );
  for (const [path, text] of files) {
    const prose = text.replace(/```[\s\S]*?```/g, "");
    for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      const [file, fragment] = target.split("#");
      const url = new URL(file || path.split("/").at(-1)!, new URL(path, ROOT));
      const stat = await Deno.stat(url).catch(() => null);
      assert.ok(stat, `${path}: ${target} names no file`);
      if (!fragment) continue;
      const relative = url.href.slice(ROOT.href.length);
      const linked = files.get(relative);
      assert.ok(
        linked !== undefined,
        `${path}: ${target} links into a file the test does not read`,
      );
      assert.ok(headings(linked).has(fragment), `${path}: ${target} names no heading`);
    }
  }
});
