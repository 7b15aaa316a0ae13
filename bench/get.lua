-- wrk: the GET given by the URL, over keep-alive connections, counting the 200 answers.
-- Counting: bench/wrk_common.lua (no draining: reads store nothing).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(dir .. "wrk_common.lua")

function init(args)
  common.init({[0] = args[0], "0", "200"})
end
