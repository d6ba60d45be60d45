#!/usr/bin/env bash
# The api rides out a scheduler restart: a create sent right after kill -9 of the scheduler
# still gets its 200 (the api waits up to ~3 s for a scheduler to answer, and the supervisor
# restarts it within about a second); a scheduler that does not answer at all (SIGSTOP) gets a
# clean 503 after about 3 s, never a hang.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
: "${ENGAGE_ENV_FILE:?set ENGAGE_ENV_FILE to the engage.env of the suite (make test does)}"
load_env_file "$ENGAGE_ENV_FILE"
PIDS="${ENGAGE_RUN_DIR:-$(dirname "$ENGAGE_ENV_FILE")}/pids"

create() { # prints "<http code> <seconds>"
    curl -s -o /dev/null -m 20 -w '%{http_code} %{time_total}\n' -X POST \
        "$ENGAGE_URL/engagement/v3/callbacks/create" -H "x-api-key: $ENGAGE_API_KEY" \
        -H 'Content-Type: application/json' \
        -d "{\"serviceName\":\"$ENGAGE_DEMO_SERVICE\",\"phoneNumber\":\"+1999555$1\"}"
}

wait_restarted() { # old pid
    local newpid
    for _ in $(seq 1 100); do
        newpid="$(cat "$PIDS/scheduler.pid" 2>/dev/null || true)"
        if [[ -n "$newpid" && "$newpid" != "$1" ]] && pid_alive "$newpid"; then
            echo "$newpid"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

failed=0
read -r code secs < <(create 0001)
echo "before: create answered $code in ${secs}s"
[[ "$code" == 200 ]] || { echo "FAIL: the suite does not book"; exit 1; }

pid="$(cat "$PIDS/scheduler.pid")"
echo "kill -9 scheduler (pid $pid), then create at once"
kill -KILL "$pid"
read -r code secs < <(create 0002)
echo "during the restart: create answered $code in ${secs}s"
if [[ "$code" != 200 ]]; then
    echo "FAIL: a create during a scheduler restart must wait for it and succeed (got $code)"
    failed=1
fi
newpid="$(wait_restarted "$pid")" || { echo "FAIL: scheduler not restarted"; exit 1; }
# Let the new scheduler bind its subscriptions before stopping it.
wait_http_200 "http://127.0.0.1:${ENGAGE_SCHEDULER_HTTP_PORT}/readyz" 10 >/dev/null 2>&1 || true

echo "SIGSTOP scheduler (pid $newpid): a create must get 503 after about 3 s"
kill -STOP "$newpid"
read -r code secs < <(create 0003)
kill -CONT "$newpid"
echo "while it does not answer: create answered $code in ${secs}s"
if [[ "$code" != 503 ]]; then
    echo "FAIL: expected 503 when no scheduler answers (got $code)"
    failed=1
fi
if ! awk -v s="$secs" 'BEGIN { exit !(s >= 2.5 && s <= 6) }'; then
    echo "FAIL: the 503 should come after about 3 s (took ${secs}s)"
    failed=1
fi
sleep 1
read -r code secs < <(create 0004)
echo "after SIGCONT: create answered $code in ${secs}s"
[[ "$code" == 200 ]] || { echo "FAIL: the suite did not recover"; failed=1; }
[[ "$failed" -eq 0 ]] && echo "scheduler_restart_test: OK"
exit "$failed"
