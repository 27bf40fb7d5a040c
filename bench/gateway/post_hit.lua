-- wrk: the same POST every time (after the first request every answer is a cache hit).
wrk.method = "POST"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"benchmark hit: what is a cache?"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
-- The finer tail ("tail_us ...") and LATENCY_OUT=FILE (every latency, for pooling many rounds),
-- as in the miss runs; miss_common.lua sits next to this script, wherever wrk is run from.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
done = require("miss_common").done

-- CONNECTION_CLOSE=1: every request on a new connection (run.sh's spread phase).
if os.getenv("CONNECTION_CLOSE") == "1" then wrk.headers["Connection"] = "close" end
