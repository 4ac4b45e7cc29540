/**
 * The one error shape every response uses: `{ error, message, statusCode }`, where `error` is the
 * HTTP reason phrase. The 401 and 503 bodies and headers are the seed's, byte for byte.
 */

export const JSON_CONTENT_TYPE = "application/json; charset=utf-8";

const REASON_PHRASES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  501: "Not Implemented",
  503: "Service Unavailable",
};

export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? "Error";
}

export type ErrorBody = {
  error: string;
  message: string;
  statusCode: number;
  [extra: string]: unknown;
};

export const UNAUTHORIZED_MESSAGE =
  "Authentication required. Provide a valid session cookie or Bearer token.";
export const RATE_LIMIT_UNAVAILABLE_MESSAGE =
  "Rate limiting service is temporarily unavailable. Please try again later.";
export const VALIDATION_MESSAGE = "Validation failed. Check your request parameters.";

/** A JSON response with the explicit charset the seed documents. */
export function jsonResponse(
  body: unknown,
  status = 200,
  headers: HeadersInit = {},
): Response {
  const h = new Headers(headers);
  h.set("Content-Type", JSON_CONTENT_TYPE);
  return new Response(JSON.stringify(body), { status, headers: h });
}

export function errorBody(
  status: number,
  message: string,
  extra: Record<string, unknown> = {},
): ErrorBody {
  return { error: reasonPhrase(status), message, statusCode: status, ...extra };
}

/**
 * Thrown anywhere below the app; the app's error handler turns it into the JSON error shape.
 * `extra` fields are merged into the body, so they must never carry secrets.
 */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: HeadersInit = {},
  ) {
    super(message);
    this.name = "HttpError";
  }

  toResponse(): Response {
    return jsonResponse(
      errorBody(this.status, this.message, this.extra),
      this.status,
      this.headers,
    );
  }
}

/** Same body and headers for every kind of failed credential, so none can be told apart. */
export function unauthorized(): HttpError {
  return new HttpError(401, UNAUTHORIZED_MESSAGE, {}, {
    "WWW-Authenticate": 'Bearer realm="API", charset="UTF-8"',
  });
}

/** Authenticated, but the account is suspended: refused before any account data is read. */
export function accountSuspended(): HttpError {
  return new HttpError(403, "This account is suspended.", { code: "ACCOUNT_SUSPENDED" });
}

/** The limiter could not answer: fail closed with the seed's body. */
export function rateLimitUnavailable(): HttpError {
  return new HttpError(503, RATE_LIMIT_UNAVAILABLE_MESSAGE, {}, { "Retry-After": "60" });
}

/**
 * A write kept losing to concurrent writers of the same records (store/errors.ts ConflictError):
 * nothing was written, and sending the request again is safe.
 */
export function writeConflict(): HttpError {
  return new HttpError(
    503,
    "The write conflicted with concurrent changes and was not applied. Retry the request.",
    { code: "WRITE_CONFLICT" },
    { "Retry-After": "1" },
  );
}

export function validationError(
  issues: { path: string; message: string }[],
): HttpError {
  return new HttpError(400, VALIDATION_MESSAGE, {
    field: issues[0]?.path ?? null,
    details: issues,
  });
}
