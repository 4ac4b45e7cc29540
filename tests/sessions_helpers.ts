/** Helpers for the session, key-management and dashboard tests. */
import type { App } from "../app.ts";
import { TEST_PASSWORD } from "./_helpers.ts";

export const BASE = "http://localhost";
export const SEED_401 = {
  error: "Unauthorized",
  message: "Authentication required. Provide a valid session cookie or Bearer token.",
  statusCode: 401,
};

/** Deno.serve's handler info, as Hono sees it in `c.env`. */
export function fromIp(hostname: string) {
  return { remoteAddr: { hostname, port: 40000, transport: "tcp" } };
}

export function json(body: unknown, init: RequestInit = {}): RequestInit {
  const headers = new Headers(init.headers);
  headers.set("Content-Type", "application/json");
  return { method: "POST", ...init, headers, body: JSON.stringify(body) };
}

/** `name=value` for the Cookie header, from a response's Set-Cookie. */
export function cookieFrom(res: Response): string {
  const set = res.headers.get("Set-Cookie");
  if (!set) throw new Error(`no Set-Cookie on ${res.status}`);
  return set.split(";")[0];
}

export function withCookie(cookie: string, init: RequestInit = {}): RequestInit {
  const headers = new Headers(init.headers);
  headers.set("Cookie", cookie);
  return { ...init, headers };
}

let n = 0;
export function freshEmail(): string {
  return `person${++n}-${crypto.randomUUID().slice(0, 8)}@example.com`;
}

/** Signs up through the JSON endpoint; returns the cookie pair and the account id. */
export async function signUp(
  app: App,
  email = freshEmail(),
  password = TEST_PASSWORD,
): Promise<{ cookie: string; userId: string; email: string }> {
  const res = await app.request(`${BASE}/api/auth/sign-up`, json({ email, password }));
  if (res.status !== 201) throw new Error(`sign-up: ${res.status} ${await res.text()}`);
  const body = await res.json();
  return { cookie: cookieFrom(res), userId: body.user.id, email };
}

/** Creates a key through the session-authenticated API. */
export async function createKeyViaSession(
  app: App,
  cookie: string,
  body: Record<string, unknown> = { name: "test key" },
): Promise<{ key: string; id: string; res: Response; body: Record<string, unknown> }> {
  const res = await app.request(`${BASE}/api/e2/api-keys`, withCookie(cookie, json(body)));
  const parsed = await res.clone().json();
  return { key: parsed.key, id: parsed.id, res, body: parsed };
}

export async function statusOf(res: Response | Promise<Response>): Promise<number> {
  const r = await res;
  await r.body?.cancel();
  return r.status;
}

/** What a browser keeps: cookies by name, updated from each response's Set-Cookie lines. */
export class Jar {
  #cookies = new Map<string, string>();
  take(res: Response): Response {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      if (attrs.some((a) => /^\s*Max-Age=0\s*$/i.test(a))) this.#cookies.delete(name);
      else this.#cookies.set(name, pair.slice(eq + 1).trim());
    }
    return res;
  }
  get(name: string): string | undefined {
    return this.#cookies.get(name);
  }
  set(name: string, value: string): void {
    this.#cookies.set(name, value);
  }
  header(): string {
    return [...this.#cookies].map(([n, v]) => `${n}=${v}`).join("; ");
  }
  init(init: RequestInit = {}): RequestInit {
    const headers = new Headers(init.headers);
    if (this.#cookies.size > 0) headers.set("Cookie", this.header());
    return { ...init, headers };
  }
}

/**
 * Proves the password again for `cookie`'s session (sudo mode, auth/sudo.ts): needed before
 * managing keys once the test's clock has moved more than 10 minutes past the sign-in.
 */
export async function reauthenticate(
  app: App,
  cookie: string,
  password = TEST_PASSWORD,
): Promise<void> {
  const res = await app.request(
    `${BASE}/api/auth/reauthenticate`,
    withCookie(cookie, json({ password })),
  );
  if (res.status !== 200) throw new Error(`reauthenticate: ${res.status} ${await res.text()}`);
  await res.body?.cancel();
}
