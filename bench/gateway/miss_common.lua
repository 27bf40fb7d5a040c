-- Shared by the wrk scripts of the miss runs (post_unique.lua, post_paced.lua); post_hit.lua uses
-- its done().
local M = {}

-- LLMC_CACHE_HEADER=no-store (say) sends that x-llm-cache control with every request.
local cache_header = os.getenv("LLMC_CACHE_HEADER")

-- A chat completion whose prompt is `prompt`: a new prompt each time makes every answer a miss.
function M.post(prompt)
  local body = string.format(
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"%s"}]}', prompt)
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer sk-bench"}
  if cache_header and cache_header ~= "" then headers["x-llm-cache"] = cache_header end
  return wrk.format("POST", nil, headers, body)
end

-- The latency tail in finer steps than wrk's --latency table (microseconds), as one
-- "tail_us ..." line that run.sh reads.
function M.done(summary, latency, requests)
  local parts = {}
  for _, p in ipairs({90, 95, 98, 99, 99.5, 99.9}) do
    parts[#parts + 1] = string.format("p%s=%d", p, latency:percentile(p))
  end
  io.write("tail_us " .. table.concat(parts, " ") .. " max=" .. latency.max .. "\n")
  -- LATENCY_OUT=FILE: every latency of the run, as "microseconds count" lines (one per value
  -- seen), so that run.sh can pool many short runs into one distribution.
  local out_path = os.getenv("LATENCY_OUT")
  if out_path and out_path ~= "" then
    local out = assert(io.open(out_path, "w"))
    for i = 1, #latency do
      local value, count = latency(i)
      out:write(string.format("%d %d\n", value, count))
    end
    out:close()
  end
end

return M
