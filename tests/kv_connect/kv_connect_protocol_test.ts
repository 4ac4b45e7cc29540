/**
 * The KV Connect test backend (tests/kv_connect/) speaks denokv's protocol: its key codec, its
 * metadata exchange and data path, and every KV operation the server uses through Deno's client.
 */
import assert from "node:assert/strict";
import {
  backend,
  DATA_HEADERS,
  openRemoteKv,
  rawPost,
  rawRead,
  rawWrite,
  TEST_TOKEN,
} from "./client.ts";
import { compareBytes, decodeKey, encodeKey, tryDecodeKey } from "./key_codec.ts";
import { MutationType, ValueEncoding } from "./proto.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(" ");

Deno.test("the key codec encodes keys as Deno KV does and decodes them back", async (t) => {
  await t.step("known encodings match denokv's byte layout", () => {
    assert.equal(hex(encodeKey(["hello"])), "02 68 65 6c 6c 6f 00");
    assert.equal(
      hex(encodeKey([new Uint8Array([1, 2, 0, 7, 8])])),
      "01 01 02 00 ff 07 08 00",
    );
    assert.equal(hex(encodeKey([0n])), "14");
    assert.equal(hex(encodeKey([1n])), "15 01");
    assert.equal(hex(encodeKey([-1n])), "13 fe");
    assert.equal(hex(encodeKey([256n])), "16 01 00");
    assert.equal(hex(encodeKey([false, true])), "26 27");
    assert.equal(hex(encodeKey([1])), "21 bf f0 00 00 00 00 00 00");
    assert.equal(hex(encodeKey([-1])), "21 40 0f ff ff ff ff ff ff");
  });

  await t.step("every kind of key part survives a round trip", () => {
    const keys: Deno.KvKey[] = [
      [],
      ["", "a\u0000b", "ünïcødé 🎉"],
      [new Uint8Array(), new Uint8Array([0, 0, 255, 0])],
      [0n, 1n, -1n, 255n, -256n, 2n ** 64n - 1n, -(2n ** 64n), 2n ** 200n, -(2n ** 200n)],
      [0, -0, 1.5, -1.5, Number.MAX_VALUE, -Number.MIN_VALUE, Infinity, -Infinity],
      [true, false, "mixed", 3n, 4.25, new Uint8Array([9])],
    ];
    for (const key of keys) assert.deepEqual(decodeKey(encodeKey(key)), key);
    assert.ok(Object.is(decodeKey(encodeKey([-0]))[0], -0), "-0 stays -0");
    const nan = decodeKey(encodeKey([NaN]))[0];
    assert.ok(Number.isNaN(nan));
  });

  await t.step("byte order of encodings is the order a local Deno KV lists keys in", async () => {
    await using kv = await Deno.openKv(":memory:");
    const parts: Deno.KvKeyPart[] = [
      new Uint8Array(),
      new Uint8Array([0]),
      new Uint8Array([0, 1]),
      new Uint8Array([1]),
      "",
      "a",
      "a\u0000",
      "b",
      -(2n ** 70n),
      -300n,
      -1n,
      0n,
      1n,
      300n,
      2n ** 70n,
      -Infinity,
      -2.5,
      -0,
      0,
      2.5,
      Infinity,
      false,
      true,
    ];
    const shuffled = [...parts].sort(() => Math.random() - 0.5);
    for (const p of shuffled) await kv.set(["k", p], 1);
    await kv.set(["k", "a", 1n], 1);
    const listed = (await Array.fromAsync(kv.list({ prefix: [] }))).map((e) => encodeKey(e.key));
    assert.equal(listed.length, parts.length + 1);
    for (let i = 1; i < listed.length; i++) {
      assert.ok(
        compareBytes(listed[i - 1], listed[i]) < 0,
        `${hex(listed[i - 1])} < ${hex(listed[i])}`,
      );
    }
  });

  await t.step("bytes that are not a key are refused, not misread", () => {
    assert.equal(tryDecodeKey(new Uint8Array([0x02, 0x61])), null); // unterminated string
    assert.equal(tryDecodeKey(new Uint8Array([0x05])), null); // nested tuples are not Deno keys
    assert.equal(tryDecodeKey(new Uint8Array([0x16, 0x01])), null); // truncated integer
    assert.equal(tryDecodeKey(new Uint8Array([0x02, 0xff, 0x00])), null); // invalid UTF-8
  });

  await t.step("keys written by Deno's client come back in the same bytes", async () => {
    await using b = await backend();
    const kv = await openRemoteKv(b.url);
    try {
      const key: Deno.KvKey = ["x", 7n, -2.5, true, new Uint8Array([0, 9])];
      await kv.set(key, "v");
      const read = await rawRead(b.url, [{
        start: new Uint8Array([0x02, 0x78, 0]),
        end: new Uint8Array([0x02, 0x78, 0, 0xff]),
        limit: 10,
      }]);
      assert.equal(read.status, 200);
      assert.equal(hex(read.ranges[0][0].key), hex(encodeKey(key)));
    } finally {
      kv.close();
    }
  });
});

Deno.test("the metadata exchange negotiates protocol version 2 and checks the token", async (t) => {
  await using b = await backend();
  const exchange = (body: string | null, token = TEST_TOKEN) =>
    fetch(b.url, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    });

  await t.step("a valid request gets the data-path endpoint, a token and an expiry", async () => {
    const res = await exchange(JSON.stringify({ supportedVersions: [1, 2, 3] }));
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const body = await res.json();
    assert.equal(body.version, 2);
    assert.match(body.databaseId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.deepEqual(body.endpoints, [{ url: "/v2", consistency: "strong" }]);
    assert.equal(typeof body.token, "string");
    assert.ok(Date.parse(body.expiresAt) > Date.now());
  });

  await t.step("a wrong token is 401, with a plain-text reason", async () => {
    const res = await exchange(JSON.stringify({ supportedVersions: [2] }), "not-the-token-000");
    assert.equal(res.status, 401);
    assert.equal(await res.text(), "Invalid access token.");
  });

  await t.step("Deno's client with a wrong token fails to open the database", async () => {
    await assert.rejects(openRemoteKv(b.url, "not-the-token-000"), /401/);
  });

  await t.step("no body, or no version 2, is refused with 400 as denokv does", async () => {
    const none = await exchange(null);
    assert.equal(none.status, 400);
    assert.match(await none.text(), /at least protocol version 2/);
    const v1 = await exchange(JSON.stringify({ supportedVersions: [1] }));
    assert.equal(v1.status, 400);
    assert.match(await v1.text(), /could not negotiate/);
  });

  await t.step("the data path wants the token, the version and the database id", async () => {
    const body = new Uint8Array();
    const noVersion = { ...DATA_HEADERS, "x-denokv-version": "1" };
    assert.equal((await rawPost(b.url, "snapshot_read", body, noVersion)).status, 400);
    const badToken = { ...DATA_HEADERS, authorization: "Bearer nope-nope-nope" };
    assert.equal((await rawPost(b.url, "snapshot_read", body, badToken)).status, 401);
    const badId = { ...DATA_HEADERS, "x-denokv-database-id": "not-a-uuid" };
    assert.equal((await rawPost(b.url, "atomic_write", body, badId)).status, 400);
    assert.equal((await rawPost(b.url, "watch", body)).status, 404);
    const garbage = await rawPost(b.url, "atomic_write", new Uint8Array([0xff, 0xff, 0xff]));
    assert.equal(garbage.status, 400);
    assert.match(garbage.text, /Request protobuf is invalid/);
  });

  await t.step("raw writes carry real versionstamps and values in each encoding", async () => {
    const key = encodeKey(["raw", "u64"]);
    const le = new Uint8Array(8);
    le[0] = 42;
    const w = await rawWrite(b.url, {
      mutations: [{
        key,
        value: { data: le, encoding: ValueEncoding.LE64 },
        mutationType: MutationType.SET,
        expireAtMs: 0,
      }],
    });
    assert.equal(w.status, 200);
    assert.equal(w.result.status, 1);
    assert.equal(w.result.versionstamp.length, 10);
    const r = await rawRead(b.url, [{ start: key, end: Uint8Array.from([...key, 0]), limit: 1 }]);
    assert.equal(r.ranges[0][0].encoding, ValueEncoding.LE64);
    assert.deepEqual(Array.from(r.ranges[0][0].value), Array.from(le));
    assert.deepEqual(Array.from(r.ranges[0][0].versionstamp), Array.from(w.result.versionstamp));
    // The same versionstamp, now failing a check that expects the key absent.
    const lost = await rawWrite(b.url, {
      checks: [{ key, versionstamp: new Uint8Array() }],
      mutations: [{ key, mutationType: MutationType.DELETE, expireAtMs: 0 }],
    });
    assert.equal(lost.result.status, 2);
  });
});

Deno.test("Deno's client performs every operation the server uses over the backend", async (t) => {
  await using b = await backend();
  const kv = await openRemoteKv(b.url);
  const other = await openRemoteKv(b.url);
  try {
    await t.step("get and set round-trip structured values, bytes and u64", async () => {
      const value = { n: 1, s: "x", d: new Date(5), bytes: new Uint8Array([1, 2]), list: [1, "a"] };
      const set = await kv.set(["user", "u1"], value);
      assert.ok(set.ok);
      const got = await kv.get(["user", "u1"]);
      assert.deepEqual(got.value, value);
      assert.equal(got.versionstamp, set.versionstamp);
      await kv.set(["bytes"], new Uint8Array([0, 255]));
      assert.deepEqual((await kv.get(["bytes"])).value, new Uint8Array([0, 255]));
      assert.equal((await kv.get(["missing"])).versionstamp, null);
    });

    await t.step("getMany reads up to 10 keys in one snapshot, missing ones as null", async () => {
      const keys: Deno.KvKey[] = Array.from({ length: 10 }, (_, i) => ["many", i]);
      for (const k of keys.slice(0, 7)) await kv.set(k, k[1]);
      const before = b.stats().reads;
      const got = await kv.getMany(keys);
      assert.equal(b.stats().reads, before + 1);
      assert.deepEqual(got.map((e) => e.value), [0, 1, 2, 3, 4, 5, 6, null, null, null]);
    });

    await t.step(
      "list honours prefix, start/end, limit, reverse, cursor and batchSize",
      async () => {
        for (let i = 0; i < 25; i++) await kv.set(["item", i], i);
        await kv.set(["item"], "the prefix itself is not listed");
        await kv.set(["itemz", 0], "a sibling prefix is not listed");
        const values = async (sel: Deno.KvListSelector, opts?: Deno.KvListOptions) =>
          (await Array.fromAsync(kv.list<number>(sel, opts))).map((e) => e.value);
        const all = Array.from({ length: 25 }, (_, i) => i);
        assert.deepEqual(await values({ prefix: ["item"] }), all);
        assert.deepEqual(await values({ prefix: ["item"] }, { reverse: true }), [...all].reverse());
        assert.deepEqual(await values({ prefix: ["item"] }, { limit: 3 }), [0, 1, 2]);
        assert.deepEqual(await values({ prefix: ["item"] }, { limit: 3, reverse: true }), [
          24,
          23,
          22,
        ]);
        assert.deepEqual(await values({ start: ["item", 5], end: ["item", 9] }), [5, 6, 7, 8]);
        assert.deepEqual(
          await values({ start: ["item", 5], end: ["item", 9] }, { reverse: true }),
          [8, 7, 6, 5],
        );
        assert.deepEqual(await values({ prefix: ["item"], start: ["item", 20] }), [
          20,
          21,
          22,
          23,
          24,
        ]);
        assert.deepEqual(await values({ prefix: ["item"], end: ["item", 3] }, { reverse: true }), [
          2,
          1,
          0,
        ]);
        assert.deepEqual(await values({ prefix: ["item"] }, { batchSize: 4 }), all);
        assert.deepEqual(
          await values({ prefix: ["item"] }, { batchSize: 4, reverse: true }),
          [...all].reverse(),
        );
        for (const reverse of [false, true]) {
          const first = kv.list<number>({ prefix: ["item"] }, { limit: 10, reverse });
          const page1 = (await Array.fromAsync(first)).map((e) => e.value);
          const rest = await values({ prefix: ["item"] }, { cursor: first.cursor, reverse });
          assert.deepEqual([...page1, ...rest], reverse ? [...all].reverse() : all);
        }
      },
    );

    await t.step("atomic checks on absence and on versionstamps decide the commit", async () => {
      const key = ["check", "k"];
      const first = await kv.atomic().check({ key, versionstamp: null }).set(key, 1).commit();
      assert.ok(first.ok);
      const again = await kv.atomic().check({ key, versionstamp: null }).set(key, 2).commit();
      assert.equal(again.ok, false, "a commit conflict answers ok: false");
      const entry = await kv.get(key);
      const next = await kv.atomic().check(entry).set(key, 3).commit();
      assert.ok(next.ok);
      const stale = await kv.atomic().check(entry).set(key, 4).commit();
      assert.equal(stale.ok, false);
      assert.equal((await kv.get(key)).value, 3);
      assert.ok(next.ok && first.ok && next.versionstamp > first.versionstamp);
    });

    await t.step("set with expireIn stores the value until it expires", async () => {
      await kv.set(["session", "s"], "live", { expireIn: 60_000 });
      assert.equal((await kv.get(["session", "s"])).value, "live");
    });

    await t.step("delete removes the key", async () => {
      await kv.set(["gone"], 1);
      await kv.delete(["gone"]);
      assert.equal((await kv.get(["gone"])).versionstamp, null);
    });

    await t.step("sum, min and max work on Deno.KvU64", async () => {
      await kv.atomic().sum(["n"], 5n).sum(["n"], 7n).commit();
      assert.equal((await kv.get<Deno.KvU64>(["n"])).value?.value, 12n);
      await kv.atomic().min(["n"], 3n).commit();
      assert.equal((await kv.get<Deno.KvU64>(["n"])).value?.value, 3n);
      await kv.atomic().max(["n"], 30n).commit();
      assert.equal((await kv.get<Deno.KvU64>(["n"])).value?.value, 30n);
      await kv.set(["u64"], new Deno.KvU64(9n));
      assert.equal((await kv.get<Deno.KvU64>(["u64"])).value?.value, 9n);
    });

    await t.step("two clients committing at once both land, once each", async () => {
      const increment = async (client: Deno.Kv, times: number) => {
        for (let i = 0; i < times;) {
          const cur = await client.get<number>(["counter"]);
          const res = await client.atomic().check(cur).set(["counter"], (cur.value ?? 0) + 1)
            .sum(["sum"], 1n).commit();
          if (res.ok) i++;
        }
      };
      await Promise.all([increment(kv, 20), increment(other, 20)]);
      assert.equal((await kv.get(["counter"])).value, 40);
      assert.equal((await other.get<Deno.KvU64>(["sum"])).value?.value, 40n);
    });

    await t.step("the configured RTT is added to every data-path request", async () => {
      b.setRttMs(120);
      const started = performance.now();
      await kv.get(["user", "u1"]);
      await kv.set(["rtt"], 1);
      const elapsed = performance.now() - started;
      b.setRttMs(0);
      assert.ok(elapsed >= 240, `two requests at 120 ms RTT took ${elapsed.toFixed(0)} ms`);
    });
  } finally {
    kv.close();
    other.close();
  }
});

Deno.test("deno task kv-connect-test-server serves a local KV file until SIGTERM", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["task", "-q", "kv-connect-test-server"],
      env: {
        PORT: "0",
        KV_CONNECT_TOKEN: TEST_TOKEN,
        KV_CONNECT_RTT_MS: "0",
        DENO_KV_PATH: `${dir}/kv.sqlite3`,
      },
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    while (!buffered.includes("\n")) {
      const { value, done } = await lines.read();
      if (done) break;
      buffered += value;
    }
    const { url } = JSON.parse(buffered.split("\n")[0]);
    const kv = await openRemoteKv(url);
    await kv.set(["persisted"], "yes");
    kv.close();
    child.kill("SIGTERM");
    const status = await child.status;
    await lines.cancel();
    await child.stderr.cancel();
    assert.equal(status.code, 0);
    await using local = await Deno.openKv(`${dir}/kv.sqlite3`);
    assert.equal((await local.get(["persisted"])).value, "yes");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
