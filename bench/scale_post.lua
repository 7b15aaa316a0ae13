-- wrk, for `make bench-scale`: POST one metric per request, like bench/post.lua, but with buckets
-- in the hour before BASE (the partition being written today, not the default partition) and
-- names of PREFIX, so the rows of a phase can be counted among the loaded ones.
-- Arguments: ACTIVE_SECONDS BASE PREFIX. Counting and draining: bench/wrk_common.lua.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "wrk_common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local n, base, prefix = 0, 0, "ingest.single"

function init(args)
  common.init({[0] = args[0], args[1]})
  base = tonumber(args[2]) - 3600
  prefix = args[3]
end

function request()
  n = n + 1
  local body = string.format(
    '{"bucket": %d, "name": "%s.%d", "count": %d, "mean": 1.5, "median": 1.0, "min": 0.5, "max": 9.0, "perc95": 8.0, "perc99": 8.5, "last": 2.0}',
    base + (n % 3600), prefix, n % 100, n % 50 + 1)
  return wrk.format(nil, nil, nil, body)
end
