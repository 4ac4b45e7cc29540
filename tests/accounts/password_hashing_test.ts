/**
 * Password hashing under load (issue 9 item 1): a bounded number of derivations at once, one
 * sign-in or sign-up per client address, a short bounded queue answered 503 SERVER_BUSY beyond
 * it, the memory bound checked at start-up, the same hashing work for every failed sign-in, and a
 * rehash at the current cost on success.
 */
import assert from "node:assert/strict";
import { accountService } from "../../auth/accounts/service.ts";
import { hashPassword, type Kdf, scryptKdf } from "../../auth/passwords/hash.ts";
import { sessionManager } from "../../auth/sessions/manager.ts";
import { fakeClock } from "../../lib/clock.ts";
import {
  type Config,
  ConfigError,
  loadConfig,
  MAX_PASSWORD_HASH_MEMORY_BYTES,
  passwordHashMemoryBytes,
  testConfig,
} from "../../lib/config.ts";
import { HttpError } from "../../lib/errors.ts";
import { PoolBusyError, WorkPool } from "../../lib/work_pool.ts";
import { createUser, getUser, updatePasswordHash } from "../../store/accounts/users.ts";
import { makeTestApp, startServer, startTaskArgs, TEST_PASSWORD } from "../_helpers.ts";
import { BASE, freshEmail, fromIp, json } from "../sessions_helpers.ts";

/** A KDF that records every derivation's cost and holds each one until `release()`. */
function heldKdf() {
  let inFlight = 0;
  let peak = 0;
  const costs: number[] = [];
  const waiting: (() => void)[] = [];
  let open = false;
  const kdf: Kdf = async (password, salt, cost) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    costs.push(cost);
    try {
      if (!open) await new Promise<void>((resolve) => waiting.push(resolve));
      return await scryptKdf(password, salt, Math.min(cost, 10));
    } finally {
      inFlight--;
    }
  };
  return {
    kdf,
    costs,
    get inFlight() {
      return inFlight;
    },
    get peak() {
      return peak;
    },
    /** Lets every held derivation, and all later ones, run. */
    release() {
      open = true;
      for (const go of waiting.splice(0)) go();
    },
  };
}

/** A KDF that runs at once and records the work (2^cost) of every derivation. */
function countingKdf() {
  const costs: number[] = [];
  const kdf: Kdf = (password, salt, cost) => {
    costs.push(cost);
    return scryptKdf(password, salt, Math.min(cost, 10));
  };
  return { kdf, costs, work: () => costs.reduce((sum, c) => sum + 2 ** c, 0) };
}

async function accountsWith(config: Partial<Config>, kdf: Kdf) {
  const kv = await Deno.openKv(":memory:");
  const clock = fakeClock(Date.now());
  const cfg = testConfig({ signInThrottle: { max: 1000, windowMs: 60_000 }, ...config });
  const sessions = sessionManager({ kv, clock, ttlMs: cfg.sessionTtlMs });
  return {
    kv,
    clock,
    accounts: accountService({ kv, clock, config: cfg, sessions, kdf }),
    [Symbol.asyncDispose]: () => Promise.resolve(kv.close()),
  };
}

function signInRequest(): Request {
  return new Request(`${BASE}/api/auth/sign-in`, { method: "POST" });
}

async function until(what: string, ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The status of a settled sign-in: the HttpError's, or "ok". */
async function outcome(p: Promise<unknown>): Promise<number | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    if (err instanceof HttpError) return err.status;
    throw err;
  }
}

async function httpError(p: Promise<unknown>): Promise<HttpError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof HttpError) return err;
    throw err;
  }
  throw new Error("expected an HttpError");
}

const QUEUE = { perAddress: 1, max: 100, waitMs: 10_000 };

Deno.test("no more than PASSWORD_HASH_CONCURRENCY derivations run at once", async () => {
  const held = heldKdf();
  await using s = await accountsWith(
    { passwordHashConcurrency: 2, passwordHashQueue: QUEUE },
    held.kdf,
  );
  const attempts = Array.from({ length: 8 }, (_, i) =>
    outcome(s.accounts.signIn(
      { email: freshEmail(), password: "not the password" },
      signInRequest(),
      `198.51.100.${i}`,
    )));
  await until("two derivations in flight", () => held.inFlight === 2);
  // Give the other six every chance to start: they must wait in the queue.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(held.inFlight, 2);
  held.release();
  assert.deepEqual(await Promise.all(attempts), Array(8).fill(401));
  assert.equal(held.peak, 2);
  assert.equal(held.costs.length, 8);
});

Deno.test("a client address gets one sign-in or sign-up in flight; more are 429 at once", async (t) => {
  await t.step("in the account service, before any hashing", async () => {
    const held = heldKdf();
    await using s = await accountsWith(
      { passwordHashConcurrency: 2, passwordHashQueue: QUEUE },
      held.kdf,
    );
    const ip = "192.0.2.10";
    const first = outcome(s.accounts.signIn(
      { email: freshEmail(), password: "not the password" },
      signInRequest(),
      ip,
    ));
    await until("the first derivation", () => held.inFlight === 1);
    for (
      const second of [
        s.accounts.signIn({ email: freshEmail(), password: "x".repeat(12) }, signInRequest(), ip),
        s.accounts.signUp({ email: freshEmail(), password: TEST_PASSWORD }, ip),
      ]
    ) {
      const err = await httpError(second);
      assert.equal(err.status, 429);
      assert.equal(err.extra.code, "TOO_MANY_ATTEMPTS");
      assert.equal(new Headers(err.headers).get("Retry-After"), "1");
    }
    assert.equal(held.costs.length, 1, "the refused attempts did no hashing");
    // Another address is not held up by the first.
    const other = outcome(s.accounts.signIn(
      { email: freshEmail(), password: "not the password" },
      signInRequest(),
      "192.0.2.11",
    ));
    await until("the other address's derivation", () => held.inFlight === 2);
    held.release();
    assert.equal(await first, 401);
    assert.equal(await other, 401);
    // Once the first is answered, the address may try again.
    assert.equal(
      await outcome(s.accounts.signIn(
        { email: freshEmail(), password: "not the password" },
        signInRequest(),
        ip,
      )),
      401,
    );
  });

  await t.step("over HTTP, in the usual JSON error shape", async () => {
    const ctx = await makeTestApp({
      config: { passwordHashCost: 15, signInThrottle: { max: 1000, windowMs: 60_000 } },
    });
    try {
      const ip = fromIp("192.0.2.20");
      const responses = await Promise.all(
        [0, 1].map(() =>
          ctx.app.request(
            `${BASE}/api/auth/sign-in`,
            json({ email: freshEmail(), password: "not the password" }),
            ip,
          )
        ),
      );
      const statuses = responses.map((r) => r.status).sort();
      assert.deepEqual(statuses, [401, 429]);
      const limited = responses.find((r) => r.status === 429)!;
      assert.equal(limited.headers.get("Retry-After"), "1");
      const body = await limited.json();
      assert.equal(body.error, "Too Many Requests");
      assert.equal(body.statusCode, 429);
      assert.equal(body.code, "TOO_MANY_ATTEMPTS");
      await Promise.all(responses.filter((r) => !r.bodyUsed).map((r) => r.body?.cancel()));
    } finally {
      await ctx.close();
    }
  });
});

Deno.test("beyond the bounded queue, or after the short wait, the answer is 503 SERVER_BUSY", async (t) => {
  await t.step(
    "queue full at once, wait expired after waitMs, and no refused request hashes",
    async () => {
      const held = heldKdf();
      await using s = await accountsWith(
        { passwordHashConcurrency: 1, passwordHashQueue: { perAddress: 1, max: 1, waitMs: 300 } },
        held.kdf,
      );
      const attempt = (ip: string) =>
        s.accounts.signIn(
          { email: freshEmail(), password: "not the password" },
          signInRequest(),
          ip,
        );
      const running = outcome(attempt("203.0.113.1"));
      await until("the running derivation", () => held.inFlight === 1);
      const waits = attempt("203.0.113.2").catch((err) => err);
      await until("one waiting", () => s.accounts.hashingLoad().queued === 1);
      // The queue (1) is full: the next is refused at once, long before the 300 ms wait.
      const started = performance.now();
      const full = await httpError(attempt("203.0.113.4"));
      assert.ok(performance.now() - started < 250, "refused without waiting");
      assert.equal(full.status, 503);
      assert.equal(full.extra.code, "SERVER_BUSY");
      assert.ok(Number(new Headers(full.headers).get("Retry-After")) >= 1);
      const body = await full.toResponse().json();
      assert.equal(body.error, "Service Unavailable");
      assert.equal(body.statusCode, 503);
      // The one that waited gives up after waitMs with a 503, while the first still runs.
      const expired = await waits;
      assert.ok(expired instanceof HttpError && expired.status === 503, String(expired));
      assert.equal(expired.extra.code, "SERVER_BUSY");
      assert.deepEqual(s.accounts.hashingLoad(), { running: 1, queued: 0 });
      held.release();
      assert.equal(await running, 401);
      assert.equal(held.costs.length, 1, "no refused request did any hashing");
      assert.deepEqual(s.accounts.hashingLoad(), { running: 0, queued: 0 });
    },
  );

  await t.step("over HTTP a flood gets 401s and 503s, never a 500", async () => {
    const ctx = await makeTestApp({
      config: {
        passwordHashCost: 15,
        passwordHashConcurrency: 1,
        passwordHashQueue: { perAddress: 1, max: 0, waitMs: 100 },
        signInThrottle: { max: 1000, windowMs: 60_000 },
      },
    });
    try {
      const responses = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          ctx.app.request(
            `${BASE}/api/auth/sign-in`,
            json({ email: freshEmail(), password: "not the password" }),
            fromIp(`203.0.113.${50 + i}`),
          )),
      );
      const statuses = responses.map((r) => r.status);
      assert.ok(statuses.every((s) => s === 401 || s === 503), statuses.join(","));
      assert.ok(statuses.includes(503), statuses.join(","));
      const busy = responses.find((r) => r.status === 503)!;
      assert.ok(Number(busy.headers.get("Retry-After")) >= 1);
      const body = await busy.json();
      assert.equal(body.error, "Service Unavailable");
      assert.equal(body.code, "SERVER_BUSY");
      await Promise.all(responses.filter((r) => !r.bodyUsed).map((r) => r.body?.cancel()));
    } finally {
      await ctx.close();
    }
  });
});

Deno.test("a derivation that has started finishes and its result is used", async () => {
  const pool = new WorkPool({ concurrency: 1, perKey: 1, maxQueued: 1, maxWaitMs: 50 });
  const abort = new AbortController();
  const { promise: gate, resolve: open } = Promise.withResolvers<void>();
  using admission = pool.admit("a");
  const result = admission.run(async () => {
    await gate;
    return "hashed";
  }, { signal: abort.signal });
  abort.abort();
  await new Promise((r) => setTimeout(r, 100)); // longer than maxWaitMs
  open();
  assert.equal(await result, "hashed");
  assert.equal(pool.running, 0);
  // An aborted waiter never starts its job.
  using other = pool.admit("b");
  let ran = false;
  await assert.rejects(
    other.run(() => Promise.resolve(ran = true), { signal: AbortSignal.abort() }),
    PoolBusyError,
  );
  assert.equal(ran, false);
  // A waiter whose caller gives up leaves the queue at once, before its wait is over.
  const patient = new WorkPool({ concurrency: 1, perKey: 1, maxQueued: 1, maxWaitMs: 10_000 });
  using third = patient.admit("c");
  const holding = Promise.withResolvers<void>();
  const busy = third.run(() => holding.promise);
  using fourth = patient.admit("d");
  const leave = new AbortController();
  const waiting = fourth.run(() => Promise.resolve(ran = true), { signal: leave.signal }).catch((
    e,
  ) => e);
  assert.equal(patient.queued, 1);
  leave.abort();
  assert.equal(patient.queued, 0);
  assert.ok(await waiting instanceof PoolBusyError);
  holding.resolve();
  await busy;
  assert.equal(ran, false);
  assert.equal(patient.peakRunning, 1);
});

Deno.test("a newcomer that could not start within the wait is refused at once", async () => {
  const pool = new WorkPool({ concurrency: 1, perKey: 1, maxQueued: 10, maxWaitMs: 80 });
  const slow = () => new Promise<void>((r) => setTimeout(r, 50));
  {
    using a = pool.admit("a");
    await a.run(slow); // the pool now knows a job takes >= 50 ms
  }
  using a = pool.admit("a");
  const running = a.run(slow);
  using b = pool.admit("b");
  const first = b.run(slow); // one round (>= 50 ms) fits the 80 ms wait
  using c = pool.admit("c");
  const started = performance.now();
  const err = await c.run(slow).catch((e) => e);
  assert.ok(err instanceof PoolBusyError && err.reason === "wait too long", String(err));
  assert.ok(performance.now() - started < 40, "refused before any wait");
  await running;
  await first;
});

Deno.test("a job that could not start by its request's start-by time never starts", async () => {
  const pool = new WorkPool({ concurrency: 1, perKey: 2, maxQueued: 10, maxWaitMs: 10_000 });
  let ran = 0;
  const job = () => Promise.resolve(ran++);
  using late = pool.admit("a");
  const err = await late.run(job, { startBy: Date.now() - 1 }).catch((e) => e);
  assert.ok(err instanceof PoolBusyError && err.reason === "wait expired", String(err));
  // Waiting behind a running job, it gives up at its start-by time, not after maxWaitMs.
  using holder = pool.admit("b");
  const hold = Promise.withResolvers<void>();
  const running = holder.run(() => hold.promise);
  using waiter = pool.admit("a");
  const started = performance.now();
  const expired = await waiter.run(job, { startBy: Date.now() + 50 }).catch((e) => e);
  assert.ok(expired instanceof PoolBusyError && expired.reason === "wait expired");
  assert.ok(performance.now() - started < 5_000);
  hold.resolve();
  await running;
  assert.equal(ran, 0);
});

Deno.test("a failed sign-in costs the same hashing work whatever the stored hash's cost", async () => {
  const COST = 14;
  const counted = countingKdf();
  await using s = await accountsWith({ passwordHashCost: COST }, counted.kdf);
  const accountAt = async (stored: string) => {
    const email = freshEmail();
    await createUser(s.kv, { email, passwordHash: stored, nowMs: s.clock() });
    return email;
  };
  const cases: [string, string][] = [
    ["an unknown email", freshEmail()],
    ["an account at the current cost", await accountAt(await hashPassword(TEST_PASSWORD, COST))],
    ["an account at cost 10", await accountAt(await hashPassword(TEST_PASSWORD, 10))],
    ["an account at cost 13", await accountAt(await hashPassword(TEST_PASSWORD, 13))],
    ["an account at cost 1", await accountAt(await hashPassword(TEST_PASSWORD, 1))],
    ["a malformed stored hash", await accountAt("scrypt$x$8$1$$")],
    ["a stored hash too big to check", await accountAt("scrypt$24$8$1$AAAA$AAAA")],
  ];
  let i = 0;
  for (const [what, email] of cases) {
    counted.costs.length = 0;
    const status = await outcome(
      s.accounts.signIn({ email, password: "wrong password" }, signInRequest(), `10.0.0.${i++}`),
    );
    assert.equal(status, 401, what);
    assert.equal(counted.work(), 2 ** COST, `${what}: derivations at ${counted.costs}`);
  }
});

Deno.test("a successful sign-in rehashes a stored hash of other parameters to the current cost", async (t) => {
  const ctx = await makeTestApp({
    config: { passwordHashCost: 11, signInThrottle: { max: 1000, windowMs: 60_000 } },
  });
  try {
    const email = freshEmail();
    const user = await createUser(ctx.kv, {
      email,
      passwordHash: await hashPassword(TEST_PASSWORD, 10),
      nowMs: ctx.clock(),
    });
    const signIn = (password: string) =>
      ctx.app.request(`${BASE}/api/auth/sign-in`, json({ email, password }));

    await t.step("a wrong password leaves the hash alone", async () => {
      const res = await signIn("not the password");
      assert.equal(res.status, 401);
      await res.body?.cancel();
      assert.equal((await getUser(ctx.kv, user.id))?.passwordHash, user.passwordHash);
    });

    let rehashed = "";
    await t.step("the right one signs in and replaces it with a cost-11 hash", async () => {
      const res = await signIn(TEST_PASSWORD);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      rehashed = (await getUser(ctx.kv, user.id))!.passwordHash;
      assert.match(rehashed, /^scrypt\$11\$8\$1\$/);
    });

    await t.step("the new hash signs in and is not rehashed again", async () => {
      const res = await signIn(TEST_PASSWORD);
      assert.equal(res.status, 200);
      await res.body?.cancel();
      assert.equal((await getUser(ctx.kv, user.id))?.passwordHash, rehashed);
    });

    await t.step("the rehash never overwrites a hash that changed meanwhile", async () => {
      const stale = user.passwordHash;
      assert.equal(await updatePasswordHash(ctx.kv, user.id, stale, "scrypt$12$8$1$x$y"), false);
      assert.equal((await getUser(ctx.kv, user.id))?.passwordHash, rehashed);
      assert.equal(await updatePasswordHash(ctx.kv, "usr_nobody", stale, "x"), false);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("hashing memory is bounded at start-up: concurrency x per-hash memory", async (t) => {
  await t.step("the default concurrency is the CPU count, capped to the bound", () => {
    const c = loadConfig({});
    assert.equal(passwordHashMemoryBytes(17), 128 * 2 ** 20);
    assert.ok(c.passwordHashConcurrency >= 1);
    assert.ok(c.passwordHashConcurrency <= navigator.hardwareConcurrency);
    assert.ok(
      c.passwordHashConcurrency * passwordHashMemoryBytes(17) <= MAX_PASSWORD_HASH_MEMORY_BYTES,
    );
    assert.equal(loadConfig({ PASSWORD_HASH_COST: "18" }).passwordHashConcurrency, 1);
    assert.equal(loadConfig({ PASSWORD_HASH_CONCURRENCY: "1" }).passwordHashConcurrency, 1);
  });

  await t.step("a cost or concurrency over the bound is refused in one line", () => {
    for (
      const [env, name] of [
        [{ PASSWORD_HASH_COST: "19" }, "PASSWORD_HASH_COST"],
        [{ PASSWORD_HASH_COST: "20" }, "PASSWORD_HASH_COST"],
        [{ PASSWORD_HASH_CONCURRENCY: "3" }, "PASSWORD_HASH_CONCURRENCY"],
        [{ PASSWORD_HASH_COST: "18", PASSWORD_HASH_CONCURRENCY: "2" }, "PASSWORD_HASH_CONCURRENCY"],
        [{ PASSWORD_HASH_CONCURRENCY: "0" }, "PASSWORD_HASH_CONCURRENCY"],
      ] as const
    ) {
      assert.throws(
        () => loadConfig(env),
        (err: Error) =>
          err instanceof ConfigError && err.message.startsWith(name) && !err.message.includes("\n"),
        JSON.stringify(env),
      );
    }
  });

  await t.step("the server refuses to start with an oversized cost, with one line", async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: await startTaskArgs(),
      env: { PORT: "0", HOSTNAME: "127.0.0.1", PASSWORD_HASH_COST: "19", NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(20_000),
    }).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 1, stderr);
    assert.equal(stderr.split("\n").length, 1, stderr);
    assert.match(stderr, /^configuration error: PASSWORD_HASH_COST 19 needs 512 MiB per hash/);
  });
});

Deno.test("the start-up line prints the worst-case hashing memory", async () => {
  const server = await startServer({
    DENO_KV_PATH: ":memory:",
    PASSWORD_HASH_COST: "17",
    PASSWORD_HASH_CONCURRENCY: "2",
  }, { direct: true });
  try {
    const line = server.output().split("\n").find((l) => l.includes('"listening"'))!;
    assert.deepEqual(JSON.parse(line).passwordHashing, {
      cost: 17,
      concurrency: 2,
      worstCaseMemoryMiB: 256,
    });
  } finally {
    await server.stop();
  }
});
