/**
 * Deno KV's key encoding, as carried on the KV Connect wire: the FoundationDB tuple layer variant
 * that denoland/denokv implements in `proto/codec.rs` (MIT). Written here from that description:
 *
 *   0x01 bytes   raw bytes, every 0x00 escaped as 0x00 0xff, terminated by 0x00
 *   0x02 string  UTF-8 bytes, escaped and terminated like bytes
 *   0x0c..0x1c   bigint with up to 8 magnitude bytes: 0x14 is zero, 0x14+n positive (n big-endian
 *                bytes), 0x14-n negative (n ones'-complemented bytes)
 *   0x0b / 0x1d  negative / positive bigint of more than 8 bytes: a length byte (ones'-complemented
 *                for negative), then the bytes as above
 *   0x21 number  float64 big-endian; sign bit flipped when positive, all bits flipped when
 *                negative, so byte order is numeric order; NaN canonicalized
 *   0x26 / 0x27  false / true
 *
 * A JS `number` is always a float part and a `bigint` always an integer part, as in Deno.
 */

const BYTES = 0x01;
const STRING = 0x02;
const NEGINTSTART = 0x0b;
const INTZERO = 0x14;
const POSINTEND = 0x1d;
const DOUBLE = 0x21;
const FALSE = 0x26;
const TRUE = 0x27;
const ESCAPE = 0xff;

export class KeyCodecError extends Error {}

/** A growable byte buffer (key encoding is on every listed entry's path: keep it cheap). */
class Writer {
  buf = new Uint8Array(64);
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  byte(b: number): void {
    this.room(1);
    this.buf[this.len++] = b;
  }
  escaped(bytes: Uint8Array): void {
    this.room(bytes.length * 2 + 1);
    for (const b of bytes) {
      this.buf[this.len++] = b;
      if (b === 0) this.buf[this.len++] = ESCAPE;
    }
    this.buf[this.len++] = 0;
  }
  /** A string part's bytes: ASCII written directly, anything else through TextEncoder. */
  string(s: string): void {
    this.room(s.length * 2 + 1);
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        this.len -= i;
        this.escaped(utf8.encode(s));
        return;
      }
      this.buf[this.len++] = c;
      if (c === 0) this.buf[this.len++] = ESCAPE;
    }
    this.buf[this.len++] = 0;
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function bigintMagnitude(n: bigint): number[] {
  const bytes: number[] = [];
  let v = n < 0n ? -n : n;
  while (v > 0n) {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  }
  return bytes;
}

function pushBigint(out: Writer, n: bigint): void {
  if (n === 0n) {
    out.byte(INTZERO);
    return;
  }
  const bytes = bigintMagnitude(n);
  const len = bytes.length;
  if (len > 255) throw new KeyCodecError("bigint key part needs more than 255 bytes");
  if (n > 0n) {
    if (len <= 8) out.byte(INTZERO + len);
    else {
      out.byte(POSINTEND);
      out.byte(len);
    }
    for (const b of bytes) out.byte(b);
  } else {
    if (len <= 8) out.byte(INTZERO - len);
    else {
      out.byte(NEGINTSTART);
      out.byte(len ^ 0xff);
    }
    for (const b of bytes) out.byte(~b & 0xff);
  }
}

const f64 = new DataView(new ArrayBuffer(8));

function pushDouble(out: Writer, x: number): void {
  // Every NaN is written as the canonical positive NaN (0x7ff8…), as JS itself does.
  f64.setFloat64(0, x);
  const negative = (f64.getUint8(0) & 0x80) !== 0;
  out.byte(DOUBLE);
  for (let i = 0; i < 8; i++) {
    const b = f64.getUint8(i);
    if (negative) out.byte(~b & 0xff);
    else out.byte(i === 0 ? b ^ 0x80 : b);
  }
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Encodes a Deno KV key to its wire bytes. */
export function encodeKey(key: Deno.KvKey): Uint8Array {
  const out = new Writer();
  for (const part of key) {
    if (typeof part === "string") {
      out.byte(STRING);
      out.string(part);
    } else if (typeof part === "bigint") pushBigint(out, part);
    else if (typeof part === "number") pushDouble(out, part);
    else if (typeof part === "boolean") out.byte(part ? TRUE : FALSE);
    else if (part instanceof Uint8Array) {
      out.byte(BYTES);
      out.escaped(part);
    } else throw new KeyCodecError("unsupported key part");
  }
  return out.bytes();
}

function readEscaped(bytes: Uint8Array, at: number): [Uint8Array, number] {
  const out: number[] = [];
  let i = at;
  while (i < bytes.length) {
    const b = bytes[i++];
    if (b === 0) {
      if (bytes[i] === ESCAPE) {
        out.push(0);
        i++;
        continue;
      }
      return [Uint8Array.from(out), i];
    }
    out.push(b);
  }
  throw new KeyCodecError("unterminated bytes or string key part");
}

function take(bytes: Uint8Array, at: number, n: number): Uint8Array {
  if (at + n > bytes.length) throw new KeyCodecError("truncated key part");
  return bytes.subarray(at, at + n);
}

function magnitudeOf(bytes: Uint8Array, invert: boolean): bigint {
  let v = 0n;
  for (const b of bytes) v = (v << 8n) | BigInt(invert ? ~b & 0xff : b);
  return v;
}

/** Decodes wire bytes to a Deno KV key; throws KeyCodecError when they are not a valid key. */
export function decodeKey(bytes: Uint8Array): Deno.KvKey {
  const key: Deno.KvKeyPart[] = [];
  let i = 0;
  while (i < bytes.length) {
    const tag = bytes[i++];
    if (tag === STRING || tag === BYTES) {
      const [data, next] = readEscaped(bytes, i);
      i = next;
      if (tag === BYTES) key.push(data);
      else {
        try {
          key.push(utf8Strict.decode(data));
        } catch {
          throw new KeyCodecError("invalid UTF-8 in string key part");
        }
      }
    } else if (tag >= INTZERO - 8 && tag <= INTZERO + 8) {
      const n = Math.abs(tag - INTZERO);
      const data = take(bytes, i, n);
      i += n;
      key.push(tag >= INTZERO ? magnitudeOf(data, false) : -magnitudeOf(data, true));
    } else if (tag === NEGINTSTART || tag === POSINTEND) {
      const raw = take(bytes, i, 1)[0];
      i++;
      const n = tag === NEGINTSTART ? raw ^ 0xff : raw;
      const data = take(bytes, i, n);
      i += n;
      key.push(tag === POSINTEND ? magnitudeOf(data, false) : -magnitudeOf(data, true));
    } else if (tag === DOUBLE) {
      const data = Uint8Array.from(take(bytes, i, 8));
      i += 8;
      const wasPositive = (data[0] & 0x80) !== 0;
      for (let j = 0; j < 8; j++) {
        data[j] = wasPositive ? (j === 0 ? data[j] ^ 0x80 : data[j]) : ~data[j] & 0xff;
      }
      key.push(new DataView(data.buffer).getFloat64(0));
    } else if (tag === FALSE) key.push(false);
    else if (tag === TRUE) key.push(true);
    else throw new KeyCodecError(`invalid key part tag 0x${tag.toString(16)}`);
  }
  return key;
}

/** Decodes, or returns null when the bytes are not a valid key. */
export function tryDecodeKey(bytes: Uint8Array): Deno.KvKey | null {
  try {
    return decodeKey(bytes);
  } catch (e) {
    if (e instanceof KeyCodecError) return null;
    throw e;
  }
}

/** Lexicographic byte order: the order of keys in every Deno KV backend. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}
