/**
 * Checks real responses against the served OpenAPI document: the operation is found by method
 * and path, the response by status, and the JSON body is validated (JSON Schema 2020-12, with
 * `additionalProperties: false` on response objects, so an undocumented field fails too).
 */
import assert from "node:assert/strict";
import { Validator } from "@cfworker/json-schema";
import type { Schema } from "@cfworker/json-schema";

type Json = Record<string, unknown>;

export type OpenApiDoc = {
  openapi: string;
  paths: Record<string, Record<string, Json>>;
  components: Json;
};

/** Replaces every `$ref` with the schema it names (the document has no cycles). */
export function deref(doc: Json, node: unknown): unknown {
  if (Array.isArray(node)) return node.map((n) => deref(doc, n));
  if (!node || typeof node !== "object") return node;
  const obj = node as Json;
  if (typeof obj.$ref === "string") {
    let target: unknown = doc;
    for (const part of obj.$ref.replace(/^#\//, "").split("/")) target = (target as Json)[part];
    return deref(doc, target);
  }
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, deref(doc, v)]));
}

/** The document path template that `path` (no query) matches, e.g. "/api/e2/domains/{id}". */
export function templateOf(doc: OpenApiDoc, path: string): string | null {
  const exact = Object.keys(doc.paths).find((p) => p === path);
  if (exact) return exact;
  return Object.keys(doc.paths).find((p) =>
    new RegExp(`^${p.replace(/\{[^}]+\}/g, "[^/]+")}$`).test(path)
  ) ?? null;
}

/** Asserts that `body` is what the document says `method path` answers with `status`. */
export function assertMatchesDocument(
  doc: OpenApiDoc,
  method: string,
  url: string,
  status: number,
  contentType: string | null,
  body: unknown,
): void {
  const path = new URL(url, "http://x").pathname.replace(/^\/api\/v2(\/|$)/, "/api/e2$1");
  const template = templateOf(doc, path);
  assert.ok(template, `${path} is in the document`);
  const op = doc.paths[template][method.toLowerCase()];
  assert.ok(op, `${method} ${template} is in the document`);
  const response = deref(doc, (op.responses as Json)[String(status)]) as Json | undefined;
  assert.ok(response, `${method} ${template} documents status ${status}`);
  const content = response.content as Record<string, Json> | undefined;
  if (!content) return;
  const media = content["application/json"];
  assert.ok(media, `${method} ${template} ${status} is JSON`);
  assert.equal(contentType, "application/json; charset=utf-8");
  const result = new Validator(media.schema as Schema, "2020-12", false).validate(body);
  assert.ok(
    result.valid,
    `${method} ${template} ${status} body matches its schema:\n${
      JSON.stringify(result.errors.slice(0, 5), null, 2)
    }\nbody: ${JSON.stringify(body).slice(0, 2000)}`,
  );
}
