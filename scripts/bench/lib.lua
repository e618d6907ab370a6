-- Shared by the wrk scripts of scripts/bench.sh: round-robin over a file of
-- tokens (one a line), an Authorization header read from a file (so that
-- no secret is on a command line), and a machine-readable result line.
--
-- Environment: BENCH_TOKENS (file of tokens), BENCH_AUTH (file holding the
-- whole Authorization header value), BENCH_CHECK (a string every 200 body
-- must contain; answers without it are counted as refused; a 503 of the
-- admission middleware is counted as shed, every other answer that is not
-- 200 by its status), BENCH_DELAY_MS
-- (each connection waits this long before its next request: C connections
-- then offer about C * 1000 / BENCH_DELAY_MS requests a second, for
-- latency below saturation).

local function lines(path)
  local out = {}
  local f = assert(io.open(path, "r"), "cannot open " .. path)
  for l in f:lines() do
    if #l > 0 then out[#out + 1] = l end
  end
  f:close()
  assert(#out > 0, path .. ": empty")
  return out
end

local tokens, n, i = nil, 0, 0
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
local check = os.getenv("BENCH_CHECK")
refused = 0

function bench_init(thread_seed)
  local tf = os.getenv("BENCH_TOKENS")
  if tf and #tf > 0 then
    tokens = lines(tf)
    n = #tokens
    -- Each thread starts elsewhere in the file, so that the C connections
    -- do not send the same token at the same moment.
    math.randomseed(os.time() + thread_seed)
    i = math.random(n) - 1
  end
  local af = os.getenv("BENCH_AUTH")
  if af and #af > 0 then
    headers["Authorization"] = lines(af)[1]
  end
end

function next_token()
  i = i % n + 1
  return tokens[i]
end

function post(body)
  return wrk.format("POST", nil, headers, body)
end

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if delay_ms and delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_seed", #threads)
end

function init(args)
  bench_init(thread_seed or 0)
end

-- Every answer that is not 200 is kept by status, with the first body of
-- each status, so that a run that fails says what sts answered (the
-- summary's non2xx alone does not). A 503 with the admission middleware's
-- body is a request shed by design (docs/reliability.md, "The token
-- gate": it waited 100 ms for a running slot, or the class was full): it
-- is counted as shed, apart from the other answers.
statuses, counts, shed = "", "", 0
local seen = {}
local shed_body = "the server is overloaded, retry later"

function response(status, hdrs, body)
  if status == 200 then
    if check and #check > 0 and not string.find(body, check, 1, true) then
      refused = refused + 1
    end
    return
  end
  if status == 503 and body and string.find(body, shed_body, 1, true) then
    shed = shed + 1
    return
  end
  local k = tostring(status)
  if not seen[k] then
    seen[k] = 0
    statuses = statuses .. k .. " " .. string.gsub(string.sub(body or "", 1, 200), "%s+", " ") .. "\n"
  end
  seen[k] = seen[k] + 1
  counts = ""
  for code, c in pairs(seen) do counts = counts .. code .. "=" .. c .. " " end
end

function done(summary, latency, requests)
  local r, s = 0, 0
  for _, t in ipairs(threads) do
    r = r + (t:get("refused") or 0)
    s = s + (t:get("shed") or 0)
    local c, b = t:get("counts"), t:get("statuses")
    if c and #c > 0 then io.write("wrk_status " .. c .. "\n" .. b) end
  end
  local e = summary.errors
  io.write(string.format(
    "wrk_result requests=%d duration_us=%d rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d non2xx=%d socket_errors=%d refused=%d shed=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout, r, s))
end
