/**
 * The SSRF guard's decision on one IP address: may a webhook be delivered to it?
 *
 * Only addresses a stranger on the Internet could reach are allowed. Refused: IPv4 this-network,
 * private, CGNAT, loopback, link-local (cloud metadata 169.254.169.254), IETF protocol
 * assignments, documentation, 6to4 relay anycast, benchmarking, multicast, reserved and broadcast;
 * IPv6 outside global unicast 2000::/3 (unspecified, loopback, IPv4-compatible, discard, unique
 * local, link-local, site-local, multicast …) and, inside it, 2001::/23 (Teredo and other IETF
 * special purpose), 2001:db8::/32 and 3fff::/20 (documentation). Addresses that carry an IPv4
 * address — IPv4-mapped ::ffff:0:0/96, NAT64 64:ff9b::/96 and 6to4 2002::/16 — are decided by the
 * embedded IPv4 address; the local-use NAT64 prefix 64:ff9b:1::/48 and the IPv4-translated
 * ::ffff:0:0:0/96 are refused outright.
 *
 * Input is address text as a resolver or a URL parser gives it: dotted-quad IPv4 (four decimal
 * parts, no leading zeros) or IPv6 (RFC 4291 text, with or without an IPv4 tail, optionally
 * bracketed, optionally with a %zone). Anything else is not an address and is refused.
 */

/** [first address, prefix length] of every refused IPv4 range. */
const REFUSED_V4: readonly [string, number][] = [
  ["0.0.0.0", 8], // "this network"
  ["10.0.0.0", 8], // private
  ["100.64.0.0", 10], // CGNAT shared address space
  ["127.0.0.0", 8], // loopback
  ["169.254.0.0", 16], // link-local, cloud metadata (169.254.169.254)
  ["172.16.0.0", 12], // private
  ["192.0.0.0", 24], // IETF protocol assignments
  ["192.0.2.0", 24], // TEST-NET-1
  ["192.88.99.0", 24], // 6to4 relay anycast
  ["192.168.0.0", 16], // private
  ["198.18.0.0", 15], // benchmarking
  ["198.51.100.0", 24], // TEST-NET-2
  ["203.0.113.0", 24], // TEST-NET-3
  ["224.0.0.0", 4], // multicast
  ["240.0.0.0", 4], // reserved, and 255.255.255.255 broadcast
];

const V4_RANGES: readonly [number, number][] = REFUSED_V4.map(([text, bits]) => {
  const base = parseIPv4(text)!;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return [(base & mask) >>> 0, mask];
});

/** A dotted-quad IPv4 address as an unsigned 32-bit number, or null. Strict: 4 decimal parts. */
export function parseIPv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = value * 256 + n;
  }
  return value;
}

/** IPv6 text (no brackets, no zone) as 8 16-bit groups, or null. Accepts an IPv4 tail. */
export function parseIPv6(text: string): number[] | null {
  if (!/^[0-9a-fA-F:.]{2,45}$/.test(text)) return null;
  let head = text;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (v4 === null) return null;
    tail.push(v4 >>> 16, v4 & 0xffff);
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  const halves = head.split("::");
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
      out.push(parseInt(g, 16));
    }
    return out;
  };
  const left = groups(halves[0]);
  const right = halves.length === 2 ? groups(halves[1]) : [];
  if (left === null || right === null) return null;
  const given = left.length + right.length + tail.length;
  if (halves.length === 2) {
    if (given > 7) return null;
    return [...left, ...new Array(8 - given).fill(0), ...right, ...tail];
  }
  return given === 8 ? [...left, ...tail] : null;
}

function v4Allowed(v4: number): boolean {
  return !V4_RANGES.some(([base, mask]) => ((v4 & mask) >>> 0) === base);
}

const embeddedV4 = (g: number[], at: number): number => g[at] * 0x10000 + g[at + 1];
const allZero = (g: number[], from: number, to: number): boolean =>
  g.slice(from, to).every((x) => x === 0);

function v6Allowed(g: number[]): boolean {
  // ::ffff:a.b.c.d (IPv4-mapped): the IPv4 address decides.
  if (allZero(g, 0, 5) && g[5] === 0xffff) return v4Allowed(embeddedV4(g, 6));
  // 64:ff9b::a.b.c.d (well-known NAT64 prefix): the IPv4 address decides.
  if (g[0] === 0x64 && g[1] === 0xff9b && allZero(g, 2, 6)) return v4Allowed(embeddedV4(g, 6));
  // 2002:aabb:ccdd::/48 (6to4): the IPv4 address in bits 16..48 decides.
  if (g[0] === 0x2002) return v4Allowed(embeddedV4(g, 1));
  // Everything outside global unicast 2000::/3 is refused: ::, ::1, ::a.b.c.d, ::ffff:0:a.b.c.d,
  // 64:ff9b:1::/48, 100::/64, fc00::/7, fe80::/10, fec0::/10, ff00::/8 and the unassigned rest.
  if ((g[0] & 0xe000) !== 0x2000) return false;
  if (g[0] === 0x2001 && g[1] < 0x200) return false; // 2001::/23 IETF special purpose (Teredo …)
  if (g[0] === 0x2001 && g[1] === 0x0db8) return false; // 2001:db8::/32 documentation
  if (g[0] === 0x3fff && g[1] < 0x1000) return false; // 3fff::/20 documentation
  return true;
}

/**
 * The decision on one resolved address (IPv4 or IPv6 text). True only for a publicly routable
 * unicast address; false for every refused range and for anything that is not an address.
 */
export function isAllowedAddress(ip: string): boolean {
  const text = unbracket(ip);
  const v4 = parseIPv4(text);
  if (v4 !== null) return v4Allowed(v4);
  const zone = text.indexOf("%");
  if (zone === 0) return false;
  const groups = parseIPv6(zone > 0 ? text.slice(0, zone) : text);
  // An address with a zone id is scoped to a local link: never a public target.
  if (groups === null || zone > 0) return false;
  return v6Allowed(groups);
}

/** True when `ip` is an IPv4 or IPv6 address literal (brackets and zone id allowed). */
export function isIpLiteral(ip: string): boolean {
  const text = unbracket(ip);
  if (parseIPv4(text) !== null) return true;
  const zone = text.indexOf("%");
  return parseIPv6(zone >= 0 ? text.slice(0, zone) : text) !== null;
}

/** True for 127.0.0.0/8, ::1 and IPv4-mapped loopback. */
export function isLoopbackAddress(ip: string): boolean {
  const text = unbracket(ip);
  const v4 = parseIPv4(text);
  if (v4 !== null) return v4 >>> 24 === 127;
  const g = parseIPv6(text);
  if (g === null) return false;
  if (allZero(g, 0, 7) && g[7] === 1) return true;
  return allZero(g, 0, 5) && g[5] === 0xffff && g[6] >>> 8 === 127;
}

function unbracket(ip: string): string {
  return ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
}
