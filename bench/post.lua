-- wrk: POST one metric per request over keep-alive connections (100 names, an hour of buckets).
-- Counting and draining: bench/wrk_common.lua. Arguments: ACTIVE_SECONDS.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "wrk_common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n = 0

function init(args)
  common.init(args)
end

function request()
  n = n + 1
  local body = string.format(
    '{"bucket": %d, "name": "bench.metric.%d", "count": %d, "mean": 1.5, "median": 1.0, "min": 0.5, "max": 9.0, "perc95": 8.0, "perc99": 8.5, "last": 2.0}',
    1355202720 + (n % 3600), n % 100, n % 50 + 1)
  return wrk.format(nil, nil, nil, body)
end
