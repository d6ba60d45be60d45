-- wrk script: POST /engagement/v3/callbacks/create with keep-alive, one new callback per request.
-- Used by scripts/bench.sh; every setting comes from the environment:
--
--   BENCH_KEYS_FILE    file with API keys, one a line; requests rotate over them (required)
--   BENCH_SERVICE      callback service name (default "bench")
--   BENCH_MODE         "scheduled" (default) or "immediate" (no desiredTime)
--   BENCH_FROM_MS      scheduled: desired time drawn uniformly from [FROM, TO) (epoch ms) ...
--   BENCH_TO_MS
--   BENCH_SEQ_STEP_MS  ... or, when set, desired time = BENCH_FROM_MS + i * STEP for the i-th
--                      request overall (0-based), so a run fills slots exactly (seed scenario)
--   BENCH_COUNT        stop after this many creates in all (0 = run for wrk's -d). wrk itself
--                      runs for its whole -d whatever its threads do, so each thread that is
--                      done creates BENCH_DONE_DIR/done.<thread> and bench.sh interrupts wrk
--                      (SIGINT makes it print its results at once) when all are there
--   BENCH_USERDATA_KB  userData of this many KiB of JSON (default 0: none): {"blob":"..."} with
--                      random letters and digits, so PostgreSQL's TOAST cannot compress it away
--   BENCH_DELAY_MS     think time before each request of a connection (throttling; 0 = none)
--   BENCH_THREADS      wrk's -t (wrk runs each thread's init before it has set up the next one,
--                      so a thread cannot count its peers)
--   BENCH_PHONE_SUFFIX last two digits of every phone number (default random 00..89; voice-sim
--                      answers those; 90..99 are its special outcomes)
--
-- done() prints one line "BENCH_RESULT {json}" with requests, rps, latency percentiles (ms) and
-- errors, which bench.sh parses. Latency excludes the think time.

local env = os.getenv
local keys_file = env("BENCH_KEYS_FILE")
local service = env("BENCH_SERVICE") or "bench"
local mode = env("BENCH_MODE") or "scheduled"
local from_ms = tonumber(env("BENCH_FROM_MS") or "0")
local to_ms = tonumber(env("BENCH_TO_MS") or "0")
local seq_step = tonumber(env("BENCH_SEQ_STEP_MS") or "0")
local count = tonumber(env("BENCH_COUNT") or "0")
local ud_kb = tonumber(env("BENCH_USERDATA_KB") or "0")
local delay_ms = tonumber(env("BENCH_DELAY_MS") or "0")
local phone_suffix = env("BENCH_PHONE_SUFFIX")
local done_dir = env("BENCH_DONE_DIR")
local nthreads = tonumber(env("BENCH_THREADS") or "1")

local nsetup = 0

function setup(thread)
    thread:set("tid", nsetup)
    nsetup = nsetup + 1
end

-- Per-thread state (each wrk thread has its own Lua state).
local keys = {}
local tid = 0
local sent = 0
local userdata = ""
local stopped = false

local function read_keys()
    local f = assert(io.open(keys_file, "r"), "cannot open BENCH_KEYS_FILE")
    for line in f:lines() do
        if #line > 0 then
            table.insert(keys, line)
        end
    end
    f:close()
    assert(#keys > 0, "BENCH_KEYS_FILE holds no key")
end

function init(args)
    tid = tonumber(wrk.thread:get("tid")) or 0
    read_keys()
    math.randomseed(os.time() * 1000 + tid * 7919)
    if ud_kb > 0 then
        -- {"blob":"xxx..."} of ud_kb * 1024 bytes as JSON.
        local target = math.floor(ud_kb * 1024)
        local overhead = #'{"blob":""}'
        local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        local chars = {}
        for k = 1, target - overhead do
            local c = math.random(1, #alphabet)
            chars[k] = alphabet:sub(c, c)
        end
        userdata = ',"userData":{"blob":"' .. table.concat(chars) .. '"}'
    end
    wrk.headers["Content-Type"] = "application/json"
end

local function iso(ms)
    local s = math.floor(ms / 1000)
    return os.date("!%Y-%m-%dT%H:%M:%S", s) .. string.format(".%03dZ", ms - s * 1000)
end

local function phone()
    local suffix = phone_suffix or string.format("%02d", math.random(0, 89))
    return string.format("+1%06d%02d%s", math.random(200000, 999999), math.random(0, 99), suffix)
end

local noop = nil
-- wrk calls request() once in thread 0 before it starts, to check the request it makes, and
-- throws that request away: that call must not use up a create.
local verified = false

function request()
    -- The i-th create overall: this thread takes tid, tid + n, tid + 2n, ...
    local i = tid + sent * nthreads
    local counted = true
    if tid == 0 and not verified then
        verified = true
        counted = false
    end
    if count > 0 and i >= count then
        if not stopped then
            stopped = true
            if done_dir then
                local f = io.open(done_dir .. "/done." .. tid, "w")
                if f then
                    f:close()
                end
            end
            wrk.thread:stop()
        end
        noop = noop or wrk.format("GET", "/healthz", {})
        return noop
    end
    if counted then
        sent = sent + 1
    end
    local key = keys[(i % #keys) + 1]
    local desired = ""
    if mode == "scheduled" then
        local ms
        if seq_step > 0 then
            ms = from_ms + i * seq_step
        else
            ms = from_ms + math.floor(math.random() * (to_ms - from_ms))
        end
        desired = ',"desiredTime":"' .. iso(ms) .. '"'
    end
    local body = '{"serviceName":"' .. service .. '","phoneNumber":"' .. phone() .. '"' ..
        desired .. userdata .. "}"
    return wrk.format("POST", "/engagement/v3/callbacks/create", { ["x-api-key"] = key }, body)
end

if delay_ms > 0 then
    function delay()
        return delay_ms
    end
end

function done(summary, latency, requests)
    local secs = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
        '"p99_ms":%.3f,"max_ms":%.3f,"errors_status":%d,"errors_connect":%d,"errors_read":%d,' ..
        '"errors_write":%d,"errors_timeout":%d}\n',
        summary.requests, secs, summary.requests / secs, latency:percentile(50) / 1000,
        latency:percentile(90) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
        e.status, e.connect, e.read, e.write, e.timeout))
end
