/**
 * The forward-auth rules file (auth/forward_auth/rules.ts): one refusal per mistake, each naming
 * the file and the JSON path on one line, and matching (first wins, "*", methods, paths normalised
 * before matching, the query ignored, default deny).
 */
import assert from "node:assert/strict";
import {
  ForwardAuthRulesError,
  loadForwardAuthRules,
  matchRule,
  NO_RULES,
  normalisePath,
  parseForwardAuthRules,
} from "../../auth/forward_auth/rules.ts";
import { ConfigError } from "../../lib/config.ts";
import { RULES, RULES_JSON } from "./_fixtures.ts";

const rule = (extra: Record<string, unknown>) => ({
  name: "r",
  method: "GET",
  path: "/x",
  ...extra,
});

function refusal(json: unknown): string {
  try {
    parseForwardAuthRules(json, "rules.json");
  } catch (err) {
    assert.ok(err instanceof ForwardAuthRulesError);
    assert.ok(err instanceof ConfigError);
    assert.ok(!err.message.includes("\n"), "one line");
    return err.message;
  }
  throw new Error("accepted");
}

Deno.test("rules: each mistake refuses the file, naming the file and the JSON path", async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ["not an object", [], /^FORWARD_AUTH_RULES rules\.json: \$: /],
    ["unknown top-level field", { rules: [], extra: 1 }, /\$\.extra: unknown field/],
    ["rules missing", { scopes: [] }, /\$\.rules: must be an array/],
    ["scopes not an array", { scopes: "a:b", rules: [] }, /\$\.scopes: must be an array/],
    ["bad scope name", { scopes: ["has space"], rules: [] }, /\$\.scopes\[0\]: must be a scope/],
    ["duplicate scope", { scopes: ["a:b", "a:b"], rules: [] }, /\$\.scopes\[1\]: duplicate/],
    [
      "operator scope colliding with a built-in one",
      { scopes: ["domains:read"], rules: [] },
      /\$\.scopes\[0\]: "domains:read" is a built-in scope/,
    ],
    [
      "unknown rule field",
      { rules: [rule({ scpoe: "a" })] },
      /\$\.rules\[0\]\.scpoe: unknown field/,
    ],
    ["rule without a name", { rules: [{ method: "GET", path: "/x" }] }, /\$\.rules\[0\]\.name/],
    ["bad rule name", { rules: [rule({ name: "a b" })] }, /\$\.rules\[0\]\.name/],
    [
      "duplicate rule names",
      { rules: [rule({}), rule({ path: "/y" })] },
      /\$\.rules\[1\]\.name: duplicate rule name "r"/,
    ],
    ["no method", { rules: [{ name: "r", path: "/x" }] }, /\$\.rules\[0\]\.method: is required/],
    ["method and methods", { rules: [rule({ methods: ["GET"] })] }, /\.methods: give method or/],
    ["bad method", { rules: [rule({ method: "GE T" })] }, /\$\.rules\[0\]\.method: must be/],
    ["empty methods", { rules: [rule({ method: undefined, methods: [] })] }, /\.methods: must be/],
    ["path not absolute", { rules: [rule({ path: "x" })] }, /\$\.rules\[0\]\.path: must be a path/],
    ["* inside the path", { rules: [rule({ path: "/a*/b" })] }, /\.path: "\*" may only end/],
    [
      "dot segments in the path",
      { rules: [rule({ path: "/a/../b" })] },
      /\.path: must be a normal/,
    ],
    ["query in the path", { rules: [rule({ path: "/a?b" })] }, /\.path: a path has no query/],
    [
      "scope not declared",
      { scopes: ["a:b"], rules: [rule({ scope: "c:d" })] },
      /\$\.rules\[0\]\.scope: "c:d" is not declared/,
    ],
    [
      "public with a scope",
      { scopes: ["a:b"], rules: [rule({ scope: "a:b", public: true })] },
      /\.public: a public rule cannot/,
    ],
    [
      "public with cookie",
      { rules: [rule({ public: true, cookie: true })] },
      /\.cookie: a public rule takes/,
    ],
    ["public not boolean", { rules: [rule({ public: "yes" })] }, /\.public: must be true or false/],
  ];
  for (const [what, json, expected] of cases) {
    await t.step(what, () => assert.match(refusal(json), expected));
  }
});

Deno.test("rules: the file is read from disk and refused in one line", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("the issue's example loads", async () => {
      const path = `${dir}/ok.json`;
      await Deno.writeTextFile(path, JSON.stringify(RULES_JSON));
      const rules = loadForwardAuthRules(path);
      assert.deepEqual(rules.scopes, ["orders:read", "orders:write"]);
      assert.equal(rules.rules.length, RULES_JSON.rules.length);
    });
    await t.step("no file set: no rules", () => {
      assert.equal(loadForwardAuthRules(null), NO_RULES);
    });
    await t.step("a missing file", () => {
      assert.throws(
        () => loadForwardAuthRules(`${dir}/missing.json`),
        /missing\.json: \$: cannot read the file \(no such file\)/,
      );
    });
    await t.step("not JSON", async () => {
      const path = `${dir}/bad.json`;
      await Deno.writeTextFile(path, "{ rules: [");
      assert.throws(
        () => loadForwardAuthRules(path),
        (err: Error) =>
          err instanceof ForwardAuthRulesError && /bad\.json: \$: not JSON/.test(err.message) &&
          !err.message.includes("\n"),
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("rules: matching", async (t) => {
  const name = (method: string | null, uri: string) => matchRule(RULES, method, uri)?.name ?? null;

  await t.step("the first matching rule wins", () => {
    const rules = parseForwardAuthRules({
      rules: [
        { name: "first", method: "*", path: "/a/*" },
        { name: "second", method: "GET", path: "/a/b" },
      ],
    });
    assert.equal(matchRule(rules, "GET", "/a/b")?.name, "first");
  });

  await t.step(
    "'/*' at the end: the prefix itself and anything under it, nothing beside it",
    () => {
      assert.equal(name("GET", "/orders"), "orders-read");
      assert.equal(name("GET", "/orders/"), "orders-read");
      assert.equal(name("GET", "/orders/1/lines/2"), "orders-read");
      assert.equal(name("GET", "/ordersx"), null);
      assert.equal(name("GET", "/health/x"), null, "an exact path is exact");
    },
  );

  await t.step("methods: one, a list, or '*'; case-insensitive", () => {
    assert.equal(name("get", "/orders/1"), "orders-read");
    assert.equal(name("PUT", "/orders/1"), "orders-write");
    assert.equal(name("DELETE", "/orders/1"), null);
    assert.equal(name("PATCH", "/v1/x"), "v1");
    assert.equal(name(null, "/v1/x"), "v1", "no method: only '*' rules");
    assert.equal(name(null, "/orders/1"), null);
  });

  await t.step("a GET rule covers HEAD (RFC 9110: GET without the body), and nothing else", () => {
    assert.equal(name("HEAD", "/orders/1"), "orders-read");
    assert.equal(name("head", "/health"), "health");
    assert.equal(name("OPTIONS", "/health"), null);
    const headOnly = parseForwardAuthRules({
      rules: [{ name: "probe", method: "HEAD", path: "/probe" }],
    });
    assert.equal(matchRule(headOnly, "HEAD", "/probe")?.name, "probe");
    assert.equal(matchRule(headOnly, "GET", "/probe"), null, "HEAD does not cover GET");
  });

  await t.step("dot segments and percent-encoding are normalised before matching", () => {
    assert.equal(name("GET", "/orders/../admin"), null);
    assert.equal(name("GET", "/orders/%2e%2e/admin"), null);
    assert.equal(name("GET", "/orders%2f..%2fadmin"), null);
    assert.equal(name("GET", "/v1/../orders/1"), "orders-read");
    // Read segment by segment (WHATWG, RFC 3986) "//orders//1" is no rule's path; merged it is
    // orders-read: two readings, two answers, so no rule (attack_paths_test.ts).
    assert.equal(name("GET", "//orders//1"), null);
    assert.equal(name("GET", "/orders//1"), "orders-read", "both readings under /orders/");
    assert.equal(name("GET", "/orders/x//../../health"), null, "/orders/health or /health");
    assert.equal(name("GET", "/orders/x%2F..%2F..%2Fhealth"), null, "%2F: kept or decoded");
    assert.equal(name("GET", "/orders/a%2Fb"), "orders-read", "%2F inside /orders/ either way");
    assert.equal(name("GET", "/%68ealth"), "health");
    assert.equal(name("GET", "/orders/%zz"), null, "a bad escape matches nothing");
    assert.equal(name("GET", "/orders/a%00b"), null, "a control character matches nothing");
    assert.equal(name("GET", "/orders\\..\\admin"), null, "a backslash matches nothing");
  });

  await t.step("the query and fragment are ignored; an absolute URI gives its path", () => {
    assert.equal(name("GET", "/health?x=/orders/1"), "health");
    assert.equal(name("GET", "/health#frag"), "health");
    assert.equal(name("GET", "https://api.example.com/health?x=1"), "health");
  });

  await t.step("default deny: nothing matches an unknown path, or anything without rules", () => {
    assert.equal(name("GET", "/admin"), null);
    assert.equal(matchRule(NO_RULES, "GET", "/health"), null);
  });

  await t.step("normalisePath", () => {
    assert.equal(normalisePath("/a/./b/../c/"), "/a/c/");
    assert.equal(normalisePath("/a/b/.."), "/a/");
    assert.equal(normalisePath("/../../x"), "/x");
    assert.equal(normalisePath("relative"), null);
  });
});
