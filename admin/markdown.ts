/**
 * What the docs generators (admin/generate_settings.ts, admin/generate_api_reference.ts) share:
 * generated blocks inside hand-written Markdown, tables, and `deno fmt`. Their output goes through
 * `deno fmt` so that `deno task test`'s `deno fmt --check` and the staleness tests in
 * tests/operations/docs_test.ts see exactly what the generator wrote: the formatter wraps prose and pads
 * tables, and imitating it here would drift with every Deno release.
 */

/** The repository's root (this file is admin/markdown.ts). */
export const ROOT = new URL("../", import.meta.url);

/**
 * Replaces the text between `<!-- generated: NAME … -->` (the rest of the comment says which task
 * writes it) and `<!-- end generated: NAME -->` with `content`, keeping both markers. A missing
 * marker is an error: a generated part that cannot be found must not be appended silently
 * somewhere else.
 */
export function replaceBlock(text: string, name: string, content: string): string {
  const open = `<!-- generated: ${name} `;
  const close = `<!-- end generated: ${name} -->`;
  const start = text.indexOf(open);
  const end = text.indexOf(close);
  if (start < 0 || end < start) {
    throw new Error(`no generated block "${name}" (markers ${open}… and ${close})`);
  }
  const openEnd = text.indexOf("-->", start) + 3;
  return `${text.slice(0, openEnd)}\n\n${content.trim()}\n\n${text.slice(end)}`;
}

/**
 * `text` as `deno fmt` formats a Markdown file, with the project's deno.json (line width 100).
 * Runs the same Deno binary as this process.
 */
export async function formatMarkdown(text: string): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext=md", "-"],
    cwd: ROOT,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(`deno fmt failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Writes each file whose content changed; returns the paths written (relative to the root). */
export async function writeChanged(files: Map<string, string>): Promise<string[]> {
  const written: string[] = [];
  for (const [path, content] of files) {
    const url = new URL(path, ROOT);
    const current = await Deno.readTextFile(url).catch(() => null);
    if (current === content) continue;
    await Deno.writeTextFile(url, content);
    written.push(path);
  }
  return written;
}
