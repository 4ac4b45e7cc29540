/**
 * The only way requests reach password hashing. scrypt at cost 17 takes 128 MiB per derivation and
 * Deno runs derivations on a thread pool without limit, so unbounded sign-in floods exhausted
 * memory. Here a `WorkPool` bounds them (lib/work_pool.ts):
 * - per client address, one sign-in or sign-up in flight or waiting; more: 429 with Retry-After;
 * - process-wide, `passwordHashConcurrency` derivations at once; a short bounded queue in front,
 *   and beyond it, or after the wait, 503 `SERVER_BUSY` with Retry-After, never the deadline's 500.
 * All the hashing of one request (check, padding, rehash) runs in one job, which once started
 * always finishes and its result is used.
 */
import type { Config } from "../../lib/config.ts";
import { HttpError } from "../../lib/errors.ts";
import { KeyBusyError, PoolBusyError, WorkPool } from "../../lib/work_pool.ts";
import { checkPassword, hashPassword, type Kdf, type PasswordCheck, scryptKdf } from "./hash.ts";

export type PasswordAdmission = Disposable & {
  /** Hashes a new password at the configured cost. */
  hash(password: string): Promise<string>;
  /** `checkPassword` at the configured cost (null: no such account). */
  check(password: string, stored: string | null): Promise<PasswordCheck>;
};

export class PasswordHasher {
  readonly pool: WorkPool;
  readonly #cost: number;
  readonly #kdf: Kdf;
  readonly #retryAfterSeconds: number;
  readonly #startWithinMs: number;

  constructor(config: Config, kdf: Kdf = scryptKdf) {
    const q = config.passwordHashQueue;
    this.pool = new WorkPool({
      concurrency: config.passwordHashConcurrency,
      perKey: q.perAddress,
      maxQueued: q.max,
      maxWaitMs: q.waitMs,
    });
    this.#cost = config.passwordHashCost;
    this.#kdf = kdf;
    this.#retryAfterSeconds = Math.max(1, Math.ceil(q.waitMs / 1000));
    // Whatever held the request up before (a slow store), its hash starts in the first half of
    // the request's time or not at all, so it finishes before the deadline answers for it.
    this.#startWithinMs = config.requestTimeoutMs / 2;
  }

  /**
   * Takes the client address's place, at once: a 429 when that address already has a sign-in or
   * sign-up in flight. Take it before any other work; dispose of it (`using`) when done.
   */
  admit(address: string): PasswordAdmission {
    let admission;
    try {
      admission = this.pool.admit(address);
    } catch (err) {
      if (!(err instanceof KeyBusyError)) throw err;
      throw new HttpError(
        429,
        "Another sign-in or sign-up from your address is still being checked. Retry after 1 second.",
        { code: "TOO_MANY_ATTEMPTS" },
        { "Retry-After": "1" },
      );
    }
    const startBy = Date.now() + this.#startWithinMs;
    const run = async <T>(job: () => Promise<T>): Promise<T> => {
      try {
        return await admission.run(job, { startBy });
      } catch (err) {
        if (!(err instanceof PoolBusyError)) throw err;
        throw this.#busy();
      }
    };
    return {
      hash: (password) => run(() => hashPassword(password, this.#cost, this.#kdf)),
      check: (password, stored) =>
        run(() => checkPassword(password, stored, this.#cost, this.#kdf)),
      [Symbol.dispose]: () => admission[Symbol.dispose](),
    };
  }

  #busy(): HttpError {
    const s = this.#retryAfterSeconds;
    return new HttpError(
      503,
      `The server is busy checking passwords. Retry after ${s} second${s === 1 ? "" : "s"}.`,
      { code: "SERVER_BUSY" },
      { "Retry-After": String(s) },
    );
  }
}
