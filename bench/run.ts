/**
 * `deno task bench`: runs every benchmark script in turn and prints their figures. Each script
 * starts its own server processes on 127.0.0.1 and bounds its own run time.
 */
const SCRIPTS = [
  { name: "auth throughput (issue 4)", path: "bench/auth_throughput.ts" },
  { name: "auth cost in process (issues 4, 13)", path: "bench/auth_in_process.ts" },
  { name: "auth cost, part by part (issue 24)", path: "bench/auth_breakdown.ts" },
  { name: "domains at scale (issue 5)", path: "bench/domains_scale.ts" },
  { name: "password flood (issue 9)", path: "bench/password_flood.ts" },
  { name: "domain creates under contention (issue 9)", path: "bench/domains_contention.ts" },
  { name: "over KV Connect at 0, 20, 80 ms (issue 15)", path: "bench/kv_connect_latency.ts" },
  { name: "deno serve --parallel, 1 vs N workers (issue 15)", path: "bench/serve_parallel.ts" },
  { name: "usage response with 10,000 churned keys (issue 20)", path: "bench/usage_churn.ts" },
  { name: "forward auth through nginx, added latency (issue 25)", path: "bench/forward_auth.ts" },
];

let failed = 0;
for (const script of SCRIPTS) {
  console.log(`\n=== ${script.name}: deno run ${script.path}`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      "--allow-env",
      "--allow-read",
      "--allow-write",
      "--allow-run",
      script.path,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (code !== 0) {
    failed++;
    console.log(`${script.path} exited with ${code}`);
  }
}
Deno.exit(failed ? 1 : 0);
