#!/usr/bin/env bash
# Consul registration: with ENGAGE_CONSUL_ADDR pointing at tests/fakes/consul, a second
# engage-scheduler and engage-api each appear in GET /v1/agent/services (Service name and their
# own port) within 5 s of being ready, and are gone within 5 s of SIGTERM.
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

fake="$ENGAGE_BIN_DIR/fake-consul"
[[ -x "$fake" ]] || {
    echo "FAIL: $fake not found"
    exit 1
}

# --- the fake agent ---------------------------------------------------------------------------
fake_out="$LOG_DIR/e2e-consul-fake.out"
"$fake" --port 0 </dev/null >"$fake_out" 2>"$LOG_DIR/e2e-consul-fake.log" &
fake_pid=$!
STARTED+=("$fake_pid")
cport=""
for ((i = 0; i < 100; i++)); do
    cport="$(sed -nE '1s/^PORT=([0-9]+)$/\1/p' "$fake_out" 2>/dev/null || true)"
    [[ -n "$cport" ]] && break
    pid_alive "$fake_pid" || break
    sleep 0.1
done
if [[ -z "$cport" ]]; then
    echo "FAIL: fake-consul did not print PORT=<n>"
    cat "$LOG_DIR/e2e-consul-fake.log" || true
    exit 1
fi
consul="http://127.0.0.1:$cport"
echo "fake-consul listening at $consul"
export ENGAGE_CONSUL_ADDR="$consul"

# registered NAME PORT: prints how many entries of the agent list Service NAME at PORT.
registered() {
    curl -s -m 2 "$consul/v1/agent/services" |
        jq --arg s "$1" --argjson p "$2" '[.[] | select(.Service == $s and .Port == $p)] | length' \
            2>/dev/null || echo 0
}

# wait_registered NAME PORT WANT: polls up to 5 s until (WANT=yes) an entry exists or
# (WANT=no) none does.
wait_registered() {
    local name="$1" port="$2" want="$3" n i
    for ((i = 0; i < 50; i++)); do
        n="$(registered "$name" "$port")"
        if [[ "$want" == yes && "$n" -ge 1 ]] || [[ "$want" == no && "$n" -eq 0 ]]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# --- the services --------------------------------------------------------------------------------
declare -A PID=() PORT=()
for svc in scheduler api; do
    bin="$ENGAGE_BIN_DIR/engage-$svc"
    if [[ ! -x "$bin" ]]; then
        fail "$bin not found"
        continue
    fi
    PORT[$svc]="$(pick_free_port)"
    echo "starting engage-$svc on port ${PORT[$svc]} with ENGAGE_CONSUL_ADDR=$consul"
    ENGAGE_HTTP_PORT="${PORT[$svc]}" "$bin" </dev/null >"$LOG_DIR/e2e-consul-$svc.log" 2>&1 &
    PID[$svc]=$!
    STARTED+=("${PID[$svc]}")
done

for svc in "${!PID[@]}"; do
    if ! wait_http_200 "http://127.0.0.1:${PORT[$svc]}/readyz" 30 "${PID[$svc]}"; then
        fail "engage-$svc not ready within 30 s"
        tail -n 20 "$LOG_DIR/e2e-consul-$svc.log" || true
        unset "PID[$svc]"
        continue
    fi
    echo "checking the agent lists Service engage-$svc with Port ${PORT[$svc]} within 5 s"
    if wait_registered "engage-$svc" "${PORT[$svc]}" yes; then
        echo "  ok: registered"
    else
        fail "engage-$svc is not registered with the agent (port ${PORT[$svc]})"
        curl -s -m 2 "$consul/v1/agent/services" || true
        echo
    fi
done

for svc in "${!PID[@]}"; do
    echo "sending SIGTERM to engage-$svc; its entry must be gone within 5 s"
    kill -TERM "${PID[$svc]}" 2>/dev/null || true
done
for svc in "${!PID[@]}"; do
    if wait_registered "engage-$svc" "${PORT[$svc]}" no; then
        echo "  ok: engage-$svc deregistered"
    else
        fail "engage-$svc still registered 5 s after SIGTERM"
    fi
    for ((i = 0; i < 50; i++)); do
        pid_alive "${PID[$svc]}" || break
        sleep 0.1
    done
    if pid_alive "${PID[$svc]}"; then
        fail "engage-$svc did not exit within 5 s of SIGTERM"
        continue
    fi
    rc=0
    wait "${PID[$svc]}" || rc=$?
    ((rc == 0)) || fail "engage-$svc exited with code $rc after SIGTERM (want 0)"
done

kill -TERM "$fake_pid" 2>/dev/null || true
if ((failures > 0)); then
    echo "consul_test: $failures failure(s)"
    exit 1
fi
echo "consul_test: OK"
