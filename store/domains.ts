/**
 * Domain records and their listing indexes. Listing never reads every record: ids come from a
 * time-ordered index (one per filter), totals from counters maintained in the same commits.
 */
import type { Clock } from "../lib/clock.ts";
import { domainByFilterPrefix, domainByTimePrefix, domainCountKey, domainKey } from "./keys.ts";

export type DomainStatus = "pending" | "verified" | "failed";

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
};

export type DomainFilter = { status?: DomainStatus; canReceive?: boolean };

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

/** KV's getMany takes at most 10 keys. */
const GET_MANY_LIMIT = 10;

export function domainStore(kv: Deno.Kv, userId: string, _clock: Clock) {
  async function getMany(ids: string[]): Promise<DomainRecord[]> {
    const chunks: string[][] = [];
    for (let i = 0; i < ids.length; i += GET_MANY_LIMIT) {
      chunks.push(ids.slice(i, i + GET_MANY_LIMIT));
    }
    const results = await Promise.all(
      chunks.map((chunk) => kv.getMany<DomainRecord[]>(chunk.map((id) => domainKey(userId, id)))),
    );
    return results.flat().flatMap((e) => (e.value ? [e.value] : []));
  }

  return {
    /** Newest first. Skips `offset` index entries (ids only), then reads one page of records. */
    async list(
      filter: DomainFilter,
      page: { limit: number; offset: number },
    ): Promise<{ data: DomainRecord[]; total: number }> {
      const name = filterName(filter);
      const prefix = name === "all"
        ? domainByTimePrefix(userId)
        : domainByFilterPrefix(userId, name);
      const ids: string[] = [];
      const iter = kv.list<string>({ prefix }, {
        reverse: true,
        limit: page.offset + page.limit,
        batchSize: Math.min(500, page.offset + page.limit),
      });
      let seen = 0;
      for await (const entry of iter) {
        if (seen++ >= page.offset) ids.push(entry.value);
      }
      const [data, total] = await Promise.all([getMany(ids), this.count(filter)]);
      return { data, total };
    },

    async count(filter: DomainFilter = {}): Promise<number> {
      return (await kv.get<number>(domainCountKey(userId, filterName(filter)))).value ?? 0;
    },

    async get(domainId: string): Promise<DomainRecord> {
      const entry = await kv.get<DomainRecord>(domainKey(userId, domainId));
      if (!entry.value) throw new Deno.errors.NotFound("No such domain");
      return entry.value;
    },
  };
}

export type DomainStore = ReturnType<typeof domainStore>;
