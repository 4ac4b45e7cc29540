-- wrk script for bench/domains_contention.ts: POST /api/e2/domains with a new name on every
-- request ("d<n>.<BENCH_PREFIX>.bench-contention.com"), authenticated by BENCH_KEY. One wrk
-- process per account, each with its own prefix, so no two requests ever name the same domain.
-- `done` prints one JSON line of figures.

local n = 0
local headers = {}

function init(args)
  headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")
  headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  local body = '{"domain":"d' .. n .. '-' .. math.random(1, 1000000000) .. '.' ..
    os.getenv("BENCH_PREFIX") .. '.bench-contention.com"}'
  return wrk.format("POST", "/api/e2/domains", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
      '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
