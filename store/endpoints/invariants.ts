/**
 * The invariants of one account's endpoints and e-mail addresses (store/endpoints/store.ts E1-E2,
 * store/email_addresses/store.ts A1-A5), checked from the account's entries: by the tests after
 * every scenario and by `admin verify` (admin/verify.ts) for every account. Pure over its input
 * (`endpointViolations`); `checkEndpointInvariants` reads one account's entries first.
 */
import type { DomainRecord } from "../domains/record.ts";
import {
  domainAddressCountRootPrefix,
  domainAddressRootPrefix,
  domainPrefix,
  emailAddressByNamePrefix,
  emailAddressCountKey,
  emailAddressPrefix,
  endpointCountKey,
  endpointPrefix,
  endpointRefRootPrefix,
} from "../keys.ts";
import { type EmailAddressRecord, type EndpointRecord, routedEndpointId } from "./record.ts";

/** What the check reads of one account. */
export type EndpointFamilies = {
  endpoints: Map<string, EndpointRecord>;
  addresses: Map<string, EmailAddressRecord>;
  domains: Map<string, DomainRecord>;
  byName: { key: Deno.KvKey; value: unknown }[];
  domainAddresses: { key: Deno.KvKey; value: unknown }[];
  refs: { key: Deno.KvKey; value: unknown }[];
  endpointCount: number | null;
  addressCount: number | null;
  /** [u, "domain_address_count", D] entries (A5). */
  domainCounts: { key: Deno.KvKey; value: unknown }[];
};

/** A5: each domain's count entry is its records and active records; none at zero. */
function countViolations(f: EndpointFamilies): string[] {
  const want = new Map<string, { total: number; active: number }>();
  for (const a of f.addresses.values()) {
    const n = want.get(a.domainId) ?? { total: 0, active: 0 };
    want.set(a.domainId, { total: n.total + 1, active: n.active + (a.isActive ? 1 : 0) });
  }
  const out: string[] = [];
  const seen = new Set<string>();
  for (const e of f.domainCounts) {
    const id = String(e.key[2]);
    seen.add(id);
    const got = JSON.stringify(e.value), expected = JSON.stringify(want.get(id) ?? null);
    if (got !== expected) out.push(`domain_address_count ${id}: ${got}, records ${expected}`);
  }
  for (const [id, n] of want) {
    if (!seen.has(id)) {
      out.push(`domain_address_count ${id}: missing, records ${JSON.stringify(n)}`);
    }
  }
  return out;
}

/** One line per violation: the family, the id and what is wrong. Empty when consistent. */
export function endpointViolations(f: EndpointFamilies): string[] {
  const out: string[] = [];
  const refs = new Set(f.refs.map((e) => e.key.slice(2).join("/")));
  if ((f.endpointCount ?? 0) !== f.endpoints.size) {
    out.push(`count endpoints: counter ${f.endpointCount ?? 0}, ${f.endpoints.size} records`);
  }
  if ((f.addressCount ?? 0) !== f.addresses.size) {
    out.push(`count email_addresses: counter ${f.addressCount ?? 0}, ${f.addresses.size} records`);
  }
  const byName = new Map(f.byName.map((e) => [String(e.key[2]), e.value]));
  const ofDomain = new Set(f.domainAddresses.map((e) => `${String(e.key[2])}/${String(e.key[3])}`));
  for (const [id, a] of f.addresses) {
    if (a.id !== id) out.push(`email_address ${id}: record id ${a.id}`);
    // The name entry is keyed on the lower-cased address (store/keys.ts emailAddressByNameKey):
    // of two records that differ only in case, one has none.
    if (byName.get(a.address.toLowerCase()) !== id) {
      out.push(`email_address ${id}: no name entry`);
    }
    if (!ofDomain.has(`${a.domainId}/${id}`)) out.push(`email_address ${id}: no domain entry`);
    const d = f.domains.get(a.domainId);
    if (!d) out.push(`email_address ${id}: domain ${a.domainId} missing`);
    else if (!a.address.endsWith("@" + d.domain)) {
      out.push(`email_address ${id}: not on ${d.domain}`);
    }
    if (a.endpointId && a.webhookId) out.push(`email_address ${id}: two routes`);
    const target = routedEndpointId(a);
    if (target) {
      const e = f.endpoints.get(target);
      if (!e) out.push(`email_address ${id}: endpoint ${target} missing`);
      if (a.webhookId && e && e.type !== "webhook") {
        out.push(`email_address ${id}: webhookId names a ${e.type}`);
      }
      if (!refs.has(`${target}/address/${id}`)) out.push(`email_address ${id}: no ref entry`);
    }
  }
  for (const [name, id] of byName) {
    if (f.addresses.get(String(id))?.address.toLowerCase() !== name) {
      out.push(`name entry ${name}: dangling`);
    }
  }
  for (const e of f.domainAddresses) {
    if (f.addresses.get(String(e.key[3]))?.domainId !== e.key[2]) {
      out.push(`domain entry ${String(e.key[2])}/${String(e.key[3])}: dangling`);
    }
  }
  for (const e of f.refs) {
    const [endpointId, kind, refId] = e.key.slice(2).map(String);
    const live = f.endpoints.has(endpointId) &&
      (kind === "address"
        ? routedEndpointId(f.addresses.get(refId) ?? { endpointId: null, webhookId: null }) ===
          endpointId
        : f.domains.get(refId)?.catchAllEndpointId === endpointId);
    if (!live) out.push(`ref ${endpointId}/${kind}/${refId}: dangling`);
  }
  for (const [id, d] of f.domains) {
    if (!d.catchAllEndpointId) continue;
    if (!f.endpoints.has(d.catchAllEndpointId)) {
      out.push(`domain ${id}: catch-all endpoint ${d.catchAllEndpointId} missing`);
    }
    if (!refs.has(`${d.catchAllEndpointId}/domain/${id}`)) out.push(`domain ${id}: no ref entry`);
  }
  return [...out, ...countViolations(f)];
}

async function entries(kv: Deno.Kv, prefix: Deno.KvKey) {
  const out: { key: Deno.KvKey; value: unknown }[] = [];
  for await (const e of kv.list({ prefix }, { batchSize: 500 })) {
    out.push({ key: e.key, value: e.value });
  }
  return out;
}

/** Reads one account's families and checks them. */
export async function checkEndpointInvariants(kv: Deno.Kv, userId: string): Promise<string[]> {
  const byId = <T>(list: { key: Deno.KvKey; value: unknown }[]) =>
    new Map(list.filter((e) => e.key.length === 3).map((e) => [String(e.key[2]), e.value as T]));
  const [ec, ac] = await kv.getMany<[number, number]>([
    endpointCountKey(userId),
    emailAddressCountKey(userId),
  ]);
  return endpointViolations({
    endpoints: byId<EndpointRecord>(await entries(kv, endpointPrefix(userId))),
    addresses: byId<EmailAddressRecord>(await entries(kv, emailAddressPrefix(userId))),
    domains: byId<DomainRecord>(await entries(kv, domainPrefix(userId))),
    byName: await entries(kv, emailAddressByNamePrefix(userId)),
    domainAddresses: await entries(kv, domainAddressRootPrefix(userId)),
    refs: await entries(kv, endpointRefRootPrefix(userId)),
    endpointCount: ec.value,
    addressCount: ac.value,
    domainCounts: await entries(kv, domainAddressCountRootPrefix(userId)),
  });
}
