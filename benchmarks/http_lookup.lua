-- wrk script of benchmarks/http_lookup.py: a fixed-rate mix of lookups.
-- Arguments (after --): PATHS_FILE DELAY_MS. PATHS_FILE holds one request path per line, already shuffled by the
-- benchmark; each thread starts at its own offset and walks the list round-robin. wrk has no rate flag: every
-- connection waits DELAY_MS before each request, so the offered rate is connections * 1000 / (DELAY_MS + latency).
-- done() prints one JSON line (prefix "WRK-JSON ") that the benchmark parses; wrk --latency prints the table.

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local paths = {}
local position = 1
local delay_ms = 0

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("http_lookup.lua: no request paths in " .. args[1])
  end
  delay_ms = tonumber(args[2]) or 0
  -- Threads start apart in the list so they do not send the same requests in step.
  position = ((id - 1) * 7919) % #paths + 1
end

function delay()
  return delay_ms
end

function request()
  local path = paths[position]
  position = position % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRK-JSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "mean_us": %.1f, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
