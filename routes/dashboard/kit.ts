/**
 * The shape of the dashboard's shared kit: the response and form helpers every feature's pages
 * use (built once per app by `dashboardRoutes` in mod.tsx and handed to each `register…Pages`).
 * Only the type lives here, apart from its implementation, so a feature module can name it
 * without importing mod.tsx, which imports every feature (no import circle).
 */
import type { Context, MiddlewareHandler } from "hono";
import type { z } from "zod";
import type { AppEnv } from "../../auth/middleware.ts";

/** What hono/jsx renders a page to. */
export type Html = string | Promise<string>;

/** An error as a page shows it: its message, the status to answer, and Retry-After if any. */
export type ErrorInfo = { message: string; status: number; headers: HeadersInit };

export type DashboardKit = {
  /** A full HTML page with the security headers; never cached (pages may show a fresh key). */
  page(node: Html, status?: number, headers?: HeadersInit): Promise<Response>;
  /** A 303 (Post/Redirect/Get) with the security headers; `headers` may set cookies. */
  redirect(location: string, headers?: [string, string][]): Response;
  /** The posted form's fields (`readForm` of the request's body). */
  formFields(c: Context): Promise<Record<string, string>>;
  /** The dashboard's one form reader: throws its 4xx for a body it will not read. */
  readForm(req: Request): Promise<Record<string, string>>;
  /** Re-renders with the error's message and status (and Retry-After for 429); rethrows others. */
  errorInfo(err: unknown): ErrorInfo;
  /** The first validation problem as a sentence a person can act on, e.g. "Name is required." */
  firstProblem(error: z.ZodError, labels: Record<string, string>): string;
  /** The banner text of a `?notice=` a redirect named (every feature's notices in one table). */
  notice(key: string): string | undefined;
  /** Same-origin check for every state-changing dashboard request. */
  sameOrigin: MiddlewareHandler<AppEnv>;
  /** The form body limit; a larger body gets the "Form not accepted" page (413). */
  formLimit: MiddlewareHandler<AppEnv>;
};
