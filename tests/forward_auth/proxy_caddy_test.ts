/**
 * Forward auth through a real Caddy (issue 25): Debian's Caddy on 127.0.0.1 with the `## Caddy`
 * block of docs/forward-auth.md (only the ports replaced), in front of an echo upstream, asking
 * the real server (a process on a KV Connect test backend, so the store can be stopped). Caddy
 * passes every refusal on as the server sent it, so the bodies here are the server's own. The
 * scenarios are tests/forward_auth/_proxy_steps.ts; what is Caddy's own is here.
 */
import assert from "node:assert/strict";
import { proxyTest } from "./_proxy_steps.ts";
import { askDirectly, CADDY_BIN } from "./_proxies.ts";

proxyTest({
  kind: "caddy",
  bin: CADDY_BIN,
  title: "Caddy",
  allowedHeaders: (r) => {
    // An allowed answer's headers go upstream only (copy_headers), never to the client.
    assert.equal(r.headers.get("X-Auth-User-Id"), null);
    assert.equal(r.headers.get("X-Upstream"), "echo");
  },
  scopeBody: async (s, scope, k) => {
    assert.equal(JSON.parse(scope.body).code, "INSUFFICIENT_SCOPE");
    const direct = await askDirectly(s, "POST", "/orders/42", `Bearer ${k.key}`);
    assert.equal(scope.body, direct.body, "the server's own body");
  },
  dotsBody: (_s, dots) => assert.equal(JSON.parse(dots.body).code, "NO_MATCHING_RULE"),
  spoofBody: (_s, spoof) => assert.equal(JSON.parse(spoof.body).code, "IP_NOT_ALLOWED"),
  // nginx's pair: Caddy clears it, so it is no conflict.
  otherFamily: {
    headers: { "X-Original-URI": "/somewhere/else", "X-Original-Method": "DELETE" },
    step: "the client's own X-Original-URI/-Method are cleared, not a conflict",
  },
  rateLimitedStep: "429 reaches the client with Retry-After, as the server sent it",
});
