/**
 * A bounded pool for expensive work (password hashing): at most `concurrency` jobs run at once, at
 * most `perKey` admissions are held per key (a client address) whether running or waiting, and at
 * most `maxQueued` jobs wait, each for at most `maxWaitMs`. Everything beyond is refused at once,
 * so memory is bounded by `concurrency` jobs and no caller waits longer than `maxWaitMs` for a slot.
 * A newcomer whose expected wait (its place in the queue times the recent job duration) exceeds
 * `maxWaitMs` is refused at once too, rather than after waiting in vain.
 *
 * A job that has started always runs to the end and its result is returned: the bounds are applied
 * before the work, never by abandoning it half-way.
 */

export type WorkPoolOptions = {
  concurrency: number;
  perKey: number;
  maxQueued: number;
  maxWaitMs: number;
};

/** The key already holds `perKey` admissions. */
export class KeyBusyError extends Error {
  constructor() {
    super("This key already has work in flight");
    this.name = "KeyBusyError";
  }
}

/** The queue was full, the wait expired or the caller gave up before the job could start. */
export class PoolBusyError extends Error {
  constructor(readonly reason: "queue full" | "wait too long" | "wait expired" | "aborted") {
    super(`No slot for the job: ${reason}`);
    this.name = "PoolBusyError";
  }
}

type Waiter = { start: () => void; fail: (err: PoolBusyError) => void };

export class WorkPool {
  readonly #opts: WorkPoolOptions;
  readonly #queue: Waiter[] = [];
  readonly #perKey = new Map<string, number>();
  #running = 0;
  #peak = 0;
  /** Moving average of recent job durations; 0 until one has finished. */
  #jobMs = 0;

  constructor(opts: WorkPoolOptions) {
    if (!(opts.concurrency >= 1)) throw new RangeError("concurrency must be at least 1");
    this.#opts = opts;
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running;
  }

  /** Jobs waiting for a slot now. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The most jobs that ever ran at once. */
  get peakRunning(): number {
    return this.#peak;
  }

  /**
   * Takes one of `key`'s admissions, synchronously; throws `KeyBusyError` when the key holds
   * `perKey` already. Dispose of the admission (`using`) to give it back.
   */
  admit(key: string): Admission {
    const held = this.#perKey.get(key) ?? 0;
    if (held >= this.#opts.perKey) throw new KeyBusyError();
    this.#perKey.set(key, held + 1);
    let released = false;
    return {
      run: (job, opts = {}) => this.#run(job, opts),
      [Symbol.dispose]: () => {
        if (released) return;
        released = true;
        const left = (this.#perKey.get(key) ?? 1) - 1;
        if (left > 0) this.#perKey.set(key, left);
        else this.#perKey.delete(key);
      },
    };
  }

  async #run<T>(job: () => Promise<T>, opts: RunOptions): Promise<T> {
    const maxWaitMs = Math.min(
      this.#opts.maxWaitMs,
      opts.startBy === undefined ? Infinity : opts.startBy - Date.now(),
    );
    if (maxWaitMs <= 0) throw new PoolBusyError("wait expired");
    await this.#slot(maxWaitMs, opts.signal);
    const started = performance.now();
    try {
      return await job();
    } finally {
      const ms = performance.now() - started;
      this.#jobMs = this.#jobMs === 0 ? ms : 0.8 * this.#jobMs + 0.2 * ms;
      // The slot passes straight to the first waiter, so no newcomer can slip in between.
      const next = this.#queue.shift();
      if (next) next.start();
      else this.#running--;
    }
  }

  /** Resolves once the caller owns a slot (counted in `#running`). */
  #slot(maxWaitMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new PoolBusyError("aborted"));
    if (this.#running < this.#opts.concurrency && this.#queue.length === 0) {
      this.#running++;
      this.#peak = Math.max(this.#peak, this.#running);
      return Promise.resolve();
    }
    if (this.#queue.length >= this.#opts.maxQueued) {
      return Promise.reject(new PoolBusyError("queue full"));
    }
    const rounds = Math.floor(this.#queue.length / this.#opts.concurrency) + 1;
    if (rounds * this.#jobMs > maxWaitMs) {
      return Promise.reject(new PoolBusyError("wait too long"));
    }
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const leave = (reason: "wait expired" | "aborted") => {
      const i = this.#queue.indexOf(waiter);
      if (i === -1) return;
      this.#queue.splice(i, 1);
      waiter.fail(new PoolBusyError(reason));
    };
    const onAbort = () => leave("aborted");
    const timer = setTimeout(() => leave("wait expired"), maxWaitMs);
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const waiter: Waiter = {
      // Called as a running job ends: the slot it held is now this waiter's.
      start: () => {
        done();
        resolve();
      },
      fail: (err) => {
        done();
        reject(err);
      },
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    this.#queue.push(waiter);
    return promise;
  }
}

export type Admission = Disposable & {
  /** Waits for a slot (bounded), then runs `job` to the end. */
  run<T>(job: () => Promise<T>, opts?: RunOptions): Promise<T>;
};

export type RunOptions = {
  /** The caller gives up: a waiting job leaves the queue at once (a started one still finishes). */
  signal?: AbortSignal;
  /** A Date.now() time after which the job must not start, so it cannot outlive its request. */
  startBy?: number;
};
