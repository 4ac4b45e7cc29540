/**
 * An endpoint written straight to the store, for tests of other features that need a real one
 * (a domain's catch-all must name an endpoint of the account since issue 23).
 */
import type { Clock } from "../../lib/clock.ts";
import { newWebhookSecret } from "../../lib/webhooks/signature.ts";
import { endpointStore } from "../../store/endpoints/store.ts";

/** A new endpoint of `userId` (an e-mail forward, or a webhook to `url`); its id. */
export async function seedEndpoint(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: { name?: string; url?: string } = {},
): Promise<string> {
  const store = endpointStore(kv, userId, clock);
  const record = await store.create(
    opts.url
      ? {
        name: opts.name ?? "Seeded webhook",
        type: "webhook",
        description: null,
        config: { url: opts.url, headers: {}, timeout: 30, retryAttempts: 3 },
        signingSecret: newWebhookSecret(),
      }
      : {
        name: opts.name ?? "Seeded forward",
        type: "email",
        description: null,
        config: { forwardTo: "seeded@example.com", preserveHeaders: false },
        signingSecret: null,
      },
  );
  return record.id;
}
