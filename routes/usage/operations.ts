/**
 * Usage per API key and day (issue 13 item 3), session only:
 *   GET /api/e2/api-keys/{id}/usage?days=N   one key: one item per UTC day, oldest first;
 *   GET /api/e2/usage?days=N[&keyId=…]       the account, by key: one item per key and day.
 * Counts come from store/usage.ts (hourly counters summed into days); they trail the requests by
 * at most USAGE_FLUSH_MS per process (routes/usage/recorder.ts). A key of another account answers 404
 * exactly like a key that does not exist. Handlers read through `UsageReads` (routes/usage/recorder.ts) and
 * the tenant store, never KV itself; what the account's usage is made of (live keys one series
 * each, deleted keys one series together, issue 20) is decided there, for this route and the
 * dashboard alike.
 */
import { z } from "zod";
import { DELETED_KEYS_ID, type KeyUsage, type UsageReads } from "./recorder.ts";
import { jsonResponse } from "../../lib/errors.ts";
import { type DayUsage, USAGE_RETENTION_DAYS } from "../../store/usage.ts";
import { keyErrors, keyIdParam } from "../api_keys/operations.ts";
import type { RouteRegistry } from "../registry.ts";

export { DELETED_KEYS_ID };
export type { KeyUsage, UsageReads };

export const DEFAULT_USAGE_DAYS = 30;

const daysParam = z.string()
  .regex(/^\d{1,9}$/, "must be a whole number")
  .transform(Number)
  .pipe(
    z.number().min(1, "must be at least 1").max(
      USAGE_RETENTION_DAYS,
      `must be at most ${USAGE_RETENTION_DAYS}`,
    ),
  )
  .meta({ type: "integer", minimum: 1, maximum: USAGE_RETENTION_DAYS })
  .optional()
  .describe(
    `Days to return, 1 to ${USAGE_RETENTION_DAYS} (default ${DEFAULT_USAGE_DAYS}): UTC days ` +
      "ending with today (so far).",
  );

export const keyUsageQuery = z.object({ days: daysParam });
export const accountUsageQuery = z.object({
  days: daysParam,
  keyId: z.string().optional().describe(
    "Only this key's items, a deleted key's included (its own days, `name: null`); an id " +
      "that is not the account's answers an empty list.",
  ),
});

const dayFields = {
  start: z.string().describe("The UTC day's start (ISO 8601); the last item is today so far."),
  requests: z.number().int().describe("Every request the key made that day: the sum of the rest."),
  "2xx": z.number().int().describe("Answered with a status below 400."),
  "4xx": z.number().int().describe("Refused with a 4xx other than 429 (validation, 403, 404…)."),
  "429": z.number().int().describe("Refused by the rate limit."),
  "5xx": z.number().int().describe("Failed with a 5xx (503 included)."),
};

export const dayUsageSchema = z.object(dayFields);

/** One forward-auth rule's answers to a key over the days asked (issue 25). */
export const ruleUsageSchema = z.object({
  rule: z.string().describe("The forward-auth rule's name (FORWARD_AUTH_RULES)."),
  requests: z.number().int().describe("Forward-auth and verify answers under the rule."),
  "2xx": dayFields["2xx"],
  "4xx": dayFields["4xx"],
  "429": dayFields["429"],
  "5xx": dayFields["5xx"],
});
export const keyDayUsageSchema = z.object({
  keyId: z.string().describe(
    `The key (key_…). The deleted keys' series has the deleted key's id while there is one, ` +
      `and \`${DELETED_KEYS_ID}\` once it sums several.`,
  ),
  name: z.string().nullable().describe(
    "The key's name; null for the deleted keys' series (and for a deleted key asked by `keyId`).",
  ),
  deletedKeys: z.number().int().min(1).optional().describe(
    "Only on the deleted keys' series: how many deleted keys it sums.",
  ),
  ...dayFields,
});

const NO_STORE = { "Cache-Control": "no-store" };
const SESSION_ONLY = "Session only: a Bearer key answers 403 `SESSION_REQUIRED`.";
const FRESHNESS = "Counts trail requests by at most `USAGE_FLUSH_MS` (default 60 s); usage is " +
  `kept ${USAGE_RETENTION_DAYS} days. A request counts once it is answered, refusals included ` +
  "(401s identify no key and are not counted).";

export function registerUsageRoutes(registry: RouteRegistry, reads: UsageReads): void {
  const tags = ["API keys"];
  registry.add({
    method: "get",
    path: "/api/e2/api-keys/:id/usage",
    operationId: "retrieveApiKeyUsage",
    summary: "Usage of an API key",
    description: `Requests of one key per UTC day, by outcome, oldest day first, every day ` +
      `present (zeros included); and \`rules\`: its forward-auth and verify answers over the ` +
      `same days by the rule they fell under (docs/forward-auth.md), busiest first. ` +
      `${FRESHNESS} ${SESSION_ONLY}`,
    tags,
    security: ["session"],
    params: z.object({ id: z.string().describe("The key's id (key_…).") }),
    query: keyUsageQuery,
    responses: {
      200: {
        description: "One item per day, and the totals per forward-auth rule.",
        schema: z.object({
          data: z.array(dayUsageSchema),
          rules: z.array(ruleUsageSchema).describe(
            "Per forward-auth rule, busiest first; empty without forward-auth traffic.",
          ),
          rulesTruncated: z.boolean().optional().describe(
            "true: the key has more rules' counters than one answer reads (the busiest may be " +
              "missing); absent otherwise.",
          ),
        }),
        name: "ApiKeyUsage",
      },
    },
    errors: [400, 403, 404],
    handler: async (c, { params, query }) => {
      const id = keyIdParam(params.id);
      const store = c.get("store");
      await keyErrors(() => store.apiKeys.get(id));
      const days = query.days ?? DEFAULT_USAGE_DAYS;
      const [data, byRule] = await Promise.all([
        reads.forKey(store, id, days),
        reads.rulesForKey(store, id, days),
      ]);
      const rules = byRule.truncated
        ? { rules: byRule.rules, rulesTruncated: true }
        : { rules: byRule.rules };
      return jsonResponse({ data, ...rules }, 200, NO_STORE);
    },
  });
  registry.add({
    method: "get",
    path: "/api/e2/usage",
    operationId: "listUsage",
    summary: "Usage of the account, by key",
    description: "Requests per API key and UTC day, by outcome: one item per key and day, " +
      "oldest day first and, within a day, the account's keys newest first, then ONE series " +
      "for every deleted key that still has usage (`name: null`, `deletedKeys` says how many; " +
      `its \`keyId\` is the deleted key's while there is one, \`${DELETED_KEYS_ID}\` once ` +
      "there are several), so the list is at most (keys + 1) x days long however many keys " +
      "were deleted. Every key of the account is listed, with zeros for idle days. Sum the " +
      "items of a day for the account's total. `keyId` narrows to one key, a deleted one " +
      `included. ${FRESHNESS} ${SESSION_ONLY}`,
    tags,
    security: ["session"],
    query: accountUsageQuery,
    responses: {
      200: {
        description: "One item per key and day.",
        schema: z.object({ data: z.array(keyDayUsageSchema) }),
        name: "AccountUsage",
      },
    },
    errors: [400, 403],
    handler: async (c, { query }) => {
      const days = query.days ?? DEFAULT_USAGE_DAYS;
      const store = c.get("store");
      const keys = query.keyId === undefined
        ? await reads.forAccount(store, days)
        : wellFormedKeyId(query.keyId)
        ? [await reads.forAccountKey(store, query.keyId, days)].filter((k) => k !== null)
        : [];
      const data = [];
      for (let d = 0; d < days; d++) {
        for (const k of keys) {
          const deleted = k.deletedKeys === undefined ? {} : { deletedKeys: k.deletedKeys };
          data.push({ keyId: k.keyId, name: k.name, ...deleted, ...k.days[d] });
        }
      }
      return jsonResponse({ data }, 200, NO_STORE);
    },
  });
}

/** Whether `id` can be a key's id at all (anything else narrows the list to nothing, unread). */
function wellFormedKeyId(id: string): boolean {
  try {
    return keyIdParam(id) === id;
  } catch {
    return false;
  }
}

/** The account's requests per day: every key's items summed (the dashboard's bar chart). */
export function accountTotals(keys: KeyUsage[], days: number, nowMs: number): DayUsage[] {
  const out: DayUsage[] = [];
  const first = nowMs - (nowMs % 86_400_000) - (days - 1) * 86_400_000;
  for (let d = 0; d < days; d++) {
    const total: DayUsage = {
      start: new Date(first + d * 86_400_000).toISOString(),
      requests: 0,
      "2xx": 0,
      "4xx": 0,
      "429": 0,
      "5xx": 0,
    };
    for (const k of keys) {
      const day = k.days[d];
      if (!day) continue;
      total.requests += day.requests;
      total["2xx"] += day["2xx"];
      total["4xx"] += day["4xx"];
      total["429"] += day["429"];
      total["5xx"] += day["5xx"];
    }
    out.push(total);
  }
  return out;
}
