/**
 * The shape of a domain record and the filters it is listed under: what the domain store
 * (store/domains/store.ts), its write plan (store/domains/plan.ts) and its invariant check
 * (store/domains/invariants.ts) all read. A module of its own so that none of those imports
 * another just for a type: the plan used to import the store that imports the plan.
 * store/domains/store.ts re-exports all of it, so callers keep importing from there.
 */
import type { DnsRecordSpec } from "../../lib/dns.ts";

export type DomainStatus = "pending" | "verified" | "failed";
export const DOMAIN_STATUSES: readonly DomainStatus[] = ["pending", "verified", "failed"];

/** A DNS record the domain should publish, with the result of its last check. */
export type StoredDnsRecord = DnsRecordSpec & {
  id: string;
  createdAt: string;
  isVerified: boolean;
  lastChecked: string | null;
  /** Why the last check did not verify it (absent when it did, or before any check). */
  lastError: string | null;
};

export type DomainRecord = {
  id: string;
  userId: string;
  domain: string;
  status: DomainStatus;
  canReceiveEmails: boolean;
  hasMxRecords: boolean;
  domainProvider: string | null;
  providerConfidence: string | null;
  lastDnsCheck: string | null;
  lastSesCheck: string | null;
  isCatchAllEnabled: boolean;
  catchAllEndpointId: string | null;
  receiveDmarcEmails: boolean;
  mailFromDomain: string | null;
  mailFromDomainStatus: string | null;
  mailFromDomainVerifiedAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** The secret part of the verification TXT value. */
  verificationToken: string;
  dnsRecords: StoredDnsRecord[];
  /** The nearest ancestor domain of this account when the record was created, if any. */
  parentDomainId: string | null;
  parentDomain: string | null;
  /** Verified because the parent was verified, not by its own TXT record. */
  inheritsFromParent: boolean;
  /** Number of child links [u, "domain_children", id, *]. */
  childCount: number;
  /** The quota slot [u, "domain_slot", n] this record holds (absent on records made before quotas). */
  quotaSlot?: number;
};

export type DomainNamePointer = { userId: string; domainId: string };

/** A domain of the account by id and name. */
export type DomainRef = { id: string; domain: string };

export type DomainFilter = { status?: DomainStatus; canReceive?: boolean };

/** MAX_DOMAINS_PER_ACCOUNT's default. */
export const DEFAULT_MAX_DOMAINS = 1000;

/** The index/counter name for a filter; `"all"` when there is none. */
export function filterName(filter: DomainFilter): string {
  const parts: string[] = [];
  if (filter.status !== undefined) parts.push(`status:${filter.status}`);
  if (filter.canReceive !== undefined) parts.push(`canReceive:${filter.canReceive}`);
  return parts.length ? parts.join(",") : "all";
}

/** Every filtered index and counter a record belongs to, "all" included. */
export function filterNamesOf(r: Pick<DomainRecord, "status" | "canReceiveEmails">): string[] {
  return [
    "all",
    filterName({ status: r.status }),
    filterName({ canReceive: r.canReceiveEmails }),
    filterName({ status: r.status, canReceive: r.canReceiveEmails }),
  ];
}

/** Every filter name a counter can exist for. */
export function allFilterNames(): string[] {
  const names = new Set<string>();
  for (const status of DOMAIN_STATUSES) {
    for (const canReceiveEmails of [true, false]) {
      for (const n of filterNamesOf({ status, canReceiveEmails })) names.add(n);
    }
  }
  return [...names];
}
