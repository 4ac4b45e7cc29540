/**
 * Issue 9 item 4: the DNS work a request causes is bounded by the request. Lookups run under the
 * request's signal and stop with it, a check is cut short within the request's time (per-record
 * errors, not a 500), lookups are bounded per request and per process, answers are cached for a
 * short time, and a cookie-authenticated cross-site `check=true` is refused like a cross-site POST.
 */
import assert from "node:assert/strict";
import { type App, createApp } from "../../app.ts";
import { TimeoutError } from "../../lib/async.ts";
import { fakeClock } from "../../lib/clock.ts";
import { testConfig } from "../../lib/config.ts";
import { Deadlines } from "../../lib/deadline.ts";
import {
  DNS_CHECK_LIMITS,
  DnsChecker,
  dnsPlan,
  type DnsResolver,
  type MxAnswer,
  Semaphore,
} from "../../lib/dns.ts";
import { bearer, createAccountWithKey } from "../_helpers.ts";
import { FakeResolver } from "../_domains.ts";
import { BASE, json, signUp, withCookie } from "../sessions_helpers.ts";

/**
 * A resolver whose name server never answers: each lookup ends when its signal aborts, or (like
 * the real resolver's own timeout) with a TimeoutError after `ownTimeoutMs`.
 */
class SilentResolver implements DnsResolver {
  started = 0;
  inFlight = 0;
  maxInFlight = 0;
  /** Lookups started without a signal: only their own timeout ends them. */
  unstoppable = 0;

  constructor(readonly ownTimeoutMs = 60_000) {}

  #hang<T>(signal?: AbortSignal): Promise<T[]> {
    this.started++;
    if (!signal) this.unstoppable++;
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const { promise, reject } = Promise.withResolvers<T[]>();
    const end = (reason: unknown) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      this.inFlight--;
      reject(reason);
    };
    const onAbort = () => end(signal?.reason);
    const timer = setTimeout(() => end(new TimeoutError(this.ownTimeoutMs)), this.ownTimeoutMs);
    if (signal?.aborted) onAbort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    return promise;
  }
  txt(_name: string, signal?: AbortSignal): Promise<string[]> {
    return this.#hang(signal);
  }
  mx(_name: string, signal?: AbortSignal): Promise<MxAnswer[]> {
    return this.#hang<MxAnswer>(signal);
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

type Setup = { app: App; kv: Deno.Kv; clock: ReturnType<typeof fakeClock> };

async function setup(resolver: DnsResolver, requestTimeoutMs = 10_000): Promise<Setup> {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.UTC(2026, 0, 1));
  const config = testConfig({
    requestTimeoutMs,
    rateLimit: { max: 1_000_000, windowMs: 1000, failOpen: false },
  });
  return { app: createApp({ kv, clock, config, resolver }), kv, clock };
}

async function body(res: Response) {
  return JSON.parse(await res.text());
}

Deno.test("a resolver that never answers cannot make list checks outlive their requests", async (t) => {
  const timeoutMs = 4000;
  // Its own timeout outlasts the request, as the real resolver's 5 s would a short deadline.
  const resolver = new SilentResolver(timeoutMs + 500);
  const { app, kv, clock } = await setup(resolver, timeoutMs);
  try {
    const a = await createAccountWithKey(kv, clock);
    for (let i = 0; i < 100; i++) {
      const res = await app.request(
        "/api/e2/domains",
        bearer(a.key, json({ domain: `d${i}.silent.example` })),
      );
      assert.equal(res.status, 201, await res.text());
    }
    const started = Date.now();
    const responses = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const res = await app.request("/api/e2/domains?check=true&limit=100", bearer(a.key));
        return { status: res.status, body: await body(res), ms: Date.now() - started };
      }),
    );
    const startedWhenAnswered = resolver.started;

    await t.step("every request answers 200 before the deadline, never the deadline's 500", () => {
      for (const r of responses) {
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.data.length, 100);
        assert.ok(r.ms < timeoutMs, `answered after ${r.ms} ms`);
      }
    });

    await t.step("each record reports that its lookup was cancelled or not started", () => {
      for (const r of responses) {
        for (const item of r.body.data) {
          assert.equal(item.verificationCheck.isFullyVerified, false);
          for (const rec of item.verificationCheck.dnsRecords) {
            assert.equal(rec.isVerified, false);
            assert.match(rec.error, /^DNS lookup (cancelled|not started): the check ran out/);
          }
        }
      }
    });

    await t.step("lookups are bounded per request and per process", () => {
      // Unbounded, this started 8,000 (20 requests x 400); every lookup runs under a signal.
      assert.equal(resolver.unstoppable, 0);
      assert.ok(
        resolver.maxInFlight <= DNS_CHECK_LIMITS.perProcess,
        `${resolver.maxInFlight} in flight at once`,
      );
      assert.ok(
        resolver.started <= 20 * DNS_CHECK_LIMITS.perRequest,
        `${resolver.started} lookups started`,
      );
    });

    await t.step("no lookup is running once every response has arrived", () => {
      assert.equal(resolver.inFlight, 0);
    });

    await t.step("and none starts afterwards, even past the requests' deadline", async () => {
      // Past the deadline and past the resolver's own timeout, when unbounded work would go on.
      const past = started + resolver.ownTimeoutMs + 300;
      await waitFor("the resolver's timeout to pass", () => Date.now() > past, timeoutMs + 2000);
      assert.equal(resolver.started, startedWhenAnswered);
      assert.equal(resolver.inFlight, 0);
    });

    await t.step(
      "a check that could not finish leaves the stored domains as they were",
      async () => {
        const res = await app.request("/api/e2/domains?limit=100", bearer(a.key));
        const list = await body(res);
        for (const item of list.data) {
          assert.equal(item.status, "pending");
          assert.equal(item.lastDnsCheck, null);
        }
      },
    );
  } finally {
    await app.idle();
    kv.close();
  }
});

Deno.test("a retrieve check against a silent resolver answers 200 with an error per record", async () => {
  const resolver = new SilentResolver();
  const { app, kv, clock } = await setup(resolver, 1000);
  try {
    const a = await createAccountWithKey(kv, clock);
    const created = await body(
      await app.request("/api/e2/domains", bearer(a.key, json({ domain: "one.example" }))),
    );
    const res = await app.request(`/api/e2/domains/${created.id}?check=true`, bearer(a.key));
    const got = await body(res);
    assert.equal(res.status, 200, JSON.stringify(got));
    assert.equal(got.status, "pending");
    assert.equal(got.verificationCheck.dnsRecords.length, 4);
    for (const rec of got.verificationCheck.dnsRecords) {
      assert.match(rec.error, /^DNS lookup cancelled: the check ran out of time/);
    }
    assert.equal(resolver.started, 4);
    assert.equal(resolver.inFlight, 0);
  } finally {
    await app.idle();
    kv.close();
  }
});

Deno.test("answers are cached for a short time, so repeated checks repeat no lookups", async (t) => {
  const resolver = new FakeResolver();
  const { app, kv, clock } = await setup(resolver);
  try {
    const a = await createAccountWithKey(kv, clock);
    const created = await body(
      await app.request("/api/e2/domains", bearer(a.key, json({ domain: "cached.example" }))),
    );
    const check = async (path = `/api/e2/domains/${created.id}?check=true`) => {
      const before = resolver.lookups;
      const res = await app.request(path, bearer(a.key));
      assert.equal(res.status, 200);
      return { lookups: resolver.lookups - before, body: await body(res) };
    };

    await t.step("the first check looks every record up", async () => {
      assert.equal((await check()).lookups, 4);
    });
    await t.step("a repeated check, retrieve or list, looks nothing up", async () => {
      clock.advance(1000);
      const again = await check();
      assert.equal(again.lookups, 0);
      assert.equal(again.body.verificationCheck.dnsRecords.length, 4);
      assert.equal(again.body.lastDnsCheck, new Date(clock()).toISOString(), "still applied");
      assert.equal((await check("/api/e2/domains?check=true")).lookups, 0);
    });
    await t.step(
      "the cached answers are applied: a published record counts once fresh",
      async () => {
        resolver.publish(created.dnsRecords);
        assert.equal((await check()).body.status, "pending", "the cached answer said nothing");
        clock.advance(DNS_CHECK_LIMITS.cacheTtlMs);
        const fresh = await check();
        assert.equal(fresh.lookups, 4);
        assert.equal(fresh.body.status, "verified");
      },
    );
    await t.step("a failed lookup is not cached", async () => {
      clock.advance(DNS_CHECK_LIMITS.cacheTtlMs);
      resolver.mxAnswers.set("cached.example", new Error("SERVFAIL"));
      assert.equal((await check()).lookups, 4);
      const again = await check();
      assert.equal(again.lookups, 1, "only the failed MX is looked up again");
      assert.match(again.body.verificationCheck.dnsRecords[1].error, /SERVFAIL/);
    });
  } finally {
    await app.idle();
    kv.close();
  }
});

Deno.test("check=true is state-changing: a cookie-authenticated cross-site request is refused", async (t) => {
  const resolver = new FakeResolver();
  const { app, kv, clock } = await setup(resolver);
  try {
    const { cookie } = await signUp(app);
    const sameOrigin = { "Sec-Fetch-Site": "same-origin" };
    const created = await app.request(
      `${BASE}/api/e2/domains`,
      withCookie(cookie, json({ domain: "csrf.example" }, { headers: sameOrigin })),
    );
    assert.equal(created.status, 201);
    const id = (await body(created)).id;
    const paths = [`/api/e2/domains/${id}?check=true`, "/api/e2/domains?check=true"];
    const foreign: [string, Record<string, string>][] = [
      ["Sec-Fetch-Site: cross-site", { "Sec-Fetch-Site": "cross-site" }],
      ["Sec-Fetch-Site: same-site", { "Sec-Fetch-Site": "same-site" }],
      ["an Origin of another host", { Origin: "http://evil.example" }],
    ];
    for (const [label, headers] of foreign) {
      for (const path of paths) {
        await t.step(`${label}: GET ${path.replace(id, ":id")} is 403, no lookup`, async () => {
          const before = resolver.lookups;
          const res = await app.request(`${BASE}${path}`, withCookie(cookie, { headers }));
          const got = await body(res);
          assert.equal(res.status, 403);
          assert.equal(got.code, "CROSS_SITE_REQUEST");
          assert.equal(resolver.lookups, before);
        });
      }
    }
    await t.step("the same cross-site GET without check=true still reads", async () => {
      const res = await app.request(
        `${BASE}/api/e2/domains/${id}`,
        withCookie(cookie, { headers: { "Sec-Fetch-Site": "cross-site" } }),
      );
      assert.equal(res.status, 200);
      await res.body?.cancel();
    });
    await t.step("a same-origin cookie request checks", async () => {
      const res = await app.request(
        `${BASE}/api/e2/domains/${id}?check=true`,
        withCookie(cookie, { headers: sameOrigin }),
      );
      assert.equal(res.status, 200);
      assert.equal((await body(res)).verificationCheck.dnsRecords.length, 4);
    });
    await t.step("a Bearer request is never affected", async () => {
      const b = await createAccountWithKey(kv, clock);
      const before = resolver.lookups;
      const res = await app.request(
        `${BASE}/api/e2/domains?check=true`,
        bearer(b.key, { headers: { "Sec-Fetch-Site": "cross-site", Origin: "http://x.example" } }),
      );
      assert.equal(res.status, 200);
      await res.body?.cancel();
      const own = await app.request(
        `${BASE}/api/e2/domains`,
        bearer(b.key, json({ domain: "bearer.example" }, { headers: { Origin: "http://x" } })),
      );
      assert.equal(own.status, 201);
      const bid = (await body(own)).id;
      const checked = await app.request(
        `${BASE}/api/e2/domains/${bid}?check=true`,
        bearer(b.key, { headers: { "Sec-Fetch-Site": "cross-site" } }),
      );
      assert.equal(checked.status, 200);
      await checked.body?.cancel();
      assert.equal(resolver.lookups - before, 4);
    });
  } finally {
    await app.idle();
    kv.close();
  }
});

Deno.test("the checker bounds lookups per request and per process", async (t) => {
  await t.step("at most perRequest in flight for one request, maxLookups in all", async () => {
    const resolver = new SilentResolver();
    const checker = new DnsChecker({ resolver, perRequest: 3, maxLookupsPerRequest: 5 });
    const ctl = new AbortController();
    const scope = checker.scope(ctl.signal);
    const plans = Array.from({ length: 3 }, (_, i) => dnsPlan(`b${i}.example`, "t", false));
    const checks = plans.map((p) => scope.check(p));
    await waitFor("three lookups", () => resolver.inFlight === 3);
    assert.equal(resolver.started, 3);
    ctl.abort();
    const results = (await Promise.all(checks)).flat();
    assert.equal(resolver.inFlight, 0);
    assert.equal(resolver.started, 3, "nothing starts after the abort");
    assert.ok(results.every((r) => r.lookupFailed && r.cancelled));
  });

  await t.step("one request's lookups past maxLookups are not started", async () => {
    const answered = new FakeResolver();
    const checker = new DnsChecker({ resolver: answered, maxLookupsPerRequest: 5 });
    const scope = checker.scope(new AbortController().signal);
    const results = [
      ...await scope.check(dnsPlan("c1.example", "t", false)),
      ...await scope.check(dnsPlan("c2.example", "t", false)),
    ];
    assert.equal(answered.lookups, 5);
    const skipped = results.filter((r) => r.cancelled);
    assert.equal(skipped.length, 3);
    assert.match(skipped[0].error ?? "", /at most 5 lookups/);
  });

  await t.step(
    "the process bound is shared, and a waiting lookup leaves when aborted",
    async () => {
      const resolver = new SilentResolver();
      const checker = new DnsChecker({ resolver, perProcess: 4, perRequest: 10 });
      const first = new AbortController();
      const second = new AbortController();
      const a = checker.scope(first.signal).check(dnsPlan("p1.example", "t", false));
      const b = checker.scope(second.signal).check(dnsPlan("p2.example", "t", false));
      await waitFor("the process bound to fill", () => resolver.inFlight === 4);
      second.abort();
      const bResults = await b;
      assert.ok(bResults.every((r) => /not started/.test(r.error ?? "")));
      assert.equal(resolver.started, 4);
      first.abort();
      await a;
      assert.equal(resolver.inFlight, 0);
      assert.equal(checker.inFlight, 0);
    },
  );

  await t.step("a semaphore hands a released slot to the longest waiter", async () => {
    const s = new Semaphore(1);
    await s.acquire();
    const order: number[] = [];
    const w1 = s.acquire().then(() => order.push(1));
    const w2 = s.acquire().then(() => order.push(2));
    s.release();
    await w1;
    s.release();
    await w2;
    assert.deepEqual(order, [1, 2]);
    s.release();
    assert.equal(s.held, 0);
  });
});

Deno.test("a request's deadline signal is made on demand and aborts at the deadline or the answer", async (t) => {
  await t.step("it aborts with a TimeoutError when the deadline passes", async () => {
    const deadlines = new Deadlines(50);
    const d = deadlines.start();
    const { promise: never } = Promise.withResolvers<void>();
    const outcome = deadlines.within(never, d);
    const signal = d.signal;
    assert.equal(await outcome, "timed out");
    assert.equal(signal.aborted, true);
    assert.equal((signal.reason as DOMException).name, "TimeoutError");
    assert.equal(d.remainingMs(), 0);
  });
  await t.step("it aborts once the request has its answer", async () => {
    const deadlines = new Deadlines(10_000);
    const d = deadlines.start();
    const signal = d.signal;
    assert.ok(d.remainingMs() > 0);
    assert.equal(await deadlines.within(Promise.resolve(), d), "done");
    assert.equal(signal.aborted, true);
    assert.equal((signal.reason as DOMException).name, "AbortError");
  });
  await t.step("asked for after the answer, it is already aborted", async () => {
    const deadlines = new Deadlines(10_000);
    const d = deadlines.start();
    await deadlines.within(Promise.resolve(), d);
    assert.equal(d.signal.aborted, true);
  });
});
