/**
 * What a domain's views (routes/domains/operations.ts: list, retrieve, update) say about its
 * addresses and catch-all (issue 23): `stats.totalEmailAddresses` / `activeEmailAddresses` from
 * the domain's count entry (store/email_addresses/store.ts A5), and `catchAllEndpoint` as the
 * SDK describes it ({ id, isActive, name, type }). Reads for a page of N domains: N count
 * entries and at most N endpoints, by batched point reads (10 keys a read), never a listing:
 * bounded by the page, whatever the number of addresses.
 */
import type { DomainRecord } from "../../store/domains/record.ts";
import type { TenantStore } from "../../store/tenant.ts";

export type CatchAllEndpointView = { id: string; isActive: boolean; name: string; type: string };

export type DomainAddressFacts = {
  totalEmailAddresses: number;
  activeEmailAddresses: number;
  catchAllEndpoint: CatchAllEndpointView | null;
};

/** The facts of each of `records` (one batched read of counts, one of endpoints). */
export async function domainAddressFacts(
  tenant: TenantStore,
  records: readonly DomainRecord[],
): Promise<(r: DomainRecord) => DomainAddressFacts> {
  const [counts, endpoints] = await Promise.all([
    tenant.emailAddresses.countsOf(records.map((r) => r.id)),
    tenant.emailAddresses.endpoints(records.flatMap((r) => r.catchAllEndpointId ?? [])),
  ]);
  return (r) => {
    const n = counts.get(r.id);
    const e = r.catchAllEndpointId ? endpoints.get(r.catchAllEndpointId) : undefined;
    return {
      totalEmailAddresses: n?.total ?? 0,
      activeEmailAddresses: n?.active ?? 0,
      catchAllEndpoint: e ? { id: e.id, isActive: e.isActive, name: e.name, type: e.type } : null,
    };
  };
}
