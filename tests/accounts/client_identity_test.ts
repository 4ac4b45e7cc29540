/**
 * lib/client.ts: parsing TRUST_PROXY and PUBLIC_URL, resolving the client from forwarding
 * headers, and request ids that do not reveal request volume.
 */
import assert from "node:assert/strict";
import {
  formatIp,
  parseForwarded,
  parseIp,
  parsePublicUrl,
  parseTrustProxy,
  resolveClient,
  siteOf,
  TRUST_NOTHING,
} from "../../lib/client.ts";
import { ConfigError, loadConfig } from "../../lib/config.ts";
import { nextRequestId } from "../../lib/request_id.ts";

const URL_8000 = "http://127.0.0.1:8000/api/auth/sign-in";

function resolve(peer: string, headers: Record<string, string>, trust: string, url = URL_8000) {
  return resolveClient(peer, new Headers(headers), url, parseTrustProxy(trust));
}

Deno.test("addresses are parsed and written in one canonical form", async (t) => {
  const cases: [string, string | null][] = [
    ["192.0.2.1", "192.0.2.1"],
    ["::1", "::1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["2001:db8::0:1", "2001:db8::1"],
    ["::ffff:10.1.2.3", "10.1.2.3"],
    ["1:0:0:1:0:0:0:1", "1:0:0:1::1"],
    ["fe80::1:2:3:4:5", "fe80::1:2:3:4:5"],
    ["192.0.2.256", null],
    ["01.2.3.4", null],
    ["1.2.3", null],
    ["1::2::3", null],
    ["1:2:3:4:5:6:7:8:9", null],
    ["12345::", null],
    ["", null],
    ["localhost", null],
  ];
  for (const [input, canonical] of cases) {
    await t.step(`${JSON.stringify(input)} -> ${canonical}`, () => {
      const bytes = parseIp(input);
      assert.equal(bytes === null ? null : formatIp(bytes), canonical);
    });
  }
});

Deno.test("TRUST_PROXY is a hop count or a list of CIDRs, and anything else is refused", async (t) => {
  await t.step("unset, empty and 0 trust nothing", () => {
    for (const raw of [undefined, "", " ", "0"]) assert.equal(parseTrustProxy(raw).kind, "none");
  });
  await t.step("a number is a hop count", () => {
    assert.deepEqual(parseTrustProxy("2"), { kind: "hops", hops: 2 });
  });
  await t.step("CIDRs and bare addresses, IPv4 and IPv6", () => {
    const t = parseTrustProxy("127.0.0.0/8, 10.0.0.0/8,::1,fd00::/8");
    assert.equal(t.kind, "cidrs");
    assert.equal(t.kind === "cidrs" ? t.ranges.length : 0, 4);
  });
  for (const raw of ["true", "yes", "10.0.0.0/33", "10.0.0.0/8,", "::1/129", "1.2.3.4/-1", "999"]) {
    await t.step(`${JSON.stringify(raw)} is a one-line ConfigError`, () => {
      assert.throws(() => loadConfig({ TRUST_PROXY: raw }), (err) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^TRUST_PROXY /);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
    });
  }
});

Deno.test("PUBLIC_URL is an http(s) origin, normalised, and anything else is refused", async (t) => {
  await t.step("normalised to its origin", () => {
    assert.equal(parsePublicUrl("https://API.example.com:443/"), "https://api.example.com");
    assert.equal(parsePublicUrl("http://devbox.lan:8000"), "http://devbox.lan:8000");
    assert.equal(parsePublicUrl(""), null);
    assert.equal(loadConfig({ PUBLIC_URL: "https://a.example" }).publicUrl, "https://a.example");
  });
  for (
    const raw of [
      "api.example.com",
      "ftp://api.example.com",
      "https://api.example.com/inbound",
      "https://user:pw@api.example.com",
      "https://api.example.com/?x=1",
      "https://",
    ]
  ) {
    await t.step(`${JSON.stringify(raw)} is a one-line ConfigError`, () => {
      assert.throws(() => loadConfig({ PUBLIC_URL: raw }), (err) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /^PUBLIC_URL /);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      });
    });
  }
});

Deno.test("Forwarded headers are parsed per RFC 7239", async (t) => {
  await t.step("elements, pairs, quoted strings, case-insensitive names", () => {
    assert.deepEqual(
      parseForwarded('for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711"'),
      [{ for: "192.0.2.60", proto: "http" }, { for: "[2001:db8:cafe::17]:4711" }],
    );
    assert.deepEqual(parseForwarded('host="a,b;c"'), [{ host: "a,b;c" }]);
  });
  for (const bad of ['for="x', "for", "for=a b", "for=1;for=2", "a=b=c", "for=[::1]"]) {
    await t.step(`${JSON.stringify(bad)} is malformed`, () => {
      assert.equal(parseForwarded(bad), null);
    });
  }
});

Deno.test("the client is resolved from forwarding headers only when the peer is trusted", async (t) => {
  await t.step("TRUST_PROXY unset: the peer and the request URL, whatever the headers", () => {
    const c = resolveClient(
      "203.0.113.9",
      new Headers({ "X-Forwarded-For": "1.1.1.1", "X-Forwarded-Proto": "https" }),
      URL_8000,
      TRUST_NOTHING,
    );
    assert.deepEqual(c, {
      address: "203.0.113.9",
      scheme: "http",
      host: "127.0.0.1:8000",
      schemeForwarded: false,
    });
  });
  await t.step("a peer outside the ranges is not believed", () => {
    const c = resolve("203.0.113.9", { "X-Forwarded-For": "1.1.1.1" }, "127.0.0.0/8");
    assert.equal(c.address, "203.0.113.9");
  });
  await t.step("X-Forwarded-For: the rightmost untrusted entry", () => {
    const h = { "X-Forwarded-For": "6.6.6.6, 198.51.100.1, 10.0.0.3, 10.0.0.2" };
    assert.equal(resolve("127.0.0.1", h, "127.0.0.0/8,10.0.0.0/8").address, "198.51.100.1");
    assert.equal(resolve("127.0.0.1", h, "1").address, "10.0.0.2");
    assert.equal(resolve("127.0.0.1", h, "3").address, "198.51.100.1");
    assert.equal(resolve("127.0.0.1", h, "9").address, "6.6.6.6");
  });
  await t.step("IPv4-mapped peers match IPv4 ranges; ports and brackets are stripped", () => {
    assert.equal(
      resolve("::ffff:127.0.0.1", { "X-Forwarded-For": "[2001:db8::5]:443" }, "127.0.0.0/8")
        .address,
      "2001:db8::5",
    );
    assert.equal(
      resolve("::1", { "X-Forwarded-For": "192.0.2.5:1234" }, "::1").address,
      "192.0.2.5",
    );
  });
  await t.step("Forwarded: the client's element gives address, scheme and host", () => {
    const c = resolve("127.0.0.1", {
      Forwarded: 'for=192.0.2.43;proto=https;host="api.example.com:443", for=10.0.0.9',
    }, "127.0.0.0/8,10.0.0.0/8");
    assert.deepEqual(c, {
      address: "192.0.2.43",
      scheme: "https",
      host: "api.example.com",
      schemeForwarded: true,
    });
  });
  await t.step("X-Forwarded-Proto and -Host: the value the nearest proxy wrote", () => {
    const c = resolve("127.0.0.1", {
      "X-Forwarded-Proto": "http, HTTPS",
      "X-Forwarded-Host": "API.example.com",
    }, "1");
    assert.equal(c.scheme, "https");
    assert.equal(c.host, "api.example.com");
    assert.equal(c.address, "127.0.0.1");
  });
  await t.step("Forwarded and X-Forwarded-For disagreeing: the peer", () => {
    const c = resolve("127.0.0.1", {
      Forwarded: "for=6.6.6.6",
      "X-Forwarded-For": "198.51.100.1",
    }, "1");
    assert.equal(c.address, "127.0.0.1");
  });
  await t.step("malformed: the peer and the request URL", () => {
    const hostile: Record<string, string>[] = [
      { "X-Forwarded-For": "junk", "X-Forwarded-Proto": "gopher", "X-Forwarded-Host": "a/b" },
      { Forwarded: 'for="1.2.3.4', "X-Forwarded-For": "1.2.3.4" },
      { "X-Forwarded-For": "1.2.3.4, ", "X-Forwarded-Host": "x".repeat(300) },
    ];
    for (const h of hostile) {
      const c = resolve("127.0.0.1", h, "127.0.0.0/8");
      assert.deepEqual(c, {
        address: "127.0.0.1",
        scheme: "http",
        host: "127.0.0.1:8000",
        schemeForwarded: false,
      }, JSON.stringify(h));
    }
  });
});

Deno.test("the site is PUBLIC_URL's when set, else the resolved client's", async (t) => {
  const client = resolve("127.0.0.1", { "X-Forwarded-Proto": "https" }, "1");
  await t.step("from the client", () => {
    assert.deepEqual(siteOf(client, null), {
      origin: "https://127.0.0.1:8000",
      https: true,
      configured: false,
      loopback: true,
      schemeKnown: true,
    });
  });
  await t.step("from PUBLIC_URL", () => {
    assert.deepEqual(siteOf(client, "http://devbox.lan:8000"), {
      origin: "http://devbox.lan:8000",
      https: false,
      configured: true,
      loopback: false,
      schemeKnown: true,
    });
  });
});

Deno.test("request ids do not count up", async (t) => {
  const ids = Array.from({ length: 2000 }, () => nextRequestId());
  await t.step("they keep their shape and are all distinct", () => {
    for (const id of ids) assert.match(id, /^req_[0-9A-Za-z]{22}$/);
    assert.equal(new Set(ids).size, ids.length);
  });
  await t.step("consecutive ids are not in order", () => {
    let rising = 0;
    for (let i = 1; i < ids.length; i++) if (ids[i] > ids[i - 1]) rising++;
    const share = rising / (ids.length - 1);
    assert.ok(share > 0.4 && share < 0.6, `share of rising pairs: ${share}`);
  });
  await t.step("consecutive ids differ in most of their varying part", () => {
    // A counter changes its last character or two; here about 11 of the 12 varying characters.
    let differing = 0;
    for (let i = 1; i < ids.length; i++) {
      const a = ids[i - 1].slice(-12), b = ids[i].slice(-12);
      for (let k = 0; k < 12; k++) if (a[k] !== b[k]) differing++;
    }
    assert.ok(
      differing / (ids.length - 1) > 9,
      `mean differing characters: ${differing / (ids.length - 1)}`,
    );
  });
});
