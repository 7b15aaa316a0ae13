-- Shared by bench/post.lua, bench/batch.lua and bench/get.lua (wrk 4.1, LuaJIT).
--
-- Each thread counts the answers by status (response()), and setup()/done() collect the counts
-- with thread:get, so the bench can compare "201 received" with the rows found in each database.
--
-- Draining: wrk stops a run by abandoning whatever is in flight, and a POST it abandons is
-- usually stored all the same, so "rows == 201s" could never hold exactly. When the script is
-- given an active time shorter than -d, each connection sends no new request after it (delay()
-- parks the connection) and its last answer is read before wrk stops: nothing is in flight at
-- the end. The rate is then the answers counted over the active window (first request to last
-- answer), not wrk's Requests/sec, which would include the idle tail.
--
-- Script arguments (after `--`): ACTIVE_SECONDS [EXPECTED_STATUS]; 0 seconds: no draining.
-- done() prints one line for bench/run.sh (sent: requests sent, counted when draining only):
--   BENCH ok=N other=N sent=N window_s=S p50_ms=X p99_ms=X complete=N sock_errors=N
--         s503=N stored_false=N stored_unknown=N stored_none=N
-- s503 counts the 503s among the others, split by the "stored" field of their JSON body: false
-- (refused, nothing of it stored), "unknown" (timed out, it may still land) or absent.
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk, bench_timespec *ts);
]]
local ts = ffi.new("bench_timespec")
local function now() -- CLOCK_MONOTONIC: the same clock in every thread
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local M = {now = now}
local threads = {}

-- Per-thread state (each wrk thread has its own Lua state); read by done() through thread:get.
n_ok, n_other, n_sent, t_first, t_last = 0, 0, 0, 0, 0
n_503, n_false, n_unknown = 0, 0, 0
local expected, stop_at = 201, nil

function setup(thread)
  table.insert(threads, thread)
end

-- Called from each script's init(args); args[0] is the URL.
function M.init(args)
  local active = tonumber(args[1] or "0") or 0
  expected = tonumber(args[2] or "") or expected
  if active > 0 then
    stop_at = now() + active
  else
    delay = nil -- wrk checks for delay() after init(): no draining, no per-request timer
  end
end

function delay()
  if t_first == 0 then t_first = now() end
  if stop_at and now() >= stop_at then
    return 3600000 -- park this connection until wrk stops
  end
  n_sent = n_sent + 1 -- a request goes out now
  return 0
end

function response(status, headers, body)
  t_last = now()
  if status == expected then n_ok = n_ok + 1 else n_other = n_other + 1 end
  if status == 503 then
    n_503 = n_503 + 1
    if body and body:find('"stored"%s*:%s*false') then
      n_false = n_false + 1
    elseif body and body:find('"stored"%s*:%s*"unknown"') then
      n_unknown = n_unknown + 1
    end
  end
end

function done(summary, latency, requests)
  local ok, other, sent, first, last = 0, 0, 0, math.huge, 0
  local s503, sfalse, sunknown = 0, 0, 0
  for _, t in ipairs(threads) do
    ok = ok + t:get("n_ok")
    s503 = s503 + t:get("n_503")
    sfalse = sfalse + t:get("n_false")
    sunknown = sunknown + t:get("n_unknown")
    other = other + t:get("n_other")
    sent = sent + t:get("n_sent")
    local f, l = t:get("t_first"), t:get("t_last")
    if f > 0 and f < first then first = f end
    if l > last then last = l end
  end
  local window = (last > 0 and first < math.huge) and (last - first) or 0
  local e = summary.errors
  io.write(string.format(
    "BENCH ok=%d other=%d sent=%d window_s=%.3f p50_ms=%.3f p99_ms=%.3f complete=%d sock_errors=%d"
      .. " s503=%d stored_false=%d stored_unknown=%d stored_none=%d\n",
    ok, other, sent, window, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, e.connect + e.read + e.write + e.timeout,
    s503, sfalse, sunknown, s503 - sfalse - sunknown))
end

return M
