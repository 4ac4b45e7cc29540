/**
 * Micro-benchmark: nanoseconds per SHA-256 of one key-sized input (a 46-character API key, one
 * 64-byte block), each side producing the lower-case hex the stores key by: the plain-JS digest
 * lib/sha256.ts used until issue 21 (bench/_sha256_plain_js.ts), `node:crypto`'s `createHash` and
 * one-shot `hash`, `crypto.subtle.digest`, and lib/sha256.ts as it is now. It decides whether the
 * plain-JS digest still earns its place (issue 21: it stays only if its measured gain holds); the
 * whole-server effect is what bench/auth_throughput.ts measures.
 *
 * Rounds alternate the sides in a rotated order; prints the median ns per hash of each over the
 * rounds after the first two (warm-up). Web Crypto, ~20 times slower, hashes a tenth as many.
 *
 *   deno run bench/sha256_micro.ts [--rounds 30] [--hashes 50000]
 */
import { createHash, hash } from "node:crypto";
import { parseArgs } from "node:util";
import { generateApiKey } from "../auth/api_keys/format.ts";
import { sha256Hex } from "../lib/sha256.ts";
import { plainJsSha256Hex } from "./_sha256_plain_js.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "30" },
    hashes: { type: "string", default: "50000" },
  },
});
const ROUNDS = Number(args.rounds);
const HASHES = Number(args.hashes);
const WARM_UP = 2;
/** Distinct keys, reused round-robin: no side gets to cache one input. */
const KEYS = Array.from({ length: 1024 }, () => generateApiKey());
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += HEX[b];
  return out;
}

/** `share`: the fraction of `--hashes` the side computes a round. */
type Side = { name: string; share: number; run: (n: number) => Promise<number> | number };

/** A side hashing synchronously with `digest`. */
function syncSide(name: string, digest: (text: string) => string): Side {
  return {
    name,
    share: 1,
    run(n) {
      let sink = 0;
      for (let i = 0; i < n; i++) sink += digest(KEYS[i & 1023]).charCodeAt(5);
      return sink;
    },
  };
}

/** Each side returns a checksum of what it computed, so no work is optimised away. */
const SIDES: Side[] = [
  syncSide("plain JS (until issue 21)", plainJsSha256Hex),
  syncSide("node:crypto hash", (text) => hash("sha256", text, "hex")),
  syncSide("lib/sha256.ts now", sha256Hex),
  {
    name: "node:crypto createHash",
    share: 1,
    run(n) {
      let sink = 0;
      for (let i = 0; i < n; i++) {
        sink += createHash("sha256").update(KEYS[i & 1023]).digest("hex").charCodeAt(5);
      }
      return sink;
    },
  },
  {
    name: "crypto.subtle.digest",
    share: 0.1,
    async run(n) {
      let sink = 0;
      for (let i = 0; i < n; i++) {
        const digest = await crypto.subtle.digest("SHA-256", encoder.encode(KEYS[i & 1023]));
        sink += hex(new Uint8Array(digest)).charCodeAt(5);
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
    const n = Math.round(HASHES * SIDES[i].share);
    const start = performance.now();
    sink += await SIDES[i].run(n);
    const ns = (performance.now() - start) * 1e6 / n;
    if (round >= WARM_UP) samples[i].push(ns);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

console.log(`SHA-256 of a ${KEYS[0].length}-character API key, ${HASHES} hashes a round,`);
console.log(`median of ${ROUNDS - WARM_UP} rounds (checksum ${sink % 1000}):`);
for (let i = 0; i < SIDES.length; i++) {
  const ns = median(samples[i]);
  const [lo, hi] = [Math.min(...samples[i]), Math.max(...samples[i])];
  console.log(
    `  ${SIDES[i].name.padEnd(27)} ${ns.toFixed(0).padStart(6)} ns/hash  ` +
      `(rounds ${lo.toFixed(0)}–${hi.toFixed(0)})`,
  );
}
