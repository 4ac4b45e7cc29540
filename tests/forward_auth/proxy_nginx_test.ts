/**
 * Forward auth through a real nginx (issue 25): Debian's nginx on 127.0.0.1 with the `## nginx`
 * block of docs/forward-auth.md (only the ports replaced), in front of an echo upstream, asking
 * the real server (a process on a KV Connect test backend, so the store can be stopped). The
 * scenarios are tests/forward_auth/_proxy_steps.ts; what is nginx's own is here.
 */
import assert from "node:assert/strict";
import { proxyTest } from "./_proxy_steps.ts";
import { askDirectly, NGINX_BIN } from "./_proxies.ts";

proxyTest({
  kind: "nginx",
  bin: NGINX_BIN,
  title: "nginx",
  allowedHeaders: (r) => {
    // The rate-limit headers reach the client; the internal X-Auth-Status does not.
    assert.equal(r.headers.get("X-RateLimit-Limit"), "50");
    assert.match(r.headers.get("X-RateLimit-Remaining") ?? "", /^\d+$/);
    assert.match(r.headers.get("RateLimit-Policy") ?? "", /^"default";q=50;w=1$/);
    assert.equal(r.headers.get("X-Auth-Status"), null);
  },
  scopeBody: (_s, scope) => {
    assert.equal(JSON.parse(scope.body).statusCode, 403);
    // The server's code and message, passed in X-Auth-Code and rebuilt by nginx's maps.
    assert.deepEqual(JSON.parse(scope.body), {
      error: "Forbidden",
      message: "This API key lacks the orders:write scope.",
      statusCode: 403,
      code: "INSUFFICIENT_SCOPE",
    });
  },
  dotsBody: () => {},
  spoofBody: async (s, spoof, ip) => {
    const direct = await askDirectly(s, "GET", "/v1/items", `Bearer ${ip.key}`);
    assert.equal(JSON.parse(direct.body).code, "IP_NOT_ALLOWED");
    assert.deepEqual(JSON.parse(spoof.body), JSON.parse(direct.body));
  },
  // Traefik's and Caddy's pair: nginx clears it, so it is no conflict.
  otherFamily: {
    headers: { "X-Forwarded-Uri": "/somewhere/else", "X-Forwarded-Method": "DELETE" },
    step: "the client's own X-Forwarded-Uri/-Method are cleared, not a conflict",
  },
  rateLimitedBody: async (s, r, k, retryAfter) => {
    // The server's own body, rebuilt by nginx from the headers.
    const direct = await askDirectly(s, "GET", "/v1/things", `Bearer ${k.key}`);
    assert.equal(direct.status, 429);
    assert.equal(r.body, direct.body.replace(/Retry after \d+/, `Retry after ${retryAfter}`));
  },
  rateLimitedStep: "429 reaches the client with Retry-After (compat=nginx's 403 turned back)",
});
