/**
 * Micro-benchmark: microseconds per TOTP check (three candidate steps, the window lib/totp.ts
 * accepts) with `otpauth` (HMAC-SHA-1 in plain JS, synchronous) against Web Crypto (HMAC-SHA-1
 * through `crypto.subtle`, a key import and an awaited sign per step: what lib/totp.ts did before
 * issue 21, kept here only as the comparison). Issue 21 asks for `otpauth` unless a measurement
 * says otherwise; this is that measurement. A check runs once per submitted code, behind the
 * two-factor throttle, so either figure is far from the request budget.
 *
 * Rounds alternate the two sides; prints the median over the rounds after the first two.
 *
 *   deno run bench/totp_micro.ts [--rounds 12] [--checks 5000]
 */
import * as OTPAuth from "otpauth";
import { parseArgs } from "node:util";
import { generateTotpSecret, matchTotp } from "../lib/totp.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "12" },
    checks: { type: "string", default: "5000" },
  },
});
const ROUNDS = Number(args.rounds);
const CHECKS = Number(args.checks);
const WARM_UP = 2;
const SECRETS = Array.from({ length: 64 }, () => generateTotpSecret());
const NOW = 1_700_000_000_000;

/** HOTP over Web Crypto, as the former lib/totp.ts computed it. */
async function webCryptoHotp(key: Uint8Array<ArrayBuffer>, counter: number): Promise<string> {
  const msg = new Uint8Array(8);
  new DataView(msg.buffer).setBigUint64(0, BigInt(counter));
  const k = await crypto.subtle.importKey(
    "raw",
    key,
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", k, msg));
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) |
    mac[offset + 3];
  return String(bin % 1e6).padStart(6, "0");
}

const KEYS = SECRETS.map((s) => new Uint8Array(OTPAuth.Secret.fromBase32(s).bytes));

type Side = { name: string; run: (n: number) => Promise<number> };

/** Each check is of a wrong code, so every side computes all three candidates. */
const SIDES: Side[] = [
  {
    name: "otpauth (lib/totp.ts)",
    async run(n) {
      let sink = 0;
      for (let i = 0; i < n; i++) sink += (await matchTotp(SECRETS[i & 63], "000000", NOW)) ?? 1;
      return sink;
    },
  },
  {
    name: "Web Crypto HMAC-SHA-1",
    async run(n) {
      let sink = 0;
      const step = Math.floor(NOW / 30_000);
      for (let i = 0; i < n; i++) {
        for (let s = step - 1; s <= step + 1; s++) {
          sink += (await webCryptoHotp(KEYS[i & 63], s)).charCodeAt(0);
        }
      }
      return sink;
    },
  },
];

const samples: number[][] = SIDES.map(() => []);
let sink = 0;
for (let round = 0; round < ROUNDS; round++) {
  for (let k = 0; k < SIDES.length; k++) {
    const i = (round + k) % SIDES.length;
    const start = performance.now();
    sink += await SIDES[i].run(CHECKS);
    if (round >= WARM_UP) samples[i].push((performance.now() - start) * 1000 / CHECKS);
  }
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
}

console.log(`TOTP check of a wrong code (3 steps), ${CHECKS} checks a round,`);
console.log(`median of ${ROUNDS - WARM_UP} rounds (checksum ${sink % 1000}):`);
for (let i = 0; i < SIDES.length; i++) {
  const [lo, hi] = [Math.min(...samples[i]), Math.max(...samples[i])];
  console.log(
    `  ${SIDES[i].name.padEnd(24)} ${median(samples[i]).toFixed(1).padStart(6)} µs/check  ` +
      `(rounds ${lo.toFixed(1)}–${hi.toFixed(1)})`,
  );
}
