/**
 * Domains at scale, on a SQLite KV file like the server's:
 *   A. one account with 10,000 domains: list latency at offset 0 and offset 9,950, and the
 *      latency of creating more domains in it;
 *   B. one account of 100 domains alone, then among 1,000 accounts of 100 domains each: its list
 *      latency must not grow with the number of other accounts.
 * Domains are seeded through the domain store (the same checked commits the API uses), not over
 * HTTP; the timed requests go through the whole app (auth, validation, store) in process.
 *
 *   deno run --allow-read --allow-write --allow-env --allow-net bench/domains_scale.ts [--quick]
 *
 * `--quick` divides every size by 10 (a smoke run). Prints a table; exits 1 if B's latency grew
 * more than 2x.
 */
import { createApp } from "../app.ts";
import { issueApiKey } from "../auth/api_keys/issue.ts";
import { systemClock } from "../lib/clock.ts";
import { testConfig } from "../lib/config.ts";
import { dnsPlan } from "../lib/dns.ts";
import { parseDomainName } from "../lib/domain_name.ts";
import { domainStore } from "../store/domains/store.ts";
import { tenantStore } from "../store/tenant.ts";
import { createUser } from "../store/accounts/users.ts";

const quick = Deno.args.includes("--quick");
const scale = quick ? 10 : 1;
const BIG = 10_000 / scale;
const ACCOUNTS = 1_000 / scale;
const PER_ACCOUNT = 100;
const SAMPLES = 200 / (quick ? 4 : 1);
const CREATES = 200 / (quick ? 4 : 1);

const MAX_DOMAINS = 100_000;
const dir = await Deno.makeTempDir({ prefix: "domains_scale_" });
const kv = await Deno.openKv(`${dir}/kv.sqlite3`);
const clock = systemClock;
const app = createApp({
  kv,
  clock,
  config: testConfig({
    rateLimit: { max: 1_000_000_000, windowMs: 1000, failOpen: false },
    // 10,000 domains in one account: past the default quota of 1,000.
    maxDomainsPerAccount: MAX_DOMAINS,
  }),
  // No DNS in this benchmark: nothing here checks records.
  resolver: { txt: () => Promise.resolve([]), mx: () => Promise.resolve([]) },
});

let accountSeq = 0;
async function account(): Promise<{ userId: string; key: string }> {
  const user = await createUser(kv, {
    email: `bench${++accountSeq}-${crypto.randomUUID()}@example.com`,
    passwordHash: "bench: no password sign-in",
    nowMs: clock(),
  });
  const { key } = await issueApiKey(tenantStore(kv, user.id, clock).apiKeys, {
    name: "bench",
    nowMs: clock(),
  });
  return { userId: user.id, key };
}

async function seed(userId: string, prefix: string, n: number): Promise<void> {
  const store = domainStore(kv, userId, clock, { maxDomains: MAX_DOMAINS });
  for (let i = 0; i < n; i++) {
    const parsed = parseDomainName(`${prefix}-${i}.example`);
    if (!parsed.ok) throw new Error(parsed.problem);
    await store.create({
      domain: parsed.value.name,
      ancestors: parsed.value.ancestors,
      plan: (c) => dnsPlan(c.domain, c.token, c.inherited),
    });
  }
}

type Stats = { p50: number; p95: number; mean: number; n: number };
function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return {
    p50: at(0.5),
    p95: at(0.95),
    mean: s.reduce((a, b) => a + b, 0) / s.length,
    n: s.length,
  };
}

async function timeRequests(
  key: string,
  n: number,
  request: (i: number) => [string, RequestInit?],
  expect: number,
): Promise<Stats> {
  const times: number[] = [];
  for (let i = 0; i < n + 5; i++) {
    const [path, init = {}] = request(i);
    const headers = new Headers(init.headers);
    headers.set("Authorization", `Bearer ${key}`);
    const started = performance.now();
    const res = await app.request(path, { ...init, headers });
    await res.arrayBuffer();
    const elapsed = performance.now() - started;
    if (res.status !== expect) throw new Error(`${path}: ${res.status}`);
    if (i >= 5) times.push(elapsed); // the first few warm caches up
  }
  return stats(times);
}

const rows: [string, Stats][] = [];
const t0 = performance.now();
const log = (msg: string) =>
  console.error(`[${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}`);

try {
  // A. One account with BIG domains.
  const big = await account();
  log(`seeding ${BIG} domains in one account…`);
  await seed(big.userId, "big", BIG);
  log("seeded");
  const list = (offset: number) => () => [`/api/e2/domains?limit=50&offset=${offset}`] as [string];
  rows.push([`list, ${BIG} domains, offset 0`, await timeRequests(big.key, SAMPLES, list(0), 200)]);
  rows.push([
    `list, ${BIG} domains, offset ${BIG - 50}`,
    await timeRequests(big.key, SAMPLES, list(BIG - 50), 200),
  ]);
  // Deep pages are read from the nearer end of the index, so the middle is the worst case.
  rows.push([
    `list, ${BIG} domains, offset ${BIG / 2} (worst case)`,
    await timeRequests(big.key, SAMPLES, list(BIG / 2), 200),
  ]);
  rows.push([
    `list, ${BIG} domains, status=pending, offset 0`,
    await timeRequests(big.key, SAMPLES, () => ["/api/e2/domains?status=pending&limit=50"], 200),
  ]);
  rows.push([
    `create, into ${BIG} domains`,
    await timeRequests(big.key, CREATES, (i) => [
      "/api/e2/domains",
      {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ domain: `new-${i}.bench.example` }),
      },
    ], 201),
  ]);

  // B. One account of PER_ACCOUNT domains, alone, then among ACCOUNTS of them.
  const target = await account();
  await seed(target.userId, "target", PER_ACCOUNT);
  const listTarget = () => ["/api/e2/domains?limit=50&offset=50"] as [string];
  const alone = await timeRequests(target.key, SAMPLES, listTarget, 200);
  rows.push([`list, 1 account of ${PER_ACCOUNT} (plus A), offset 50`, alone]);
  log(`seeding ${ACCOUNTS - 1} more accounts of ${PER_ACCOUNT} domains…`);
  const others: string[] = [];
  for (let i = 0; i < ACCOUNTS - 1; i++) others.push((await account()).userId);
  // Sequential: a SQLite file takes one writer at a time, so parallel seeding only adds retries.
  for (let i = 0; i < others.length; i++) {
    await seed(others[i], `acct${i}`, PER_ACCOUNT);
    if (i % 100 === 99) log(`  ${i + 1} accounts`);
  }
  log("seeded");
  const crowded = await timeRequests(target.key, SAMPLES, listTarget, 200);
  rows.push([`list, same account among ${ACCOUNTS} of ${PER_ACCOUNT}, offset 50`, crowded]);

  const fmt = (n: number) => n.toFixed(2).padStart(8);
  console.log(`\nDomains at scale (Deno ${Deno.version.deno}, SQLite KV file, in-process app)\n`);
  console.log(`| ${"case".padEnd(52)} | p50 ms   | p95 ms   | mean ms  | n   |`);
  console.log(`|${"-".repeat(54)}|----------|----------|----------|-----|`);
  for (const [name, s] of rows) {
    console.log(
      `| ${name.padEnd(52)} | ${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.mean)} | ${
        String(s.n).padStart(3)
      } |`,
    );
  }
  const ratio = crowded.p50 / alone.p50;
  console.log(
    `\nB: p50 among ${ACCOUNTS} accounts / p50 alone = ${ratio.toFixed(2)} ` +
      `(${ratio <= 2 ? "does not grow" : "GREW"})`,
  );
  console.log(`total time ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (ratio > 2) Deno.exitCode = 1;
} finally {
  await app.idle();
  kv.close();
  await Deno.remove(dir, { recursive: true });
}
