/**
 * Writes docs/api-reference.md, the endpoint reference, from the OpenAPI document the app serves
 * (`GET /api/e2/openapi.json`), which the route declarations produce. The reference is therefore
 * never written by hand: a route added, renamed or re-scoped changes it on the next run.
 *
 *   deno task docs
 *
 * The app is built on an in-memory KV with the default configuration (no file, network or
 * environment access), as a server without settings would describe itself. tests/operations/docs_test.ts
 * renders the document again and fails when the file differs.
 */
import { createApp } from "../app.ts";
import { loadConfig } from "../lib/config.ts";
import { type OpenApiDocument, renderReference } from "../routes/openapi/reference.ts";
import { formatMarkdown, writeChanged } from "./markdown.ts";

/** Where the reference is written, relative to the repository root. */
export const REFERENCE_PATH = "docs/api-reference.md";

/** The document as the app serves it, from an app on an in-memory KV. */
export async function servedOpenApi(): Promise<OpenApiDocument> {
  const kv = await Deno.openKv(":memory:");
  const config = { ...loadConfig({}), kvPath: ":memory:", logRequests: false };
  const app = createApp({ kv, config });
  try {
    const res = await app.request("/api/e2/openapi.json");
    if (res.status !== 200) throw new Error(`GET /api/e2/openapi.json answered ${res.status}`);
    return await res.json() as OpenApiDocument;
  } finally {
    await app.idle();
    kv.close();
  }
}

/** docs/api-reference.md as it should be now. */
export async function generatedReference(): Promise<string> {
  return await formatMarkdown(renderReference(await servedOpenApi()));
}

if (import.meta.main) {
  const written = await writeChanged(new Map([[REFERENCE_PATH, await generatedReference()]]));
  console.log(written.length ? `wrote ${written.join(", ")}` : "up to date");
}
