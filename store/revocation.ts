/**
 * Revocation: the one way a write that takes a credential away is committed.
 *
 * A revocation has two halves, and `commitRevocation` performs both so no caller can forget one:
 * - for other processes sharing the KV: ["meta","revocations"] is bumped in the write's own commit,
 *   so their verified-key caches are emptied within a second (auth/api_keys/verifier.ts);
 * - for this process, at once: once the commit has succeeded, every subscriber of the hub (the
 *   verifiers in this process) is told what was revoked and drops it before the next request.
 *
 * The hub defaults to one per process. Dropping a cache entry is always safe (the next request
 * re-reads KV), so telling every verifier in the process, whatever KV it serves, costs nothing;
 * tests that stand in for two processes give each verifier and its stores a hub of their own.
 */
import { revocationCounterKey } from "./keys.ts";

/** What a committed revocation took away: one key (by digest), or an account's standing. */
export type Revoked =
  | { readonly kind: "api_key"; readonly hash: string }
  | { readonly kind: "account"; readonly userId: string };

/**
 * `versionstamp`: the revocation's commit, which is also the counter's versionstamp from then on;
 * a replica whose counter is older has not seen it (auth/api_keys/verifier.ts's eventual reads).
 */
export type RevocationListener = (revoked: Revoked, versionstamp?: string) => void;

export class RevocationHub {
  #listeners = new Set<RevocationListener>();

  /** Calls `listener` after every revocation committed through this hub; returns an unsubscribe. */
  subscribe(listener: RevocationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  publish(revoked: Revoked, versionstamp?: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(revoked, versionstamp);
      } catch {
        // A listener only drops cache entries; one failing must not hide the others.
      }
    }
  }
}

/** The hub every store and verifier uses unless given another. */
export const processRevocations = new RevocationHub();

/**
 * Adds the revocation-counter bump to `op`, commits it and, when the commit succeeded, tells
 * this process's subscribers about `revoked`. Returns the commit's result (a failed check
 * revokes nothing and notifies no one; the caller retries with fresh reads).
 */
export async function commitRevocation(
  op: Deno.AtomicOperation,
  revoked: Revoked,
  hub: RevocationHub = processRevocations,
): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
  const res = await op.sum(revocationCounterKey(), 1n).commit();
  if (res.ok) hub.publish(revoked, res.versionstamp);
  return res;
}
