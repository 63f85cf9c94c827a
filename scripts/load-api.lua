-- wrk script for scripts/load-api.sh: cycles through /streams/top (every `by`) and /metrics at
-- the end of the loaded data; `delay` paces each connection (WRK_DELAY_MS, 0 for none).
local at = os.getenv("LOAD_AT") or "2025-12-27T00:00:00Z"
local pace = tonumber(os.getenv("WRK_DELAY_MS") or "0")
local paths = {
  "/streams/top?minutes=10&by=active_viewers&n=10&at=" .. at,
  "/streams/top?minutes=10&by=donations_usd&n=10&at=" .. at,
  "/metrics?minutes=10&limit=100&at=" .. at,
  "/streams/top?minutes=60&by=events&n=10&at=" .. at,
  "/metrics?minutes=10&limit=100&stream_id=stream_42&at=" .. at,
  "/streams/top?minutes=10&by=unique_viewers&n=5&at=" .. at,
}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
delay = function()
  return pace
end
local statuses = {}
response = function(status)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.2f ms  p99 %.2f ms  max %.2f ms  errors %d (non-2xx %d)\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
