/**
 * Where sign-in lands after a session ran out: the `next=` path the session guard
 * (routes/dashboard/mod.tsx) puts on its redirect to /sign-in, carried through the password
 * step and the second step. It comes back from the browser, so it is checked like a reset
 * link's `redirectTo` (auth/accounts/password_reset.ts): a path on this site only, never
 * `//host`, a scheme, a backslash or a control character, or the sign-in would become an open
 * redirect.
 */
import { resetRedirectPath } from "../../auth/accounts/service.ts";

/** The query parameter and hidden form field that carry the path. */
export const NEXT_PARAM = "next";

/** Any origin will do: only a result on this same origin is accepted, and only its path kept. */
const PLACEHOLDER_ORIGIN = "http://next.invalid";

/** `value` as a same-origin path (with its query), or null when it is missing or not one. */
export function safeNextPath(value: string | null | undefined): string | null {
  if (!value || !value.startsWith("/") || value.length > 2048) return null;
  try {
    return resetRedirectPath(value, PLACEHOLDER_ORIGIN, NEXT_PARAM);
  } catch {
    return null;
  }
}

/** `path` with `?next=` (or `&next=`) added, when there is a safe one to carry. */
export function withNext(path: string, next: string | null | undefined): string {
  const safe = safeNextPath(next);
  if (safe === null) return path;
  const sep = path.includes("?") ? "&" : "?";
  return `${path}${sep}${new URLSearchParams({ [NEXT_PARAM]: safe })}`;
}
