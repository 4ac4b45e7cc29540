/**
 * The store a request handler gets: every method is bound to one `userId` and builds only keys
 * under that account's prefix (plus the pointer indexes its own writes must maintain). Handlers
 * never see the raw `Deno.Kv`, so there is no way to address another account.
 */
import type { Clock } from "../lib/clock.ts";
import type { AuditContext, AuditSource } from "./audit.ts";
import { auditLogStore } from "./audit_log.ts";
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
  /**
   * Who is acting (auth/audit_context.ts): the stores add audit events to their commits. A
   * function is called once, when the first event is recorded.
   */
  audit?: AuditSource;
  /** AUDIT_RETENTION_DAYS, checked when the log is read (store/audit.ts's default when absent). */
  auditRetentionDays?: number;
};

export function tenantStore(
  kv: Deno.Kv,
  userId: string,
  clock: Clock,
  opts: TenantStoreOptions = { maxApiKeys: 50 },
) {
  // One of these is made per authenticated request and most requests use one sub-store, so each
  // is built on first use (each is a bundle of closures: building all four on every request is
  // garbage on the hot path).
  let apiKeys: ApiKeyStore | undefined;
  let domains: DomainStore | undefined;
  let auditLog: AuditLogStore | undefined;
  let flash: FlashStore | undefined;
  let auditContext: AuditContext | undefined;
  const source = opts.audit;
  const audit: AuditSource | undefined = typeof source === "function"
    ? () => (auditContext ??= source())
    : source;
  return {
    userId,
    user: () => getUserOrThrow(kv, userId),
    get apiKeys(): ApiKeyStore {
      return apiKeys ??= apiKeyStore(kv, userId, clock, {
        maxKeys: opts.maxApiKeys,
        revocations: opts.revocations,
        audit,
        auditRetentionDays: opts.auditRetentionDays,
      });
    },
    get domains(): DomainStore {
      return domains ??= domainStore(kv, userId, clock, {
        maxDomains: opts.maxDomains,
        audit,
      });
    },
    get auditLog(): AuditLogStore {
      return auditLog ??= auditLogStore(kv, userId, clock, {
        retentionDays: opts.auditRetentionDays,
      });
    },
    get flash(): FlashStore {
      return flash ??= flashStore(kv, userId, clock);
    },
  };
}

type ApiKeyStore = ReturnType<typeof apiKeyStore>;
type DomainStore = ReturnType<typeof domainStore>;
type AuditLogStore = ReturnType<typeof auditLogStore>;
type FlashStore = ReturnType<typeof flashStore>;

export type TenantStore = ReturnType<typeof tenantStore>;
