-- wrk: a different POST every time (every answer is a miss), at a fixed overall rate with the
-- requests spread evenly in time: the next request of any connection goes out at the next free
-- slot of a 1/RATE grid. (post_unique.lua's per-connection pause lets the connections fall into
-- step, so they send in bursts of one request per connection.) One wrk thread (-t1).
--   RATE: requests per second (default 1000); needs enough connections that a slot always finds
--   one idle (at 1,000/s and 10 connections, any latency under 10 ms).
--   FIXED_PROMPT=1: one prompt for every request (hits), see below.

-- miss_common.lua sits next to this script, wherever wrk is run from.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
package.path = here .. "?.lua;" .. package.path
local common = require("miss_common")
done = common.done

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } llmc_timespec;
int clock_gettime(int clock_id, llmc_timespec* tp);
]]
local CLOCK_MONOTONIC = 1
local now_spec = ffi.new("llmc_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_spec)
  return tonumber(now_spec.tv_sec) * 1000 + tonumber(now_spec.tv_nsec) / 1e6
end

local interval_ms = 1000 / tonumber(os.getenv("RATE") or "1000")
local next_slot_ms = nil
local counter = 0

function init(args)
  math.randomseed(os.time())
  run_id = math.random(1, 1000000000)
end

-- FIXED_PROMPT=1: the same prompt every time, so every request after the first is a hit: what a
-- request costs the gateway at this rate without the upstream leg.
local fixed_prompt = os.getenv("FIXED_PROMPT") == "1"

function request()
  counter = counter + 1
  if fixed_prompt then return common.post("benchmark paced hit") end
  return common.post(string.format("benchmark paced miss %d-%d", run_id, counter))
end

-- Called after each response, for that connection's next request. wrk's timers have 1 ms
-- resolution, hence the rounding; a grid that fell far behind (a stall) restarts from now rather
-- than firing a burst to catch up.
function delay()
  local now = now_ms()
  if next_slot_ms == nil or next_slot_ms < now - 5 * interval_ms then next_slot_ms = now end
  next_slot_ms = next_slot_ms + interval_ms
  return math.max(0, math.floor(next_slot_ms - now + 0.5))
end
