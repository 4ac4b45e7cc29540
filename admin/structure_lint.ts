/**
 * A deno lint plugin that reports what admin/structure.ts measures, from deno's own parser (a
 * regular expression over the source would be fooled by comments, strings and templates):
 *   - `structure/long-function`: every function, method or arrow function longer than
 *     MAX_FUNCTION_LINES lines, as `FNLEN <lines> <name> <first>-<last>`;
 *   - `structure/import`: every static import declaration (bare `import "…"` too) and every
 *     `export … from` of a relative specifier, as `IMPORT <specifier>` (dynamic `import()` is
 *     left out: it does not take part in module evaluation order).
 * Neither rule is in the project's own lint set (deno.json): admin/structure_lint.json names
 * them, and only admin/structure.ts runs them, reading the diagnostics as data.
 */

/** The longest a function may be (issue 21): longer ones are split into named units. */
export const MAX_FUNCTION_LINES = 100;

type Fn =
  | Deno.lint.FunctionDeclaration
  | Deno.lint.FunctionExpression
  | Deno.lint.ArrowFunctionExpression;

/** Start offsets of every line of `text`, for turning a range into line numbers. */
function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = text.indexOf("\n"); i !== -1; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return starts;
}

/** The 1-based line holding offset `at` (binary search over `starts`). */
function lineAt(starts: number[], at: number): number {
  let lo = 0, hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid] <= at) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}

/** A key's name as written (`create`, `#gated`, `"user:create"`), else "?". */
function keyName(key: Deno.lint.Node): string {
  if (key.type === "Identifier") return key.name;
  if (key.type === "PrivateIdentifier") return `#${key.name}`;
  if (key.type === "Literal") return String(key.value);
  return "?";
}

/** What a reader would call the function: its name, its variable, its method, or its caller. */
export function functionName(node: Fn): string {
  if (node.id) return node.id.name;
  const p = node.parent;
  if (p.type === "VariableDeclarator" && p.id.type === "Identifier") return p.id.name;
  if (p.type === "MethodDefinition") {
    const cls = p.parent.parent;
    const owner = (cls.type === "ClassDeclaration" || cls.type === "ClassExpression") && cls.id
      ? `${cls.id.name}.`
      : "";
    return owner + keyName(p.key);
  }
  if (p.type === "Property" || p.type === "PropertyDefinition") return keyName(p.key);
  if (p.type === "CallExpression") {
    const c = p.callee;
    const callee = c.type === "Identifier"
      ? c.name
      : c.type === "MemberExpression"
      ? keyName(c.property)
      : "?";
    const first = p.arguments[0];
    const label = first?.type === "Literal" ? `(${String(first.value)})` : "";
    return `<callback of ${callee}${label}>`;
  }
  return "<anonymous>";
}

const plugin: Deno.lint.Plugin = {
  name: "structure",
  rules: {
    "long-function": {
      create(context) {
        const starts = lineStarts(context.sourceCode.text);
        const check = (node: Fn) => {
          const first = lineAt(starts, node.range[0]);
          const last = lineAt(starts, node.range[1]);
          const lines = last - first + 1;
          if (lines <= MAX_FUNCTION_LINES) return;
          context.report({
            node,
            message: `FNLEN ${lines} ${functionName(node)} ${first}-${last}`,
          });
        };
        return {
          FunctionDeclaration: check,
          FunctionExpression: check,
          ArrowFunctionExpression: check,
        };
      },
    },
    import: {
      create(context) {
        const report = (node: Deno.lint.Node, source: Deno.lint.StringLiteral | null) => {
          if (!source || !/^\.\.?\//.test(source.value)) return;
          context.report({ node, message: `IMPORT ${source.value}` });
        };
        return {
          ImportDeclaration: (node) => report(node, node.source),
          ExportNamedDeclaration: (node) => report(node, node.source),
          ExportAllDeclaration: (node) => report(node, node.source),
        };
      },
    },
  },
};

export default plugin;
