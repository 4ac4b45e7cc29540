/**
 * A loopback webhook receiver for tests: `Deno.serve` on 127.0.0.1, port 0. It records every
 * request (headers, body, and whether its Standard Webhooks signature verifies under the current
 * secret) and answers `status` with `body`, or a 302 to `redirectTo`. With `tls` it serves https
 * (use the certificate in tests/webhooks/_tls_fixture.ts and hand its CA to the client).
 */
import { verifyWebhook } from "../lib/webhooks/signature.ts";

export type ReceivedWebhook = { headers: Headers; body: string; verified: boolean };

export type WebhookReceiver = {
  url: string;
  port: number;
  received: ReceivedWebhook[];
  setSecret(s: string): void;
  close(): Promise<void>;
};

export async function startWebhookReceiver(
  opts: {
    secret?: string;
    status?: number;
    body?: string;
    redirectTo?: string;
    tls?: { cert: string; key: string };
    /** Extra response headers. */
    headers?: Record<string, string>;
  } = {},
): Promise<WebhookReceiver> {
  let secret = opts.secret;
  const received: ReceivedWebhook[] = [];
  const handler = async (req: Request): Promise<Response> => {
    const body = await req.text();
    const verified = secret === undefined ? false : await verifyWebhook(secret, req.headers, body);
    received.push({ headers: req.headers, body, verified });
    if (opts.redirectTo !== undefined) {
      return new Response(null, { status: 302, headers: { location: opts.redirectTo } });
    }
    return new Response(opts.body ?? '{"ok":true}', {
      status: opts.status ?? 200,
      headers: { "content-type": "application/json", ...opts.headers },
    });
  };
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const base = { hostname: "127.0.0.1", port: 0, onListen: (a: Deno.NetAddr) => resolve(a.port) };
  const server = opts.tls
    ? Deno.serve({ ...base, cert: opts.tls.cert, key: opts.tls.key }, handler)
    : Deno.serve(base, handler);
  const port = await listening;
  const scheme = opts.tls ? "https" : "http";
  return {
    url: `${scheme}://127.0.0.1:${port}/hooks`,
    port,
    received,
    setSecret(s: string) {
      secret = s;
    },
    async close() {
      await server.shutdown();
    },
  };
}
