#!/usr/bin/env bash
# Nothing accepted is lost: while immediate callbacks are being created, kill -9 the scheduler,
# then the ors-bridge, then the archiver (the suite's supervisor restarts each). Every callback
# that got a 200 must still reach COMPLETED and have its row, with its events, in PostgreSQL.
# (Numbers end in 0, which voice-sim answers.) Prints a report: sent, accepted, completed, lost.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
: "${ENGAGE_ENV_FILE:?set ENGAGE_ENV_FILE to the engage.env of the suite (make test does)}"
load_env_file "$ENGAGE_ENV_FILE"
PIDS="${ENGAGE_RUN_DIR:-$(dirname "$ENGAGE_ENV_FILE")}/pids"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

CREATE_SECONDS=${CRASH_TEST_SECONDS:-15}
SETTLE_SECONDS=${CRASH_TEST_SETTLE:-90}

# Creates immediate callbacks until told to stop; one line per answer: "<code> <id>".
creator() {
    local n=0 out code id
    while [[ ! -e "$WORK/stop" ]]; do
        n=$((n + 1))
        out="$(curl -s -m 10 -w '\n%{http_code}' -X POST "$ENGAGE_URL/engagement/v3/callbacks/create" \
            -H "x-api-key: $ENGAGE_API_KEY" -H 'Content-Type: application/json' \
            -d "{\"serviceName\":\"$ENGAGE_DEMO_SERVICE\",\"phoneNumber\":\"+1888$1$(printf '%04d' "$n")0\"}" || true)"
        code="$(tail -n1 <<<"$out")"
        id="$(head -n1 <<<"$out" | jq -r '.data.id // empty' 2>/dev/null || true)"
        echo "${code:-000} ${id:-none}" >>"$WORK/answers.$1"
        sleep 0.05
    done
}

kill_service() {
    local name="$1" pid newpid
    pid="$(cat "$PIDS/$name.pid")"
    echo "kill -9 $name (pid $pid)"
    kill -KILL "$pid"
    for _ in $(seq 1 100); do
        sleep 0.1
        newpid="$(cat "$PIDS/$name.pid" 2>/dev/null || true)"
        if [[ -n "$newpid" && "$newpid" != "$pid" ]] && pid_alive "$newpid"; then
            echo "  $name restarted as pid $newpid"
            return 0
        fi
    done
    echo "FAIL: $name was not restarted within 10 s"
    return 1
}

for c in 11 22 33; do creator "$c" & done
failed=0
sleep 2
kill_service scheduler || failed=1
sleep 3
kill_service ors-bridge || failed=1
sleep 3
kill_service archiver || failed=1
sleep $((CREATE_SECONDS > 8 ? CREATE_SECONDS - 8 : 1))
touch "$WORK/stop"
wait

cat "$WORK"/answers.* >"$WORK/all"
sent=$(wc -l <"$WORK/all")
grep '^200 ' "$WORK/all" | awk '{print $2}' | sort -u >"$WORK/accepted"
accepted=$(wc -l <"$WORK/accepted")
refused=$((sent - $(grep -c '^200 ' "$WORK/all" || true)))
echo "sent $sent creates: $accepted accepted, $refused not accepted (503 while a service restarted)"
if [[ "$accepted" -lt 20 ]]; then
    echo "FAIL: too few callbacks were accepted ($accepted) for the test to mean anything"
    exit 1
fi

ids="{$(paste -sd, "$WORK/accepted")}"
completed=0
for _ in $(seq 1 "$SETTLE_SECONDS"); do
    completed=$(psql "$ENGAGE_PG_DSN" -Atc \
        "SELECT count(*) FROM callbacks c WHERE c.id = ANY('$ids'::uuid[]) AND c.state = 'COMPLETED'
           AND (SELECT count(*) FROM callback_events e WHERE e.callback_id = c.id) >= 4")
    [[ "$completed" -eq "$accepted" ]] && break
    sleep 1
done
lost=$((accepted - completed))
echo "report: sent=$sent accepted=$accepted completed=$completed lost=$lost"
if [[ "$lost" -ne 0 ]]; then
    psql "$ENGAGE_PG_DSN" -Atc "SELECT state, count(*) FROM callbacks WHERE id = ANY('$ids'::uuid[]) GROUP BY state"
    echo "FAIL: $lost accepted callbacks did not reach COMPLETED with their history in PostgreSQL"
    exit 1
fi
[[ "$failed" -eq 0 ]] || exit 1
echo "PASS: every accepted callback completed and is in PostgreSQL"
