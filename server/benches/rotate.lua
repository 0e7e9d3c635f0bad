-- wrk script: GET /api/health with the Host picked at random among N
-- companies (t00001 … tNNNNN under BENCH_DOMAIN), uniformly or, with
-- BENCH_DIST=zipf, company k with weight 1/k^BENCH_ZIPF_S (default 0.99);
-- then one machine-readable RESULT line for load.sh. BENCH_DIST=sweep asks
-- for every company once, in order, each of wrk's BENCH_THREADS threads its
-- share, and stops: a warm-up that opens every company's pool.
-- BENCH_COOKIES names a file whose line k is company k's session cookie
-- (`enclave_session=…`), sent with each request to it: signed-in pages.
local n = tonumber(os.getenv("BENCH_N") or "10")
local dist = os.getenv("BENCH_DIST") or "uniform"
local s = tonumber(os.getenv("BENCH_ZIPF_S") or "0.99")
local domain = os.getenv("BENCH_DOMAIN") or "localhost:3200"
local path = os.getenv("BENCH_PATH") or "/api/health"
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local cookie_file = os.getenv("BENCH_COOKIES")

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
  if cookie_file then
    cookies = {}
    for line in io.lines(cookie_file) do
      table.insert(cookies, line)
    end
  end
  if dist == "zipf" then
    -- cdf[k]: the share of requests that go to companies 1 … k.
    cdf = {}
    local total = 0
    for k = 1, n do
      total = total + 1 / k ^ s
      cdf[k] = total
    end
    for k = 1, n do
      cdf[k] = cdf[k] / total
    end
  end
end

-- The first k with cdf[k] >= u, by bisection.
local function zipf_pick()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

local sent, answered = 0, 0

function request()
  local k
  if dist == "sweep" then
    k = (sent * nthreads + id - 1) % n + 1
    sent = sent + 1
  elseif dist == "zipf" then
    k = zipf_pick()
  else
    k = math.random(n)
  end
  if cookies then
    return wrk.format("GET", path, { Host = hosts[k], Cookie = cookies[k] })
  end
  return wrk.format("GET", path, { Host = hosts[k] })
end

-- Only a sweep reads responses: wrk parses every response once a script
-- defines this, which would slow the measured runs.
if dist == "sweep" then
  function response(status, headers, body)
    answered = answered + 1
    if answered * nthreads >= n then
      wrk.thread:stop()
    end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d socket=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
