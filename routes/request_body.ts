/**
 * A request body the request deadline can cut off. Deno.serve has no body-read timeout: a client
 * that announces 100 bytes and sends 10 keeps the handler's read pending for as long as it keeps
 * the connection open. The request-context middleware wraps every body in a StallableBody; when
 * the deadline passes while a read is waiting on the client, the read fails with a 408, the
 * source is cancelled and the answer is 408 Request Timeout instead of the 500 that a stalled
 * store gets.
 */
import type { Context } from "hono";
import { HttpError } from "../lib/errors.ts";

export const BODY_TIMEOUT_MESSAGE = "The request body did not arrive within the request deadline.";

export class StallableBody {
  #waiting = false;
  #cut = false;
  readonly #source: ReadableStreamDefaultReader<Uint8Array>;
  #controller!: ReadableStreamDefaultController<Uint8Array>;

  private constructor(source: ReadableStream<Uint8Array>) {
    this.#source = source.getReader();
  }

  /**
   * Replaces the request's body with one that reads through a StallableBody. Null for a request
   * without a body (GET, HEAD, and anything with neither Content-Length nor Transfer-Encoding),
   * which costs one method comparison and one header lookup.
   */
  static wrap(c: Context): StallableBody | null {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD") return null;
    const raw = c.req.raw;
    const body = raw.body;
    if (body === null) return null;
    const guard = new StallableBody(body);
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        guard.#controller = controller;
      },
      pull: (controller) => guard.#pull(controller),
      cancel: (reason) => guard.#source.cancel(reason),
    }, { highWaterMark: 0 });
    // Not `new Request(raw, …)`: that reads raw.signal, and the first read of a request's signal
    // makes Deno.serve print a warning line. The copy's signal is the original's, read on demand.
    const copy = new Request(raw.url, {
      method,
      headers: raw.headers,
      body: stream,
      duplex: "half",
    } as RequestInit);
    Object.defineProperty(copy, "signal", { get: () => raw.signal });
    c.req.raw = copy;
    return guard;
  }

  /** True while the handler is waiting for bytes the client has not sent. */
  get waitingOnClient(): boolean {
    return this.#waiting && !this.#cut;
  }

  /** Fails the pending read with a 408 and stops reading from the client. */
  cutOff(): void {
    if (this.#cut) return;
    this.#cut = true;
    this.#controller.error(requestTimeout());
    this.#source.cancel().catch(() => {});
  }

  async #pull(controller: ReadableStreamDefaultController<Uint8Array>): Promise<void> {
    this.#waiting = true;
    try {
      const { done, value } = await this.#source.read();
      if (this.#cut) return;
      if (done) controller.close();
      else controller.enqueue(value);
    } finally {
      this.#waiting = false;
    }
  }
}

/** The 408 answer; the request id is added when the middleware answers with it. */
export function requestTimeout(requestId?: string): HttpError {
  return new HttpError(408, BODY_TIMEOUT_MESSAGE, requestId ? { requestId } : {});
}
