-- wrk, for `make bench-scale`: POST batches of metrics (one pre-built body, 100 names), like
-- bench/batch.lua, but with buckets in the PER seconds before BASE and names of PREFIX.
-- Arguments: ACTIVE_SECONDS BASE PREFIX PER. Counting and draining: bench/wrk_common.lua.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "wrk_common.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function init(args)
  common.init({[0] = args[0], args[1]})
  local per = tonumber(args[4] or "1000")
  local base = tonumber(args[2]) - per
  local parts = {}
  for i = 0, per - 1 do
    parts[#parts + 1] = string.format(
      '{"bucket": %d, "name": "%s.%d", "count": %d, "mean": 1.5, "median": 1.0, "min": 0.5, "max": 9.0, "perc95": 8.0, "perc99": 8.5, "last": 2.0}',
      base + i, args[3], i % 100, i % 50 + 1)
  end
  wrk.body = "[" .. table.concat(parts, ",") .. "]"
end
