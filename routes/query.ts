/**
 * Query-string schemas that every list route shares: one definition of a whole number on the
 * wire and of the `limit` / `offset` page fields.
 */
import { z } from "zod";

/**
 * A whole number in the query string: validated as the string it is on the wire, documented as
 * an integer (`meta`), so generated clients send `limit: 10` and serialise it as `limit=10`.
 */
export const wholeNumber = (min: number, max: number) =>
  z.string()
    .regex(/^\d{1,9}$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`))
    .meta({ type: "integer", minimum: min, maximum: max });

/** A list's page size when the query names none. */
export const DEFAULT_PAGE_SIZE = 50;

/** `limit`, 1 to 100: the page size of every list route. */
export const pageLimit = () =>
  wholeNumber(1, 100).optional().describe("Page size, 1 to 100 (default 50).");

/** `limit` and `offset` of an offset-paged list (spread into its query object). */
export const offsetPageFields = () => ({
  limit: pageLimit(),
  offset: wholeNumber(0, 1_000_000_000).optional().describe("Entries to skip (default 0)."),
});

/** A resource id in a path or a body: 1 to 200 characters (an unknown one is a 404). */
export const resourceId = () => z.string().min(1).max(200);

/** The `{ id }` path parameters of one resource, `description` naming it (and its prefix). */
export const idParams = (description: string) =>
  z.object({ id: resourceId().describe(description) });
