#!/usr/bin/env bash
# The second step of a write is repaired while the schedulers run (issue 5: nothing accepted is
# lost). Every change writes the tenant's keys in one Lua step and then the cross-tenant due
# index eg:due:index; if that second step is lost (Redis went away in between, or the scheduler
# died), the periodic recovery of a running scheduler (ENGAGE_RECOVERY_INTERVAL_S) puts it back.
#
# The test starts a second engage-scheduler with ENGAGE_RECOVERY_INTERVAL_S=2, books a callback
# due in a few seconds on a fresh service, then deletes the service's entry from eg:due:index as
# a lost second step would have left it. Without a repair no dispatcher would ever look at that
# service again (they sleep until the earliest index entry); the test checks that the callback is
# still dialled, and not before its time. Last, the replica gets SIGTERM and must exit 0.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
: "${ENGAGE_ENV_FILE:?set ENGAGE_ENV_FILE to the engage.env of the suite (make test does)}"
load_env_file "$ENGAGE_ENV_FILE"
RUN_DIR="${ENGAGE_RUN_DIR:-$(dirname "$ENGAGE_ENV_FILE")}"
LOGS="$RUN_DIR/logs"
T0=$SECONDS
LEAD_MS=6000
WORK="$(mktemp -d)"
REPLICA_PID=""
REPLICA_LOG="$LOGS/scheduler-recovery.log"
SERVICE="recovery-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"

cleanup() {
    if [[ -n "$REPLICA_PID" ]] && pid_alive "$REPLICA_PID"; then
        kill -KILL "$REPLICA_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
stamp() { printf '[%3ds] %s\n' "$((SECONDS - T0))" "$*"; }

redis_at() { # URL ARGS...: redis-cli --raw on the Redis of a redis:// URL
    local u="${1#redis://}" hostport db=0
    shift
    hostport="${u%%/*}"
    [[ "$u" == */* ]] && db="${u#*/}"
    redis-cli --raw -h "${hostport%%:*}" -p "${hostport##*:}" -n "${db:-0}" "$@"
}
now_ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# --- a scheduler that re-checks every service every 2 s ------------------------------------------
port="$(pick_free_port)"
: >"$REPLICA_LOG"
ENGAGE_HTTP_ADDR=127.0.0.1 ENGAGE_HTTP_PORT="$port" ENGAGE_RECOVERY_INTERVAL_S=2 \
    ASAN_OPTIONS="${ENGAGE_SERVICE_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}" \
    setsid "$ENGAGE_BIN_DIR/engage-scheduler" </dev/null >>"$REPLICA_LOG" 2>&1 &
REPLICA_PID=$!
wait_http_200 "http://127.0.0.1:$port/readyz" 30 "$REPLICA_PID" ||
    die "the recovering scheduler was not ready within 30 s: $(tail -n 5 "$REPLICA_LOG")"
stamp "scheduler with ENGAGE_RECOVERY_INTERVAL_S=2 ready on port $port"

# --- a callback whose due index entry is lost ----------------------------------------------------
code="$(curl -s -m 10 -o "$WORK/put.out" -w '%{http_code}' -X PUT \
    "$ENGAGE_URL/ges/api/v1/services/$SERVICE" -H "x-api-key: $ENGAGE_ADMIN_KEY" \
    -H 'Content-Type: application/json' -d '{"slotMinutes": 5, "capacity": {"default": 10}}')"
[[ "$code" == 201 || "$code" == 200 ]] || die "PUT service answered $code: $(cat "$WORK/put.out")"
due=$(($(now_ms) + LEAD_MS))
iso="$(date -u -d "@$((due / 1000)).$(printf '%03d' $((due % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)"
phone="+1555$(printf '%05d' $((RANDOM % 100000)))10"
out="$(curl -s -m 10 -X POST "$ENGAGE_URL/engagement/v3/callbacks/create" \
    -H "x-api-key: $ENGAGE_API_KEY" -H 'Content-Type: application/json' \
    -d "{\"serviceName\":\"$SERVICE\",\"phoneNumber\":\"$phone\",\"desiredTime\":\"$iso\"}")"
id="$(jq -r '.data.id // empty' <<<"$out")"
[[ -n "$id" ]] || die "create failed: $out"
member="$ENGAGE_TENANT_ID|$SERVICE"
removed="$(redis_at "$ENGAGE_REDIS_URL" zrem eg:due:index "$member")"
[[ "$removed" == 1 ]] || die "the create left no eg:due:index entry for $member (zrem: $removed)"
stamp "callback $id due at $iso; its service's eg:due:index entry deleted (a lost second step)"

# --- it is dialled all the same ------------------------------------------------------------------
dialled_at=""
deadline=$((due + 15000))
while (($(now_ms) < deadline)); do
    # Into a file first: grep -q would stop reading early and pipefail take redis-cli's SIGPIPE
    # for a failure.
    redis_at "$ENGAGE_VOICE_REDIS_URL" xrevrange "$ENGAGE_VOICE_COMMANDS_STREAM" + - COUNT 500 \
        >"$WORK/commands" || true
    if grep -qxF "$id" "$WORK/commands"; then
        dialled_at=$(now_ms)
        break
    fi
    sleep 0.2
done
failures=0
if [[ -z "$dialled_at" ]]; then
    echo "FAIL: callback $id was never dialled (15 s after its due time); replica log:"
    grep -E "recovery|$id" "$REPLICA_LOG" | tail -n 10 | sed 's/^/    /'
    failures=1
else
    late=$((dialled_at - due))
    stamp "dialled $late ms after its due time"
    if ((late < 0)); then
        echo "FAIL: dialled $((-late)) ms before its due time"
        failures=1
    fi
    grep -q "recovery: checked" "$REPLICA_LOG" || {
        echo "FAIL: the replica logged no periodic recovery"
        failures=1
    }
fi

kill -TERM "$REPLICA_PID"
for ((i = 0; i < 50; i++)); do pid_alive "$REPLICA_PID" || break; sleep 0.1; done
if pid_alive "$REPLICA_PID"; then
    echo "FAIL: the recovering scheduler did not exit within 5 s of SIGTERM"
    failures=1
else
    wait "$REPLICA_PID" && rc=0 || rc=$?
    ((rc == 0)) || { echo "FAIL: the recovering scheduler exited $rc"; failures=1; }
fi
REPLICA_PID=""
((failures == 0)) || exit 1
echo "PASS: a lost due-index entry was repaired by a running scheduler ($((SECONDS - T0))s)"
