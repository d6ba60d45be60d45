# shellcheck shell=bash
# Shared by the topology fault tests tests/ha/*_test.sh (sourced): a whole suite on one topology
# of scripts/stack.sh, in its own run directory under /var/tmp, supervised as make test does it,
# and stopped (data removed) when the test exits.
#
#   ha_start TOPOLOGY   start it; exports ENGAGE_ENV_FILE and ENGAGE_RUN_DIR for the e2e
#                       scripts (tests/e2e/chaos_test.sh, readme_test.sh) and loads engage.env
#   ha_check_logs       false (and prints them) when a service log holds a sanitizer report
#
# Binaries: ENGAGE_HA_BIN_DIR (make test sets its sanitizer build's), else build-test/bin, else
# build/bin. ENGAGE_HA_START_TIMEOUT (seconds, default 180) bounds the start.

HA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/suite.sh
source "$HA_ROOT/scripts/suite.sh"

HA_RUN_DIR=""
HA_SUP_PID=""

ha_stop() {
    local rc=$? i
    trap - EXIT
    set +e
    if [[ -n "$HA_SUP_PID" ]] && pid_alive "$HA_SUP_PID"; then
        kill -TERM "$HA_SUP_PID" 2>/dev/null
        for ((i = 0; i < 300; i++)); do
            pid_alive "$HA_SUP_PID" || break
            sleep 0.1
        done
        pid_alive "$HA_SUP_PID" && kill -KILL "$HA_SUP_PID" 2>/dev/null
        wait "$HA_SUP_PID" 2>/dev/null
    fi
    if [[ -n "$HA_RUN_DIR" ]]; then
        "$HA_ROOT/scripts/stack.sh" clean "$HA_RUN_DIR" >/dev/null 2>&1 ||
            "$HA_ROOT/scripts/stack.sh" clean "$HA_RUN_DIR"
        if ((rc == 0)); then
            rm -rf "$HA_RUN_DIR"
        else
            echo "logs of this run kept in $HA_RUN_DIR/logs"
        fi
    fi
    exit "$rc"
}

ha_start() {
    local topology="$1" bin deadline
    bin="${ENGAGE_HA_BIN_DIR:-$HA_ROOT/build-test/bin}"
    [[ -x "$bin/engage-api" ]] || bin="$HA_ROOT/build/bin"
    [[ -x "$bin/engage-api" ]] || die "no engage-api in build-test/bin or build/bin: build first"
    HA_RUN_DIR="$(mktemp -d "/var/tmp/engage-ha-$topology.XXXXXX")"
    mkdir -p "$HA_RUN_DIR/pids" "$HA_RUN_DIR/logs"
    trap ha_stop EXIT
    trap 'exit 130' INT TERM
    SUITE_SERVICE_ENV=("ASAN_OPTIONS=${ENGAGE_SERVICE_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
        "UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}"
        "LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$HA_ROOT/tests/lsan.supp}"
        "ENGAGE_STORE_CHECK_KEYS=${ENGAGE_STORE_CHECK_KEYS:-1}")
    unset ENGAGE_CONSUL_ADDR
    log "starting the suite on the $topology topology in $HA_RUN_DIR (binaries $bin)"
    (
        trap 'rc=$?; trap - EXIT; suite_stop_services || rc=1; exit "$rc"' EXIT
        trap 'exit 0' TERM
        trap '' INT
        suite_start "$HA_RUN_DIR" "$bin" "$topology" || exit 1
        suite_supervise
    ) &
    HA_SUP_PID=$!
    echo "$HA_SUP_PID" >"$HA_RUN_DIR/pids/supervisor.pid"
    deadline=$((SECONDS + ${ENGAGE_HA_START_TIMEOUT:-180}))
    while [[ ! -f "$HA_RUN_DIR/engage.env" ]]; do
        pid_alive "$HA_SUP_PID" || die "the suite on the $topology topology did not start (logs in $HA_RUN_DIR/logs)"
        ((SECONDS < deadline)) || die "the suite on the $topology topology was not ready within ${ENGAGE_HA_START_TIMEOUT:-180}s"
        sleep 0.2
    done
    # What the caller had (make test's own suite, stopped by now) must not mix with this one.
    unset "${SUITE_TOPOLOGY_KEYS[@]}"
    load_env_file "$HA_RUN_DIR/engage.env"
    export ENGAGE_ENV_FILE="$HA_RUN_DIR/engage.env" ENGAGE_RUN_DIR="$HA_RUN_DIR"
    log "suite up on $topology:"
    "$HA_ROOT/scripts/stack.sh" status "$HA_RUN_DIR" | sed 's/^/    /'
}

ha_check_logs() {
    local f bad=0
    for f in "$HA_RUN_DIR"/logs/*.log; do
        [[ -f "$f" ]] || continue
        if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$f"; then
            echo "FAIL: sanitizer report in $f:"
            grep -E -A 30 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$f" | head -n 40
            bad=1
        fi
    done
    ((bad == 0))
}
