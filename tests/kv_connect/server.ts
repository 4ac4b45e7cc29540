/**
 * A KV Connect test backend: the protocol of denoland/denokv (`proto/kv-connect.md`, version 2 of
 * the metadata exchange and the protobuf data path) over a local Deno KV, enforcing denokv's limits
 * (./limits.ts) and answering as denokv does when a request exceeds them. A development and test
 * tool only: it listens on 127.0.0.1 and is never on the server's own path.
 *
 * Each request becomes one operation of the local KV: a snapshot read is one `getMany` (point
 * reads) or one `list` per range, an atomic write is one `kv.atomic()` with the same checks and
 * mutations, so atomicity, conflicts and versionstamps are the local KV's (versionstamps 1:1).
 * Keys are stored under their decoded form (./key_codec.ts), so the local file is an ordinary
 * Deno KV database of the same data.
 *
 * Not implemented: `enqueue` (answered 400; the server does not use queues) and `watch` (404;
 * the server does not call kv.watch). Stricter than denokv, because the local KV applies its own
 * limits: a key over 2048 bytes, a value over 64 KiB, over 80 KiB of mutation keys, or a commit
 * just under 800 KiB (the local KV counts a little more) is refused with 400, where denokv allows
 * 100 KiB keys, 1 GiB values and no key total; Deno's client refuses all of these before sending,
 * so no request from Deno's client can tell the difference.
 *
 * A request is judged from its head first: without the token it is 401 and with a body over
 * denokv's body limit (LIMITS.MAX_BODY_BYTES, `Content-Length` or as it arrives) 413, neither with
 * its body read (`readBody`).
 */
import v8 from "node:v8";
import { compareBytes, encodeKey, tryDecodeKey } from "./key_codec.ts";
import { LIMIT_MESSAGES, type LimitError, LIMITS } from "./limits.ts";
import {
  AtomicWrite,
  type AtomicWriteMsg,
  AtomicWriteOutput,
  AtomicWriteStatus,
  decodeMessage,
  encodeMessage,
  type KvEntryMsg,
  MutationType,
  type ReadRangeMsg,
  SnapshotRead,
  SnapshotReadOutput,
  SnapshotReadStatus,
  ValueEncoding,
} from "./proto.ts";

export type KvConnectServer = {
  url: string;
  port: number;
  setRttMs(ms: number): void;
  close(): Promise<void>;
};

/** The largest request of each kind the backend accepted, and every request it refused. */
export type KvConnectStats = {
  commits: number;
  reads: number;
  /**
   * Round trips as a client waits for them: the most data-path requests (with their injected
   * latency) that followed one another without overlapping, i.e. the longest chain of requests
   * each sent after the previous one was answered, among those answered by the time of the
   * snapshot (a request still in flight was not waited for). Requests sent together (a read
   * beside a commit) count once; requests sent one after another count once each; requests in
   * the background beside them add nothing unless they form a longer chain of their own.
   */
  roundTrips: number;
  /** Each data-path request's [start, end] (performance.now()), in order of arrival. */
  intervals: [number, number][];
  /** Data-path requests in flight now (with their injected latency). */
  inFlight: number;
  maxChecks: number;
  maxMutations: number;
  /** denokv's total mutation size: check keys + mutation keys + values (limit 819200). */
  maxTotalMutationBytes: number;
  /** Sum of mutation key sizes (Deno's client refuses more than 80 KiB). */
  maxTotalKeyBytes: number;
  maxKeyBytes: number;
  maxValueBytes: number;
  maxReadRanges: number;
  maxReadEntries: number;
  /** Refused requests: denokv's message and the request's figures. */
  rejected: { message: string; figures: Record<string, number> }[];
};

/** The backend with its statistics (for tests that prove requests stay within the limits). */
export type KvConnectTestServer = KvConnectServer & {
  /** The local KV behind the backend, for test setup that need not go over the protocol. */
  localKv: Deno.Kv;
  stats(): KvConnectStats;
  resetStats(): void;
};

function emptyStats(): KvConnectStats {
  return {
    commits: 0,
    reads: 0,
    roundTrips: 0,
    intervals: [],
    inFlight: 0,
    maxChecks: 0,
    maxMutations: 0,
    maxTotalMutationBytes: 0,
    maxTotalKeyBytes: 0,
    maxKeyBytes: 0,
    maxValueBytes: 0,
    maxReadRanges: 0,
    maxReadEntries: 0,
    rejected: [],
  };
}

export type KvConnectServerOptions = {
  /** Local Deno KV file (or ":memory:"). */
  path: string;
  /** The bearer token accepted on metadata exchange and data path. */
  token: string;
  /** Latency added to every data-path request: half before handling it, half after. */
  rttMs?: number;
  /** 0 = any free port; listens on 127.0.0.1 only. */
  port?: number;
};

const DATABASE_ID = "00000000-0000-0000-0000-000000000000";
const DATA_PATH = "/v2";

class ApiError extends Error {
  figures: Record<string, number> = {};
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function limitError(kind: LimitError): ApiError {
  return new ApiError(400, LIMIT_MESSAGES[kind]);
}

function text(status: number, body: string): Response {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}

function protobufResponse(body: Uint8Array): Response {
  return new Response(body.slice(), {
    status: 200,
    headers: { "content-type": "application/x-protobuf" },
  });
}

function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve();
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return diff === 0;
}

function bearerToken(req: Request): string | null {
  const header = req.headers.get("authorization");
  if (!header) return null;
  const space = header.indexOf(" ");
  if (space < 0 || header.slice(0, space).toLowerCase() !== "bearer") return null;
  return header.slice(space + 1);
}

// ---- values --------------------------------------------------------------------------------

function decodeValue(data: Uint8Array, encoding: number): unknown {
  if (encoding === ValueEncoding.BYTES) return Uint8Array.from(data);
  if (encoding === ValueEncoding.LE64) {
    if (data.length !== 8) throw new ApiError(500, "An internal server error occurred.");
    return new Deno.KvU64(new DataView(data.buffer, data.byteOffset, 8).getBigUint64(0, true));
  }
  if (encoding === ValueEncoding.V8) {
    try {
      return v8.deserialize(data);
    } catch {
      // denokv maps an undecodable value to InternalServerError.
      throw new ApiError(500, "An internal server error occurred.");
    }
  }
  throw new ApiError(500, "An internal server error occurred.");
}

function encodeValue(value: unknown): { value: Uint8Array; encoding: number } {
  if (value instanceof Uint8Array) return { value, encoding: ValueEncoding.BYTES };
  if (value instanceof Deno.KvU64) {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, value.value, true);
    return { value: out, encoding: ValueEncoding.LE64 };
  }
  // The base Serializer writes typed arrays natively (as Deno's own serializer does), not as
  // node's host objects, so Deno's client can read them back.
  const serializer = new v8.Serializer();
  serializer.writeHeader();
  serializer.writeValue(value);
  return { value: new Uint8Array(serializer.releaseBuffer()), encoding: ValueEncoding.V8 };
}

function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

function bytesToHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function entryMsg(key: Uint8Array, entry: Deno.KvEntry<unknown>): KvEntryMsg {
  const { value, encoding } = encodeValue(entry.value);
  return { key, value, encoding, versionstamp: hexToBytes(entry.versionstamp) };
}

function keyOf(bytes: Uint8Array): Deno.KvKey {
  const key = tryDecodeKey(bytes);
  if (key === null) throw new ApiError(400, "Invalid key: not in Deno KV's key encoding.");
  return key;
}

// ---- snapshot_read ---------------------------------------------------------------------------

function readFigures(ranges: ReadRangeMsg[]): Record<string, number> {
  return {
    ranges: ranges.length,
    entries: ranges.reduce((n, r) => n + r.limit, 0),
    maxKeyBytes: ranges.reduce((n, r) => Math.max(n, r.start.length, r.end.length), 0),
  };
}

function validateSnapshotRead(ranges: ReadRangeMsg[]): void {
  if (ranges.length > LIMITS.MAX_READ_RANGES) throw limitError("TooManyReadRanges");
  let totalLimit = 0;
  for (const range of ranges) {
    if (!(range.limit > 0)) throw limitError("InvalidReadRangeLimit");
    if (range.start.length > LIMITS.MAX_READ_KEY_SIZE_BYTES) throw limitError("KeyTooLong");
    if (range.end.length > LIMITS.MAX_READ_KEY_SIZE_BYTES) throw limitError("KeyTooLong");
    totalLimit += range.limit;
  }
  if (totalLimit > LIMITS.MAX_READ_ENTRIES) throw limitError("ReadRangeTooLarge");
}

/** The key K when `bytes` is K's encoding followed by `suffix`, else null. */
function keyBefore(bytes: Uint8Array, suffix: number): Deno.KvKey | null {
  if (bytes.length === 0 || bytes[bytes.length - 1] !== suffix) return null;
  return tryDecodeKey(bytes.subarray(0, bytes.length - 1));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0;
}

/** Point read as Deno's client sends `get`: start = K, end = K + 0x00. */
function pointKey(range: ReadRangeMsg): Deno.KvKey | null {
  const key = keyBefore(range.end, 0x00);
  if (key === null || !sameBytes(range.start, range.end.subarray(0, range.end.length - 1))) {
    return null;
  }
  return key;
}

/**
 * A local list selector covering at least [start, end) in the direction of iteration; the exact
 * bounds are then applied by comparing encoded keys. Deno's client sends these forms: a prefix
 * (P+00, P+ff), a start or end key (K), a cursor (K+00 forward, K backward).
 */
function localSelector(start: Uint8Array, end: Uint8Array, reverse: boolean): Deno.KvListSelector {
  const prefixLow = keyBefore(start, 0x00);
  const prefixHigh = keyBefore(end, 0xff);
  if (
    prefixLow !== null && prefixHigh !== null &&
    sameBytes(start.subarray(0, start.length - 1), end.subarray(0, end.length - 1))
  ) {
    return { prefix: prefixLow };
  }
  if (!reverse) {
    if (start.length === 0) return { prefix: [] };
    const key = tryDecodeKey(start);
    if (key !== null) return { prefix: [], start: key };
    // K+00: everything after K starts at K's first child, [...K, empty bytes].
    if (prefixLow !== null) return { prefix: [], start: [...prefixLow, new Uint8Array()] };
    const after = keyBefore(start, 0xff);
    if (after !== null) return { prefix: [], start: after };
    return { prefix: [] };
  }
  const key = tryDecodeKey(end);
  if (key !== null) return { prefix: [], end: key };
  const upTo = keyBefore(end, 0x00);
  if (upTo !== null) return { prefix: [], end: [...upTo, new Uint8Array()] };
  return { prefix: [] };
}

async function readRange(kv: Deno.Kv, range: ReadRangeMsg): Promise<KvEntryMsg[]> {
  const { start, end, limit, reverse } = range;
  if (compareBytes(start, end) >= 0) return [];
  const point = pointKey(range);
  if (point !== null) {
    const entry = await kv.get(point);
    return entry.versionstamp === null ? [] : [entryMsg(start, entry)];
  }
  const out: KvEntryMsg[] = [];
  const selector = localSelector(start, end, reverse);
  const iter = kv.list(selector, { reverse, batchSize: Math.min(limit + 2, 1000) });
  for await (const entry of iter) {
    const bytes = encodeKey(entry.key);
    if (!reverse) {
      if (compareBytes(bytes, start) < 0) continue;
      if (compareBytes(bytes, end) >= 0) break;
    } else {
      if (compareBytes(bytes, end) >= 0) continue;
      if (compareBytes(bytes, start) < 0) break;
    }
    out.push(entryMsg(bytes, entry));
    if (out.length >= limit) break;
  }
  return out;
}

async function snapshotRead(
  kv: Deno.Kv,
  ranges: ReadRangeMsg[],
  stats: KvConnectStats,
): Promise<KvEntryMsg[][]> {
  const figures = readFigures(ranges);
  try {
    validateSnapshotRead(ranges);
  } catch (e) {
    if (e instanceof ApiError) e.figures = figures;
    throw e;
  }
  stats.reads++;
  stats.maxReadRanges = Math.max(stats.maxReadRanges, figures.ranges);
  stats.maxReadEntries = Math.max(stats.maxReadEntries, figures.entries);
  const points = ranges.map(pointKey);
  if (points.length > 0 && points.every((k) => k !== null)) {
    // Deno's client sends getMany as one point range per key: one local getMany, one snapshot.
    const entries = await kv.getMany(points as Deno.KvKey[]);
    return entries.map((e, i) => e.versionstamp === null ? [] : [entryMsg(ranges[i].start, e)]);
  }
  const out: KvEntryMsg[][] = [];
  for (const range of ranges) out.push(await readRange(kv, range));
  return out;
}

// ---- atomic_write ----------------------------------------------------------------------------

function writeFigures(write: AtomicWriteMsg): Record<string, number> {
  let totalMutationBytes = 0, totalKeyBytes = 0, maxKeyBytes = 0, maxValueBytes = 0;
  for (const c of write.checks) {
    totalMutationBytes += c.key.length;
    maxKeyBytes = Math.max(maxKeyBytes, c.key.length);
  }
  for (const m of write.mutations) {
    const v = m.value?.data.length ?? 0;
    totalMutationBytes += m.key.length + v;
    totalKeyBytes += m.key.length;
    maxKeyBytes = Math.max(maxKeyBytes, m.key.length);
    maxValueBytes = Math.max(maxValueBytes, v);
  }
  return {
    checks: write.checks.length,
    mutations: write.mutations.length + write.enqueues.length,
    totalMutationBytes,
    totalKeyBytes,
    maxKeyBytes,
    maxValueBytes,
  };
}

function validateAtomicWrite(write: AtomicWriteMsg): void {
  if (write.checks.length > LIMITS.MAX_CHECKS) throw limitError("TooManyChecks");
  if (write.mutations.length + write.enqueues.length > LIMITS.MAX_MUTATIONS) {
    throw limitError("TooManyMutations");
  }
  let total = 0;
  for (const check of write.checks) {
    if (check.key.length > LIMITS.MAX_READ_KEY_SIZE_BYTES) throw limitError("KeyTooLong");
    total += check.key.length;
    if (check.versionstamp.length !== 0 && check.versionstamp.length !== 10) {
      throw limitError("InvalidVersionstamp");
    }
  }
  for (const m of write.mutations) {
    if (m.key.length > LIMITS.MAX_WRITE_KEY_SIZE_BYTES) throw limitError("KeyTooLong");
    total += m.key.length;
    const valueSize = m.value?.data.length ?? 0;
    if (valueSize > LIMITS.MAX_VALUE_SIZE_BYTES) throw limitError("ValueTooLong");
    total += valueSize;
    const needsValue = m.mutationType === MutationType.SET || m.mutationType === MutationType.SUM ||
      m.mutationType === MutationType.MIN || m.mutationType === MutationType.MAX;
    if (!(m.mutationType === MutationType.DELETE || (needsValue && m.value))) {
      throw limitError("InvalidMutationKind");
    }
    if (m.expireAtMs < -1) throw limitError("InvalidMutationExpireAt");
  }
  for (const e of write.enqueues) {
    if (e.payload.length > LIMITS.MAX_VALUE_SIZE_BYTES) throw limitError("ValueTooLong");
    total += e.payload.length;
    if (e.keysIfUndelivered.length > LIMITS.MAX_QUEUE_UNDELIVERED_KEYS) {
      throw limitError("TooManyQueueUndeliveredKeys");
    }
    for (const key of e.keysIfUndelivered) {
      if (key.length > LIMITS.MAX_WRITE_KEY_SIZE_BYTES) throw limitError("KeyTooLong");
      total += key.length;
    }
    if (e.backoffSchedule.length > LIMITS.MAX_QUEUE_BACKOFF_INTERVALS) {
      throw limitError("TooManyQueueBackoffIntervals");
    }
    for (const interval of e.backoffSchedule) {
      if (interval > LIMITS.MAX_QUEUE_BACKOFF_MS) throw limitError("QueueBackoffIntervalTooLarge");
      total += 4;
    }
  }
  if (total > LIMITS.MAX_TOTAL_MUTATION_SIZE_BYTES) throw limitError("AtomicWriteTooLarge");
}

function u64Operand(value: unknown): bigint {
  if (value instanceof Deno.KvU64) return value.value;
  throw limitError("InvalidMutationKind");
}

async function atomicWrite(
  kv: Deno.Kv,
  write: AtomicWriteMsg,
  stats: KvConnectStats,
): Promise<{ ok: true; versionstamp: string } | { ok: false }> {
  const figures = writeFigures(write);
  try {
    validateAtomicWrite(write);
  } catch (e) {
    if (e instanceof ApiError) e.figures = figures;
    throw e;
  }
  stats.commits++;
  stats.maxChecks = Math.max(stats.maxChecks, figures.checks);
  stats.maxMutations = Math.max(stats.maxMutations, figures.mutations);
  stats.maxTotalMutationBytes = Math.max(stats.maxTotalMutationBytes, figures.totalMutationBytes);
  stats.maxTotalKeyBytes = Math.max(stats.maxTotalKeyBytes, figures.totalKeyBytes);
  stats.maxKeyBytes = Math.max(stats.maxKeyBytes, figures.maxKeyBytes);
  stats.maxValueBytes = Math.max(stats.maxValueBytes, figures.maxValueBytes);
  if (write.enqueues.length > 0) {
    throw new ApiError(400, "Enqueue is not supported by this KV Connect test backend.");
  }
  const op = kv.atomic();
  for (const check of write.checks) {
    op.check({
      key: keyOf(check.key),
      versionstamp: check.versionstamp.length === 0 ? null : bytesToHex(check.versionstamp),
    });
  }
  const now = Date.now();
  for (const m of write.mutations) {
    const key = keyOf(m.key);
    const value = m.value ? decodeValue(m.value.data, m.value.encoding) : undefined;
    switch (m.mutationType) {
      case MutationType.SET: {
        const expireIn = m.expireAtMs > 0 ? Math.max(1, m.expireAtMs - now) : undefined;
        op.set(key, value, expireIn === undefined ? undefined : { expireIn });
        break;
      }
      case MutationType.DELETE:
        op.delete(key);
        break;
      case MutationType.SUM:
        op.sum(key, u64Operand(value));
        break;
      case MutationType.MIN:
        op.min(key, u64Operand(value));
        break;
      case MutationType.MAX:
        op.max(key, u64Operand(value));
        break;
    }
  }
  try {
    return await op.commit();
  } catch (e) {
    // The local KV refused the write (for example a key over its 2048-byte limit).
    throw new ApiError(400, e instanceof Error ? e.message : String(e));
  }
}

// ---- HTTP ------------------------------------------------------------------------------------

/** axum's answer (denokv's framework) to a body over its limit. */
const BODY_TOO_LARGE = "Failed to buffer the request body: length limit exceeded";

/**
 * The request's body, read only after the request's token has been checked, and only up to
 * LIMITS.MAX_BODY_BYTES: null when it declares (`Content-Length`) or sends more, with the rest
 * left unread (the stream is cancelled). Reading a body before knowing who sent it, or without a
 * bound, let one 150 MB request without a token take the backend from 57 MB to 564 MB RSS.
 */
async function readBody(req: Request): Promise<Uint8Array | null> {
  const max = LIMITS.MAX_BODY_BYTES;
  const declared = req.headers.get("content-length");
  if (declared !== null && !(Number(declared) <= max)) {
    await req.body?.cancel();
    return null;
  }
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > max) {
      await reader.cancel();
      return null;
    }
    parts.push(value);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.length;
  }
  return body;
}

/** 401 unless the request carries the token, decided from its headers alone. */
function checkToken(req: Request, token: string): Response | null {
  const given = bearerToken(req);
  if (given === null) return text(401, "Malformed authorization header.");
  if (!constantTimeEqual(given, token)) return text(401, "Invalid access token.");
  return null;
}

/**
 * The token is checked before the body is read (denokv parses the body first and so answers a
 * request without a token and without a body 400, not 401; this backend answers 401: no
 * request from Deno's client can tell the difference, as it always sends both).
 */
async function metadataExchange(req: Request, token: string): Promise<Response> {
  const denied = checkToken(req, token);
  if (denied) {
    await req.body?.cancel();
    return denied;
  }
  const bytes = await readBody(req);
  if (bytes === null) return text(413, BODY_TOO_LARGE);
  let body: unknown = null;
  const raw = new TextDecoder().decode(bytes);
  if (raw.length > 0) {
    try {
      body = JSON.parse(raw);
    } catch {
      return text(400, "Invalid metadata exchange request body.");
    }
  }
  if (body === null) {
    return text(
      400,
      "The server requires at least protocol version 2. Use Deno 1.38.0 or newer.",
    );
  }
  const versions = (body as { supportedVersions?: unknown }).supportedVersions;
  if (!Array.isArray(versions) || !versions.includes(2)) {
    return text(
      400,
      "The server could not negotiate a protocol version. The server requires protocol version 2.",
    );
  }
  return Response.json({
    version: 2,
    databaseId: DATABASE_ID,
    endpoints: [{ url: DATA_PATH, consistency: "strong" }],
    token,
    expiresAt: new Date(Date.now() + 24 * 3600_000).toISOString(),
  });
}

function authenticateDataPath(req: Request, token: string): Response | null {
  if (req.headers.get("x-denokv-version") !== "2") {
    return text(400, "Expected protocol version 2.");
  }
  const denied = checkToken(req, token);
  if (denied) return denied;
  if (req.headers.get("x-denokv-database-id") !== DATABASE_ID) {
    return text(400, "Invalid database id.");
  }
  return null;
}

async function dataPath(
  kv: Deno.Kv,
  op: string,
  req: Request,
  stats: KvConnectStats,
): Promise<Response> {
  const body = await readBody(req);
  if (body === null) {
    stats.rejected.push({
      message: BODY_TOO_LARGE,
      figures: { maxBodyBytes: LIMITS.MAX_BODY_BYTES },
    });
    return text(413, BODY_TOO_LARGE);
  }
  try {
    if (op === "snapshot_read") {
      let ranges: ReadRangeMsg[];
      try {
        ranges = decodeMessage<{ ranges: ReadRangeMsg[] }>(SnapshotRead, body).ranges;
      } catch (e) {
        return text(400, `Request protobuf is invalid: ${(e as Error).message}.`);
      }
      const results = await snapshotRead(kv, ranges, stats);
      return protobufResponse(encodeMessage(SnapshotReadOutput, {
        ranges: results.map((values) => ({ values })),
        readDisabled: false,
        readIsStronglyConsistent: true,
        status: SnapshotReadStatus.SUCCESS,
      }));
    }
    let write: AtomicWriteMsg;
    try {
      write = decodeMessage<AtomicWriteMsg>(AtomicWrite, body);
    } catch (e) {
      return text(400, `Request protobuf is invalid: ${(e as Error).message}.`);
    }
    const result = await atomicWrite(kv, write, stats);
    return protobufResponse(encodeMessage(
      AtomicWriteOutput,
      result.ok
        ? { status: AtomicWriteStatus.SUCCESS, versionstamp: hexToBytes(result.versionstamp) }
        : { status: AtomicWriteStatus.CHECK_FAILURE, failedChecks: [] },
    ));
  } catch (e) {
    if (e instanceof ApiError) {
      stats.rejected.push({ message: e.message, figures: e.figures });
      return text(e.status, e.message);
    }
    throw e;
  }
}

/**
 * The most finished intervals that do not overlap (greedy by earliest end, which is optimal).
 */
function chainLength(intervals: [number, number][]): number {
  let n = 0;
  let free = -Infinity;
  const finished = intervals.filter(([, end]) => end !== Infinity);
  for (const [start, end] of finished.sort((a, b) => a[1] - b[1])) {
    if (start >= free) {
      n++;
      free = end;
    }
  }
  return n;
}

/** Starts the backend on 127.0.0.1; `close()` stops it and closes the local KV. */
export async function startKvConnectServer(
  opts: KvConnectServerOptions,
): Promise<KvConnectTestServer> {
  let rttMs = Math.max(0, opts.rttMs ?? 0);
  let stats = emptyStats();
  let inFlight = 0;
  const kv = await Deno.openKv(opts.path);
  const token = opts.token;
  const handler = async (req: Request): Promise<Response> => {
    const path = new URL(req.url).pathname;
    if (req.method === "POST" && path === "/") return await metadataExchange(req, token);
    const op = path.startsWith(`${DATA_PATH}/`) ? path.slice(DATA_PATH.length + 1) : "";
    if (req.method !== "POST" || (op !== "snapshot_read" && op !== "atomic_write")) {
      await req.body?.cancel();
      return text(404, "Resource not found.");
    }
    const denied = authenticateDataPath(req, token);
    if (denied) {
      await req.body?.cancel();
      return denied;
    }
    const rtt = rttMs;
    inFlight++;
    const interval: [number, number] = [performance.now(), Infinity];
    stats.intervals.push(interval);
    try {
      await sleep(rtt / 2);
      const res = await dataPath(kv, op, req, stats);
      await sleep(rtt - rtt / 2);
      return res;
    } finally {
      inFlight--;
      interval[1] = performance.now();
    }
  };
  const { promise: listening, resolve } = Promise.withResolvers<Deno.NetAddr>();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: "127.0.0.1",
      port: opts.port ?? 0,
      onListen: (addr) => resolve(addr),
      onError: (e) => text(500, `An internal server error occurred: ${(e as Error).message}`),
    }, handler);
  } catch (e) {
    kv.close();
    throw e;
  }
  const addr = await listening;
  let closed: Promise<void> | null = null;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    port: addr.port,
    localKv: kv,
    setRttMs(ms: number) {
      rttMs = Math.max(0, ms);
    },
    stats: () => ({
      ...structuredClone(stats),
      roundTrips: chainLength(stats.intervals),
      inFlight,
    }),
    resetStats() {
      stats = emptyStats();
    },
    close() {
      closed ??= (async () => {
        await server.shutdown();
        kv.close();
      })();
      return closed;
    },
  };
}
