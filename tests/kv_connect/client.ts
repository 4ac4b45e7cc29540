/** Test helpers for the KV Connect test backend: Deno's client on it, and raw protocol requests. */
import {
  AtomicWrite,
  type AtomicWriteMsg,
  AtomicWriteOutput,
  decodeMessage,
  encodeMessage,
  type KvEntryMsg,
  type ReadRangeMsg,
  SnapshotRead,
  SnapshotReadOutput,
} from "./proto.ts";
import { startKvConnectServer } from "./server.ts";

export const TEST_TOKEN = "kv-connect-test-token-0123456789";

/**
 * Deno's own KV Connect client on `url`. Deno reads the access token from DENO_KV_ACCESS_TOKEN
 * when the database is opened, so it is set just before.
 */
export async function openRemoteKv(url: string, token = TEST_TOKEN): Promise<Deno.Kv> {
  Deno.env.set("DENO_KV_ACCESS_TOKEN", token);
  return await Deno.openKv(url);
}

/** A backend on ":memory:" with the test token, closed by `await using`. */
export async function backend(opts: { rttMs?: number; path?: string } = {}) {
  const server = await startKvConnectServer({
    path: opts.path ?? ":memory:",
    token: TEST_TOKEN,
    rttMs: opts.rttMs,
  });
  return Object.assign(server, { [Symbol.asyncDispose]: () => server.close() });
}

export const DATA_HEADERS = {
  "authorization": `Bearer ${TEST_TOKEN}`,
  "content-type": "application/x-protobuf",
  "x-denokv-version": "2",
  "x-denokv-database-id": "00000000-0000-0000-0000-000000000000",
};

/** A raw data-path POST; the body is read whatever the status. */
export async function rawPost(
  url: string,
  op: "snapshot_read" | "atomic_write" | "watch",
  body: Uint8Array,
  headers: Record<string, string> = DATA_HEADERS,
): Promise<{ status: number; text: string; bytes: Uint8Array }> {
  const res = await fetch(`${url}/v2/${op}`, { method: "POST", headers, body: body.slice() });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, text: new TextDecoder().decode(bytes), bytes };
}

export async function rawRead(
  url: string,
  ranges: Partial<ReadRangeMsg>[],
): Promise<{ status: number; text: string; ranges: KvEntryMsg[][] }> {
  const res = await rawPost(url, "snapshot_read", encodeMessage(SnapshotRead, { ranges }));
  if (res.status !== 200) return { status: res.status, text: res.text, ranges: [] };
  const out = decodeMessage<{ ranges: { values: KvEntryMsg[] }[] }>(SnapshotReadOutput, res.bytes);
  return { status: 200, text: "", ranges: out.ranges.map((r) => r.values) };
}

export async function rawWrite(
  url: string,
  write: Partial<AtomicWriteMsg>,
): Promise<{ status: number; text: string; result: { status: number; versionstamp: Uint8Array } }> {
  const res = await rawPost(url, "atomic_write", encodeMessage(AtomicWrite, write));
  if (res.status !== 200) {
    return {
      status: res.status,
      text: res.text,
      result: { status: 0, versionstamp: new Uint8Array() },
    };
  }
  return {
    status: 200,
    text: "",
    result: decodeMessage<{ status: number; versionstamp: Uint8Array }>(
      AtomicWriteOutput,
      res.bytes,
    ),
  };
}
