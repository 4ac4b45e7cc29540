import assert from "node:assert/strict";
import { validateWebhookUrl } from "../../lib/webhooks/target.ts";

const strict = { allowPrivate: false };
const dev = { allowPrivate: true };

/** Literal or local-only targets, each refused in production mode even over https. */
const REFUSED_TARGETS: [string, string][] = [
  ["https://127.0.0.1/hook", "loopback"],
  ["https://2130706433/hook", "decimal IPv4 (127.0.0.1)"],
  ["https://017700000001/hook", "octal 32-bit IPv4"],
  ["https://0177.0.0.1/hook", "octal dotted IPv4"],
  ["https://0x7f.1/hook", "hex + short IPv4"],
  ["https://0x7f000001/hook", "hex 32-bit IPv4"],
  ["https://127.1/hook", "short IPv4"],
  ["https://127.000.000.001/hook", "zero-padded IPv4"],
  ["https://①②⑦.0.0.1/hook", "full-width digits (IDNA-mapped)"],
  ["https://127。0。0。1/hook", "ideographic full stops"],
  ["https://0/hook", "0 = 0.0.0.0"],
  ["https://10.0.0.1/hook", "private 10/8"],
  ["https://172.16.5.4:8443/hook", "private 172.16/12 with a port"],
  ["https://192.168.1.1/hook", "private 192.168/16"],
  ["https://100.64.0.1/hook", "CGNAT"],
  ["https://169.254.169.254/latest/meta-data/", "cloud metadata"],
  ["https://0xa9fea9fe/", "cloud metadata in hex"],
  ["https://224.0.0.1/", "multicast"],
  ["https://255.255.255.255/", "broadcast"],
  ["https://[::1]/hook", "IPv6 loopback"],
  ["https://[0:0:0:0:0:0:0:1]/hook", "IPv6 loopback, long form"],
  ["https://[::]/hook", "IPv6 unspecified"],
  ["https://[::ffff:127.0.0.1]/hook", "IPv4-mapped loopback"],
  ["https://[::ffff:7f00:1]/hook", "IPv4-mapped loopback, hex"],
  ["https://[::ffff:a9fe:a9fe]/hook", "IPv4-mapped metadata"],
  ["https://[::127.0.0.1]/hook", "IPv4-compatible loopback"],
  ["https://[64:ff9b::7f00:1]/hook", "NAT64 of loopback"],
  ["https://[2002:7f00:1::]/hook", "6to4 of loopback"],
  ["https://[fe80::1]/hook", "IPv6 link-local"],
  ["https://[fd00::1]/hook", "IPv6 unique local"],
  ["https://[ff02::1]/hook", "IPv6 multicast"],
  ["https://localhost/hook", "localhost"],
  ["https://LOCALHOST/hook", "LOCALHOST"],
  ["https://localhost./hook", "localhost with a trailing dot"],
  ["https://api.localhost/hook", "*.localhost"],
  ["https://metadata.google.internal/computeMetadata/v1/", "GCP metadata name"],
  ["https://metadata.google.internal./", "GCP metadata name, trailing dot"],
  ["https://db.internal/", "*.internal"],
  ["https://printer.local/", "mDNS .local"],
  ["https://router.home.arpa/", "home.arpa"],
];

const MALFORMED: [string, RegExp][] = [
  ["", /required/],
  ["hooks.example.com/x", /absolute/],
  ["/relative", /absolute/],
  ["ftp://example.com/", /https/],
  ["file:///etc/passwd", /https/],
  ["javascript:alert(1)", /https/],
  ["gopher://example.com/", /https/],
  ["http://example.com/hook", /https/],
  ["https://user:pass@example.com/", /user name or password/],
  ["https://user@example.com/", /user name or password/],
  ["https://example.com:0/", /port/],
  ["https://example.com:65536/", /absolute/],
  ["https://[fe80::1%25eth0]/", /absolute/],
  ["https://exa mple.com/", /absolute/],
  ["https://-bad-.example.com/", /valid host name/],
  ["https://a..b.com/", /valid host name/],
  ["https://" + "a".repeat(64) + ".com/", /valid host name/],
  ["https://example.com/" + "x".repeat(2100), /at most/],
];

Deno.test("webhook URL validation (validateWebhookUrl)", async (t) => {
  await t.step(`${REFUSED_TARGETS.length} literal and local-only target forms are refused`, () => {
    assert.ok(REFUSED_TARGETS.length >= 20);
    for (const [url, why] of REFUSED_TARGETS) {
      const error = validateWebhookUrl(url, strict);
      assert.match(error ?? "", /non-public address|local-only name/, `${url} (${why})`);
    }
  });

  await t.step("malformed URLs and other schemes are refused with a message", () => {
    for (const [url, message] of MALFORMED) {
      assert.match(validateWebhookUrl(url, strict) ?? "", message, url);
      assert.match(validateWebhookUrl(url, dev) ?? "", message, url);
    }
  });

  await t.step("public https targets are accepted", () => {
    for (
      const url of [
        "https://hooks.example.com/inbound",
        "https://hooks.example.com:8443/a?b=c#frag",
        "https://HOOKS.Example.COM./x",
        "https://8.8.8.8/hook",
        "https://[2606:4700::1111]/hook",
        "https://[::ffff:8.8.8.8]/hook",
        "https://xn--bcher-kva.example/",
        "https://bücher.example/",
        "https://under_score.example.com/",
        "https://hooks.example.test/",
      ]
    ) {
      assert.equal(validateWebhookUrl(url, strict), null, url);
    }
  });

  await t.step("allowPrivate permits private literals, and http only to loopback", () => {
    for (
      const url of [
        "https://127.0.0.1:9999/hook",
        "https://10.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "http://127.0.0.1:9999/hook",
        "http://127.1/hook",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost:3000/hook",
        "http://LOCALHOST./hook",
      ]
    ) {
      assert.equal(validateWebhookUrl(url, dev), null, url);
    }
    for (
      const url of [
        "http://10.0.0.1/hook",
        "http://192.168.1.1/",
        "http://example.com/",
        "http://api.localhost/",
        "http://[fe80::1]/",
      ]
    ) {
      assert.match(validateWebhookUrl(url, dev) ?? "", /https/, url);
    }
    assert.match(validateWebhookUrl("http://127.0.0.1/", strict) ?? "", /https/);
  });
});
