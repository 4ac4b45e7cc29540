/**
 * The KV Connect data path messages (`com.deno.kv.datapath`), declared for protobufjs.
 *
 * Source: denoland/denokv `proto/schema/datapath.proto` (MIT licence, Copyright the Deno authors).
 * Only the field names, numbers and types are restated here (the wire contract), as a protobufjs
 * JSON descriptor; see that file for the documentation of each field.
 */
import protobuf from "protobufjs";

const descriptor = {
  nested: {
    com: {
      nested: {
        deno: {
          nested: {
            kv: {
              nested: {
                datapath: {
                  nested: {
                    SnapshotRead: {
                      fields: { ranges: { rule: "repeated", type: "ReadRange", id: 1 } },
                    },
                    SnapshotReadOutput: {
                      fields: {
                        ranges: { rule: "repeated", type: "ReadRangeOutput", id: 1 },
                        readDisabled: { type: "bool", id: 2 },
                        readIsStronglyConsistent: { type: "bool", id: 4 },
                        status: { type: "SnapshotReadStatus", id: 8 },
                      },
                    },
                    SnapshotReadStatus: {
                      values: { SR_UNSPECIFIED: 0, SR_SUCCESS: 1, SR_READ_DISABLED: 2 },
                    },
                    ReadRange: {
                      fields: {
                        start: { type: "bytes", id: 1 },
                        end: { type: "bytes", id: 2 },
                        limit: { type: "int32", id: 3 },
                        reverse: { type: "bool", id: 4 },
                      },
                    },
                    ReadRangeOutput: {
                      fields: { values: { rule: "repeated", type: "KvEntry", id: 1 } },
                    },
                    AtomicWrite: {
                      fields: {
                        checks: { rule: "repeated", type: "Check", id: 1 },
                        mutations: { rule: "repeated", type: "Mutation", id: 2 },
                        enqueues: { rule: "repeated", type: "Enqueue", id: 3 },
                      },
                    },
                    AtomicWriteOutput: {
                      fields: {
                        status: { type: "AtomicWriteStatus", id: 1 },
                        versionstamp: { type: "bytes", id: 2 },
                        failedChecks: { rule: "repeated", type: "uint32", id: 4 },
                      },
                    },
                    Check: {
                      fields: {
                        key: { type: "bytes", id: 1 },
                        versionstamp: { type: "bytes", id: 2 },
                      },
                    },
                    Mutation: {
                      fields: {
                        key: { type: "bytes", id: 1 },
                        value: { type: "KvValue", id: 2 },
                        mutationType: { type: "MutationType", id: 3 },
                        expireAtMs: { type: "int64", id: 4 },
                      },
                    },
                    KvValue: {
                      fields: {
                        data: { type: "bytes", id: 1 },
                        encoding: { type: "ValueEncoding", id: 2 },
                      },
                    },
                    KvEntry: {
                      fields: {
                        key: { type: "bytes", id: 1 },
                        value: { type: "bytes", id: 2 },
                        encoding: { type: "ValueEncoding", id: 3 },
                        versionstamp: { type: "bytes", id: 4 },
                      },
                    },
                    MutationType: {
                      values: {
                        M_UNSPECIFIED: 0,
                        M_SET: 1,
                        M_DELETE: 2,
                        M_SUM: 3,
                        M_MAX: 4,
                        M_MIN: 5,
                      },
                    },
                    ValueEncoding: {
                      values: { VE_UNSPECIFIED: 0, VE_V8: 1, VE_LE64: 2, VE_BYTES: 3 },
                    },
                    AtomicWriteStatus: {
                      values: {
                        AW_UNSPECIFIED: 0,
                        AW_SUCCESS: 1,
                        AW_CHECK_FAILURE: 2,
                        AW_WRITE_DISABLED: 5,
                      },
                    },
                    Enqueue: {
                      fields: {
                        payload: { type: "bytes", id: 1 },
                        deadlineMs: { type: "int64", id: 2 },
                        keysIfUndelivered: { rule: "repeated", type: "bytes", id: 3 },
                        backoffSchedule: { rule: "repeated", type: "uint32", id: 4 },
                      },
                    },
                    Watch: { fields: { keys: { rule: "repeated", type: "WatchKey", id: 1 } } },
                    WatchKey: { fields: { key: { type: "bytes", id: 1 } } },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(descriptor);
const T = (name: string) => root.lookupType(`com.deno.kv.datapath.${name}`);

export const SnapshotRead = T("SnapshotRead");
export const SnapshotReadOutput = T("SnapshotReadOutput");
export const AtomicWrite = T("AtomicWrite");
export const AtomicWriteOutput = T("AtomicWriteOutput");

export const MutationType = { SET: 1, DELETE: 2, SUM: 3, MAX: 4, MIN: 5 } as const;
export const ValueEncoding = { V8: 1, LE64: 2, BYTES: 3 } as const;
export const AtomicWriteStatus = { SUCCESS: 1, CHECK_FAILURE: 2 } as const;
export const SnapshotReadStatus = { SUCCESS: 1 } as const;

export type ReadRangeMsg = { start: Uint8Array; end: Uint8Array; limit: number; reverse: boolean };
export type KvValueMsg = { data: Uint8Array; encoding: number };
export type CheckMsg = { key: Uint8Array; versionstamp: Uint8Array };
export type MutationMsg = {
  key: Uint8Array;
  value?: KvValueMsg | null;
  mutationType: number;
  expireAtMs: number;
};
export type EnqueueMsg = {
  payload: Uint8Array;
  deadlineMs: number;
  keysIfUndelivered: Uint8Array[];
  backoffSchedule: number[];
};
export type AtomicWriteMsg = {
  checks: CheckMsg[];
  mutations: MutationMsg[];
  enqueues: EnqueueMsg[];
};
export type KvEntryMsg = {
  key: Uint8Array;
  value: Uint8Array;
  encoding: number;
  versionstamp: Uint8Array;
};

/** Decodes a message to plain objects: bytes as Uint8Array, int64 as number, enums as numbers. */
export function decodeMessage<M>(type: protobuf.Type, bytes: Uint8Array): M {
  const msg = type.decode(bytes);
  return type.toObject(msg, {
    longs: Number,
    enums: Number,
    bytes: Uint8Array,
    defaults: true,
    arrays: true,
  }) as M;
}

export function encodeMessage(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}
