/**
 * The pure plan of a domain write (store/domains/plan.ts), checked without KV: which keys a
 * create, a status change and a delete set, delete and count.
 */
import assert from "node:assert/strict";
import { planDomainWrite, u64Delta } from "../../store/domains/plan.ts";
import type { DomainRecord } from "../../store/domains/store.ts";

const U = "usr_plan";

function record(overrides: Partial<DomainRecord> = {}): DomainRecord {
  const at = "2026-01-02T03:04:05.000Z";
  return {
    id: "dom_1",
    userId: U,
    domain: "mail.example.com",
    status: "pending",
    canReceiveEmails: false,
    hasMxRecords: false,
    domainProvider: null,
    providerConfidence: null,
    lastDnsCheck: null,
    lastSesCheck: null,
    isCatchAllEnabled: false,
    catchAllEndpointId: null,
    receiveDmarcEmails: false,
    mailFromDomain: null,
    mailFromDomainStatus: null,
    mailFromDomainVerifiedAt: null,
    createdAt: at,
    updatedAt: at,
    verificationToken: "t",
    dnsRecords: [],
    parentDomainId: "dom_parent",
    parentDomain: "example.com",
    inheritsFromParent: false,
    childCount: 0,
    quotaSlot: 7,
    ...overrides,
  };
}

/** The plan as sorted lines "set|delete|sum <key> [delta]", easy to compare. */
function lines(plan: ReturnType<typeof planDomainWrite>): string[] {
  return plan.map((m) =>
    `${m.kind} ${JSON.stringify(m.key)}${m.kind === "sum" ? ` ${m.delta}` : ""}`
  ).sort();
}

const ms = Date.parse("2026-01-02T03:04:05.000Z");

Deno.test("a create sets the record, every index entry, the slot and the child link, and adds one to each of its counters", () => {
  const plan = planDomainWrite(U, null, record());
  assert.deepEqual(lines(plan), [
    `set ${JSON.stringify([U, "domain", "dom_1"])}`,
    `set ${JSON.stringify([U, "domain_by_filter", "canReceive:false", ms, "dom_1"])}`,
    `set ${JSON.stringify([U, "domain_by_filter", "status:pending", ms, "dom_1"])}`,
    `set ${
      JSON.stringify([U, "domain_by_filter", "status:pending,canReceive:false", ms, "dom_1"])
    }`,
    `set ${JSON.stringify([U, "domain_by_name", "com.example.mail"])}`,
    `set ${JSON.stringify([U, "domain_by_time", ms, "dom_1"])}`,
    `set ${JSON.stringify([U, "domain_children", "dom_parent", "dom_1"])}`,
    `set ${JSON.stringify([U, "domain_slot", 7])}`,
    `sum ${JSON.stringify([U, "count", "domains", "all"])} 1`,
    `sum ${JSON.stringify([U, "count", "domains", "canReceive:false"])} 1`,
    `sum ${JSON.stringify([U, "count", "domains", "status:pending"])} 1`,
    `sum ${JSON.stringify([U, "count", "domains", "status:pending,canReceive:false"])} 1`,
  ]);
});

Deno.test("a delete removes exactly what the create set and subtracts one from the same counters", () => {
  const created = planDomainWrite(U, null, record());
  const deleted = planDomainWrite(U, record(), null);
  const keyOf = (m: { key: Deno.KvKey }) => JSON.stringify(m.key);
  assert.deepEqual(
    deleted.filter((m) => m.kind === "delete").map(keyOf).sort(),
    created.filter((m) => m.kind === "set").map(keyOf).sort(),
  );
  assert.deepEqual(
    deleted.filter((m) => m.kind === "sum").map((m) => `${keyOf(m)} ${m.kind === "sum" && m.delta}`)
      .sort(),
    created.filter((m) => m.kind === "sum").map((m) =>
      `${keyOf(m)} ${m.kind === "sum" && -m.delta}`
    ).sort(),
  );
});

Deno.test("a pending record claims no name; a verified one (created so, or verified later) claims it, and loses it with the status", () => {
  const pointer = JSON.stringify(["idx", "domain", "mail.example.com"]);
  const verified = record({ status: "verified" });
  assert.ok(!lines(planDomainWrite(U, null, record())).some((l) => l.includes(pointer)));
  assert.ok(lines(planDomainWrite(U, null, verified)).includes(`set ${pointer}`));
  assert.ok(lines(planDomainWrite(U, record(), verified)).includes(`set ${pointer}`));
  assert.ok(lines(planDomainWrite(U, verified, null)).includes(`delete ${pointer}`));
  const released = record({ status: "failed" });
  assert.ok(lines(planDomainWrite(U, verified, released)).includes(`delete ${pointer}`));
  assert.ok(!lines(planDomainWrite(U, record(), null)).some((l) => l.includes(pointer)));
});

Deno.test("a status change moves only the filter entries and counters that differ, and rewrites the record", () => {
  const before = record();
  const after = record({ status: "verified", canReceiveEmails: true, hasMxRecords: true });
  assert.deepEqual(lines(planDomainWrite(U, before, after)), [
    `delete ${JSON.stringify([U, "domain_by_filter", "canReceive:false", ms, "dom_1"])}`,
    `delete ${JSON.stringify([U, "domain_by_filter", "status:pending", ms, "dom_1"])}`,
    `delete ${
      JSON.stringify([U, "domain_by_filter", "status:pending,canReceive:false", ms, "dom_1"])
    }`,
    `set ${JSON.stringify(["idx", "domain", "mail.example.com"])}`,
    `set ${JSON.stringify([U, "domain", "dom_1"])}`,
    `set ${JSON.stringify([U, "domain_by_filter", "canReceive:true", ms, "dom_1"])}`,
    `set ${JSON.stringify([U, "domain_by_filter", "status:verified", ms, "dom_1"])}`,
    `set ${
      JSON.stringify([U, "domain_by_filter", "status:verified,canReceive:true", ms, "dom_1"])
    }`,
    `sum ${JSON.stringify([U, "count", "domains", "canReceive:false"])} -1`,
    `sum ${JSON.stringify([U, "count", "domains", "canReceive:true"])} 1`,
    `sum ${JSON.stringify([U, "count", "domains", "status:pending"])} -1`,
    `sum ${JSON.stringify([U, "count", "domains", "status:pending,canReceive:false"])} -1`,
    `sum ${JSON.stringify([U, "count", "domains", "status:verified"])} 1`,
    `sum ${JSON.stringify([U, "count", "domains", "status:verified,canReceive:true"])} 1`,
  ]);
});

Deno.test("a write that changes no filter only rewrites the record", () => {
  const before = record();
  const after = record({ lastDnsCheck: "2026-01-03T00:00:00.000Z" });
  assert.deepEqual(lines(planDomainWrite(U, before, after)), [
    `set ${JSON.stringify([U, "domain", "dom_1"])}`,
  ]);
});

Deno.test("a record without a parent or a quota slot plans neither a child link nor a slot", () => {
  const plan = lines(
    planDomainWrite(
      U,
      null,
      record({ parentDomainId: null, parentDomain: null, quotaSlot: undefined }),
    ),
  );
  assert.ok(!plan.some((l) => l.includes("domain_children") || l.includes("domain_slot")));
});

Deno.test("before and after must be the same record", () => {
  assert.throws(() => planDomainWrite(U, record(), record({ id: "dom_2" })));
});

Deno.test("a negative delta is the KvU64 whose wrapping sum subtracts it", async () => {
  assert.equal(u64Delta(-1).value, (1n << 64n) - 1n);
  assert.equal(u64Delta(3).value, 3n);
  await using kv = await Deno.openKv(":memory:");
  await kv.atomic().sum(["n"], u64Delta(5).value).commit();
  await kv.atomic().sum(["n"], u64Delta(-2).value).commit();
  assert.equal((await kv.get<Deno.KvU64>(["n"])).value?.value, 3n);
});
