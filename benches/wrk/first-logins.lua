-- wrk script: every request looks up a different person, p<T><n>@wrk.io
-- (T the thread number, n counting from 1), so each is a first login when
-- the roster holds them unprovisioned. Seed people p01@wrk.io .. with
--   insert into roster (id, email, profile_status, profile_at, profile_event_id, last_at, last_event_id)
--   select 'w' || t || i, 'p' || t || i || '@wrk.io', 'active', now(), 'e', now(), 'e'
--   from generate_series(0, 3) t, generate_series(1, 200000) i;
-- and run, with WRK_TOKEN one of LOGIN_API_TOKENS:
--   wrk -t2 -c200 -d10s -s benches/wrk/first-logins.lua http://127.0.0.1:8080
-- wrk counts the 503s as "Non-2xx or 3xx responses"; done() prints them by status.
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  n = 0
  statuses = {}
  token = os.getenv("WRK_TOKEN") or "dev-login-token"
end

function request()
  n = n + 1
  return wrk.format("GET", "/api/users/lookup?email=p" .. tid .. n .. "@wrk.io", {
    ["Authorization"] = "Bearer " .. token,
  })
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for status, count in pairs(t:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  for status, count in pairs(total) do
    io.write(string.format("status %d: %d\n", status, count))
  end
  io.write(string.format("timeouts: %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
    summary.errors.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
