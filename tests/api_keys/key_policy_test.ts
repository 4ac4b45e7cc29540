/** The address allowlist check on its own: its parse cache changes no answer. */
import assert from "node:assert/strict";
import { parseCidr } from "../../lib/client.ts";
import { ipAllowed } from "../../auth/api_keys/policy.ts";

const ranges = ["203.0.113.0/24", "2001:db8::/32"].map((t) => parseCidr(t)!);

Deno.test("an allowlist admits exactly the addresses inside its ranges, asked once or again", () => {
  for (let pass = 0; pass < 2; pass++) {
    assert.equal(ipAllowed(ranges, "203.0.113.7"), true);
    assert.equal(ipAllowed(ranges, "2001:db8::1"), true);
    assert.equal(ipAllowed(ranges, "::ffff:203.0.113.9"), true);
    assert.equal(ipAllowed(ranges, "203.0.114.7"), false);
    assert.equal(ipAllowed(ranges, "2001:db9::1"), false);
    assert.equal(ipAllowed(ranges, "unknown"), false);
    assert.equal(ipAllowed(ranges, ""), false);
  }
  assert.equal(ipAllowed(null, "198.51.100.1"), true, "no allowlist: every address");
  assert.equal(ipAllowed([], "203.0.113.7"), false, "an empty list: no address");
});

Deno.test("a flood of distinct addresses (more than the parse cache holds) changes no answer", () => {
  for (let i = 0; i < 10_000; i++) {
    const third = (i >> 8) & 0xff;
    const inside = `203.0.113.${i & 0xff}`;
    const outside = `198.51.${third}.${i & 0xff}`;
    assert.equal(ipAllowed(ranges, inside), true, inside);
    assert.equal(ipAllowed(ranges, outside), false, outside);
  }
  assert.equal(ipAllowed(ranges, "203.0.113.200"), true);
});
