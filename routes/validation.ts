/**
 * Request parsing shared by every route: query strings and JSON bodies are checked against zod
 * schemas, and every failure becomes the documented 400 with the offending parameter named.
 */
import type { Context } from "hono";
import type { z } from "zod";
import { API_KEY_PREFIX } from "../auth/api_keys/format.ts";
import { HttpError, validationError } from "../lib/errors.ts";

export const MAX_BODY_BYTES = 1024 * 1024;

type Issue = { path: string; message: string };

/** At most this many issues, each path and message at most this long: an error must not echo
 * a megabyte of hostile input back (unknown field names are quoted in their issue's path). */
const MAX_ISSUES = 20;
const MAX_ISSUE_TEXT = 200;

function clip(text: string): string {
  return text.length > MAX_ISSUE_TEXT ? `${text.slice(0, MAX_ISSUE_TEXT)}…` : text;
}

export const UNKNOWN_FIELD_MESSAGE = "is not a field this route accepts";

/**
 * An unknown field's name is repeated in the error only when it is short printable ASCII and not
 * shaped like an API key: a client that sends a secret as a field name (a key pasted in the wrong
 * place) must not get it back in an error, nor have it in a proxy's log of error bodies. Every
 * secret this server issues is longer than this (keys 46, session tokens 43 characters).
 */
const ECHOABLE_FIELD = /^[\x21-\x7e]{1,32}$/;
export const UNNAMED_FIELD = "(unknown field)";
export const UNNAMED_FIELD_MESSAGE =
  "is not a field this route accepts (its name is not repeated: it is empty, long, or looks " +
  "like a secret)";

function unknownField(at: string[], key: string): Issue {
  return ECHOABLE_FIELD.test(key) && !key.startsWith(API_KEY_PREFIX)
    ? { path: [...at, key].join("."), message: UNKNOWN_FIELD_MESSAGE }
    : { path: [...at, UNNAMED_FIELD].join("."), message: UNNAMED_FIELD_MESSAGE };
}

/**
 * zod's issues as `{ path, message }`. A strict object's "unrecognized keys" issue becomes one
 * issue per unknown field, with the field's path, so `field` names it as it names any other.
 */
function issuesOf(error: z.ZodError): Issue[] {
  const out: Issue[] = [];
  for (const i of error.issues) {
    const at = i.path.map(String);
    if (i.code === "unrecognized_keys") {
      for (const key of i.keys) out.push(unknownField(at, key));
    } else {
      out.push({ path: at.join(".") || "(body)", message: i.message });
    }
    if (out.length >= MAX_ISSUES) break;
  }
  return out.slice(0, MAX_ISSUES).map((i) => ({ path: clip(i.path), message: clip(i.message) }));
}

/** Parses the query string; a parameter given twice is an error, not a silent pick. */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.output<S> {
  const all = c.req.queries();
  const flat: Record<string, string> = {};
  for (const [name, values] of Object.entries(all)) {
    if (values.length > 1) {
      throw validationError([{ path: name, message: "must be given at most once" }]);
    }
    flat[name] = values[0];
  }
  const result = schema.safeParse(flat);
  if (!result.success) throw validationError(issuesOf(result.error));
  return result.data;
}

/**
 * Reads a JSON body of at most MAX_BODY_BYTES: 415 for another content type, 413 when too large,
 * 400 for malformed JSON or a body the schema refuses.
 */
export async function parseJsonBody<S extends z.ZodType>(
  c: Context,
  schema: S,
): Promise<z.output<S>> {
  const type = c.req.header("Content-Type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(415, "Request body must be JSON (Content-Type: application/json).");
  }
  const declared = Number(c.req.header("Content-Length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw payloadTooLarge();
  const text = await readLimited(c.req.raw, MAX_BODY_BYTES);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HttpError(400, "Request body is not valid JSON.");
  }
  const result = schema.safeParse(json);
  if (!result.success) throw validationError(issuesOf(result.error));
  return result.data;
}

export function payloadTooLarge(): HttpError {
  return new HttpError(413, `Request body must be at most ${MAX_BODY_BYTES} bytes.`);
}

async function readLimited(req: Request, limit: number): Promise<string> {
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw payloadTooLarge();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new HttpError(400, "Request body is not valid UTF-8.");
  }
}
