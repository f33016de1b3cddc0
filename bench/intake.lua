-- wrk script for the intake benchmarks (bench/bench_http.py runs it):
--   wrk -s bench/intake.lua URL -- POINTS_CSV ACK_PREFIX RUN_TAG CATEGORY API_KEY
-- Each request is a new report with its own client_request_id, at one of the points of POINTS_CSV
-- ("lon,lat" lines). Each wrk thread appends the ids the server acknowledged (200 or 201, read back from
-- the answer) to ACK_PREFIX<thread>, so that the benchmark can check every one of them is stored once.
-- Each request carries API_KEY (a key allowed to report: role device) as "Authorization: Bearer API_KEY".

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  points = {}
  for line in io.lines(args[1]) do
    local lon, lat = line:match("([^,]+),([^,]+)")
    points[#points + 1] = { lon, lat }
  end
  acked = io.open(args[2] .. thread_no, "w")
  acked:setvbuf("line")
  tag = args[3]
  category = args[4] or "0102"
  headers = { ["Content-Type"] = "application/json" }
  if args[5] and args[5] ~= "" then headers["Authorization"] = "Bearer " .. args[5] end
  sent, refused = 0, 0
end

function request()
  sent = sent + 1
  local p = points[(sent * 7919 + thread_no * 104729) % #points + 1]
  local body = string.format(
    '{"lon": %s, "lat": %s, "category": "%s", "accuracy_m": 8, "description": "bench",'
      .. ' "client_request_id": "%s-%d-%d"}', p[1], p[2], category, tag, thread_no, sent)
  return wrk.format("POST", "/api/v1/reports", headers, body)
end

function response(status, headers, body)
  if status == 200 or status == 201 then
    local id = body:match('"client_request_id": *"([^"]+)"')
    if id then acked:write(id, "\n") end
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  for _, thread in ipairs(threads) do
    local refused = thread:get("refused")
    if refused > 0 then io.write(string.format("thread %d: %d answers other than 200/201\n",
      thread:get("thread_no"), refused)) end
  end
  for _, p in ipairs({ 50, 90, 99 }) do
    io.write(string.format("latency p%d %.3f ms\n", p, latency:percentile(p) / 1000))
  end
end
