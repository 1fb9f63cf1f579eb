-- wrk script: distinct complaints, as fast as each connection gets answers (closed loop), or
-- paced to RATE per second over CONNECTIONS connections when RATE is set.
local counter = 0
local thread_id = 0
local threads = {}
local rate = tonumber(os.getenv("RATE") or "0")
local connections = tonumber(os.getenv("CONNECTIONS") or "16")
local run = os.getenv("RUN") or "bench"
local key = os.getenv("ADMIN_KEY")
-- The complaint texts, one a line, shared with bench/intake_load.py (DESCRIPTIONS names it).
local texts = {}
for line in io.lines(os.getenv("DESCRIPTIONS")) do
  if line ~= "" then table.insert(texts, line) end
end
local channels = {"phone", "web_form", "online_chat", "app"}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. key
  created = 0
  failed = 0
end

if rate > 0 then
  -- Each connection pauses after an answer so the total stays near RATE per second.
  function delay()
    return 1000 * connections / rate
  end
end

function request()
  counter = counter + 1
  local seq = tid * 10000000 + counter
  local body = string.format(
    '{"channel":"%s","customer":{"name":"客户%d","phone":"139%08d"},' ..
    '"description":"%s (%s #%d)","requested_remedies":["refund"],"amount":"199.00"}',
    channels[(seq % 4) + 1], seq, seq % 100000000, texts[(seq % #texts) + 1], run, seq)
  return wrk.format(nil, "/v1/complaints", nil, body)
end

function response(status, headers, body)
  if status == 201 then created = created + 1 else failed = failed + 1 end
end

function done(summary, latency, requests)
  local created_total, failed_total = 0, 0
  for _, thread in ipairs(threads) do
    created_total = created_total + thread:get("created")
    failed_total = failed_total + thread:get("failed")
  end
  io.write(string.format(
    'RESULT {"requests": %d, "created": %d, "failed": %d, "errors": %d, "seconds": %.3f, ' ..
    '"p50_ms": %.2f, "p99_ms": %.2f, "max_ms": %.2f}\n',
    summary.requests, created_total, failed_total,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
