/**
 * Attacks on the device-cookie throttle (issue 10, item 4): one browser used for two accounts,
 * and a device cookie used to lift the per-address bound on sign-in work.
 */
import assert from "node:assert/strict";
import { makeTestApp, TEST_PASSWORD, type TestApp } from "../_helpers.ts";
import { BASE, freshEmail, fromIp, Jar, json } from "../sessions_helpers.ts";

const OWNER_IP = fromIp("192.0.2.10");

async function status(res: Response | Promise<Response>): Promise<number> {
  const r = await res;
  await r.body?.cancel();
  return r.status;
}

function startOfWindow(ctx: TestApp): void {
  const w = ctx.config.signInThrottle.windowMs;
  ctx.clock.set(Math.ceil(ctx.clock() / w) * w + 5_000);
}

async function send(ctx: TestApp, path: string, body: unknown, ip: string, jar?: Jar) {
  const init = json(body);
  const res = await ctx.app.request(`${BASE}${path}`, jar ? jar.init(init) : init, fromIp(ip));
  return jar ? jar.take(res) : res;
}

Deno.test("a browser that has signed in to two accounts keeps the owner's exemption for both", async (t) => {
  const ctx = await makeTestApp();
  try {
    const work = freshEmail();
    const personal = freshEmail();
    const jar = new Jar();
    // One person, one browser, two accounts (work and personal), as an operator often has.
    for (const email of [work, personal]) {
      assert.equal(
        await status(
          send(ctx, "/api/auth/sign-up", { email, password: TEST_PASSWORD }, "192.0.2.10", jar),
        ),
        201,
      );
      assert.equal(await status(send(ctx, "/api/auth/sign-out", {}, "192.0.2.10", jar)), 200);
    }
    startOfWindow(ctx);
    // Distributed guessing at the work email, from 13 addresses.
    for (let a = 1; a <= 13; a++) {
      for (let i = 0; i < 3; i++) {
        await status(
          send(
            ctx,
            "/api/auth/sign-in",
            { email: work, password: `guess ${a}-${i}` },
            `198.51.100.${a}`,
          ),
        );
      }
    }
    await t.step("the owner's browser still signs in to the work account", async () => {
      const res = await send(
        ctx,
        "/api/auth/sign-in",
        { email: work, password: TEST_PASSWORD },
        OWNER_IP.remoteAddr.hostname,
        jar,
      );
      assert.equal(await status(res), 200);
    });
  } finally {
    await ctx.close();
  }
});

Deno.test("successful sign-ins carrying device cookies from one address are still bounded per address", async () => {
  const ctx = await makeTestApp();
  try {
    const email = freshEmail();
    const jar = new Jar();
    assert.equal(
      await status(
        send(ctx, "/api/auth/sign-up", { email, password: TEST_PASSWORD }, "203.0.113.7", jar),
      ),
      201,
    );
    startOfWindow(ctx);
    // Each success hands out a fresh device id, whose own counter starts at zero: with its own
    // account one address can make the server hash passwords (and store sessions) without end.
    const limit = ctx.config.signInThrottle.max;
    const statuses: number[] = [];
    for (let i = 0; i < 5 * limit; i++) {
      statuses.push(
        await status(
          send(ctx, "/api/auth/sign-in", { email, password: TEST_PASSWORD }, "203.0.113.7", jar),
        ),
      );
    }
    const admitted = statuses.filter((s) => s === 200).length;
    assert.ok(
      admitted <= 3 * limit,
      `${admitted} sign-ins admitted from one address in one window`,
    );
  } finally {
    await ctx.close();
  }
});
