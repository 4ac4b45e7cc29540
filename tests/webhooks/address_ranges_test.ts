import assert from "node:assert/strict";
import {
  isAllowedAddress,
  isIpLiteral,
  isLoopbackAddress,
  parseIPv6,
} from "../../lib/webhooks/address_ranges.ts";

/** Every refused range: its first address, a middle one and its last, and the neighbours outside. */
const V4_REFUSED: [string, string, string, string | null, string | null][] = [
  // [range, first, last, just below (allowed), just above (allowed)]
  ["0.0.0.0/8", "0.0.0.0", "0.255.255.255", null, "1.0.0.0"],
  ["10.0.0.0/8", "10.0.0.0", "10.255.255.255", "9.255.255.255", "11.0.0.0"],
  ["100.64.0.0/10", "100.64.0.0", "100.127.255.255", "100.63.255.255", "100.128.0.0"],
  ["127.0.0.0/8", "127.0.0.0", "127.255.255.255", "126.255.255.255", "128.0.0.0"],
  ["169.254.0.0/16", "169.254.0.0", "169.254.255.255", "169.253.255.255", "169.255.0.0"],
  ["172.16.0.0/12", "172.16.0.0", "172.31.255.255", "172.15.255.255", "172.32.0.0"],
  ["192.0.0.0/24", "192.0.0.0", "192.0.0.255", "191.255.255.255", "192.0.1.0"],
  ["192.0.2.0/24", "192.0.2.0", "192.0.2.255", "192.0.1.255", "192.0.3.0"],
  ["192.88.99.0/24", "192.88.99.0", "192.88.99.255", "192.88.98.255", "192.88.100.0"],
  ["192.168.0.0/16", "192.168.0.0", "192.168.255.255", "192.167.255.255", "192.169.0.0"],
  ["198.18.0.0/15", "198.18.0.0", "198.19.255.255", "198.17.255.255", "198.20.0.0"],
  ["198.51.100.0/24", "198.51.100.0", "198.51.100.255", "198.51.99.255", "198.51.101.0"],
  ["203.0.113.0/24", "203.0.113.0", "203.0.113.255", "203.0.112.255", "203.0.114.0"],
  ["224.0.0.0/4", "224.0.0.0", "239.255.255.255", "223.255.255.255", null],
  ["240.0.0.0/4", "240.0.0.0", "255.255.255.255", null, null],
];

const V6_REFUSED: [string, string][] = [
  ["::", "unspecified"],
  ["::1", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback, long form"],
  ["::ffff:127.0.0.1", "IPv4-mapped loopback"],
  ["::ffff:7f00:1", "IPv4-mapped loopback, hex"],
  ["::ffff:10.1.2.3", "IPv4-mapped private"],
  ["::ffff:169.254.169.254", "IPv4-mapped metadata"],
  ["::ffff:0.0.0.0", "IPv4-mapped this-network"],
  ["::ffff:0:7f00:1", "IPv4-translated"],
  ["64:ff9b::127.0.0.1", "NAT64 of loopback"],
  ["64:ff9b::a9fe:a9fe", "NAT64 of metadata"],
  ["64:ff9b:1::808:808", "local-use NAT64"],
  ["100::", "discard"],
  ["100::ffff:ffff:ffff:ffff", "discard, last"],
  ["2001::1", "Teredo"],
  ["2001:1ff:ffff::1", "2001::/23, last block"],
  ["2001:db8::1", "documentation"],
  ["2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation, last"],
  ["3fff::1", "documentation 3fff::/20"],
  ["2002:7f00:1::1", "6to4 of loopback"],
  ["2002:a00:1::", "6to4 of 10.0.0.1"],
  ["2002:c0a8:101::1", "6to4 of 192.168.1.1"],
  ["fc00::1", "unique local"],
  ["fdff:ffff::1", "unique local, fd"],
  ["fe80::1", "link-local"],
  ["febf:ffff::1", "link-local, last"],
  ["fec0::1", "site-local"],
  ["ff02::1", "multicast"],
  ["ff0e::1", "multicast, global scope"],
  ["::127.0.0.1", "IPv4-compatible loopback"],
  ["::8.8.8.8", "IPv4-compatible public (deprecated form)"],
  ["::0.0.0.2", "IPv4-compatible"],
  ["fe80::1%eth0", "zone id"],
  ["2606:4700::1%1", "zone id on a global address"],
  ["[::1]", "bracketed loopback"],
  ["4000::1", "outside 2000::/3"],
  ["5f00::1", "outside 2000::/3 (SRv6)"],
];

const ALLOWED: string[] = [
  "8.8.8.8",
  "1.1.1.1",
  "93.184.215.14",
  "100.63.255.255",
  "172.15.0.1",
  "192.0.1.1",
  "223.255.255.255",
  "2606:4700:4700::1111",
  "2001:4860:4860::8888",
  "2a00:1450:4001:80b::200e",
  "2001:200::1", // just above 2001::/23
  "2001:db7:ffff::1",
  "2001:db9::1",
  "3ffe:ffff::1",
  "3fff:1000::1", // just above 3fff::/20
  "::ffff:8.8.8.8",
  "::ffff:808:808",
  "64:ff9b::8.8.8.8",
  "2002:808:808::1", // 6to4 of 8.8.8.8
  "[2606:4700::1]",
];

const NOT_ADDRESSES: string[] = [
  "",
  "localhost",
  "example.com",
  "127.1",
  "0x7f.0.0.1",
  "0177.0.0.1",
  "2130706433",
  "127.0.0.01",
  "256.0.0.1",
  "1.2.3.4.5",
  " 8.8.8.8",
  "8.8.8.8 ",
  ":::",
  "1:2:3:4:5:6:7:8:9",
  "1::2::3",
  "::ffff:1.2.3",
  "12345::",
  "%eth0",
  "g::1",
];

Deno.test("the SSRF guard's address decision (isAllowedAddress)", async (t) => {
  await t.step(
    "IPv4: every refused range, first and last address refused, neighbours allowed",
    () => {
      for (const [range, first, last, below, above] of V4_REFUSED) {
        assert.equal(isAllowedAddress(first), false, `${range}: ${first}`);
        assert.equal(isAllowedAddress(last), false, `${range}: ${last}`);
        if (below) assert.equal(isAllowedAddress(below), true, `${range}: below ${below}`);
        if (above) assert.equal(isAllowedAddress(above), true, `${range}: above ${above}`);
      }
      for (const ip of ["169.254.169.254", "100.100.100.200", "192.168.1.1", "255.255.255.255"]) {
        assert.equal(isAllowedAddress(ip), false, ip);
      }
    },
  );

  await t.step("IPv6: every refused form", () => {
    for (const [ip, why] of V6_REFUSED) assert.equal(isAllowedAddress(ip), false, `${ip} (${why})`);
  });

  await t.step("public unicast addresses are allowed, embedded public IPv4 too", () => {
    for (const ip of ALLOWED) assert.equal(isAllowedAddress(ip), true, ip);
  });

  await t.step("anything that is not strict address text is refused", () => {
    for (const text of NOT_ADDRESSES) {
      assert.equal(isAllowedAddress(text), false, JSON.stringify(text));
      assert.equal(isIpLiteral(text), false, JSON.stringify(text));
    }
  });

  await t.step("IPv6 parsing expands :: and IPv4 tails", () => {
    assert.deepEqual(parseIPv6("::"), [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(parseIPv6("1::"), [1, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(parseIPv6("::ffff:1.2.3.4"), [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304]);
    assert.deepEqual(parseIPv6("1:2:3:4:5:6:1.2.3.4"), [1, 2, 3, 4, 5, 6, 0x102, 0x304]);
    assert.deepEqual(parseIPv6("1:2:3:4:5:6:7:8"), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(parseIPv6("1:2:3:4::5:6:7:8"), null);
  });

  await t.step("loopback detection (for http:// in development)", () => {
    for (const ip of ["127.0.0.1", "127.9.9.9", "::1", "[::1]", "::ffff:7f00:1"]) {
      assert.equal(isLoopbackAddress(ip), true, ip);
    }
    for (const ip of ["10.0.0.1", "::", "8.8.8.8", "localhost", "::2"]) {
      assert.equal(isLoopbackAddress(ip), false, ip);
    }
  });
});
