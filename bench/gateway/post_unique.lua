-- wrk: a different POST every time (every answer is a miss), paced and optionally bounded.
--   PACE_MS: per-connection delay between requests (connections * 1000 / PACE_MS ~ requests/s)
--   STOP_AFTER: each thread stops after this many responses (0: run for the duration)

-- miss_common.lua sits next to this script, wherever wrk is run from.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("miss_common")
done = common.done

local counter = 0
-- thread_id is a global set per thread by setup()
local pace_ms = tonumber(os.getenv("PACE_MS") or "0")
local stop_after = tonumber(os.getenv("STOP_AFTER") or "0")
local next_thread_id = 0

function setup(thread)
  next_thread_id = next_thread_id + 1
  thread:set("thread_id", next_thread_id)
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0))
  run_id = math.random(1, 1000000000)
end

function request()
  counter = counter + 1
  return common.post(string.format("benchmark miss %d-%d-%d", run_id, thread_id, counter))
end

function delay()
  return pace_ms
end

local responses = 0
function response(status, headers, body)
  responses = responses + 1
  if stop_after > 0 and responses >= stop_after then
    wrk.thread:stop()
  end
end
