/**
 * Fixtures of the dashboard tests for endpoints and e-mail addresses: a signed-in session on the
 * endpoint test app (tests/endpoints/_fixture.ts: fake DNS, fake webhook resolver), form posts
 * from this site, pages read as text, and a verified domain added through the pages.
 */
import assert from "node:assert/strict";
import { BASE, signUp, withCookie } from "../sessions_helpers.ts";
import type { EndpointTestApp } from "./_fixture.ts";

export const SAME_ORIGIN = { Origin: BASE, "Sec-Fetch-Site": "same-origin" };

export type Session = {
  cookie: string;
  userId: string;
  /** GET a page: status and HTML. */
  get(path: string): Promise<{ status: number; html: string; headers: Headers }>;
  /** POST a form from this site: the raw response. */
  post(path: string, fields?: Record<string, string>): Promise<Response>;
  /** POST a form, expect 303, follow it: where it led and the page there. */
  postFollow(
    path: string,
    fields?: Record<string, string>,
  ): Promise<{ location: string; html: string }>;
  /** A JSON API call with the session cookie. */
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }>;
  /** A domain added and verified through the pages; its id. */
  verifiedDomain(name: string): Promise<string>;
};

// deno-lint-ignore no-explicit-any -- JSON bodies, asserted field by field in the tests
type Json = any;

export async function session(ctx: EndpointTestApp): Promise<Session> {
  const { cookie, userId } = await signUp(ctx.app);
  const get = async (path: string) => {
    const res = await ctx.app.request(`${BASE}${path}`, withCookie(cookie));
    return { status: res.status, html: await res.text(), headers: res.headers };
  };
  const post = async (path: string, fields: Record<string, string> = {}) =>
    await ctx.app.request(
      `${BASE}${path}`,
      withCookie(cookie, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", ...SAME_ORIGIN },
        body: new URLSearchParams(fields).toString(),
      }),
    );
  const postFollow = async (path: string, fields: Record<string, string> = {}) => {
    const res = await post(path, fields);
    const text = await res.text();
    assert.equal(res.status, 303, text.slice(0, 2000));
    const location = res.headers.get("Location") ?? "";
    return { location, html: (await get(location)).html };
  };
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await ctx.app.request(
      `${BASE}${path}`,
      withCookie(cookie, {
        method,
        headers: { "Content-Type": "application/json", ...SAME_ORIGIN },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
    );
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as Json };
  };
  return {
    cookie,
    userId,
    get,
    post,
    postFollow,
    api,
    async verifiedDomain(name) {
      const added = await postFollow("/settings/domains", { domain: name });
      const id = added.location.split("?")[0].split("/").at(-1)!;
      const domain = await api("GET", `/api/e2/domains/${id}`);
      ctx.dns.publish(domain.body.dnsRecords);
      ctx.clock.advance(60_000);
      await postFollow(`/settings/domains/${id}/check`);
      const checked = await api("GET", `/api/e2/domains/${id}`);
      assert.equal(checked.body.status, "verified");
      return id;
    },
  };
}

/** The id at the end of a redirect's path ("/settings/endpoints/ep_…?flash=…" → "ep_…"). */
export function idOf(location: string): string {
  return location.split("?")[0].split("#")[0].split("/").at(-1)!;
}

/** HTML entities the pages escape, back to text. */
export const unescape = (s: string) =>
  s.replaceAll("&quot;", '"').replaceAll("&#39;", "'").replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">").replaceAll("&amp;", "&");
