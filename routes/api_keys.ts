/**
 * Key management: `/api/e2/api-keys` (session only: a Bearer key cannot list, create, roll or
 * delete keys, so a leaked key cannot mint more) and `/api/e2/auth/revoke-key` (Bearer: revokes
 * the key that authenticated the request). Handlers reach KV only through `c.var.store`.
 */
import { Hono } from "hono";
import type { MiddlewareHandler } from "hono";
import { z } from "zod";
import {
  issueApiKey,
  MAX_EXPIRES_IN_DAYS,
  MAX_KEY_NAME_LENGTH,
  rollApiKey,
} from "../auth/issue_api_key.ts";
import type { AppEnv } from "../auth/middleware.ts";
import type { Clock } from "../lib/clock.ts";
import { HttpError, jsonResponse } from "../lib/errors.ts";
import {
  ApiKeyLimitError,
  ApiKeyNotRollableError,
  type ApiKeyRecord,
  apiKeyView,
} from "../store/api_keys.ts";
import { parseJsonBody } from "./validation.ts";

export const MAX_ROLL_GRACE_HOURS = 168;
const HOUR_MS = 3_600_000;

/**
 * Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional
 * overrides and isolates that can make a name display as something else.
 */
const CONTROL_CHARACTERS = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/**
 * A key's name: trimmed, then 1 to MAX_KEY_NAME_LENGTH characters with no control character
 * anywhere. Shared by the API, the dashboard form and the admin CLI.
 */
export const keyNameSchema = z.string().trim().min(1, "is required").max(
  MAX_KEY_NAME_LENGTH,
  `must be at most ${MAX_KEY_NAME_LENGTH} characters`,
).refine((s) => !CONTROL_CHARACTERS.test(s), "must not contain control characters");

/** A key's lifetime in days (1..MAX_EXPIRES_IN_DAYS), null for never; for create and roll. */
export const expiresInDaysSchema = z.number().int("must be a whole number").min(
  1,
  "must be at least 1",
).max(
  MAX_EXPIRES_IN_DAYS,
  `must be at most ${MAX_EXPIRES_IN_DAYS}`,
).nullable().optional();

/** Request bodies are strict: a field the route does not know is a 400 that names it. */
export const createKeyBody = z.strictObject({
  name: keyNameSchema.describe(
    `A label for the key: 1 to ${MAX_KEY_NAME_LENGTH} characters after trimming, without control characters.`,
  ),
  expiresInDays: expiresInDaysSchema,
});

export const rollKeyBody = z.strictObject({
  expiresInHours: z.number().int("must be a whole number").min(0, "must be at least 0").max(
    MAX_ROLL_GRACE_HOURS,
    `must be at most ${MAX_ROLL_GRACE_HOURS} (7 days)`,
  ),
  /** The replacement's lifetime; absent: the old key's own lifetime, counted from the roll. */
  expiresInDays: expiresInDaysSchema,
});

const NO_STORE = { "Cache-Control": "no-store" };

export const SESSION_REQUIRED_MESSAGE =
  "API keys can be managed only from a signed-in dashboard session; a Bearer key cannot list, " +
  "create, roll or delete keys.";

/** 403 unless the request was authenticated by a session cookie. */
export const requireSession: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (c.var.principal.method !== "session") {
    throw new HttpError(403, SESSION_REQUIRED_MESSAGE, { code: "SESSION_REQUIRED" });
  }
  await next();
};

export function keyNotFound(): HttpError {
  return new HttpError(404, "No API key with that id.");
}

export function keyLimitError(err: ApiKeyLimitError): HttpError {
  return new HttpError(409, err.message, { code: "API_KEY_LIMIT_REACHED", max: err.max }, {
    "x-should-retry": "false",
  });
}

/** 409: an expired key, or one already in its grace period, cannot be rolled. */
export function keyNotRollableError(err: ApiKeyNotRollableError): HttpError {
  return new HttpError(409, err.message, { code: "API_KEY_NOT_ROLLABLE" }, {
    "x-should-retry": "false",
  });
}

/** Maps the store's NotFound, limit and not-rollable errors to their HTTP answers. */
export async function keyErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw keyNotFound();
    if (err instanceof ApiKeyLimitError) throw keyLimitError(err);
    if (err instanceof ApiKeyNotRollableError) throw keyNotRollableError(err);
    throw err;
  }
}

/** Ids are `key_` + 22 base62 characters; anything else cannot exist. */
const KEY_ID = /^key_[0-9A-Za-z]{22}$/;

export function keyIdParam(id: string): string {
  if (!KEY_ID.test(id)) throw keyNotFound();
  return id;
}

export function apiKeyRoutes(clock: Clock) {
  const app = new Hono<AppEnv>();
  app.use("*", requireSession);

  app.get("/", async (c) => {
    const keys = await c.var.store.apiKeys.list();
    return jsonResponse(
      { data: keys.map(apiKeyView) },
      200,
      NO_STORE,
    );
  });

  app.post("/", async (c) => {
    const body = await parseJsonBody(c, createKeyBody);
    const { key, record } = await keyErrors(() =>
      issueApiKey(c.var.store.apiKeys, {
        name: body.name,
        expiresInDays: body.expiresInDays ?? null,
        nowMs: clock(),
      })
    );
    return jsonResponse({ ...apiKeyView(record), key }, 201, NO_STORE);
  });

  app.delete("/:id", async (c) => {
    const id = keyIdParam(c.req.param("id"));
    const deleted = await keyErrors(() => c.var.store.apiKeys.delete(id));
    return jsonResponse(
      { success: true, id: deleted.id, message: "API key deleted. It no longer authenticates." },
      200,
      NO_STORE,
    );
  });

  app.post("/:id/roll", async (c) => {
    const id = keyIdParam(c.req.param("id"));
    const body = await parseJsonBody(c, rollKeyBody);
    const { key, record, old } = await keyErrors(() =>
      rollApiKey(c.var.store.apiKeys, id, body.expiresInHours * HOUR_MS, {
        expiresInDays: body.expiresInDays,
      })
    );
    return jsonResponse(
      { ...apiKeyView(record), key, previous: rolledView(old, body.expiresInHours) },
      201,
      NO_STORE,
    );
  });

  return app;
}

function rolledView(old: ApiKeyRecord, graceHours: number) {
  return { id: old.id, expiresAt: old.expiresAt, revoked: graceHours === 0 };
}

/** `/api/e2/auth/revoke-key`: the Bearer key that authenticated the request deletes itself. */
export function revokeKeyRoutes() {
  const app = new Hono<AppEnv>();
  app.post("/revoke-key", async (c) => {
    const { principal } = c.var;
    if (principal.method !== "api_key" || !principal.keyId) {
      throw new HttpError(
        400,
        "This endpoint revokes the API key that authenticated the request: call it with " +
          "Authorization: Bearer <key> and no session cookie. Use DELETE /api/e2/api-keys/{id} " +
          "from a session.",
        { code: "BEARER_KEY_REQUIRED" },
      );
    }
    const keyId = principal.keyId;
    const deleted = await keyErrors(() => c.var.store.apiKeys.delete(keyId));
    return jsonResponse(
      { success: true, id: deleted.id, message: "API key revoked. It no longer authenticates." },
      200,
      NO_STORE,
    );
  });
  return app;
}
