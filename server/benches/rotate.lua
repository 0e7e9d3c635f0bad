-- wrk script: GET /api/health with the Host picked uniformly at random
-- among N companies (t00001 … tNNNNN under BENCH_DOMAIN), then one
-- machine-readable RESULT line for load.sh.
local n = tonumber(os.getenv("BENCH_N") or "10")
local domain = os.getenv("BENCH_DOMAIN") or "localhost:3200"
local path = os.getenv("BENCH_PATH") or "/api/health"

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  hosts = {}
  for i = 1, n do
    hosts[i] = string.format("t%05d.%s", i, domain)
  end
end

function request()
  return wrk.format("GET", path, { Host = hosts[math.random(n)] })
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d socket=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
