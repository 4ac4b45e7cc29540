-- wrk script for bench/auth_throughput.ts: GET /api/e2/domains, rotating through the keys in
-- the file named by BENCH_KEYS_FILE (lines "<key> <userId>"). Every request carries both the
-- Bearer key (used by the real server) and X-Bench-Account (used by the unauthenticated one),
-- so both runs send the same bytes. With BENCH_AUTH=cookie, the first field of each line is a
-- session cookie (`name=token`) sent as `Cookie` instead. `done` prints one JSON line of figures.

local counter = 0

function setup(thread)
  thread:set("offset", counter * 509)
  counter = counter + 1
end

local requests = {}
local i = 0

function init(args)
  local cookie = os.getenv("BENCH_AUTH") == "cookie"
  for line in io.lines(os.getenv("BENCH_KEYS_FILE")) do
    local key, user = line:match("^(%S+)%s+(%S+)$")
    if key then
      local headers = { ["X-Bench-Account"] = user }
      if cookie then
        headers["Cookie"] = key
      else
        headers["Authorization"] = "Bearer " .. key
      end
      requests[#requests + 1] = wrk.format("GET", "/api/e2/domains", headers)
    end
  end
  i = (offset or 0) % #requests
end

function request()
  i = i % #requests + 1
  return requests[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,' ..
      '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
