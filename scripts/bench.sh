#!/usr/bin/env bash
# make bench: Engage's cost and speed figures beside GES's published ones, in one run (about ten
# minutes at ~1,500 creates/s; it books the ~450,000 callbacks the issue names). Release build
# (build/), a private stack configured as `make run` configures it
# (Redis with appendonly yes + appendfsync always, JetStream on file storage, PostgreSQL with
# fsync on, services at their defaults) in a run directory under /var/tmp, tenants with API keys
# that have no rate limit, then the measurements below. Prints a table, writes .run/bench.json
# (top-level numbers; bytes; 1 kB = 1024 B) and the generated part of docs/benchmarks.md (the
# text around it, notes on method and profiles, is kept).
#
# Environment:
#   BENCH_SCALE=1        multiplies every count and duration (0.1 for a quick trial run; the
#                        figures of a scaled run are not comparable and the doc says so)
#   BENCH_RUN_DIR        run directory (default /var/tmp/engage-bench-<hash of the checkout>)
#   ENGAGE_BUILD_DIR     build directory (default build)
#   ENGAGE_SKIP_DEPS=1, ENGAGE_SKIP_BUILD=1   as for make run
#   BENCH_KEEP=1         keep the servers' data after the run (default: deleted, logs kept)
#   BENCH_JSON, BENCH_DOC  where to write the results (default .run/bench.json and
#                        docs/benchmarks.md), e.g. to keep a trial run out of the docs
#
# One deliberate difference from `make run`: the voice platform's Redis (the dial/progress
# streams, ENGAGE_VOICE_REDIS_URL) is a second redis-server with the same settings instead of
# db 1 of Engage's, so that INFO on Engage's Redis counts only what Engage does there. The
# voice platform is the simulator's; what the ors-bridge and voice-sim do on it is reported
# beside the figures, not in them.
#
# Phases (docs/benchmarks.md has the method of each figure):
#   1 redis-benchmark: a one-call Lua create at each connection count  -> lua_create_limit_per_s
#   2 idle, 0 callbacks, 1 tenant                                      -> idle_redis_cmds_per_s
#   3 idle, 0 callbacks, 50 tenants with a service each
#   4 100,000 scheduled creates (0 kB) with wrk at 4/8/16/32 connections, then the rest at half
#     of the best rate                         -> creates_per_s, p50/p99, p99_ms_half_load,
#                                                 archive_lag_ms, redis_bytes_per_cb
#   5 idle, 100,000 booked in one tenant
#   6 100,000 creates with 1 kB of user data over the 49 other tenants; idle, 200,000 booked
#     over 50 tenants; 10,000 with 10 kB; 1,000 with 100 kB    -> redis_bytes_per_userdata_kb
#   7 immediate creates at 4/8/16/32 connections (voice-sim stopped) -> immediate_creates_per_s
#   8 immediate callbacks through their whole life (voice-sim answering), with 0, 1, 10 and
#     100 kB of user data            -> redis_cmds_immediate_life, redis_roundtrips_immediate_life,
#                                       pg_bytes_per_cb, pg_bytes_per_userdata_kb
#   9 10,000 callbacks due within one minute  -> dispatch_lateness_p99_ms, redis_cmds_scheduled_life
#  10 the seed scenario (134,400 booked in 15-minute slots of 100 over 14 days, 1,000 immediate
#     queued and never answered)          -> seed_scenario_redis_cmds_per_min
#  11 rss_mb of each service: idle (phase 2) and peak (VmHWM at the end)
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/suite.sh
source "$ROOT/scripts/suite.sh"

BENCH_START=$SECONDS
SCALE="${BENCH_SCALE:-1}"
[[ "$SCALE" =~ ^[0-9]*\.?[0-9]+$ ]] || die "BENCH_SCALE must be a positive number"
RUN_DIR="$(abspath "${BENCH_RUN_DIR:-/var/tmp/engage-bench-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)}")"
BUILD_DIR="$(abspath "${ENGAGE_BUILD_DIR:-$ROOT/build}")"
TOOLS="$ROOT/tools/bench"
OUT_JSON="${BENCH_JSON:-$ROOT/.run/bench.json}"
OUT_MD="${BENCH_DOC:-$ROOT/docs/benchmarks.md}"
WORK="$RUN_DIR/bench"
# Connection counts of the HTTP runs (and of redis-benchmark). The api serves each keep-alive
# connection with one of its ENGAGE_HTTP_THREADS (16 by default) worker threads for as long as
# the connection lasts: at 16 connections any other client (the archive-lag sampler, a health
# check) waits for seconds, so the sweep stops at 12.
SWEEP_CONNS=(2 4 8 12)
DAY_MS=86400000

# --- small helpers -------------------------------------------------------------------------------

# scaled N [MIN]: round(N * BENCH_SCALE), at least MIN (default 1).
scaled() {
    awk -v n="$1" -v s="$SCALE" -v m="${2:-1}" 'BEGIN { v = int(n * s + 0.5); print (v < m ? m : v) }'
}
now_ms() { printf '%s\n' "$(($(date +%s%N) / 1000000))"; }
# calc EXPR: floating-point arithmetic (awk), printed with up to 6 significant decimals.
calc() { awk "BEGIN { v = $1; printf \"%.10g\n\", v }"; }
round() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { printf "%.*f\n", d, v }'; }

declare -A RES=()     # figure -> value (numbers only)
declare -a NOTES=()   # lines for the "this run" section of the doc
res() { RES[$1]="$2"; }
note() { NOTES+=("$*"); }

rcli() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }
vcli() { redis-cli -h 127.0.0.1 -p "$VOICE_PORT" "$@"; }
pgq() { psql -X -A -t -q -v ON_ERROR_STOP=1 "$ENGAGE_PG_DSN" -c "$1"; }

# One INFO on Engage's Redis: sets S_CALLS (every command executed, commands inside scripts
# included, the bench's own INFO/CONFIG/MEMORY/CLIENT calls excluded), S_EVALSHA (script calls),
# S_READS (read events on client sockets: one per request or pipeline), S_MEM (used_memory).
redis_snap() {
    local out
    out="$(rcli info stats commandstats memory | tr -d '\r')"
    S_CALLS="$(awk -F'[:=,]' '/^cmdstat_/ {
            name = substr($1, 9)
            if (name ~ /^(info|config\|.*|client\|.*|memory\|.*|monitor|dbsize|ping|slowlog.*)$/) next
            s += $3 } END { print s + 0 }' <<<"$out")"
    S_EVALSHA="$(awk -F'[:=,]' '/^cmdstat_evalsha:/ { print $3 } END { }' <<<"$out")"
    S_EVALSHA="${S_EVALSHA:-0}"
    S_READS="$(awk -F: '/^total_reads_processed:/ { print $2 }' <<<"$out")"
    S_MEM="$(awk -F: '/^used_memory:/ { print $2 }' <<<"$out")"
}

# cmd_snap FILE: "command calls" lines of Engage's Redis, for per-command breakdowns.
cmd_snap() {
    rcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ { print substr($1, 9), $3 }' |
        sort >"$1"
}
# cmd_diff BEFORE AFTER COUNT: "cmd n.nn, ..." per callback, largest first (the bench's own
# INFO left out).
cmd_diff() {
    join -a 2 -e 0 -o 0,1.2,2.2 "$1" "$2" |
        awk -v n="$3" '$1 !~ /^(info|config\|.*|client\|.*|memory\|.*|dbsize|ping)$/ && $3 > $2 {
            printf "%s %.2f\n", $1, ($3 - $2) / n }' | sort -k2 -rn |
        awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 } END { print "" }'
}

# Calls of every command on the voice Redis (ors-bridge + voice-sim), for the side notes.
voice_calls() {
    vcli info commandstats | tr -d '\r' | awk -F'[:=,]' '/^cmdstat_/ {
        name = substr($1, 9); if (name ~ /^(info|config\|.*|client\|.*)$/) next; s += $3 }
        END { print s + 0 }'
}

# JetStream backlog: messages not yet delivered or not yet acknowledged, over every consumer.
js_backlog() {
    curl -s -m 2 "$ENGAGE_NATS_MONITOR_URL/jsz?consumers=true" |
        jq '[.account_details[]?.stream_detail[]?.consumer_detail[]? |
             (.num_pending + .num_ack_pending)] | add // 0'
}

# wait_until TIMEOUT_S DESC CMD...: polls CMD (success = done) every 0.2 s.
wait_until() {
    local timeout="$1" desc="$2" deadline
    shift 2
    deadline=$((SECONDS + timeout))
    until "$@"; do
        ((SECONDS < deadline)) || die "timed out after ${timeout}s waiting for $desc"
        sleep 0.2
    done
}
outbox_empty() { [[ "$(rcli scard eg:outbox:pending)" == 0 ]]; }
js_idle() { [[ "$(js_backlog)" == 0 ]]; }
# pg_count_is SQL N: true when the count query answers at least N.
pg_count_is() { (($(pgq "$1") >= $2)); }
# Everything written has reached PostgreSQL: outbox relayed, every consumer caught up. Only
# for use outside command-counting windows (it asks Engage's Redis).
settle() {
    wait_until 600 "the outbox relay" outbox_empty
    wait_until 600 "JetStream consumers" js_idle
}
# Redis alone is settled: the relay has emptied every outbox (the archiver, which never touches
# Redis, may still be catching up; the memory and idle figures do not depend on it).
redis_settled() { wait_until 600 "the outbox relay" outbox_empty; }

pid_of() { cat "$RUN_DIR/pids/$1.pid" 2>/dev/null || true; }
# vm_kb SERVICE FIELD: VmRSS / VmHWM of a service in kB.
vm_kb() {
    local pid
    pid="$(pid_of "$1")"
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0
}

# --- the stack -----------------------------------------------------------------------------------

stop_voice_redis() {
    local pid
    pid="$(pid_of voice-redis)"
    if pid_matches "$pid" 'redis-server'; then
        stop_pid "$pid" 10 voice-redis || true
    fi
    rm -f "$RUN_DIR/pids/voice-redis.pid"
}

start_voice_redis() {
    local pid i
    VOICE_PORT="$(pick_free_port)"
    rm -rf "$RUN_DIR/voice-redis"
    mkdir -p "$RUN_DIR/voice-redis"
    log "starting the voice platform's redis-server on 127.0.0.1:$VOICE_PORT (same settings)"
    setsid redis-server --port "$VOICE_PORT" --bind 127.0.0.1 --protected-mode yes \
        --appendonly yes --appendfsync always --dir "$RUN_DIR/voice-redis" --save '' \
        --daemonize no --logfile '' </dev/null >>"$RUN_DIR/logs/voice-redis.log" 2>&1 &
    pid=$!
    echo "$pid" >"$RUN_DIR/pids/voice-redis.pid"
    for ((i = 0; i < 100; i++)); do
        [[ "$(vcli ping 2>/dev/null || true)" == PONG ]] && return 0
        sleep 0.1
    done
    die "the voice redis-server did not start (see $RUN_DIR/logs/voice-redis.log)"
}

STOPPED=0
# shellcheck disable=SC2317 # runs from the EXIT trap
cleanup() {
    local rc=$?
    trap '' INT TERM
    trap - EXIT
    ((STOPPED)) && return
    STOPPED=1
    if [[ -n "${WRK_PID:-}" ]]; then kill -TERM "$WRK_PID" 2>/dev/null || true; fi
    if [[ -n "${SAMPLER_PID:-}" ]]; then kill -TERM "$SAMPLER_PID" 2>/dev/null || true; fi
    log "stopping the bench stack"
    suite_stop_services >/dev/null 2>&1 || true
    stop_voice_redis
    if [[ "${BENCH_KEEP:-0}" == 1 ]]; then
        "$ROOT/scripts/stack.sh" stop "$RUN_DIR" >/dev/null || true
    else
        "$ROOT/scripts/stack.sh" clean "$RUN_DIR" >/dev/null || true
        rm -rf "$RUN_DIR/voice-redis"
    fi
    ((rc == 0)) || warn "make bench failed (exit $rc); logs in $RUN_DIR/logs"
    exit "$rc"
}

start_service() {
    suite_start_service "$1"
    wait_http_200 "http://127.0.0.1:${SUITE_PORT[$1]}/readyz" 30 "${SUITE_PID[$1]}" ||
        die "$1 did not become ready (log $RUN_DIR/logs/$1.log)"
}

stop_service() {
    local pid="${SUITE_PID[$1]:-}"
    if [[ -n "$pid" ]] && pid_alive "$pid"; then
        kill -TERM "$pid"
        wait "$pid" 2>/dev/null || true
    fi
    SUITE_PID[$1]=""
    rm -f "$RUN_DIR/pids/$1.pid"
}

# Like suite_start (scripts/suite.sh), with the voice Redis on its own server.
start_suite() {
    local name var
    # shellcheck disable=SC2034 # read by the suite.sh functions
    SUITE_RUNDIR="$RUN_DIR"
    SUITE_BINDIR="$BUILD_DIR/bin"
    mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
    rm -f "$RUN_DIR/engage.env"
    stop_voice_redis
    "$ROOT/scripts/stack.sh" start "$RUN_DIR"
    for name in "${SUITE_ALL_SERVICES[@]}" engagectl supervisor voice-redis wrk; do
        rm -f "$RUN_DIR/logs/$name.log"
    done
    start_voice_redis
    load_env_file "$RUN_DIR/stack.env"
    export ENGAGE_VOICE_REDIS_URL="redis://127.0.0.1:$VOICE_PORT"
    REDIS_PORT="${ENGAGE_REDIS_URL##*:}"
    suite_pepper
    export ENGAGE_HTTP_ADDR=127.0.0.1
    export ENGAGE_LOG_LEVEL="${ENGAGE_LOG_LEVEL:-info}"
    export ENGAGE_VOICE_EVENTS_STREAM=engage:voice:events
    export ENGAGE_VOICE_COMMANDS_STREAM=engage:voice:commands
    export ENGAGE_VOICE_DEADLETTER_STREAM=engage:voice:deadletter
    export ENGAGE_DEMO_SERVICE=demo
    export ENGAGE_BIN_DIR="$SUITE_BINDIR"
    export ENGAGE_RUN_DIR="$RUN_DIR"
    SUITE_SERVICES=("${SUITE_ALL_SERVICES[@]}")
    for name in "${SUITE_SERVICES[@]}"; do
        SUITE_PORT["$name"]="$(pick_free_port)"
        var="$(suite_port_var "$name")"
        export "$var=${SUITE_PORT[$name]}"
    done
    export ENGAGE_URL="http://127.0.0.1:${SUITE_PORT[api]}"
    for name in "${SUITE_SERVICES[@]}"; do
        suite_start_service "$name"
    done
    suite_wait_ready || die "the services did not start"
    suite_create_demo
    suite_write_env
}

ctl() { "$BUILD_DIR/bin/engagectl" "$@"; }

# key_rate0 ADMIN_KEY ROLE: a new key without rate limit, through the admin API.
key_rate0() {
    local k
    k="$(ctl --admin-key "$1" key create --role "$2" --rate-limit 0 --name bench --json |
        jq -er 'select(.rateLimit == 0) | .apiKey')" || die "engagectl key create --rate-limit 0 failed"
    printf '%s\n' "$k"
}

# put_service ADMIN_KEY NAME CAPACITY
put_service() {
    jq --argjson c "$3" '.capacity.default = $c' "$TOOLS/service.json" >"$WORK/service-$3.json"
    ctl --admin-key "$1" service put "$2" "$WORK/service-$3.json" >/dev/null ||
        die "engagectl service put $2 failed"
}

# --- wrk -----------------------------------------------------------------------------------------

# wrk_run CONNS SECONDS COUNT [VAR=value...]: one wrk run of tools/bench/create.lua with the
# given BENCH_* settings (defaults: keys file $KEYS_A, service bench). With COUNT > 0 it stops
# after COUNT creates. Sets WRK_JSON to the script's result object.
WRK_PID=""
wrk_run() {
    local conns="$1" secs="$2" count="$3" threads=2 done_dir out n
    shift 3
    ((conns < threads)) && threads="$conns"
    done_dir="$(mktemp -d "$WORK/wrk.XXXXXX")"
    out="$done_dir/out"
    ((count > 0)) && secs=3600
    env BENCH_KEYS_FILE="$KEYS_A" BENCH_SERVICE=bench "$@" BENCH_THREADS="$threads" \
        BENCH_COUNT="$count" BENCH_DONE_DIR="$done_dir" \
        wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s -s "$TOOLS/create.lua" \
        "$ENGAGE_URL" >"$out" 2>&1 &
    WRK_PID=$!
    if ((count > 0)); then
        while pid_alive "$WRK_PID"; do
            n="$(find "$done_dir" -maxdepth 1 -name 'done.*' | wc -l)"
            if ((n >= threads)); then
                kill -INT "$WRK_PID" 2>/dev/null || true
                break
            fi
            sleep 0.02
        done
    fi
    wait "$WRK_PID" || true
    WRK_PID=""
    cat "$out" >>"$RUN_DIR/logs/wrk.log"
    WRK_JSON="$(sed -n 's/^BENCH_RESULT //p' "$out" | tail -n 1)"
    [[ -n "$WRK_JSON" ]] || die "wrk printed no result (see $RUN_DIR/logs/wrk.log)"
    rm -rf "$done_dir"
}
wj() { jq -r ".$1" <<<"$WRK_JSON"; }

# Archive lag sampler: while FILE exists, creates one scheduled callback about every 0.4 s
# with curl and polls PostgreSQL (one psql session) until its row is there; appends the lag in
# ms (from the 200 answer to the row being visible) to FILE.samples.
SAMPLER_PID=""
start_sampler() {
    local flag="$1"
    : >"$flag"
    : >"$flag.samples"
    (
        coproc PQ { psql -X -A -t -q "$ENGAGE_PG_DSN" 2>&1; }
        key="$(head -n 1 "$KEYS_A")"
        while [[ -e "$flag" ]]; do
            desired="$(date -u -d '+2 days' +%Y-%m-%dT%H:%M:%S.000Z)"
            body="{\"serviceName\":\"bench\",\"phoneNumber\":\"+1555$((RANDOM % 9000 + 1000))$((RANDOM % 90 + 100))\",\"desiredTime\":\"$desired\"}"
            resp="$(curl -s -m 5 "$ENGAGE_URL/engagement/v3/callbacks/create" -H "x-api-key: $key" \
                -H 'Content-Type: application/json' -d "$body" || true)"
            t_ok="$EPOCHREALTIME"
            id="$(jq -r '.data.id // empty' <<<"$resp" 2>/dev/null || true)"
            if [[ -n "$id" ]]; then
                for ((i = 0; i < 3000; i++)); do
                    echo "SELECT count(*) FROM callbacks WHERE id = '$id';" >&"${PQ[1]}"
                    read -r found <&"${PQ[0]}" || break
                    if [[ "$found" == 1 ]]; then
                        awk -v a="$t_ok" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }' \
                            >>"$flag.samples"
                        break
                    fi
                    sleep 0.01
                done
            fi
            sleep 0.4
        done
        kill "$PQ_PID" 2>/dev/null || true
    ) &
    SAMPLER_PID=$!
}
stop_sampler() {
    rm -f "$1"
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
}
# pctl FILE P: nearest-rank percentile of the numbers in FILE (one a line); 0 when empty.
pctl() {
    sort -n "$1" | awk -v p="$2" '{ v[NR] = $1 } END {
        if (NR == 0) { print 0; exit }
        k = int(p / 100 * NR + 0.999999); if (k < 1) k = 1; if (k > NR) k = NR; print v[k] }'
}

# --- phases ----------------------------------------------------------------------------------------

# idle_window SLUG NAME SECONDS: Redis commands per second on Engage's Redis while nothing
# happens; also stored as idle_redis_cmds_per_s_SLUG.
IDLE_WORST=0
idle_window() {
    local slug="$1" name="$2" secs="$3" c0 rate
    log "idle: $name (${secs}s)"
    redis_snap
    c0="$S_CALLS"
    sleep "$secs"
    redis_snap
    rate="$(calc "($S_CALLS - $c0) / $secs")"
    note "- idle, $name: $rate commands/s ($((S_CALLS - c0)) in ${secs} s)"
    res "idle_redis_cmds_per_s_$slug" "$rate"
    if awk -v a="$rate" -v b="$IDLE_WORST" 'BEGIN { exit !(a > b) }'; then IDLE_WORST="$rate"; fi
}

due_count() { # due_count TENANT SERVICE
    rcli zcard "eg:{t:$1}:due:$2"
}
booked_total() { # SERVICE: sum of due ZSET sizes over every bench tenant
    local t n=0
    for t in "${TENANTS[@]}"; do n=$((n + $(due_count "$t" "$1"))); done
    printf '%s\n' "$n"
}

phase_lua_limit() {
    local sha c n csv rps best=0 blob
    n="$(scaled 100000 5000)"
    sha="$(rcli -n 9 script load "$(cat "$TOOLS/lua_create.lua")")"
    blob="$(head -c 150 /dev/urandom | base64 -w0 | head -c 200)"
    for c in "${SWEEP_CONNS[@]}"; do
        csv="$(redis-benchmark -h 127.0.0.1 -p "$REDIS_PORT" --dbnum 9 -c "$c" -n "$n" \
            -r 100000000 --csv EVALSHA "$sha" 3 '{b}:cb:__rand_int__' '{b}:slots' '{b}:due' \
            "$blob" __rand_int__ __rand_int__ 'id__rand_int__' | tail -n 1)"
        rps="$(awk -F'","' '{ print $2 }' <<<"$csv")"
        rps="$(round "$rps")"
        LUA_LIMIT[$c]="$rps"
        log "redis-benchmark Lua create, $c connections: $rps/s"
        if ((rps > best)); then best="$rps"; fi
    done
    rcli -n 9 flushdb >/dev/null
    note "- redis-benchmark Lua create (SET 200-byte blob + HINCRBY + ZADD, random keys): $(
        for c in "${SWEEP_CONNS[@]}"; do printf '%s connections %s/s; ' "$c" "${LUA_LIMIT[$c]}"; done)"
}

phase_creates() {
    local total c n0 n1 m0 sweep_n half_n best=0 best_c=0 rps lat_low delay target
    total="$(scaled 100000 2000)"
    sweep_n="$(scaled 22500 450)"
    half_n=$((total - ${#SWEEP_CONNS[@]} * sweep_n))
    settle
    redis_snap
    m0="$S_MEM"
    n0="$(due_count "$TENANT_A" bench)"
    for c in "${SWEEP_CONNS[@]}"; do
        start_sampler "$WORK/lag-$c"
        wrk_run "$c" 0 "$sweep_n" BENCH_MODE=scheduled BENCH_FROM_MS="$(($(now_ms) + DAY_MS))" \
            BENCH_TO_MS="$(($(now_ms) + 13 * DAY_MS))"
        stop_sampler "$WORK/lag-$c"
        rps="$(round "$(wj rps)")"
        SWEEP_JSON[$c]="$WRK_JSON"
        log "scheduled creates, $c connections: $rps/s, p50 $(wj p50_ms) ms, p99 $(wj p99_ms) ms, errors $(wj errors_status)"
        note "- scheduled creates, $c connections: $rps/s, p50 $(wj p50_ms) ms, p99 $(wj p99_ms) ms, non-2xx $(wj errors_status), archive lag samples p50 $(pctl "$WORK/lag-$c.samples" 50) ms / max $(pctl "$WORK/lag-$c.samples" 100) ms ($(wc -l <"$WORK/lag-$c.samples") samples)"
        if ((rps > best)); then
            best="$rps"
            best_c="$c"
        fi
    done
    res creates_per_s "$best"
    res creates_connections "$best_c"
    CREATES_C="$best_c"
    res p50_ms "$(jq -r .p50_ms <<<"${SWEEP_JSON[$best_c]}")"
    res p99_ms "$(jq -r .p99_ms <<<"${SWEEP_JSON[$best_c]}")"
    res lua_create_limit_per_s "${LUA_LIMIT[$best_c]}"
    res creates_ratio "$(calc "$best / ${LUA_LIMIT[$best_c]}")"
    res archive_lag_ms "$(pctl "$WORK/lag-$best_c.samples" 99)"
    res archive_lag_p50_ms "$(pctl "$WORK/lag-$best_c.samples" 50)"

    # Half load: the best connection count, each connection pausing between requests (wrk's
    # delay() in create.lua) so that the rate is about half the peak.
    lat_low="$(jq -r .p50_ms <<<"${SWEEP_JSON[${SWEEP_CONNS[0]}]}")"
    target="$(calc "$best / 2")"
    delay="$(awk -v c="$best_c" -v t="$target" -v l="$lat_low" \
        'BEGIN { d = int(1000 * c / t - l + 0.5); print (d < 1 ? 1 : d) }')"
    wrk_run "$best_c" 0 "$half_n" BENCH_MODE=scheduled BENCH_DELAY_MS="$delay" \
        BENCH_FROM_MS="$(($(now_ms) + DAY_MS))" BENCH_TO_MS="$(($(now_ms) + 13 * DAY_MS))"
    rps="$(round "$(wj rps)")"
    res p99_ms_half_load "$(wj p99_ms)"
    res p50_ms_half_load "$(wj p50_ms)"
    res half_load_per_s "$rps"
    log "half load: $rps/s ($best_c connections, ${delay} ms pause each): p50 $(wj p50_ms) ms, p99 $(wj p99_ms) ms"
    note "- half load: $best_c connections pausing ${delay} ms before each request: $rps/s (target $(round "$target")/s), p50 $(wj p50_ms) ms, p99 $(wj p99_ms) ms"

    redis_settled
    redis_snap
    n1="$(due_count "$TENANT_A" bench)"
    MEM_N[0]=$((n1 - n0))
    MEM_B[0]="$(calc "($S_MEM - $m0) / (${MEM_N[0]})")"
    log "Redis memory, 0 kB user data: ${MEM_B[0]} bytes per callback (${MEM_N[0]} callbacks)"
}

# Where a booked callback's bytes go: MEMORY USAGE of one callback's keys (its record and its
# number's hash; ~50 more bytes each for the expiry entry are not in MEMORY USAGE) and the due
# ZSET's share per member.
mem_breakdown() {
    local t="$TENANT_A" id phone cb num due n
    id="$(rcli zrange "eg:{t:$t}:due:bench" 0 0)"
    cb="$(rcli memory usage "eg:{t:$t}:cb:$id" samples 0)"
    phone="$(rcli --raw get "eg:{t:$t}:cb:$id" | grep -ao '+[0-9]\{8,15\}' | awk 'NR == 1')"
    num="$(rcli memory usage "eg:{t:$t}:n:$phone" samples 0)"
    n="$(rcli zcard "eg:{t:$t}:due:bench")"
    due="$(calc "$(rcli memory usage "eg:{t:$t}:due:bench" samples 0) / $n")"
    note "- one booked callback's keys (MEMORY USAGE): record ${cb:-?} B, the number's hash ${num:-?} B, due ZSET $(round "$due") B per member"
}

# mem_population KB COUNT KEYSFILE: COUNT scheduled creates with KB of user data, far ahead;
# sets MEM_N[KB] and MEM_B[KB] (used_memory delta per callback).
mem_population() {
    local kb="$1" count="$2" keyfile="$3" m0 n0 n1
    redis_settled
    redis_snap
    m0="$S_MEM"
    n0="$(booked_total bench)"
    wrk_run "$CREATES_C" 0 "$count" BENCH_KEYS_FILE="$keyfile" BENCH_MODE=scheduled \
        BENCH_USERDATA_KB="$kb" BENCH_FROM_MS="$(($(now_ms) + DAY_MS))" \
        BENCH_TO_MS="$(($(now_ms) + 13 * DAY_MS))"
    redis_settled
    redis_snap
    n1="$(booked_total bench)"
    MEM_N[$kb]=$((n1 - n0))
    MEM_B[$kb]="$(calc "($S_MEM - $m0) / ${MEM_N[$kb]}")"
    log "Redis memory, $kb kB user data: ${MEM_B[$kb]} bytes per callback (${MEM_N[$kb]} callbacks, $(round "$(wj rps)")/s)"
}

# regress "x y" lines on stdin: prints "intercept slope" (least squares).
regress() {
    awk '{ n++; sx += $1; sy += $2; sxx += $1 * $1; sxy += $1 * $2 }
        END { b = (n * sxy - sx * sy) / (n * sxx - sx * sx); a = (sy - b * sx) / n; printf "%.1f %.1f\n", a, b }'
}

phase_immediate() {
    local c rps best=0 best_c=0
    stop_service voice-sim
    settle
    for c in "${SWEEP_CONNS[@]}"; do
        wrk_run "$c" "$(scaled 8 3)" 0 BENCH_MODE=immediate BENCH_SERVICE=bench
        rps="$(round "$(wj rps)")"
        log "immediate creates, $c connections: $rps/s, p50 $(wj p50_ms) ms, p99 $(wj p99_ms) ms, errors $(wj errors_status)"
        note "- immediate creates, $c connections: $rps/s, p50 $(wj p50_ms) ms, p99 $(wj p99_ms) ms, non-2xx $(wj errors_status)"
        if ((rps > best)); then
            best="$rps"
            best_c="$c"
        fi
    done
    res immediate_creates_per_s "$best"
    res immediate_creates_connections "$best_c"
    # The bridge has written a dial for each: let it finish, then have the simulator start
    # after them (it would otherwise play every one of those calls).
    settle
    vcli xgroup setid "$ENGAGE_VOICE_COMMANDS_STREAM" voice-sim '$' >/dev/null
    vcli xtrim "$ENGAGE_VOICE_COMMANDS_STREAM" MAXLEN 0 >/dev/null
    start_service voice-sim
}

pg_history_bytes() {
    pgq "SELECT sum(pg_total_relation_size(p.relid)) FROM (
           SELECT relid FROM pg_partition_tree('callbacks')
           UNION ALL SELECT relid FROM pg_partition_tree('callback_events')
           UNION ALL SELECT relid FROM pg_partition_tree('callback_data')) AS p"
}

# life_group KB COUNT SERVICE: COUNT immediate callbacks with KB of user data on SERVICE, each
# through its whole life (voice-sim answers); sets LIFE_* of the group and PG_B[KB].
LIFE_DONE=0
life_group() {
    local kb="$1" count="$2" svc="$3" p0 p1 v0 done_sql
    settle
    sleep 1
    p0="$(pg_history_bytes)"
    v0="$(voice_calls)"
    pg_table_bytes >"$WORK/pg-$kb-before"
    cmd_snap "$WORK/cmds-life-$kb-before"
    redis_snap
    local c0="$S_CALLS" e0="$S_EVALSHA" r0="$S_READS" t0=$SECONDS
    wrk_run 4 0 "$count" BENCH_MODE=immediate BENCH_SERVICE="$svc" BENCH_USERDATA_KB="$kb"
    LIFE_DONE=$((LIFE_DONE + count))
    done_sql="SELECT count(*) FROM callbacks WHERE service = '$svc' AND state = 'COMPLETED'"
    wait_until 600 "$count $svc callbacks to complete" pg_count_is "$done_sql" "$LIFE_DONE"
    wait_until 600 "JetStream consumers" js_idle
    sleep 2
    redis_snap
    cmd_snap "$WORK/cmds-life-$kb-after"
    pg_table_bytes >"$WORK/pg-$kb-after"
    LIFE_CMDS[$kb]="$(calc "($S_CALLS - $c0) / $count")"
    LIFE_EVALSHA[$kb]="$(calc "($S_EVALSHA - $e0) / $count")"
    LIFE_READS[$kb]="$(calc "($S_READS - $r0) / $count")"
    LIFE_VOICE[$kb]="$(calc "($(voice_calls) - $v0) / $count")"
    p1="$(pg_history_bytes)"
    PG_B[$kb]="$(calc "($p1 - $p0) / $count")"
    log "life, $kb kB: ${LIFE_CMDS[$kb]} Redis commands, ${LIFE_READS[$kb]} round trips, ${PG_B[$kb]} PostgreSQL bytes per callback ($count in $((SECONDS - t0)) s)"
    note "- immediate life, $kb kB user data, $count callbacks: ${LIFE_CMDS[$kb]} commands (${LIFE_EVALSHA[$kb]} EVALSHA), ${LIFE_READS[$kb]} round trips on Engage's Redis; ${LIFE_VOICE[$kb]} commands on the voice Redis (ors-bridge + voice-sim); ${PG_B[$kb]} bytes in PostgreSQL ($(join "$WORK/pg-$kb-before" "$WORK/pg-$kb-after" | awk -v n="$count" '{ printf "%s%s %.0f", (NR > 1 ? ", " : ""), $1, ($3 - $2) / n }'))"
    note "  - commands per callback: $(cmd_diff "$WORK/cmds-life-$kb-before" "$WORK/cmds-life-$kb-after" "$count")"
}

# pg_table_bytes: "<table>.<heap|index|toast> bytes" lines over each history table's partitions.
pg_table_bytes() {
    pgq "SELECT t.name, sum(pg_relation_size(p.relid)), sum(pg_indexes_size(p.relid)),
                sum(pg_total_relation_size(p.relid) - pg_relation_size(p.relid) - pg_indexes_size(p.relid))
         FROM (VALUES ('callbacks'), ('callback_events'), ('callback_data')) AS t(name),
              LATERAL pg_partition_tree(t.name::regclass) AS p GROUP BY t.name" |
        awk -F'|' '{ print $1 ".heap", $2; print $1 ".index", $3; print $1 ".toast", $4 }' | sort
}

phase_lateness() {
    local count from to c0 e0 r0 done_sql
    count="$(scaled 10000 200)"
    settle
    cmd_snap "$WORK/cmds-late-before"
    redis_snap
    c0="$S_CALLS" e0="$S_EVALSHA" r0="$S_READS"
    from=$(($(now_ms) + 20000))
    to=$((from + 60000))
    log "lateness: $count callbacks due from $(date -u -d "@$((from / 1000))" +%T) to $(date -u -d "@$((to / 1000))" +%T)"
    wrk_run "$CREATES_C" 0 "$count" BENCH_MODE=scheduled BENCH_SERVICE=late BENCH_FROM_MS="$from" \
        BENCH_TO_MS="$to"
    (($(now_ms) < from)) || warn "the creates took longer than the 20 s lead; early ones were due before all were booked"
    done_sql="SELECT count(*) FROM callbacks WHERE service = 'late' AND state = 'COMPLETED'"
    wait_until 900 "the due callbacks to complete" pg_count_is "$done_sql" "$count"
    wait_until 600 "JetStream consumers" js_idle
    sleep 2
    redis_snap
    cmd_snap "$WORK/cmds-late-after"
    res redis_cmds_scheduled_life "$(calc "($S_CALLS - $c0) / $count")"
    res redis_roundtrips_scheduled_life "$(calc "($S_READS - $r0) / $count")"
    note "- scheduled life (booked ~1 min ahead, dispatched, answered), $count callbacks: ${RES[redis_cmds_scheduled_life]} commands ($(calc "($S_EVALSHA - $e0) / $count") EVALSHA), ${RES[redis_roundtrips_scheduled_life]} round trips"
    note "  - commands per callback: $(cmd_diff "$WORK/cmds-late-before" "$WORK/cmds-late-after" "$count")"
    # Lateness: the dial's stream entry id (ms) minus the desired time, first attempts.
    pgq "SELECT id, (extract(epoch FROM desired_time) * 1000)::bigint FROM callbacks
         WHERE service = 'late'" | tr '|' ' ' | sort >"$WORK/late-desired"
    vcli --raw eval "$(cat "$TOOLS/dials.lua")" 1 "$ENGAGE_VOICE_COMMANDS_STREAM" late |
        awk '$3 == 1 { split($1, t, "-"); print $2, t[1] }' | sort >"$WORK/late-dialled"
    join "$WORK/late-desired" "$WORK/late-dialled" | awk '{ print $3 - $2 }' >"$WORK/late-ms"
    res dispatch_lateness_p99_ms "$(pctl "$WORK/late-ms" 99)"
    res dispatch_lateness_p50_ms "$(pctl "$WORK/late-ms" 50)"
    note "- dispatch lateness of $(wc -l <"$WORK/late-ms") first dials: p50 ${RES[dispatch_lateness_p50_ms]} ms, p99 ${RES[dispatch_lateness_p99_ms]} ms, max $(pctl "$WORK/late-ms" 100) ms"
}

phase_seed() {
    local cap step nseed base horizon nfit i t c0 v0 window queued w_start resp
    cap="$(scaled 100 1)"
    step=$((900000 / cap))
    nseed=$((1344 * cap))
    queued="$(scaled 1000 10)"
    put_service "$ADMIN_A" seed "$cap"
    stop_service voice-sim
    settle
    base=$(($(now_ms) + 45000))
    # Callbacks step ms apart from base fill every 15-minute slot with exactly cap; the last few
    # lie beyond the 14-day horizon until about 45 s from now: those are booked when they fit.
    horizon=$(($(now_ms) + 14 * DAY_MS - 2000))
    nfit=$(((horizon - base) / step + 1))
    ((nfit > nseed)) && nfit=$nseed
    log "seed: $nseed callbacks, $cap per 15-minute slot for 14 days, from $(date -u -d "@$((base / 1000))" +%T)"
    wrk_run "$CREATES_C" 0 "$nfit" BENCH_MODE=scheduled BENCH_SERVICE=seed BENCH_FROM_MS="$base" \
        BENCH_SEQ_STEP_MS="$step"
    note "- seed: $nfit callbacks booked at $(round "$(wj rps)")/s (non-2xx $(wj errors_status))"
    for ((i = nfit; i < nseed; i++)); do
        t=$((base + i * step))
        while (($(now_ms) < t - 14 * DAY_MS + 500)); do sleep 0.2; done
        resp="$(curl -s "$ENGAGE_URL/engagement/v3/callbacks/create" -H "x-api-key: $(head -n 1 "$KEYS_A")" \
            -H 'Content-Type: application/json' \
            -d "{\"serviceName\":\"seed\",\"phoneNumber\":\"+1555$((1000000 + i))\",\"desiredTime\":\"$(date -u -d "@$((t / 1000))" +%Y-%m-%dT%H:%M:%S).$(printf '%03d' $((t % 1000)))Z\"}")"
        jq -e '.status.code == 200' <<<"$resp" >/dev/null || warn "seed callback $i: $resp"
    done
    wrk_run 4 0 "$queued" BENCH_MODE=immediate BENCH_SERVICE=seed
    settle
    RES[seed_waiting]="$(due_count "$TENANT_A" seed)"
    RES[seed_queued]="$(rcli zcard "eg:{t:$TENANT_A}:q:seed")"
    local dispatched=$((RES[seed_queued] - queued))
    log "seed: ${RES[seed_waiting]} booked and waiting, $dispatched already due and dispatched, $queued immediate queued (voice-sim stopped: never answered)"
    # Steady state: dispatches flow (one every step ms) from base on; a window of 8 steps.
    window=$((8 * step / 1000))
    if ((window > $(scaled 72 10))); then window="$(scaled 72 10)"; fi
    w_start=$((base + 2000))
    while (($(now_ms) < w_start)); do sleep 0.2; done
    log "seed: measuring ${window}s of steady state"
    v0="$(voice_calls)"
    cmd_snap "$WORK/cmds-seed-before"
    redis_snap
    c0="$S_CALLS"
    local d0
    d0="$(vcli xlen "$ENGAGE_VOICE_COMMANDS_STREAM")"
    sleep "$window"
    redis_snap
    cmd_snap "$WORK/cmds-seed-after"
    res seed_scenario_redis_cmds_per_min "$(calc "($S_CALLS - $c0) * 60 / $window")"
    note "- seed scenario: ${RES[seed_waiting]} booked and waiting ($dispatched more fell due while the rest was booked), $queued immediate queued; $((S_CALLS - c0)) commands in ${window} s with $(($(vcli xlen "$ENGAGE_VOICE_COMMANDS_STREAM") - d0)) dispatches (GES's model: every waiting callback costs 1 command a minute); voice Redis $(calc "($(voice_calls) - $v0) * 60 / $window")/min"
    note "  - commands per minute: $(cmd_diff "$WORK/cmds-seed-before" "$WORK/cmds-seed-after" "$(calc "$window / 60")")"
}

# --- output --------------------------------------------------------------------------------------

write_json() {
    local k tmp="$OUT_JSON.tmp"
    mkdir -p "$(dirname "$OUT_JSON")"
    {
        for k in "${!RES[@]}"; do printf '%s %s\n' "$k" "${RES[$k]}"; done
    } | jq -Rn --argjson rss "$RSS_JSON" '
        [inputs | split(" ") | {(.[0]): (.[1] | tonumber)}] | add | . + {rss_mb: $rss}
        | to_entries | sort_by(.key) | from_entries' >"$tmp"
    mv -f "$tmp" "$OUT_JSON"
}

# One row: figure, GES, Engage, ratio (GES / Engage, or Engage / limit), target, met?
ROWS=()
row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }
# ok VALUE OP LIMIT -> "met" / "**missed**"
ok() { if awk -v a="$1" -v b="$3" "BEGIN { exit !(a $2 b) }"; then echo met; else echo '**missed**'; fi; }
x() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == 0) print "—"; else if (a / b < 10) printf "%.1f×\n", a / b; else printf "%.0f×\n", a / b }'; }

# shellcheck disable=SC2016 # backquotes are Markdown here
build_rows() {
    local rss_idle_max rss_idle_sum
    rss_idle_max="$(jq '[.[] | .idle] | max' <<<"$RSS_JSON")"
    rss_idle_sum="$(jq '[.[] | .idle] | add' <<<"$RSS_JSON")"
    row '`creates_per_s` / `lua_create_limit_per_s`' '—' \
        "${RES[creates_per_s]} / ${RES[lua_create_limit_per_s]} = $(round "${RES[creates_ratio]}" 3)" \
        "" '≥ 0.25' "$(ok "${RES[creates_ratio]}" '>=' 0.25)"
    row '`immediate_creates_per_s`' '—' "${RES[immediate_creates_per_s]}" '' '' ''
    row '`p50_ms` / `p99_ms` at the peak' '—' "${RES[p50_ms]} / ${RES[p99_ms]}" '' '' ''
    row '`p99_ms_half_load`' '—' "${RES[p99_ms_half_load]}" '' '≤ 10' \
        "$(ok "${RES[p99_ms_half_load]}" '<=' 10)"
    row '`redis_cmds_immediate_life` (EVALSHA and the commands inside scripts counted)' '~110' \
        "$(round "${RES[redis_cmds_immediate_life]}" 1)" "$(x 110 "${RES[redis_cmds_immediate_life]}")" '≤ 30' \
        "$(ok "${RES[redis_cmds_immediate_life]}" '<=' 30)"
    row '`redis_cmds_scheduled_life` (booked ~1 min ahead)' '~111 (110 + 1/min waiting)' \
        "$(round "${RES[redis_cmds_scheduled_life]}" 1)" "$(x 111 "${RES[redis_cmds_scheduled_life]}")" '' ''
    row '`redis_roundtrips_immediate_life`' '—' "$(round "${RES[redis_roundtrips_immediate_life]}" 1)" '' '≤ 8' \
        "$(ok "${RES[redis_roundtrips_immediate_life]}" '<=' 8)"
    row '`redis_bytes_per_cb`' '4,608–5,632' "${RES[redis_bytes_per_cb]}" \
        "$(x 5120 "${RES[redis_bytes_per_cb]}")" '≤ 600' "$(ok "${RES[redis_bytes_per_cb]}" '<=' 600)"
    row '`redis_bytes_per_userdata_kb`' '1,280' "${RES[redis_bytes_per_userdata_kb]}" \
        "$(x 1280 "${RES[redis_bytes_per_userdata_kb]}")" '≤ 1,075' \
        "$(ok "${RES[redis_bytes_per_userdata_kb]}" '<=' 1075)"
    row '`pg_bytes_per_cb`' '6,656–7,168' "${RES[pg_bytes_per_cb]}" \
        "$(x 6912 "${RES[pg_bytes_per_cb]}")" '≤ 1,536' "$(ok "${RES[pg_bytes_per_cb]}" '<=' 1536)"
    row '`pg_bytes_per_userdata_kb`' '3,072' "${RES[pg_bytes_per_userdata_kb]}" \
        "$(x 3072 "${RES[pg_bytes_per_userdata_kb]}")" '≤ 1,126' \
        "$(ok "${RES[pg_bytes_per_userdata_kb]}" '<=' 1126)"
    row '`idle_redis_cmds_per_s` (worst of 0/100k booked, 1/50 tenants)' \
        '50 per node and tenant (2,500 for 50)' "${RES[idle_redis_cmds_per_s]}" \
        "$(x 50 "${RES[idle_redis_cmds_per_s]}")" '≤ 1' "$(ok "${RES[idle_redis_cmds_per_s]}" '<=' 1)"
    row '`seed_scenario_redis_cmds_per_min`' '138,756' "${RES[seed_scenario_redis_cmds_per_min]}" \
        "$(x 138756 "${RES[seed_scenario_redis_cmds_per_min]}")" '≤ 1,000' \
        "$(ok "${RES[seed_scenario_redis_cmds_per_min]}" '<=' 1000)"
    row '`dispatch_lateness_p99_ms`' '—' "${RES[dispatch_lateness_p99_ms]}" '' '≤ 1,000' \
        "$(ok "${RES[dispatch_lateness_p99_ms]}" '<=' 1000)"
    row '`archive_lag_ms` (p99 of samples at the peak)' '—' "$(round "${RES[archive_lag_ms]}")" '' '≤ 2,000' \
        "$(ok "${RES[archive_lag_ms]}" '<=' 2000)"
    row '`rss_mb` idle: largest service; all four' '2,048 (a 2 GiB node)' \
        "$rss_idle_max; $(round "$rss_idle_sum" 1)" "$(x 2048 "$rss_idle_sum") (all four)" \
        '≤ 20 each' "$(ok "$rss_idle_max" '<=' 20)"
}

print_table() {
    printf '\n%s\n%s\n' '| figure | GES | Engage | GES ÷ Engage | target | |' '|---|---|---|---|---|---|'
    printf '%s\n' "${ROWS[@]}"
    printf '\nrss_mb: %s\n' "$(jq -c . <<<"$RSS_JSON")"
}

# shellcheck disable=SC2016 # backquotes are Markdown here
write_doc() {
    local gen tmp="$OUT_MD.tmp" begin='<!-- bench:begin (generated by make bench; edit outside these markers) -->' \
        end='<!-- bench:end -->' scale_note=""
    [[ "$SCALE" == 1 ]] || scale_note="**Scaled run (BENCH_SCALE=$SCALE): counts and durations reduced; not comparable with the targets.**"
    gen="$(
        echo "$begin"
        echo
        echo "Last run: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average before the run $LOAD_BEFORE and at its end $(cut -d' ' -f1-3 /proc/loadavg), commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD 2>/dev/null || echo ' + local changes'), $((SECONDS - BENCH_START)) s. $scale_note"
        echo
        echo '```sh'
        echo "make bench        # = scripts/bench.sh$([[ "$SCALE" == 1 ]] || echo "; this run: BENCH_SCALE=$SCALE")"
        echo '```'
        echo
        echo '| figure | GES | Engage | GES ÷ Engage | target | |'
        echo '|---|---|---|---|---|---|'
        printf '%s\n' "${ROWS[@]}"
        echo
        echo "\`rss_mb\` (VmRSS idle after start, VmHWM at the end): \`$(jq -c . <<<"$RSS_JSON")\`"
        echo
        echo 'This run in detail:'
        echo
        printf '%s\n' "${NOTES[@]}"
        echo
        echo "$end"
    )"
    if [[ -f "$OUT_MD" ]] && grep -qF '<!-- bench:begin' "$OUT_MD" && grep -qF "$end" "$OUT_MD"; then
        awk -v gen="$gen" '
            /<!-- bench:begin/ { print gen; skip = 1; next }
            /<!-- bench:end -->/ { skip = 0; next }
            !skip { print }' "$OUT_MD" >"$tmp"
    else
        {
            echo '# Benchmarks'
            echo
            echo '`make bench` measures Engage against the costs GES publishes; see scripts/bench.sh.'
            echo
            echo "$gen"
        } >"$tmp"
    fi
    mv -f "$tmp" "$OUT_MD"
}

# --- main ------------------------------------------------------------------------------------------

main() {
    local i t kb
    declare -gA LUA_LIMIT=() SWEEP_JSON=() MEM_N=() MEM_B=() LIFE_CMDS=() \
        LIFE_EVALSHA=() LIFE_READS=() LIFE_VOICE=() PG_B=()
    LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
    if [[ "${ENGAGE_SKIP_DEPS:-0}" != 1 ]]; then
        "$ROOT/scripts/deps.sh"
    fi
    for t in wrk redis-benchmark redis-cli psql jq curl; do
        command -v "$t" >/dev/null || die "$t is missing (scripts/deps.sh installs it)"
    done
    if [[ "${ENGAGE_SKIP_BUILD:-0}" != 1 ]]; then
        log "building (release) into $BUILD_DIR"
        cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
        cmake --build "$BUILD_DIR" -j"$(nproc)" --target engage-api engage-scheduler \
            engage-ors-bridge engage-archiver voice-sim engagectl >/dev/null
    fi
    log "bench run directory $RUN_DIR (BENCH_SCALE=$SCALE, load average $LOAD_BEFORE)"
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    start_suite
    rm -rf "$WORK"
    mkdir -p "$WORK"
    # Redis's latency monitor (a diagnostic; durability unchanged) records how long the
    # fsync of every write (appendfsync always) blocked it: the tail of the create latency.
    rcli config set latency-monitor-threshold 5 >/dev/null

    # Tenants: A (the demo tenant) and 49 more; every key used from here on has no rate limit,
    # so the api keeps no bucket for it and syncs nothing to Redis (services/api/ratelimit.c).
    TENANT_A="$ENGAGE_TENANT_ID"
    ADMIN_A="$(key_rate0 "$ENGAGE_ADMIN_KEY" admin)"
    KEYS_A="$WORK/keys-a"
    key_rate0 "$ENGAGE_ADMIN_KEY" api >"$KEYS_A"
    TENANTS=("$TENANT_A")
    declare -ga OTHER_ADMIN=()
    log "creating 49 more tenants"
    for ((i = 1; i < 50; i++)); do
        local json
        json="$(ctl tenant create "bench-$i-$RANDOM" --json 2>>"$RUN_DIR/logs/engagectl.log" | grep '^{' | tail -n 1)"
        TENANTS+=("$(jq -r .tenantId <<<"$json")")
        OTHER_ADMIN+=("$(key_rate0 "$(jq -r .adminKey <<<"$json")" admin)")
    done
    printf '%s\n' "${OTHER_ADMIN[@]}" >"$WORK/keys-others"
    local admin_used=$SECONDS
    for t in bench life late; do put_service "$ADMIN_A" "$t" 100000; done

    phase_lua_limit

    # The api forgets a rate-limited key's bucket (and stops syncing it) 30 s after its last use.
    while ((SECONDS < admin_used + 33)); do sleep 0.5; done
    RSS_IDLE=()
    for t in api scheduler ors-bridge archiver; do RSS_IDLE+=("$t=$(vm_kb "$t" VmRSS)"); done
    idle_window 0cb_1t "0 booked, 1 tenant" "$(scaled 20 10)"
    for ((i = 0; i < 49; i++)); do put_service "${OTHER_ADMIN[$i]}" bench 100000; done
    idle_window 0cb_50t "0 booked, 50 tenants" "$(scaled 20 10)"

    phase_creates
    res redis_bytes_per_cb "$(round "${MEM_B[0]}")"
    mem_breakdown
    idle_window 100k_1t "100k booked in 1 tenant" "$(scaled 20 10)"
    mem_population 1 "$(scaled 100000 2000)" "$WORK/keys-others"
    idle_window 200k_50t "200k booked over 50 tenants" "$(scaled 20 10)"
    mem_population 10 "$(scaled 10000 200)" "$KEYS_A"
    mem_population 100 "$(scaled 1000 50)" "$KEYS_A"
    read -r _ slope < <(for kb in 0 1 10 100; do echo "$kb ${MEM_B[$kb]}"; done | regress)
    res redis_bytes_per_userdata_kb "$(round "$slope")"
    note "- Redis memory per callback (used_memory delta / callbacks booked): $(for kb in 0 1 10 100; do printf '%s kB: %s B (%s callbacks); ' "$kb" "$(round "${MEM_B[$kb]}")" "${MEM_N[$kb]}"; done)least-squares slope ${RES[redis_bytes_per_userdata_kb]} B per kB"
    res idle_redis_cmds_per_s "$IDLE_WORST"

    phase_immediate

    life_group 0 "$(scaled 2000 200)" life
    res redis_cmds_immediate_life "${LIFE_CMDS[0]}"
    res redis_cmds_immediate_life_evalsha "${LIFE_EVALSHA[0]}"
    res redis_roundtrips_immediate_life "${LIFE_READS[0]}"
    res voice_redis_cmds_immediate_life "${LIFE_VOICE[0]}"
    life_group 1 "$(scaled 2000 200)" life
    life_group 10 "$(scaled 500 50)" life
    life_group 100 "$(scaled 100 20)" life
    res pg_bytes_per_cb "$(round "${PG_B[0]}")"
    read -r _ slope < <(for kb in 0 1 10 100; do echo "$kb ${PG_B[$kb]}"; done | regress)
    res pg_bytes_per_userdata_kb "$(round "$slope")"
    note "- PostgreSQL per completed callback (three history tables with partitions, indexes and TOAST): $(for kb in 0 1 10 100; do printf '%s kB: %s B; ' "$kb" "$(round "${PG_B[$kb]}")"; done)least-squares slope ${RES[pg_bytes_per_userdata_kb]} B per kB"

    phase_lateness
    phase_seed

    local parts=() kv name
    for kv in "${RSS_IDLE[@]}"; do
        name="${kv%%=*}"
        parts+=("\"$name\": {\"idle\": $(round "$(calc "${kv#*=} / 1024")" 1), \"peak\": $(round "$(calc "$(vm_kb "$name" VmHWM) / 1024")" 1)}")
    done
    RSS_JSON="$(IFS=,; echo "{${parts[*]}}" | jq -c .)"
    local fsync
    fsync="$(rcli latency latest | tr -d '\r' | paste -sd' ' | grep -o 'aof-fsync-always [0-9]* [0-9]* [0-9]*' || true)"
    # LATENCY LATEST: event, time of the latest spike, its ms, the worst ms since the start.
    if [[ -n "$fsync" ]]; then
        note "- Redis fsync (appendfsync always) blocked the server for up to $(awk '{ print $4 }' <<<"$fsync") ms (latency monitor, events over 5 ms)"
    else
        note "- Redis fsync (appendfsync always): no block over 5 ms (latency monitor)"
    fi
    res bench_scale "$SCALE"
    res bench_seconds $((SECONDS - BENCH_START))
    write_json
    build_rows
    write_doc
    print_table
    log "wrote $OUT_JSON and $OUT_MD in $((SECONDS - BENCH_START)) s"
}

main "$@"
