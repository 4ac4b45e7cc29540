/**
 * `deno task lint:structure`: the two structural rules of issue 21, measured the same way by
 * anyone who runs it:
 *   - no function over MAX_FUNCTION_LINES lines outside tests/ and bench/ (a test's table of
 *     cases may be long; the server's code may not);
 *   - no import cycle among the project's own modules (relative specifiers of static imports and
 *     re-exports, `import type` included: a cycle of types is still two modules that cannot be
 *     read, moved or tested one without the other).
 * Prints every finding and exits 1 when there is any, 0 when there is none; `--json` prints the
 * report as JSON instead (tests/operations/structure_test.ts reads it).
 *
 * Both measurements come from deno's own parser, through the lint plugin admin/structure_lint.ts
 * run by `deno lint --config admin/structure_lint.json` (one subprocess for every file), so a
 * comment or a string that looks like code is never counted. A `// deno-lint-ignore-file`
 * without rule names would silence it too: the project has none.
 */

import { MAX_FUNCTION_LINES } from "./structure_lint.ts";

/** One function over the limit. */
export type LongFunction = { file: string; name: string; lines: number; from: number; to: number };

export type StructureReport = {
  /** Files measured, relative to the root. */
  files: number;
  longFunctions: LongFunction[];
  /**
   * One entry per strongly connected group of modules (each can reach every other through
   * imports): its members, and one shortest cycle through the first, closing on itself.
   */
  cycles: { modules: string[]; example: string[] }[];
};

/** Top-level folders left out: tests and benchmarks (issue 21), the KV data, tooling caches. */
const SKIPPED_DIRS = new Set(["tests", "bench", "data", "node_modules", "coverage"]);
const SOURCE = /\.(ts|tsx|mts)$/;

/** Every source file under `root` (a directory URL), relative paths, sorted. */
export async function sourceFiles(root: URL): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: URL, rel: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.name.startsWith(".")) continue;
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        if (!(rel === "" && SKIPPED_DIRS.has(e.name))) await walk(new URL(`${e.name}/`, dir), path);
      } else if (e.isFile && SOURCE.test(e.name)) out.push(path);
    }
  };
  await walk(root, "");
  return out.sort();
}

type LintDiagnostic = { filename: string; message: string; code: string };
type LintOutput = {
  diagnostics: LintDiagnostic[];
  errors: { file_path: string; message: string }[];
};

/** Runs the structure lint plugin over `files` (relative to `root`); its diagnostics as data. */
async function lintStructure(root: URL, files: string[]): Promise<LintDiagnostic[]> {
  const config = new URL("./structure_lint.json", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["lint", "--config", config.pathname, "--json", ...files],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  let parsed: LintOutput;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new Error(`deno lint gave no report: ${new TextDecoder().decode(out.stderr)}`);
  }
  if (parsed.errors.length > 0) {
    const e = parsed.errors[0];
    throw new Error(`deno lint could not read ${e.file_path}: ${e.message}`);
  }
  return parsed.diagnostics;
}

/**
 * The strongly connected groups of `graph` with a cycle in them (two or more modules, or one
 * importing itself), by Tarjan's algorithm; members sorted, groups sorted by their first member.
 */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    for (let w = stack.pop()!;; w = stack.pop()!) {
      onStack.delete(w);
      group.push(w);
      if (w === v) break;
    }
    if (group.length > 1 || (graph.get(v) ?? []).includes(v)) groups.push(group.sort());
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return groups.sort((a, b) => a[0].localeCompare(b[0]));
}

/** A shortest path from `start` back to itself inside `group` (breadth-first). */
export function shortestCycle(
  graph: ReadonlyMap<string, readonly string[]>,
  group: readonly string[],
): string[] {
  const start = group[0];
  const members = new Set(group);
  const cameFrom = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i];
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue;
      if (w === start) {
        const between: string[] = [];
        for (let x = v; x !== start; x = cameFrom.get(x)!) between.unshift(x);
        return [start, ...between, start];
      }
      if (!cameFrom.has(w)) {
        cameFrom.set(w, v);
        queue.push(w);
      }
    }
  }
  return [start];
}

/** The module a relative specifier in `from` names, relative to the root like `from`. */
function resolveSpecifier(from: string, specifier: string): string {
  const base = new URL(`file:///root/${from}`);
  return new URL(specifier, base).pathname.slice("/root/".length);
}

/** Measures the tree under `root` (default: this repository). */
export async function measureStructure(
  root: URL = new URL("../", import.meta.url),
): Promise<StructureReport> {
  const files = await sourceFiles(root);
  const diagnostics = files.length ? await lintStructure(root, files) : [];
  const rootPath = decodeURIComponent(root.pathname);
  const longFunctions: LongFunction[] = [];
  const graph = new Map<string, string[]>(files.map((f) => [f, []]));
  for (const d of diagnostics) {
    const file = decodeURIComponent(new URL(d.filename).pathname).slice(rootPath.length);
    const fn = /^FNLEN (\d+) (.+) (\d+)-(\d+)$/.exec(d.message);
    const imp = /^IMPORT (.+)$/.exec(d.message);
    if (d.code === "structure/long-function" && fn) {
      longFunctions.push({ file, name: fn[2], lines: Number(fn[1]), from: +fn[3], to: +fn[4] });
    } else if (d.code === "structure/import" && imp) {
      const target = resolveSpecifier(file, imp[1]);
      // Only the measured modules: an import of a test helper or a data file is not an edge.
      if (graph.has(target)) graph.get(file)?.push(target);
    }
  }
  longFunctions.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file));
  const cycles = findCycles(graph).map((modules) => ({
    modules,
    example: shortestCycle(graph, modules),
  }));
  return { files: files.length, longFunctions, cycles };
}

/** The report as an operator reads it. */
export function formatReport(r: StructureReport): string {
  const lines = [
    `${r.longFunctions.length} function(s) over ${MAX_FUNCTION_LINES} lines outside tests/ ` +
    `and bench/ (${r.files} files):`,
    ...r.longFunctions.map((f) => `  ${f.lines}  ${f.name}  ${f.file}:${f.from}-${f.to}`),
    `${r.cycles.length} import cycle(s) among the project's own modules:`,
    ...r.cycles.map((c) =>
      `  ${c.example.join(" -> ")}` +
      (c.modules.length > c.example.length - 1 ? `  (group: ${c.modules.join(", ")})` : "")
    ),
  ];
  return lines.join("\n");
}

if (import.meta.main) {
  const report = await measureStructure();
  console.log(
    Deno.args.includes("--json") ? JSON.stringify(report, null, 2) : formatReport(report),
  );
  Deno.exit(report.longFunctions.length > 0 || report.cycles.length > 0 ? 1 : 0);
}
