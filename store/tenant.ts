/**
 * The store a request handler gets: every method is bound to one `userId` and builds only keys
 * under that account's prefix (plus the pointer indexes its own writes must maintain). Handlers
 * never see the raw `Deno.Kv`, so there is no way to address another account.
 */
import type { Clock } from "../lib/clock.ts";
import { apiKeyStore, type ApiKeyStoreOptions } from "./api_keys.ts";
import { domainStore } from "./domains.ts";
import { flashStore } from "./flash.ts";
import { getUserOrThrow } from "./users.ts";

export type TenantStoreOptions = {
  maxApiKeys: number;
  /** MAX_DOMAINS_PER_ACCOUNT (store/domains.ts DEFAULT_MAX_DOMAINS when absent). */
  maxDomains?: number;
  /** Where revocations are announced in this process; defaults to the process's hub. */
  revocations?: ApiKeyStoreOptions["revocations"];
};

export function tenantStore(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: TenantStoreOptions = { maxApiKeys: 50 },
) {
  return {
    userId,
    user: () => getUserOrThrow(kv, userId),
    apiKeys: apiKeyStore(kv, userId, clock, {
      maxKeys: opts.maxApiKeys,
      revocations: opts.revocations,
    }),
    domains: domainStore(kv, userId, clock, { maxDomains: opts.maxDomains }),
    flash: flashStore(kv, userId, clock),
  };
}

export type TenantStore = ReturnType<typeof tenantStore>;
