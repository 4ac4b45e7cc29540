/** `GET /healthz`: whether the server and its KV store answer, for load balancers and uptime checks. */
import { z } from "zod";
import { withTimeout } from "../lib/async.ts";
import { errorBody, jsonResponse } from "../lib/errors.ts";
import { healthKey } from "../store/keys.ts";
import type { RouteRegistry } from "./registry.ts";

const HEALTH_TIMEOUT_MS = 1000;

export function registerHealthRoute(registry: RouteRegistry, kv: Deno.Kv): void {
  registry.add({
    method: "get",
    path: "/healthz",
    operationId: "getHealth",
    summary: "Health check",
    description: "Answers 200 when the KV store answers within a second, 503 otherwise.",
    tags: ["Operations"],
    auth: false,
    responses: {
      200: {
        description: "The server and its KV store answer.",
        schema: z.object({ status: z.literal("ok"), kv: z.literal("ok") }),
        name: "Health",
      },
    },
    errors: [503],
    handler: async () => {
      try {
        await withTimeout(kv.get(healthKey()), HEALTH_TIMEOUT_MS);
        return jsonResponse({ status: "ok", kv: "ok" });
      } catch {
        return jsonResponse(
          errorBody(503, "The KV store is not answering.", { kv: "unavailable" }),
          503,
          { "Retry-After": "5" },
        );
      }
    },
  });
}
