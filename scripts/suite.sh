# shellcheck shell=bash
# The whole Engage suite on one machine: the stack (scripts/stack.sh), the services, the demo
# tenant and callback service, RUNDIR/engage.env, and a supervisor. Sourced by run.sh and
# test.sh; the functions run in the caller's shell, so the services are its children (which is
# what lets the supervisor learn their exit codes with `wait`).
#
#   suite_start RUNDIR BINDIR [TOPOLOGY]
#                               stack (single, sentinel or cluster: the argument, else
#                               $TOPOLOGY, else single), pepper, services, /readyz, demo tenant
#                               + service, and last RUNDIR/engage.env (atomically)
#   suite_supervise             foreground loop: restarts any service that exits
#   suite_stop_services         SIGTERM every service, 5 s grace, then SIGKILL; returns 1 when
#                               one did not exit cleanly (code 0) in time
#   suite_stop RUNDIR           suite_stop_services + scripts/stack.sh stop
#
# Variables the caller may set before suite_start:
#   SUITE_SERVICE_ENV   array of extra NAME=value given to every service (e.g. ASAN_OPTIONS)
#   SUITE_READY_TIMEOUT seconds to wait for every /readyz (default 30)
#
# Layout of RUNDIR: pids/<name>.pid (each process's own pid), logs/<name>.log (its stderr and
# stdout), logs/supervisor.log (exits and restarts), pepper (mode 600), stack.env, engage.env.

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SUITE_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Start order: the scheduler first (it applies the migrations), the api before the simulator.
SUITE_ALL_SERVICES=(scheduler archiver ors-bridge api voice-sim)
declare -g -A SUITE_BINARY=(
    [api]=engage-api
    [scheduler]=engage-scheduler
    [ors-bridge]=engage-ors-bridge
    [archiver]=engage-archiver
    [voice-sim]=voice-sim
)
declare -g -A SUITE_PORT=() SUITE_PID=() SUITE_STARTED_US=() SUITE_QUICK_FAILS=()
declare -g -A SUITE_RESTART_AFTER_US=()
declare -g -a SUITE_SERVICES=()
if ! declare -p SUITE_SERVICE_ENV >/dev/null 2>&1; then
    declare -g -a SUITE_SERVICE_ENV=()
fi
SUITE_RUNDIR=""
SUITE_BINDIR=""

now_us() { printf '%s\n' "${EPOCHREALTIME/./}"; }

# ENGAGE_<NAME>_HTTP_PORT for a service name (ors-bridge -> ENGAGE_ORS_BRIDGE_HTTP_PORT).
suite_port_var() {
    local n="${1^^}"
    printf 'ENGAGE_%s_HTTP_PORT\n' "${n//-/_}"
}

suite_log_event() {
    printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*" >>"$SUITE_RUNDIR/logs/supervisor.log"
}

# The pepper that hashes API keys: 32 random bytes as 64 hex, made once per run dir.
suite_pepper() {
    local f="$SUITE_RUNDIR/pepper" p=""
    if [[ -f "$f" ]]; then
        read -r p <"$f" || true
    fi
    if [[ ! "$p" =~ ^[0-9a-f]{64}$ ]]; then
        p="$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')"
        (umask 077 && printf '%s\n' "$p" >"$f.tmp" && mv -f "$f.tmp" "$f")
    fi
    chmod 600 "$f"
    export ENGAGE_KEY_PEPPER="$p"
}

# Starts one service in the background with its port; records its own pid. Must run in the
# shell that supervises (not in a $(...) subshell), so that `wait` works on it later.
suite_start_service() {
    local name="$1" bin port pid
    bin="$SUITE_BINDIR/${SUITE_BINARY[$name]}"
    port="${SUITE_PORT[$name]}"
    # setsid: a Ctrl-C on the terminal reaches run.sh only, which then stops the services in
    # order. setsid and env both exec, so $! is the service's own pid.
    setsid env "${SUITE_SERVICE_ENV[@]}" ENGAGE_HTTP_PORT="$port" "$bin" \
        </dev/null >>"$SUITE_RUNDIR/logs/$name.log" 2>&1 &
    pid=$!
    SUITE_PID[$name]="$pid"
    SUITE_STARTED_US[$name]="$(now_us)"
    echo "$pid" >"$SUITE_RUNDIR/pids/$name.pid.tmp"
    mv -f "$SUITE_RUNDIR/pids/$name.pid.tmp" "$SUITE_RUNDIR/pids/$name.pid"
    suite_log_event "service $name started pid $pid port $port"
}

suite_show_log_tail() {
    local name="$1" n="${2:-30}"
    echo "---- last $n lines of $SUITE_RUNDIR/logs/$name.log ----" >&2
    tail -n "$n" "$SUITE_RUNDIR/logs/$name.log" >&2 2>/dev/null || true
    echo "---- end of $name.log ----" >&2
}

# Waits for every started service's /readyz to answer 200.
suite_wait_ready() {
    local timeout="${SUITE_READY_TIMEOUT:-30}" deadline name port pid code left
    deadline=$((SECONDS + timeout))
    for name in "${SUITE_SERVICES[@]}"; do
        port="${SUITE_PORT[$name]}"
        pid="${SUITE_PID[$name]}"
        left=$((deadline - SECONDS))
        ((left < 1)) && left=1
        if wait_http_200 "http://127.0.0.1:$port/readyz" "$left" "$pid"; then
            log "$name ready on 127.0.0.1:$port (pid $pid)"
            continue
        fi
        if ! pid_alive "$pid"; then
            code=0
            wait "$pid" 2>/dev/null || code=$?
            printf 'ERROR: service %s exited with code %s before it was ready\n' "$name" "$code" >&2
        else
            printf 'ERROR: service %s not ready within %ss (GET /readyz on port %s)\n' \
                "$name" "$timeout" "$port" >&2
            curl -s -m 2 "http://127.0.0.1:$port/readyz" >&2 || true
            echo >&2
        fi
        suite_show_log_tail "$name"
        return 1
    done
}

# Creates the demo tenant and its callback service; sets ENGAGE_TENANT_ID, ENGAGE_API_KEY and
# ENGAGE_ADMIN_KEY.
suite_create_demo() {
    local ctl="$SUITE_BINDIR/engagectl" name out json attempt rc
    [[ -x "$ctl" ]] || die "engagectl not found in $SUITE_BINDIR"
    name="demo-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    log "creating tenant $name"
    if ! out="$(env "${SUITE_SERVICE_ENV[@]}" "$ctl" tenant create "$name" --json \
        2>"$SUITE_RUNDIR/logs/engagectl.log")"; then
        cat "$SUITE_RUNDIR/logs/engagectl.log" >&2
        die "engagectl tenant create failed"
    fi
    json="$(printf '%s\n' "$out" | grep '^{' | tail -n 1 || true)"
    ENGAGE_TENANT_ID="$(jq -er '.tenantId' <<<"$json" 2>/dev/null || true)"
    ENGAGE_API_KEY="$(jq -er '.apiKey' <<<"$json" 2>/dev/null || true)"
    ENGAGE_ADMIN_KEY="$(jq -er '.adminKey' <<<"$json" 2>/dev/null || true)"
    if [[ -z "$ENGAGE_TENANT_ID" || -z "$ENGAGE_API_KEY" || -z "$ENGAGE_ADMIN_KEY" ]]; then
        printf 'engagectl printed: %s\n' "$out" >&2
        die "engagectl tenant create did not print {\"tenantId\",\"apiKey\",\"adminKey\"}"
    fi
    export ENGAGE_TENANT_ID ENGAGE_API_KEY ENGAGE_ADMIN_KEY

    log "putting callback service ${ENGAGE_DEMO_SERVICE} (scripts/demo-service.json)"
    for attempt in 1 2 3 4 5; do
        rc=0
        env "${SUITE_SERVICE_ENV[@]}" "$ctl" service put "$ENGAGE_DEMO_SERVICE" \
            "$SUITE_SCRIPTS_DIR/demo-service.json" >>"$SUITE_RUNDIR/logs/engagectl.log" 2>&1 ||
            rc=$?
        ((rc == 0)) && return 0
        warn "engagectl service put failed (exit $rc, attempt $attempt/5); retrying in 1 s"
        tail -n 5 "$SUITE_RUNDIR/logs/engagectl.log" >&2 || true
        sleep 1
    done
    die "engagectl service put $ENGAGE_DEMO_SERVICE failed"
}

# What the stack's topology sets in stack.env (scripts/stack.sh); each is written to engage.env
# when the topology set it, and none leaks from the caller's environment into the services.
SUITE_TOPOLOGY_KEYS=(ENGAGE_TOPOLOGY ENGAGE_NATS_URL ENGAGE_NATS_MONITOR_URL ENGAGE_JS_REPLICAS
    ENGAGE_REDIS_URL ENGAGE_VOICE_REDIS_URL ENGAGE_REDIS_CLUSTER ENGAGE_REDIS_SENTINELS
    ENGAGE_REDIS_MASTER ENGAGE_REDIS_MIN_REPLICAS ENGAGE_PG_DSN ENGAGE_PG_READ_DSN)

suite_write_env() {
    local f="$SUITE_RUNDIR/engage.env" tmp name var k
    tmp="$f.tmp.$$"
    local -a keys=(ENGAGE_URL ENGAGE_API_KEY ENGAGE_ADMIN_KEY ENGAGE_TENANT_ID ENGAGE_NATS_URL
        ENGAGE_REDIS_URL ENGAGE_VOICE_REDIS_URL ENGAGE_PG_DSN ENGAGE_VOICE_EVENTS_STREAM
        ENGAGE_VOICE_COMMANDS_STREAM ENGAGE_VOICE_DEADLETTER_STREAM ENGAGE_DEMO_SERVICE
        ENGAGE_KEY_PEPPER ENGAGE_BIN_DIR ENGAGE_RUN_DIR ENGAGE_TOPOLOGY ENGAGE_REDIS_CLUSTER
        ENGAGE_REDIS_SENTINELS ENGAGE_REDIS_MASTER ENGAGE_REDIS_MIN_REPLICAS ENGAGE_JS_REPLICAS
        ENGAGE_PG_READ_DSN)
    (
        umask 077
        {
            echo "# Engage suite in $SUITE_RUNDIR, written by scripts/suite.sh once every service"
            echo "# answered /readyz. Source it: set -a; source engage.env; set +a"
            for k in "${keys[@]}"; do
                [[ -n "${!k+set}" ]] || continue
                echo "$k=$(shell_quote "${!k}")"
            done
            for name in "${SUITE_SERVICES[@]}"; do
                var="$(suite_port_var "$name")"
                echo "$var=$(shell_quote "${SUITE_PORT[$name]}")"
            done
        } >"$tmp"
    )
    mv -f "$tmp" "$f"
}

suite_start() {
    local rundir="$1" bindir="$2" topology="${3:-${TOPOLOGY:-single}}" name var
    SUITE_RUNDIR="$(abspath "$rundir")"
    SUITE_BINDIR="$(abspath "$bindir")"
    [[ -x "$SUITE_BINDIR/engage-api" ]] || die "no engage-api in $SUITE_BINDIR (build first)"
    mkdir -p "$SUITE_RUNDIR/pids" "$SUITE_RUNDIR/logs"
    rm -f "$SUITE_RUNDIR/engage.env"

    "$SUITE_SCRIPTS_DIR/stack.sh" start "$SUITE_RUNDIR" "$topology" || return 1
    # Fresh logs for this run (the stack's own were reset by stack.sh).
    for name in "${SUITE_ALL_SERVICES[@]}" engagectl supervisor; do
        rm -f "$SUITE_RUNDIR/logs/$name.log"
    done
    unset "${SUITE_TOPOLOGY_KEYS[@]}"
    load_env_file "$SUITE_RUNDIR/stack.env"
    suite_pepper

    export ENGAGE_HTTP_ADDR=127.0.0.1
    export ENGAGE_LOG_LEVEL="${ENGAGE_LOG_LEVEL:-info}"
    export ENGAGE_VOICE_EVENTS_STREAM="${ENGAGE_VOICE_EVENTS_STREAM:-engage:voice:events}"
    export ENGAGE_VOICE_COMMANDS_STREAM="${ENGAGE_VOICE_COMMANDS_STREAM:-engage:voice:commands}"
    export ENGAGE_VOICE_DEADLETTER_STREAM="${ENGAGE_VOICE_DEADLETTER_STREAM:-engage:voice:deadletter}"
    export ENGAGE_DEMO_SERVICE=demo
    export ENGAGE_BIN_DIR="$SUITE_BINDIR"
    export ENGAGE_RUN_DIR="$SUITE_RUNDIR"

    SUITE_SERVICES=()
    for name in "${SUITE_ALL_SERVICES[@]}"; do
        if [[ -x "$SUITE_BINDIR/${SUITE_BINARY[$name]}" ]]; then
            SUITE_SERVICES+=("$name")
            SUITE_PORT[$name]="$(pick_free_port)"
            var="$(suite_port_var "$name")"
            export "$var=${SUITE_PORT[$name]}"
        else
            log "skipping $name (no ${SUITE_BINARY[$name]} in $SUITE_BINDIR yet)"
        fi
    done
    export ENGAGE_URL="http://127.0.0.1:${SUITE_PORT[api]}"

    for name in "${SUITE_SERVICES[@]}"; do
        log "starting $name on 127.0.0.1:${SUITE_PORT[$name]} (log $SUITE_RUNDIR/logs/$name.log)"
        suite_start_service "$name"
    done
    suite_wait_ready || return 1
    suite_create_demo
    suite_write_env
    log "suite ready: $ENGAGE_URL (env in $SUITE_RUNDIR/engage.env)"
}

# One pass over the services: restarts the ones that exited, at once, with the same
# environment and port, and rewrites their pid files.
suite_check_services() {
    local name pid code sig now delay fails
    now="$(now_us)"
    for name in "${SUITE_SERVICES[@]}"; do
        pid="${SUITE_PID[$name]}"
        if [[ -n "$pid" ]] && pid_alive "$pid"; then
            continue
        fi
        if [[ -n "$pid" ]]; then
            code=0
            wait "$pid" 2>/dev/null || code=$?
            sig=""
            if ((code > 128 && code < 160)); then
                sig=" (signal $(kill -l $((code - 128)) 2>/dev/null || echo $((code - 128))))"
            fi
            log "service $name exited with code $code$sig; restarting"
            suite_log_event "service $name pid $pid exited with code $code$sig"
            # A service that dies within 2 s of its start, three times in a row, is crash
            # looping: wait 1, 2, 4, 8, then 10 s between its restarts.
            fails="${SUITE_QUICK_FAILS[$name]:-0}"
            if ((now - ${SUITE_STARTED_US[$name]} < 2000000)); then
                fails=$((fails + 1))
            else
                fails=0
            fi
            SUITE_QUICK_FAILS[$name]="$fails"
            delay=0
            if ((fails >= 3)); then
                delay=$((1 << (fails - 3)))
                ((delay > 10)) && delay=10
                log "service $name keeps exiting at start; next restart in ${delay}s"
            fi
            SUITE_RESTART_AFTER_US[$name]=$((now + delay * 1000000))
            SUITE_PID[$name]=""
        fi
        if ((now >= ${SUITE_RESTART_AFTER_US[$name]:-0})); then
            suite_start_service "$name"
            suite_log_event "service $name restarted"
        fi
    done
}

suite_supervise() {
    log "supervising ${SUITE_SERVICES[*]} (a service that exits is restarted)"
    while true; do
        suite_check_services
        sleep 0.3
    done
}

# SIGTERM to every service at once; each has 5 s to exit, then SIGKILL. Writes one line per
# service to logs/shutdown.txt ("name code" or "name timeout") and returns 1 unless every
# service exited with code 0 in time.
suite_stop_services() {
    local name pid i any code rc=0
    local -A waiting=()
    [[ -n "$SUITE_RUNDIR" ]] || return 0
    : >"$SUITE_RUNDIR/logs/shutdown.txt"
    for name in "${SUITE_SERVICES[@]}"; do
        pid="${SUITE_PID[$name]:-}"
        if [[ -n "$pid" ]] && pid_alive "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
            waiting[$name]="$pid"
        fi
    done
    for ((i = 0; i < 50; i++)); do
        any=0
        for name in "${!waiting[@]}"; do
            pid_alive "${waiting[$name]}" && any=1
        done
        ((any)) || break
        sleep 0.1
    done
    for name in "${SUITE_SERVICES[@]}"; do
        pid="${waiting[$name]:-}"
        [[ -n "$pid" ]] || continue
        if pid_alive "$pid"; then
            warn "service $name (pid $pid) did not exit within 5 s of SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo "$name timeout" >>"$SUITE_RUNDIR/logs/shutdown.txt"
            suite_log_event "service $name pid $pid did not exit within 5 s of SIGTERM"
            rc=1
        else
            code=0
            wait "$pid" 2>/dev/null || code=$?
            echo "$name $code" >>"$SUITE_RUNDIR/logs/shutdown.txt"
            suite_log_event "service $name pid $pid stopped with code $code"
            if ((code != 0)); then
                warn "service $name exited with code $code on SIGTERM"
                rc=1
            fi
        fi
        rm -f "$SUITE_RUNDIR/pids/$name.pid"
        SUITE_PID[$name]=""
    done
    return "$rc"
}

suite_stop() {
    local rundir="${1:-$SUITE_RUNDIR}" rc=0
    suite_stop_services || rc=$?
    [[ -n "$rundir" ]] && "$SUITE_SCRIPTS_DIR/stack.sh" stop "$rundir"
    return "$rc"
}
