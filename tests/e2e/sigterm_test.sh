#!/usr/bin/env bash
# A second instance of engage-api and of engage-scheduler (same environment as the suite, a
# new free HTTP port) becomes ready, and on SIGTERM exits within 5 s with exit code 0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
: "${ENGAGE_ENV_FILE:?set ENGAGE_ENV_FILE to the engage.env of the suite (make test does)}"
load_env_file "$ENGAGE_ENV_FILE"
LOG_DIR="${ENGAGE_RUN_DIR:-$(dirname "$ENGAGE_ENV_FILE")}/logs"
mkdir -p "$LOG_DIR"
export ENGAGE_HTTP_ADDR=127.0.0.1
export ASAN_OPTIONS="${ENGAGE_SERVICE_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}"

declare -a STARTED=()
cleanup() {
    local p
    for p in "${STARTED[@]}"; do
        if pid_alive "$p"; then kill -KILL "$p" 2>/dev/null || true; fi
    done
}
trap cleanup EXIT

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

for svc in api scheduler; do
    bin="$ENGAGE_BIN_DIR/engage-$svc"
    if [[ ! -x "$bin" ]]; then
        fail "$bin not found"
        continue
    fi
    port="$(pick_free_port)"
    log="$LOG_DIR/e2e-sigterm-$svc.log"
    echo "starting a second engage-$svc on port $port (log $log)"
    ENGAGE_HTTP_PORT="$port" "$bin" </dev/null >"$log" 2>&1 &
    pid=$!
    STARTED+=("$pid")
    if ! wait_http_200 "http://127.0.0.1:$port/readyz" 30 "$pid"; then
        fail "engage-$svc (pid $pid) not ready within 30 s"
        tail -n 20 "$log" || true
        continue
    fi
    echo "engage-$svc ready; sending SIGTERM, expecting exit code 0 within 5 s"
    start="${EPOCHREALTIME/./}"
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        fail "engage-$svc did not exit within 5 s of SIGTERM"
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        tail -n 20 "$log" || true
        continue
    fi
    rc=0
    wait "$pid" || rc=$?
    ms=$(((${EPOCHREALTIME/./} - start) / 1000))
    if ((rc != 0)); then
        fail "engage-$svc exited with code $rc after SIGTERM (want 0)"
        tail -n 20 "$log" || true
    else
        echo "  ok: engage-$svc exited with code 0 in ${ms} ms"
    fi
done

if ((failures > 0)); then
    echo "sigterm_test: $failures failure(s)"
    exit 1
fi
echo "sigterm_test: OK"
