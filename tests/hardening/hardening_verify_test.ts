/**
 * `admin verify` (admin/verify.ts): a clean store passes; every hand-made corruption (orphan
 * pointer, missing index entry, wrong counter, orphaned account data, …) is reported with its
 * kind; the domain checks agree with store/domains/store.ts's own `checkDomainInvariants`; and the CLI
 * prints the JSON report and exits non-zero on a violation.
 */
import assert from "node:assert/strict";
import { verifyStore } from "../../admin/verify.ts";
import { issueApiKey, rollApiKey } from "../../auth/api_keys/issue.ts";
import { generateSessionToken } from "../../auth/sessions/manager.ts";
import { sha256Hex } from "../../lib/sha256.ts";
import { checkDomainInvariants } from "../../store/domains/store.ts";
import {
  apiKeyCountKey,
  apiKeyHashIndexKey,
  apiKeyKey,
  domainByNameKey,
  domainByTimePrefix,
  domainCountKey,
  domainKey,
  domainNameIndexKey,
  emailIndexKey,
  sessionHashIndexKey,
  userKey,
} from "../../store/keys.ts";
import { createSession } from "../../store/sessions.ts";
import { tenantStore } from "../../store/tenant.ts";
import {
  bearer,
  createAccountWithKey,
  makeTestApp,
  removeKvFile,
  runAdminCli,
  tempKvPath,
  type TestApp,
} from "../_helpers.ts";
import { Tally } from "../_hardening.ts";

type Clean = {
  h: TestApp;
  userId: string;
  email: string;
  keyId: string;
  keyHash: string;
  sessionHash: string;
  domainId: string;
  domainName: string;
  childId: string;
};

/** A store with every kind of record: users, live/rolled/deleted keys, sessions, domains. */
async function cleanStore(kv?: Deno.Kv): Promise<Clean> {
  const h = await makeTestApp(kv ? { kv } : {});
  const a = await createAccountWithKey(h.kv, h.clock);
  await createAccountWithKey(h.kv, h.clock);
  const store = tenantStore(h.kv, a.userId, h.clock);
  const gone = await issueApiKey(store.apiKeys, { name: "gone", nowMs: h.clock() });
  await store.apiKeys.delete(gone.record.id);
  const rolled = await issueApiKey(store.apiKeys, { name: "rolled", nowMs: h.clock() });
  await rollApiKey(store.apiKeys, rolled.record.id, 60_000);
  const revoked = await issueApiKey(store.apiKeys, { name: "revoked", nowMs: h.clock() });
  await rollApiKey(store.apiKeys, revoked.record.id, 0);
  const token = generateSessionToken();
  const sessionHash = sha256Hex(token);
  await createSession(h.kv, {
    userId: a.userId,
    hash: sessionHash,
    nowMs: h.clock(),
    ttlMs: 60_000,
  });

  const post = async (domain: string) => {
    const res = await h.app.request(
      "http://localhost/api/e2/domains",
      bearer(a.key, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ domain }),
      }),
    );
    assert.equal(res.status, 201, await res.clone().text());
    return (await res.json()).id as string;
  };
  const domainName = `verify-${crypto.randomUUID().slice(0, 8)}.com`;
  const domainId = await post(domainName);
  // Verified, so it holds its global name pointer (a name is exclusive once verified).
  await store.domains.applyCheck(domainId, [
    { kind: "verification", isVerified: true },
    { kind: "mx", isVerified: true },
  ]);
  await post(`other-${crypto.randomUUID().slice(0, 8)}.com`);
  // A subdomain: linked under its parent when the domains store supports it.
  const childId = await post(`mail.${domainName}`);
  const record = (await h.kv.get<{ hash: string }>(apiKeyKey(a.userId, a.keyId))).value!;
  return {
    h,
    userId: a.userId,
    email: a.email,
    keyId: a.keyId,
    keyHash: record.hash,
    sessionHash,
    domainId,
    domainName,
    childId,
  };
}

type Corruption = {
  name: string;
  kinds: string[];
  domain?: boolean;
  apply(c: Clean): Promise<unknown>;
};

const CORRUPTIONS: Corruption[] = [
  {
    name: "API key record deleted, its pointer left behind (orphan pointer)",
    kinds: ["dangling_index", "wrong_count"],
    apply: (c) => c.h.kv.delete(apiKeyKey(c.userId, c.keyId)),
  },
  {
    name: "API key pointer deleted (record without its index)",
    kinds: ["missing_index"],
    apply: (c) => c.h.kv.delete(apiKeyHashIndexKey(c.keyHash)),
  },
  {
    name: "API key pointer names another key id",
    kinds: ["index_mismatch", "dangling_index"],
    apply: (c) =>
      c.h.kv.set(apiKeyHashIndexKey(c.keyHash), {
        userId: c.userId,
        keyId: "key_0000000000000000000000",
        expiresAt: null,
      }),
  },
  {
    name: "API key record with another digest",
    kinds: ["missing_index", "index_mismatch"],
    apply: async (c) => {
      const e = await c.h.kv.get<Record<string, unknown>>(apiKeyKey(c.userId, c.keyId));
      await c.h.kv.set(e.key, { ...e.value!, hash: "0".repeat(64) });
    },
  },
  {
    name: "API key pointer's expiry differs from the record's",
    kinds: ["index_mismatch"],
    apply: (c) =>
      c.h.kv.set(apiKeyHashIndexKey(c.keyHash), {
        userId: c.userId,
        keyId: c.keyId,
        expiresAt: Date.now() + 1000,
      }),
  },
  {
    name: "API key counter one too high",
    kinds: ["wrong_count"],
    apply: async (c) => {
      const n = (await c.h.kv.get<number>(apiKeyCountKey(c.userId))).value!;
      await c.h.kv.set(apiKeyCountKey(c.userId), n + 1);
    },
  },
  {
    name: "API key counter missing",
    kinds: ["wrong_count"],
    apply: (c) => c.h.kv.delete(apiKeyCountKey(c.userId)),
  },
  {
    name: "email pointer deleted",
    kinds: ["missing_index"],
    apply: (c) => c.h.kv.delete(emailIndexKey(c.email)),
  },
  {
    name: "email pointer to a user that does not exist",
    kinds: ["dangling_index"],
    apply: (c) =>
      c.h.kv.set(emailIndexKey("nobody@example.com"), { userId: "usr_0000000000000000000000" }),
  },
  {
    name: "email pointer to a user with another email",
    kinds: ["index_mismatch"],
    apply: (c) => c.h.kv.set(emailIndexKey("alias@example.com"), { userId: c.userId }),
  },
  {
    name: "user record deleted, the account's data left behind",
    kinds: ["orphan_account_data", "dangling_index"],
    apply: (c) => c.h.kv.delete(userKey(c.userId)),
  },
  {
    name: "session pointer deleted",
    kinds: ["missing_index"],
    apply: (c) => c.h.kv.delete(sessionHashIndexKey(c.sessionHash)),
  },
  {
    name: "session pointer to no session",
    kinds: ["dangling_index"],
    apply: (c) =>
      c.h.kv.set(sessionHashIndexKey("f".repeat(64)), {
        userId: c.userId,
        sessionId: "ses_0000000000000000000000",
        expiresAt: Date.now() + 60_000,
      }),
  },
  {
    name: "domain name pointer deleted",
    kinds: ["missing_index"],
    domain: true,
    apply: (c) => c.h.kv.delete(domainNameIndexKey(c.domainName)),
  },
  {
    name: "domain name pointer to no domain",
    kinds: ["dangling_index"],
    domain: true,
    apply: (c) =>
      c.h.kv.set(domainNameIndexKey("ghost.com"), { userId: c.userId, domainId: "dom_ghost" }),
  },
  {
    name: "domain record deleted, its indexes left behind",
    kinds: ["dangling_index", "wrong_count"],
    domain: true,
    apply: (c) => c.h.kv.delete(domainKey(c.userId, c.childId)),
  },
  {
    name: "domain time index entry deleted",
    kinds: ["missing_index"],
    domain: true,
    apply: async (c) => {
      for await (const e of c.h.kv.list({ prefix: domainByTimePrefix(c.userId) })) {
        if (e.value === c.domainId) await c.h.kv.delete(e.key);
      }
    },
  },
  {
    name: "domain filter index entry for a status the record does not have",
    kinds: ["index_mismatch", "dangling_index"],
    domain: true,
    apply: async (c) => {
      const r = (await c.h.kv.get<{ createdAt: string }>(domainKey(c.userId, c.domainId))).value!;
      await c.h.kv.set(
        [c.userId, "domain_by_filter", "status:failed", Date.parse(r.createdAt), c.domainId],
        c.domainId,
      );
    },
  },
  {
    name: "domain counter wrong",
    kinds: ["wrong_count"],
    domain: true,
    apply: (c) => c.h.kv.set(domainCountKey(c.userId, "all"), 99),
  },
  {
    name: "subdomain's child link deleted",
    kinds: ["missing_index", "wrong_count"],
    domain: true,
    apply: (c) => c.h.kv.delete([c.userId, "domain_children", c.domainId, c.childId]),
  },
  {
    name: "subdomain's reversed-name entry deleted (its parent could then be deleted)",
    kinds: ["missing_index"],
    domain: true,
    apply: (c) => c.h.kv.delete(domainByNameKey(c.userId, `mail.${c.domainName}`)),
  },
  {
    name: "reversed-name entry for a name no domain has",
    kinds: ["dangling_index", "index_mismatch"],
    domain: true,
    apply: (c) => c.h.kv.set(domainByNameKey(c.userId, `ghost.${c.domainName}`), c.childId),
  },
  {
    name: "reversed-name entry names another domain of the account",
    kinds: ["index_mismatch"],
    domain: true,
    apply: (c) => c.h.kv.set(domainByNameKey(c.userId, c.domainName), c.childId),
  },
];

Deno.test("admin verify passes a clean store that holds every kind of record", async () => {
  const c = await cleanStore();
  try {
    const report = await verifyStore(c.h.kv);
    assert.deepEqual(report.violations, []);
    assert.equal(report.ok, true);
    assert.equal(report.unrecognised.count, 0, JSON.stringify(report.unrecognised));
    assert.ok(report.scanned.apiKeys >= 4 && report.scanned.domains === 3);
    assert.equal(report.scanned.sessions, 1);
    assert.deepEqual(await checkDomainInvariants(c.h.kv, c.userId), []);
    const child = (await c.h.kv.get<{ parentDomainId: string }>(domainKey(c.userId, c.childId)))
      .value!;
    assert.equal(child.parentDomainId, c.domainId, "the fixture's subdomain has its parent");
    const byName = await c.h.kv.get(domainByNameKey(c.userId, `mail.${c.domainName}`));
    assert.equal(byName.value, c.childId, "the subdomain has its reversed-name entry");
  } finally {
    await c.h.close();
  }
});

Deno.test("admin verify reports every hand-made corruption with its kind, and agrees with the domain store's checker", async () => {
  const tally = new Tally("verify");
  for (const corruption of CORRUPTIONS) {
    const c = await cleanStore();
    try {
      await corruption.apply(c);
      const report = await verifyStore(c.h.kv);
      const kinds = new Set(report.violations.map((v) => v.kind));
      const p: string[] = [];
      if (report.ok) p.push("reported ok");
      if (!corruption.kinds.some((k) => kinds.has(k))) {
        p.push(`kinds ${[...kinds].join(",")}, want one of ${corruption.kinds.join(",")}`);
      }
      const text = JSON.stringify(report);
      if (/[0-9a-f]{64}/.test(text)) p.push("the report contains a full digest");
      if (corruption.domain) {
        const theirs = await checkDomainInvariants(c.h.kv, c.userId);
        if (theirs.length === 0) p.push("checkDomainInvariants saw nothing (checkers disagree)");
      }
      tally.record(corruption.name, p);
    } finally {
      await c.h.close();
    }
  }
  assert.deepEqual(tally.report(), []);
});

Deno.test("deno task admin verify prints the JSON report and exits 0 when clean, 1 on a violation", async () => {
  const path = await tempKvPath();
  try {
    const kv = await Deno.openKv(path);
    const c = await cleanStore(kv);
    await c.h.close();

    const clean = await runAdminCli(["verify"], { DENO_KV_PATH: path });
    assert.equal(clean.code, 0, clean.stderr);
    assert.equal(JSON.parse(clean.stdout).ok, true);

    const kv2 = await Deno.openKv(path);
    const keyRecord = await kv2.get(apiKeyKey(c.userId, c.keyId));
    await kv2.delete(apiKeyKey(c.userId, c.keyId));
    kv2.close();
    const broken = await runAdminCli(["verify"], { DENO_KV_PATH: path });
    assert.equal(broken.code, 1);
    const report = JSON.parse(broken.stdout);
    assert.equal(report.ok, false);
    assert.ok(report.violations.some((v: { kind: string }) => v.kind === "dangling_index"));
    assert.match(broken.stderr, /invariant violation/);
    assert.doesNotMatch(broken.stdout, /[0-9a-f]{64}/);

    // A store whose only damage is a missing reversed-name entry fails too.
    const kv3 = await Deno.openKv(path);
    await kv3.set(keyRecord.key, keyRecord.value);
    assert.equal((await verifyStore(kv3)).ok, true, "the API key damage was undone");
    await kv3.delete(domainByNameKey(c.userId, `mail.${c.domainName}`));
    kv3.close();
    const noName = await runAdminCli(["verify"], { DENO_KV_PATH: path });
    assert.equal(noName.code, 1);
    const kinds = JSON.parse(noName.stdout).violations.map((v: { kind: string }) => v.kind);
    assert.deepEqual(kinds, ["missing_index"]);
  } finally {
    await removeKvFile(path);
  }
});
