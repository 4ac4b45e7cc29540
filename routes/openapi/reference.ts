/**
 * The endpoint reference as Markdown, rendered from the OpenAPI document the operation
 * declarations produce (routes/registry.ts, routes/openapi/document.ts): the one renderer of the
 * document besides Swagger UI. `deno task docs` writes it to docs/api-reference.md
 * (admin/generate_api_reference.ts); `GET /api/e2/docs?view=plain` serves it to readers without
 * JavaScript.
 */
import { cell, table } from "../../lib/markdown.ts";

type Json = Record<string, unknown>;

/** The parts of an OpenAPI 3.1 document the reference reads. */
export type OpenApiDocument = {
  info: { title: string; version: string; description?: string };
  tags?: { name: string; description?: string }[];
  paths: Record<string, Record<string, Json>>;
  components?: { schemas?: Record<string, Json>; responses?: Record<string, Json> };
};

const METHODS = ["get", "post", "put", "patch", "delete"];
/** `Number.MAX_SAFE_INTEGER`: zod's bound for an unbounded integer, not worth printing. */
const UNBOUNDED = 9007199254740991;

/** What a `$ref` ("#/components/schemas/X") points to, or the node itself. */
function resolve(doc: OpenApiDocument, node: Json | undefined): Json | undefined {
  if (!node || typeof node.$ref !== "string") return node;
  let target: unknown = doc;
  for (const part of node.$ref.replace(/^#\//, "").split("/")) target = (target as Json)[part];
  return resolve(doc, target as Json);
}

/** The component name a `$ref` ends with. */
function refName(node: Json): string | null {
  return typeof node.$ref === "string" ? node.$ref.split("/").at(-1)! : null;
}

/** "1–100", "at least 1", "at most 5" or "" for a pair of bounds. */
function range(min: unknown, max: unknown, unit = ""): string {
  const lo = typeof min === "number" ? min : null;
  const hi = typeof max === "number" && max !== UNBOUNDED ? max : null;
  if (lo !== null && hi !== null) return lo === hi ? `${lo}${unit}` : `${lo}–${hi}${unit}`;
  if (lo !== null) return `at least ${lo}${unit}`;
  if (hi !== null) return `at most ${hi}${unit}`;
  return "";
}

/** A JSON Schema in a few words: "string (1–100 characters)", "`ApiKey`", "array of …". */
export function typeOf(schema: Json | undefined): string {
  if (!schema) return "any";
  const name = refName(schema);
  if (name) return `\`${name}\``;
  for (const [key, joiner] of [["anyOf", " or "], ["oneOf", " or "], ["allOf", " and "]]) {
    const parts = schema[key];
    if (Array.isArray(parts)) return parts.map((p) => typeOf(p as Json)).join(joiner);
  }
  if ("const" in schema) return `\`${JSON.stringify(schema.const)}\``;
  if (Array.isArray(schema.enum)) {
    return `one of ${
      schema.enum.map((v) => `\`${typeof v === "string" ? v : JSON.stringify(v)}\``)
        .join(", ")
    }`;
  }
  if (Array.isArray(schema.type)) {
    return schema.type.map((t) => typeOf({ ...schema, type: t })).join(" or ");
  }
  return withBounds(schema, baseType(schema));
}

function baseType(schema: Json): string {
  switch (schema.type) {
    case "array":
      return `array of ${typeOf(schema.items as Json | undefined)}`;
    case "object": {
      const props = Object.keys((schema.properties as Json | undefined) ?? {});
      if (props.length) return `object (${props.map((p) => `\`${p}\``).join(", ")})`;
      return schema.additionalProperties ? "object (any keys)" : "object";
    }
    case undefined:
      return "any";
    default:
      return String(schema.type);
  }
}

function withBounds(schema: Json, base: string): string {
  const notes = [
    range(schema.minLength, schema.maxLength, " characters"),
    range(schema.minimum, schema.maximum),
    range(schema.minItems, schema.maxItems, " items"),
    typeof schema.format === "string" ? schema.format : "",
    typeof schema.pattern === "string" ? `pattern \`${schema.pattern}\`` : "",
    "default" in schema ? `default \`${JSON.stringify(schema.default)}\`` : "",
  ].filter(Boolean);
  return notes.length ? `${base} (${notes.join(", ")})` : base;
}

type Caller = { scheme: string; scopes: string[] };

/** The alternatives of a `security` requirement (each alternative one scheme, as the app's). */
function callers(security: unknown): Caller[][] {
  if (!Array.isArray(security)) return [];
  return security.map((requirement: Record<string, string[]>) =>
    Object.entries(requirement).map(([scheme, scopes]) => ({ scheme, scopes }))
  );
}

function scopesText(scopes: string[]): string {
  return scopes.map((s) => `\`${s}\``).join(" and ");
}

/** Who may call an operation, in a sentence, from its `security` requirement. */
export function whoMayCall(security: unknown): string {
  const ways = callers(security).map((all) =>
    all.map(({ scheme, scopes }) => {
      if (scheme === "bearerAuth") {
        return scopes.length ? `an API key with the ${scopesText(scopes)} scope` : "any API key";
      }
      if (scheme === "sessionCookie") return "a dashboard session (the session cookie)";
      return `\`${scheme}\`${scopes.length ? ` (${scopes.join(", ")})` : ""}`;
    }).join(" and ")
  );
  if (!ways.length) return "anyone (no credential)";
  return ways.join(", or ") +
    (ways.length === 1 && ways[0].startsWith("a dashboard") ? " only" : "");
}

/** The same in a few words, for the table of contents. */
function whoShort(security: unknown): string {
  const ways = callers(security).map((all) =>
    all.map(({ scheme, scopes }) => {
      if (scheme === "bearerAuth") {
        return scopes.length ? `key with ${scopesText(scopes)}` : "any key";
      }
      return scheme === "sessionCookie" ? "session" : `\`${scheme}\``;
    }).join(" and ")
  );
  if (!ways.length) return "anyone";
  return ways.length === 1 && ways[0] === "session" ? "session only" : ways.join(" or ");
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function anchor(heading: string): string {
  return heading.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

type Operation = { method: string; path: string; op: Json };

/** The operations of the document, grouped by their first tag in the document's tag order. */
function byTag(doc: OpenApiDocument): Map<string, Operation[]> {
  const groups = new Map<string, Operation[]>((doc.tags ?? []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags as string[] | undefined)?.[0] ?? "Other";
      if (!groups.has(tag)) groups.set(tag, []);
      groups.get(tag)!.push({ method: method.toUpperCase(), path, op });
    }
  }
  for (const [tag, ops] of groups) if (!ops.length) groups.delete(tag);
  return groups;
}

function parametersSection(doc: OpenApiDocument, op: Json): string[] {
  const params = ((op.parameters as Json[] | undefined) ?? []).map((p) => resolve(doc, p)!);
  if (!params.length) return [];
  return [
    "**Parameters**",
    table(
      ["name", "in", "type", "required", "description"],
      params.map((p) => [
        `\`${p.name}\``,
        String(p.in),
        typeOf(p.schema as Json | undefined),
        p.required ? "yes" : "no",
        String(p.description ?? ""),
      ]),
    ),
  ];
}

function requestSection(doc: OpenApiDocument, op: Json): string[] {
  const body = resolve(doc, op.requestBody as Json | undefined);
  if (!body) return [];
  const content = (body.content ?? {}) as Record<string, Json>;
  const out: string[] = [];
  for (const [type, media] of Object.entries(content)) {
    const named = refName((media.schema ?? {}) as Json);
    const schema = resolve(doc, media.schema as Json | undefined) ?? {};
    const props = (schema.properties ?? {}) as Record<string, Json>;
    const required = new Set((schema.required as string[] | undefined) ?? []);
    out.push(
      `**Request body** (\`${type}\`${body.required ? ", required" : ""})` +
        (named ? `: \`${named}\`` : ""),
    );
    if (Object.keys(props).length) {
      out.push(table(
        ["field", "type", "required", "description"],
        Object.entries(props).map(([name, field]) => [
          `\`${name}\``,
          typeOf(field),
          required.has(name) ? "yes" : "no",
          String(field.description ?? ""),
        ]),
      ));
      if (schema.additionalProperties === false) out.push("Other fields are refused (400).");
    }
  }
  return out;
}

/** A sentence, ending with a full stop. */
function sentence(text: string): string {
  const t = text.trim();
  return t === "" || /[.!?)]$/.test(t) ? t : `${t}.`;
}

/** A response's answer in one cell: its description, body (type and top-level fields), headers. */
function responseCell(doc: OpenApiDocument, response: Json): string {
  const parts = [sentence(String(response.description ?? ""))];
  for (const [type, media] of Object.entries((response.content ?? {}) as Record<string, Json>)) {
    const named = refName((media.schema ?? {}) as Json);
    const schema = resolve(doc, media.schema as Json | undefined) ?? {};
    const fields = Object.keys((schema.properties ?? {}) as Json).map((f) => `\`${f}\``);
    const what = [
      type === "application/json" ? "" : `\`${type}\``,
      named ? `\`${named}\`` : "",
      fields.length ? `{ ${fields.join(", ")} }` : "",
    ].filter(Boolean).join(" ");
    if (what) parts.push(`Body: ${what}.`);
  }
  const headers = Object.keys((response.headers ?? {}) as Json);
  if (headers.length) parts.push(`Headers: ${headers.map((h) => `\`${h}\``).join(", ")}.`);
  return parts.filter(Boolean).join(" ");
}

function responsesSection(doc: OpenApiDocument, op: Json): string[] {
  const responses = (op.responses ?? {}) as Record<string, Json>;
  const rows: string[][] = [];
  const shared: string[] = [];
  for (const [status, response] of Object.entries(responses)) {
    const name = refName(response);
    if (name && Number(status) >= 400) {
      shared.push(`[${status}](#${anchor(`${status} ${errorTitle(status)}`)})`);
    } else {
      rows.push([`\`${status}\``, responseCell(doc, resolve(doc, response)!)]);
    }
  }
  const out = ["**Responses**", table(["status", "answer"], rows)];
  if (shared.length) out.push(`**Errors**: ${shared.join(", ")}`);
  return out;
}

/** The examples of a request body or response: `example`, or each of `examples`. */
function examplesOf(content: unknown): unknown[] {
  const out: unknown[] = [];
  for (const media of Object.values((content ?? {}) as Record<string, Json>)) {
    if ("example" in media) out.push(media.example);
    for (const e of Object.values((media.examples ?? {}) as Record<string, Json>)) {
      if ("value" in e) out.push(e.value);
    }
  }
  return out;
}

function exampleBlock(title: string, example: unknown): string {
  const json = typeof example === "string" ? example : JSON.stringify(example, null, 2);
  return `<details><summary>${title}</summary>\n\n\`\`\`json\n${json}\n\`\`\`\n\n</details>`;
}

/**
 * The operation's own examples (the request, and each answer not shared with other operations),
 * folded: the values the tables only name (`redirect: false`, a message's wording) are here.
 */
function examplesSection(doc: OpenApiDocument, op: Json): string[] {
  const out: string[] = [];
  const body = resolve(doc, op.requestBody as Json | undefined);
  for (const example of examplesOf(body?.content)) {
    out.push(exampleBlock("Example request", example));
  }
  for (const [status, response] of Object.entries((op.responses ?? {}) as Record<string, Json>)) {
    if (refName(response) && Number(status) >= 400) continue;
    for (const example of examplesOf(resolve(doc, response)?.content)) {
      out.push(exampleBlock(`Example answer (${status})`, example));
    }
  }
  return out;
}

function extensionsSection(op: Json): string[] {
  const ext = Object.entries(op).filter(([k]) => k.startsWith("x-"));
  if (!ext.length) return [];
  return [ext.map(([k, v]) => `- \`${k}\`: \`${JSON.stringify(v)}\``).join("\n")];
}

function operationSection(doc: OpenApiDocument, { method, path, op }: Operation): string {
  const title = [
    op.summary ? `**${op.summary}**` : "",
    op.operationId ? `(\`${op.operationId}\`)` : "",
  ]
    .filter(Boolean).join(" ");
  return [
    `### ${method} ${path}`,
    title,
    `Who may call it: ${whoMayCall(op.security)}.`,
    String(op.description ?? ""),
    ...extensionsSection(op),
    ...parametersSection(doc, op),
    ...requestSection(doc, op),
    ...responsesSection(doc, op),
    ...examplesSection(doc, op),
  ].filter((s) => s.trim() !== "").join("\n\n");
}

const STATUS_TITLES: Record<string, string> = {
  "400": "Bad Request",
  "401": "Unauthorized",
  "403": "Forbidden",
  "404": "Not Found",
  "405": "Method Not Allowed",
  "409": "Conflict",
  "413": "Content Too Large",
  "415": "Unsupported Media Type",
  "429": "Too Many Requests",
  "500": "Internal Server Error",
  "503": "Service Unavailable",
};

function errorTitle(status: string): string {
  return STATUS_TITLES[status] ?? "Error";
}

/** The shared error responses (components.responses), each once, with its example body. */
function errorsSection(doc: OpenApiDocument): string {
  const byStatus = new Map<string, Json>();
  for (const [name, response] of Object.entries(doc.components?.responses ?? {})) {
    const status = /(\d{3})$/.exec(name)?.[1];
    if (status) byStatus.set(status, response);
  }
  const out = [
    "## Error responses",
    "The errors many operations share. Every error is JSON " +
    "(`{ error, message, statusCode }`, sometimes with `code`); see [errors.md](errors.md).",
  ];
  for (const status of [...byStatus.keys()].sort()) {
    const response = byStatus.get(status)!;
    out.push(`### ${status} ${errorTitle(status)}`, responseCell(doc, response));
    const example = ((response.content ?? {}) as Record<string, Json>)["application/json"]?.example;
    if (example !== undefined) out.push("```json\n" + JSON.stringify(example) + "\n```");
  }
  return out.join("\n\n");
}

function contents(groups: Map<string, Operation[]>): string {
  const rows: string[][] = [];
  for (const [tag, ops] of groups) {
    for (const { method, path, op } of ops) {
      rows.push([
        tag,
        `[${method} ${path}](#${anchor(`${method} ${path}`)})`,
        String(op.summary ?? ""),
        whoShort(op.security),
      ]);
    }
  }
  return table(["group", "operation", "summary", "who may call it"], rows);
}

/** The reference as Markdown (before `deno fmt`). */
export function renderReference(doc: OpenApiDocument): string {
  const groups = byTag(doc);
  const count = [...groups.values()].reduce((n, ops) => n + ops.length, 0);
  const descriptions = new Map((doc.tags ?? []).map((t) => [t.name, t.description ?? ""]));
  const out = [
    "<!-- Generated by `deno task docs` (admin/generate_api_reference.ts) from the OpenAPI " +
    "document; edit the route declarations, not this file. -->",
    "# API reference",
    `${doc.info.title}, version ${doc.info.version}: ${count} operations. ` +
    "The same document is served as `GET /api/e2/openapi.json` and rendered with try-it at " +
    "`GET /api/e2/docs` ([more](openapi.md)).",
    cell(doc.info.description ?? ""),
    contents(groups),
  ];
  for (const [tag, ops] of groups) {
    out.push(`## ${tag}`, descriptions.get(tag) ?? "");
    for (const op of ops) out.push(operationSection(doc, op));
  }
  out.push(errorsSection(doc));
  return out.filter((s) => s.trim() !== "").join("\n\n") + "\n";
}
