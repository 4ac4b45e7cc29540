/**
 * Writes everything generated from lib/config.ts's `SETTINGS`, the one list of the variables the
 * server reads:
 * - the `--allow-env=` list of deno.json's dev, start, serve and admin tasks (the rest of each task
 *   line is hand-written and kept);
 * - the configuration table in README.md;
 * - the "A KV file elsewhere" commands in docs/deploying.md: the start and admin tasks' own flags
 *   with another folder instead of ./data, so they cannot lag behind the tasks.
 *
 *   deno task settings
 *
 * tests/operations/docs_test.ts regenerates all three and fails when a file differs (and runs the printed
 * commands). Deno's permission sets would have made this unnecessary; lib/config.ts says why they
 * are not used.
 */
import { SETTINGS } from "../lib/config.ts";
import { table } from "../lib/markdown.ts";
import { formatMarkdown, replaceBlock, ROOT, writeChanged } from "./markdown.ts";

/**
 * The tasks that run the server or the CLI, each with the names it needs beyond `SETTINGS`:
 * serve.ts sets DENO_SERVE_ADDRESS, which `deno serve` reads, from PORT and HOSTNAME.
 */
export const ENV_TASKS: Record<string, readonly string[]> = {
  dev: [],
  start: [],
  serve: ["DENO_SERVE_ADDRESS"],
  admin: [],
};

/** The folder the printed "KV file elsewhere" commands use (the test runs them with another). */
export const KV_FOLDER_EXAMPLE = "/var/lib/inbound";

/** deno.json's text with each of `ENV_TASKS` granting exactly its names, nothing else touched. */
export function withEnvLists(denoJson: string): string {
  let text = denoJson;
  for (const [task, extra] of Object.entries(ENV_TASKS)) {
    const names = [...extra, ...SETTINGS.map((s) => s.name)].join(",");
    const line = new RegExp(`^(\\s*"${task}": ".*?--allow-env=)[^ "]*(.*)$`, "m");
    if (!line.test(text)) throw new Error(`deno.json: no "${task}" task with --allow-env=`);
    text = text.replace(line, (_, head: string, tail: string) => `${head}${names}${tail}`);
  }
  return text;
}

/** The README's configuration table; links point into docs/. */
export function settingsTable(): string {
  return table(
    ["variable", "default", "meaning"],
    SETTINGS.map((s) => {
      const docs = "docs" in s ? ` ([more](docs/${s.docs}))` : "";
      return [`\`${s.name}\``, s.default, s.meaning + docs];
    }),
  );
}

/**
 * A task's command with `folder` instead of ./data and the KV in it, broken before the long
 * flags. `args` follows the task's script (the CLI's command).
 */
export function kvElsewhereCommand(task: string, folder: string, args = ""): string {
  if (!task.includes("./data")) throw new Error(`task grants no ./data: ${task}`);
  const tokens = task.replaceAll("./data", folder).split(/\s+/).filter(Boolean);
  const lines: string[][] = [[`DENO_KV_PATH=${folder}/kv.sqlite3`]];
  for (const token of tokens) {
    if (/^--allow-(env|read)=/.test(token)) lines.push([]);
    lines.at(-1)!.push(token);
  }
  if (args) lines.at(-1)!.push(args);
  return lines.map((l) => l.join(" ")).join(" \\\n  ");
}

/** The docs/deploying.md block: the server and the CLI on a KV in `KV_FOLDER_EXAMPLE`. */
export function kvElsewhereBlock(tasks: Record<string, string>): string {
  return [
    "```sh",
    "# the server",
    kvElsewhereCommand(tasks.start, KV_FOLDER_EXAMPLE),
    "# the admin CLI (any command in place of verify)",
    kvElsewhereCommand(tasks.admin, KV_FOLDER_EXAMPLE, "verify"),
    "```",
  ].join("\n");
}

/** Every file this generator owns a part of, as it should be now (path relative to the root). */
export async function generatedSettingsFiles(): Promise<Map<string, string>> {
  const read = (path: string) => Deno.readTextFile(new URL(path, ROOT));
  const denoJson = withEnvLists(await read("deno.json"));
  const tasks = JSON.parse(denoJson).tasks as Record<string, string>;
  const readme = replaceBlock(await read("README.md"), "settings", settingsTable());
  const deploying = replaceBlock(
    await read("docs/deploying.md"),
    "kv-elsewhere",
    kvElsewhereBlock(tasks),
  );
  return new Map([
    ["deno.json", denoJson],
    ["README.md", await formatMarkdown(readme)],
    ["docs/deploying.md", await formatMarkdown(deploying)],
  ]);
}

if (import.meta.main) {
  const written = await writeChanged(await generatedSettingsFiles());
  console.log(written.length ? `wrote ${written.join(", ")}` : "up to date");
}
