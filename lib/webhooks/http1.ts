/**
 * A minimal HTTP/1.1 client exchange over an already-open connection: one request written as
 * bytes, one response read back (status line, headers, then a body framed by Content-Length,
 * chunked transfer coding or the close of the connection). The webhook client uses it instead of
 * `fetch` so that the socket goes to the address the SSRF guard checked, with no second lookup.
 *
 * Reading is bounded: the head may be at most `maxHeadBytes`, at most `maxReadBytes` of body are
 * read (then reading stops and the body counts as truncated) and `keepBodyBytes` of it are kept.
 */

export type ByteSource = { read(p: Uint8Array): Promise<number | null> };
export type ByteSink = { write(p: Uint8Array): Promise<number> };

export type ResponseLimits = { maxHeadBytes: number; maxReadBytes: number; keepBodyBytes: number };
export const DEFAULT_LIMITS: ResponseLimits = {
  maxHeadBytes: 16 * 1024,
  maxReadBytes: 64 * 1024,
  keepBodyBytes: 4 * 1024,
};

export type RawResponse = { statusCode: number; body: Uint8Array; truncated: boolean };

/** The peer sent something that is not an HTTP/1.x response. */
export class HttpProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HttpProtocolError";
  }
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/**
 * The header values this client sends: tab and printable ASCII. RFC 9110 also allows obs-text
 * (\x80-\xff), but a JavaScript string is not bytes (which encoding?), so none is sent. The
 * endpoint schema (routes/endpoints/schemas.ts webhookHeaders) refuses what this refuses, with
 * this same function: a value accepted at create is one a delivery can send.
 */
const FIELD_VALUE = /^[\t\x20-\x7e]*$/;

export const isHeaderName = (name: string): boolean => TOKEN.test(name);
export const isHeaderValue = (value: string): boolean => FIELD_VALUE.test(value);

/** The bytes of a request. Header names and values must already be valid (checked here too). */
export function encodeRequest(req: {
  method: string;
  target: string;
  headers: [string, string][];
  body: Uint8Array;
}): Uint8Array {
  if (!/^\/[\x21-\x7e]*$/.test(req.target)) throw new HttpProtocolError("invalid request target");
  let head = `${req.method} ${req.target} HTTP/1.1\r\n`;
  for (const [name, value] of req.headers) {
    if (!isHeaderName(name) || !isHeaderValue(value)) throw new HttpProtocolError("invalid header");
    head += `${name}: ${value}\r\n`;
  }
  const headBytes = new TextEncoder().encode(head + "\r\n");
  const out = new Uint8Array(headBytes.length + req.body.length);
  out.set(headBytes);
  out.set(req.body, headBytes.length);
  return out;
}

export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await sink.write(bytes.subarray(offset));
}

/** Buffered reads from a connection. */
class Reader {
  #buf = new Uint8Array(0);
  #eof = false;
  constructor(private readonly source: ByteSource) {}

  get buffered(): number {
    return this.#buf.length;
  }

  /** Reads more into the buffer; false at end of stream. */
  async fill(): Promise<boolean> {
    if (this.#eof) return false;
    const chunk = new Uint8Array(16 * 1024);
    const n = await this.source.read(chunk);
    if (n === null) {
      this.#eof = true;
      return false;
    }
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  /** Bytes up to (not including) `delim`, consuming both; null at end of stream. */
  async until(delim: string, max: number): Promise<Uint8Array | null> {
    const d = new TextEncoder().encode(delim);
    let from = 0;
    while (true) {
      const at = indexOf(this.#buf, d, from);
      if (at >= 0) {
        const line = this.#buf.slice(0, at);
        this.#buf = this.#buf.slice(at + d.length);
        return line;
      }
      if (this.#buf.length > max) throw new HttpProtocolError("response head too large");
      from = Math.max(0, this.#buf.length - d.length + 1);
      if (!await this.fill()) return null;
    }
  }

  /** Up to `n` buffered bytes (reading if none are buffered); empty at end of stream. */
  async take(n: number): Promise<Uint8Array> {
    if (this.#buf.length === 0 && !await this.fill()) return new Uint8Array(0);
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(out.length);
    return out;
  }
}

function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  outer: for (let i = from; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/** Collects the first `keep` bytes of a body and counts all, up to `max`. */
class BodySink {
  readonly parts: Uint8Array[] = [];
  kept = 0;
  total = 0;
  constructor(private readonly keep: number, private readonly max: number) {}
  get full(): boolean {
    return this.total >= this.max;
  }
  add(bytes: Uint8Array): void {
    this.total += bytes.length;
    const room = this.keep - this.kept;
    if (room > 0) {
      const part = bytes.subarray(0, room);
      this.parts.push(part);
      this.kept += part.length;
    }
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.kept);
    let at = 0;
    for (const p of this.parts) {
      out.set(p, at);
      at += p.length;
    }
    return out;
  }
}

type Head = { statusCode: number; headers: Map<string, string> };

async function readHead(reader: Reader, max: number): Promise<Head> {
  const raw = await reader.until("\r\n\r\n", max);
  if (raw === null) throw new HttpProtocolError("connection closed before a response");
  const lines = new TextDecoder("latin1").decode(raw).split("\r\n");
  const status = /^HTTP\/1\.[01] ([1-9][0-9]{2})(?: .*)?$/.exec(lines[0]);
  if (!status) throw new HttpProtocolError("invalid status line");
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0 || !isHeaderName(line.slice(0, colon))) {
      throw new HttpProtocolError("invalid header line");
    }
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prior = headers.get(name);
    if (name === "content-length" && prior !== undefined && prior !== value) {
      throw new HttpProtocolError("conflicting Content-Length");
    }
    headers.set(
      name,
      prior === undefined || name === "content-length" ? value : `${prior}, ${value}`,
    );
  }
  return { statusCode: Number(status[1]), headers };
}

async function readLength(reader: Reader, sink: BodySink, length: number): Promise<void> {
  let left = length;
  while (left > 0 && !sink.full) {
    const bytes = await reader.take(Math.min(left, 16 * 1024));
    if (bytes.length === 0) return; // closed early: keep what arrived
    sink.add(bytes);
    left -= bytes.length;
  }
}

async function readChunked(reader: Reader, sink: BodySink): Promise<void> {
  while (!sink.full) {
    const line = await reader.until("\r\n", 1024);
    if (line === null) return;
    const sizeText = new TextDecoder().decode(line).split(";")[0].trim();
    if (!/^[0-9a-fA-F]{1,8}$/.test(sizeText)) throw new HttpProtocolError("invalid chunk size");
    const size = parseInt(sizeText, 16);
    if (size === 0) return; // trailers are not read: the connection is closed next
    await readLength(reader, sink, size);
    if (sink.full) return;
    if ((await reader.until("\r\n", 2)) === null) return;
  }
}

async function readToClose(reader: Reader, sink: BodySink): Promise<void> {
  while (!sink.full) {
    const bytes = await reader.take(16 * 1024);
    if (bytes.length === 0) return;
    sink.add(bytes);
  }
}

/** Reads one response (skipping interim 1xx responses) from `source`. */
export async function readResponse(
  source: ByteSource,
  limits: ResponseLimits = DEFAULT_LIMITS,
): Promise<RawResponse> {
  const reader = new Reader(source);
  let head = await readHead(reader, limits.maxHeadBytes);
  while (head.statusCode >= 100 && head.statusCode < 200 && head.statusCode !== 101) {
    head = await readHead(reader, limits.maxHeadBytes);
  }
  const sink = new BodySink(limits.keepBodyBytes, limits.maxReadBytes);
  const te = head.headers.get("transfer-encoding");
  const cl = head.headers.get("content-length");
  if (head.statusCode === 204 || head.statusCode === 304 || head.statusCode === 101) {
    // no body
  } else if (te !== undefined) {
    if (!/(^|,)\s*chunked\s*$/i.test(te)) await readToClose(reader, sink);
    else await readChunked(reader, sink);
  } else if (cl !== undefined) {
    if (!/^[0-9]{1,15}$/.test(cl)) throw new HttpProtocolError("invalid Content-Length");
    await readLength(reader, sink, Number(cl));
  } else {
    await readToClose(reader, sink);
  }
  const truncated = sink.total > sink.kept || sink.full;
  return { statusCode: head.statusCode, body: sink.bytes(), truncated };
}
