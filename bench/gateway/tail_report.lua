-- Shared by the wrk scripts of the miss runs: the latency tail in finer steps than wrk's
-- --latency table (microseconds), printed as one "tail_us ..." line that run.sh reads.
local M = {}

function M.done(summary, latency, requests)
  local parts = {}
  for _, p in ipairs({90, 95, 98, 99, 99.5, 99.9}) do
    parts[#parts + 1] = string.format("p%s=%d", p, latency:percentile(p))
  end
  io.write("tail_us " .. table.concat(parts, " ") .. " max=" .. latency.max .. "\n")
end

return M
