/**
 * denokv's limits (denoland/denokv `proto/limits.rs`, MIT), enforced by this backend exactly where
 * denokv's `proto/convert.rs` enforces them, answering as `denokv/main.rs` does: HTTP 400 with a
 * plain-text body (the messages below are denokv's).
 *
 * For comparison, Deno's own client (deno `ext/kv/lib.rs`) refuses some requests before they leave
 * the process, with a TypeError: keys over 2048 bytes (reads 2049), values over 65536 bytes, more
 * than 10 read ranges, more than 1000 entries per read, more than 100 checks, more than 1000
 * mutations, a total mutation size over 800 KiB (check keys counted, as denokv counts them) and a
 * total key size over 80 KiB. So through Deno's client the one denokv limit a commit can still
 * exceed is MAX_CHECKS (10 here, 100 client-side).
 */
export const LIMITS = {
  MAX_WRITE_KEY_SIZE_BYTES: 100 * 1024,
  MAX_READ_KEY_SIZE_BYTES: 100 * 1024 + 1,
  MAX_VALUE_SIZE_BYTES: 1024 ** 3,
  MAX_READ_RANGES: 10,
  MAX_READ_ENTRIES: 1000,
  MAX_CHECKS: 10,
  MAX_MUTATIONS: 1000,
  MAX_TOTAL_MUTATION_SIZE_BYTES: 819200,
  MAX_QUEUE_UNDELIVERED_KEYS: 10,
  MAX_QUEUE_BACKOFF_INTERVALS: 10,
  MAX_QUEUE_BACKOFF_MS: 3600000,
  /**
   * The largest request body read: denokv takes bodies through axum's `Bytes` and `Json`
   * extractors, whose default limit (axum `DefaultBodyLimit`) is 2 MiB; more is a 413.
   */
  MAX_BODY_BYTES: 2 * 1024 * 1024,
} as const;

/** Deno's client-side limits (deno ext/kv/lib.rs), for tests that show what the client refuses. */
export const DENO_CLIENT_LIMITS = {
  MAX_WRITE_KEY_SIZE_BYTES: 2048,
  MAX_VALUE_SIZE_BYTES: 65536,
  MAX_CHECKS: 100,
  MAX_MUTATIONS: 1000,
  MAX_TOTAL_MUTATION_SIZE_BYTES: 800 * 1024,
  MAX_TOTAL_KEY_SIZE_BYTES: 80 * 1024,
} as const;

/** denokv's error messages for each rejection (denokv/main.rs ApiError). */
export const LIMIT_MESSAGES = {
  KeyTooLong: "A key exceeds the key size limit.",
  ValueTooLong: "A value exceeds the value size limit.",
  ReadRangeTooLarge:
    "The total number of entries requested across read ranges in the read request is too large.",
  AtomicWriteTooLarge: "The total size of the atomic write is too large.",
  TooManyReadRanges: "Too many read ranges requested in one read request.",
  TooManyChecks: "Too many checks included in atomic write.",
  TooManyMutations: "Too many mutations / enqueues included in atomic write.",
  TooManyQueueUndeliveredKeys: "Too many dead letter keys for a single queue message.",
  TooManyQueueBackoffIntervals: "Too many backoff intervals for a single queue message.",
  QueueBackoffIntervalTooLarge: "A backoff interval exceeds the maximum allowed backoff interval.",
  InvalidReadRangeLimit: "The read range limit of the snapshot read request is invalid.",
  InvalidVersionstamp: "Invalid versionstamp.",
  InvalidMutationKind: "Invalid mutation kind or arguments.",
  InvalidMutationExpireAt: "Invalid mutation expire at.",
} as const;

export type LimitError = keyof typeof LIMIT_MESSAGES;
