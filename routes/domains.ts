/** `/api/e2/domains`: the account's domains, read and written only through the tenant store. */
import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../auth/middleware.ts";
import { jsonResponse } from "../lib/errors.ts";
import type { DomainRecord } from "../store/domains.ts";
import { parseQuery } from "./validation.ts";

const wholeNumber = (min: number, max: number) =>
  z.string()
    .regex(/^\d{1,9}$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

export const listDomainsQuery = z.object({
  limit: wholeNumber(1, 100).optional(),
  offset: wholeNumber(0, 1_000_000_000).optional(),
  status: z.enum(["pending", "verified", "failed"]).optional(),
  canReceive: z.enum(["true", "false"]).transform((v) => v === "true").optional(),
  check: z.enum(["true", "false"]).optional(),
});

function listItem(r: DomainRecord) {
  return {
    ...r,
    stats: { activeEmailAddresses: 0, hasCatchAll: r.isCatchAllEnabled, totalEmailAddresses: 0 },
    catchAllEndpoint: null,
  };
}

export function domainRoutes() {
  const app = new Hono<AppEnv>();

  app.get("/", async (c) => {
    const q = parseQuery(c, listDomainsQuery);
    const limit = q.limit ?? 50;
    const offset = q.offset ?? 0;
    const { data, total } = await c.var.store.domains.list(
      { status: q.status, canReceive: q.canReceive },
      { limit, offset },
    );
    return jsonResponse({
      data: data.map(listItem),
      pagination: { limit, offset, total, hasMore: offset + data.length < total },
    });
  });

  return app;
}
