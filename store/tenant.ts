/**
 * The store a request handler gets: every method is bound to one `userId` and builds only keys
 * under that account's prefix (plus the pointer indexes its own writes must maintain). Handlers
 * never see the raw `Deno.Kv`, so there is no way to address another account.
 */
import type { Clock } from "../lib/clock.ts";
import { apiKeyStore, type ApiKeyStoreOptions } from "./api_keys.ts";
import { domainStore } from "./domains.ts";
import { getUserOrThrow } from "./users.ts";

export type TenantStoreOptions = { maxApiKeys: number; onRevoke?: ApiKeyStoreOptions["onRevoke"] };

export function tenantStore(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: TenantStoreOptions = { maxApiKeys: 50 },
) {
  return {
    userId,
    user: () => getUserOrThrow(kv, userId),
    apiKeys: apiKeyStore(kv, userId, clock, { maxKeys: opts.maxApiKeys, onRevoke: opts.onRevoke }),
    domains: domainStore(kv, userId, clock),
  };
}

export type TenantStore = ReturnType<typeof tenantStore>;
