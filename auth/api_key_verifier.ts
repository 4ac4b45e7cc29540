/**
 * Bearer key verification: shape and checksum first (no KV read for garbage), then one read of
 * the digest's pointer, expiry checked against the clock on every request.
 */
import type { Clock } from "../lib/clock.ts";
import type { Logger } from "../lib/log.ts";
import { sha256Hex } from "../lib/crypto.ts";
import { apiKeyStore, lookupApiKeyPointer } from "../store/api_keys.ts";
import { isWellFormedApiKey } from "./api_key_format.ts";
import type { Principal } from "./principal.ts";

const LAST_USED_INTERVAL_MS = 60_000;

export class ApiKeyVerifier {
  /** keyId -> when this process last wrote lastUsedAt for it. */
  #lastTouched = new Map<string, number>();
  #pending = new Set<Promise<unknown>>();

  constructor(
    private readonly kv: Deno.Kv,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  async verify(token: string): Promise<Principal | null> {
    if (!isWellFormedApiKey(token)) return null;
    const hash = await sha256Hex(token);
    const entry = await lookupApiKeyPointer(this.kv, hash);
    const pointer = entry.value;
    if (!pointer || entry.versionstamp === null) return null;
    const now = this.clock();
    if (pointer.expiresAt !== null && pointer.expiresAt <= now) return null;
    this.#maybeTouch(pointer.userId, pointer.keyId, entry.versionstamp, now);
    return { userId: pointer.userId, keyId: pointer.keyId, method: "api_key" };
  }

  /**
   * Drops anything this process remembers about a key digest; called right after a revocation
   * commits (no cache yet, so nothing to drop).
   */
  forget(_hash: string): void {}

  /** At most one lastUsedAt write per key per minute per process, off the request path. */
  #maybeTouch(userId: string, keyId: string, versionstamp: string, now: number): void {
    const last = this.#lastTouched.get(keyId);
    if (last !== undefined && now - last < LAST_USED_INTERVAL_MS) return;
    this.#lastTouched.set(keyId, now);
    if (this.#lastTouched.size > 100_000) this.#lastTouched.clear();
    const write = apiKeyStore(this.kv, userId, this.clock)
      .touchLastUsed(keyId, versionstamp)
      .catch((err) => {
        this.log({
          level: "warn",
          msg: "lastUsedAt write failed",
          keyId,
          error: String(err?.name),
        });
      })
      .finally(() => this.#pending.delete(write));
    this.#pending.add(write);
  }

  /** Resolves when background writes have finished (tests and shutdown). */
  async idle(): Promise<void> {
    await Promise.all([...this.#pending]);
  }
}
