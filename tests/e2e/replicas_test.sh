#!/usr/bin/env bash
# Two scheduler replicas against one Redis dispatch 5,000 due callbacks with zero duplicates
# (issue 5, acceptance).
#
# A second engage-scheduler runs beside the suite's (same environment, its own HTTP port and
# log, logs/scheduler-replica.log). The test puts a callback service with room for every
# callback in one slot, books REPLICAS_COUNT (default 5,000) scheduled callbacks over HTTP (one
# curl running REPLICAS_PARALLEL transfers at once, each with an Idempotency-Key so a retried
# create books nothing twice), all due within a few seconds of each other about REPLICAS_LEAD
# seconds after the test starts, and waits until voice-sim has been sent a dial for each. Then:
#   - the voice commands stream holds exactly one `dial` per callback (attempt 1), read with
#     XRANGE in batches of 1,000 from the test's start and filtered by the service;
#   - voicesim:dials counts exactly one dial for each <tenant>:<id>:1;
#   - engage_callbacks_dispatched_total of the two schedulers grew by 5,000 in all (other
#     tests' callbacks falling due meanwhile are counted from the logs and allowed for), and both
#     schedulers dispatched some (the split is printed, from each one's log);
#   - every callback completes (COMPLETED in PostgreSQL), so no backlog is left for later tests.
#     The numbers end in 96, which voice-sim fails at once (DIALING, FAILED: two progress events
#     per call, COMPLETED FAIL_CALL_TO_CUSTOMER with one attempt), half the events of an answered
#     call: the bridge relays 5,000 calls' events one by one, and the test must stay short.
# Last, the replica gets SIGTERM and must exit 0 within 5 s.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
: "${ENGAGE_ENV_FILE:?set ENGAGE_ENV_FILE to the engage.env of the suite (make test does)}"
load_env_file "$ENGAGE_ENV_FILE"
RUN_DIR="${ENGAGE_RUN_DIR:-$(dirname "$ENGAGE_ENV_FILE")}"
LOGS="$RUN_DIR/logs"
export LC_ALL=C

COUNT=${REPLICAS_COUNT:-5000}
PARALLEL=${REPLICAS_PARALLEL:-16}
LEAD=${REPLICAS_LEAD:-20}      # seconds from the start of the creates to the first due time
SPREAD=${REPLICAS_SPREAD:-5}   # due times spread over this many seconds
DIAL_WAIT=${REPLICAS_DIAL_WAIT:-60}
DONE_WAIT=${REPLICAS_DONE_WAIT:-90}
T0=$SECONDS
WORK="$(mktemp -d)"
REPLICA_PID=""
REPLICA_LOG="$LOGS/scheduler-replica.log"
SERVICE="replicas-$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')"

cleanup() {
    if [[ -n "$REPLICA_PID" ]] && pid_alive "$REPLICA_PID"; then
        kill -KILL "$REPLICA_PID" 2>/dev/null || true
    fi
    rm -f "$RUN_DIR/pids/scheduler-replica.pid"
    rm -rf "$WORK"
}
trap cleanup EXIT

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
stamp() { printf '[%3ds] %s\n' "$((SECONDS - T0))" "$*"; }

vredis() { # redis-cli on the voice Redis (db from ENGAGE_VOICE_REDIS_URL)
    local u="${ENGAGE_VOICE_REDIS_URL#redis://}" hostport db=0
    hostport="${u%%/*}"
    [[ "$u" == */* ]] && db="${u#*/}"
    redis-cli -h "${hostport%%:*}" -p "${hostport##*:}" -n "${db:-0}" "$@"
}

metric() { # PORT NAME: the value of an unlabelled metric on /metrics, 0 when absent
    curl -s -m 5 "http://127.0.0.1:$1/metrics" |
        awk -v n="$2" '$1 == n {v = $2} END {printf "%d\n", v + 0}'
}

# "callback <id> due: dispatched" lines of one log since byte OFFSET, as ids.
dispatched_ids() { # LOG OFFSET
    tail -c +"$(($2 + 1))" "$1" | grep -oE 'callback [0-9a-f-]{36} due: dispatched' | cut -d' ' -f2 | sort
}

# --- the second scheduler ------------------------------------------------------------------------

SUITE_SCHED_PORT="$ENGAGE_SCHEDULER_HTTP_PORT"
REPLICA_PORT="$(pick_free_port)"
stamp "starting a second engage-scheduler on port $REPLICA_PORT (log $REPLICA_LOG)"
: >"$REPLICA_LOG"
ENGAGE_HTTP_ADDR=127.0.0.1 ENGAGE_HTTP_PORT="$REPLICA_PORT" \
    ASAN_OPTIONS="${ENGAGE_SERVICE_ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}" \
    setsid "$ENGAGE_BIN_DIR/engage-scheduler" </dev/null >>"$REPLICA_LOG" 2>&1 &
REPLICA_PID=$!
echo "$REPLICA_PID" >"$RUN_DIR/pids/scheduler-replica.pid"
if ! wait_http_200 "http://127.0.0.1:$REPLICA_PORT/readyz" 30 "$REPLICA_PID"; then
    tail -n 20 "$REPLICA_LOG" || true
    die "the second scheduler (pid $REPLICA_PID) was not ready within 30 s"
fi

# --- the service ---------------------------------------------------------------------------------

cat >"$WORK/service.json" <<EOF
{
  "timezone": "UTC",
  "slotMinutes": 5,
  "capacity": { "default": $((COUNT * 2)) },
  "horizonDays": 1,
  "immediateEnabled": true,
  "scheduledEnabled": true,
  "maxActivePerNumber": 1,
  "maxPerNumberPerDay": 10,
  "retry": { "maxAttempts": 1, "delaySeconds": 60 },
  "virtualQueue": "$SERVICE",
  "priority": 0
}
EOF
code="$(curl -s -m 10 -o "$WORK/put.out" -w '%{http_code}' -X PUT \
    "$ENGAGE_URL/ges/api/v1/services/$SERVICE" -H "x-api-key: $ENGAGE_ADMIN_KEY" \
    -H 'Content-Type: application/json' --data-binary @"$WORK/service.json")"
[[ "$code" == 200 || "$code" == 201 ]] || die "PUT service $SERVICE answered $code: $(cat "$WORK/put.out")"
stamp "service $SERVICE: one 5-minute slot holds $((COUNT * 2))"

# --- the creates ---------------------------------------------------------------------------------

iso_ms() { date -u -d "@$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ; }

SUITE_LOG="$LOGS/scheduler.log"
suite_off=$(stat -c %s "$SUITE_LOG")
stream_start="$(vredis --raw time | head -n1)000-0"
m1_before=$(metric "$SUITE_SCHED_PORT" engage_callbacks_dispatched_total)
m2_before=$(metric "$REPLICA_PORT" engage_callbacks_dispatched_total)

now_ms=$((${EPOCHREALTIME/./} / 1000))
first_due=$((now_ms + LEAD * 1000))
# One curl config per pass: a transfer per callback still to create (body to out/<i>, a line
# "<i> <code>" on stdout). Numbers are unique, so per-number limits never bite.
make_config() { # FILE INDEX...
    local f="$1" i sep=""
    shift
    : >"$f"
    for i in "$@"; do
        printf '%surl = "%s/engagement/v3/callbacks/create"\nheader = "x-api-key: %s"\nheader = "Idempotency-Key: %s-%d"\njson = "{\\"serviceName\\":\\"%s\\",\\"phoneNumber\\":\\"+1555%07d96\\",\\"desiredTime\\":\\"%s\\"}"\noutput = "%s/out/%d"\nwrite-out = "%d %%{http_code} %%{exitcode} %%{errormsg}\\n"\nmax-time = 20\n' \
            "$sep" "$ENGAGE_URL" "$ENGAGE_API_KEY" "$SERVICE" "$i" "$SERVICE" "$((RANDOM_BASE + i))" \
            "${DUE_ISO[i % ${#DUE_ISO[@]}]}" "$WORK" "$i" "$i" >>"$f"
        sep=$'next\n'
    done
}
# Due times 100 ms apart over SPREAD seconds, formatted once.
DUE_ISO=()
for ((k = 0; k < SPREAD * 10; k++)); do DUE_ISO+=("$(iso_ms $((first_due + k * 100)))"); done
RANDOM_BASE=$(((RANDOM * 32768 + RANDOM) % 9000000))
while ((RANDOM_BASE + COUNT > 9999999)); do RANDOM_BASE=$((RANDOM_BASE - COUNT)); done
mkdir -p "$WORK/out"
mapfile -t todo < <(seq 1 "$COUNT")
stamp "creating $COUNT callbacks due from $(iso_ms "$first_due") over ${SPREAD}s ($PARALLEL at a time)"
create_start=$SECONDS
for pass in 1 2 3 4 5; do
    ((${#todo[@]} > 0)) || break
    make_config "$WORK/create.cfg" "${todo[@]}"
    curl -s --no-progress-meter --parallel --parallel-max "$PARALLEL" -K "$WORK/create.cfg" >"$WORK/codes.$pass" || true
    mapfile -t todo < <(awk '$2 != "200" {print $1}' "$WORK/codes.$pass")
    if ((${#todo[@]} > 0)); then
        echo "  pass $pass: $(awk '$2 != "200" {print $2}' "$WORK/codes.$pass" | sort | uniq -c |
            awk '{printf "%s answered %s; ", $1, $2}')retrying them; first failures:"
        awk '$2 != "200"' "$WORK/codes.$pass" | head -n 3 | sed 's/^/    /' 
        sleep 1
    fi
done
created_in=$((SECONDS - create_start))
now_ms=$((${EPOCHREALTIME/./} / 1000))
jq -r '.data.id // empty' "$WORK"/out/* | sort -u >"$WORK/ids"
created=$(wc -l <"$WORK/ids")
stamp "$created callbacks created in ${created_in}s ($((created / (created_in > 0 ? created_in : 1)))/s)"
if ((created != COUNT)); then
    die "only $created of $COUNT creates succeeded (${#todo[@]} still failing)"
fi
if ((now_ms >= first_due)); then
    die "the creates took longer than the lead time (${LEAD}s): raise REPLICAS_LEAD"
fi

# --- wait for the dials --------------------------------------------------------------------------

# The commands stream from the test's start, in batches of 1,000: "<callback id> <attempt>" per
# dial of this service.
read_dials() {
    local start="$stream_start" n last
    : >"$WORK/dials"
    while :; do
        vredis --json xrange "$ENGAGE_VOICE_COMMANDS_STREAM" "$start" + COUNT 1000 >"$WORK/batch.json"
        n=$(jq 'length' "$WORK/batch.json")
        ((n > 0)) || break
        jq -r --arg svc "$SERVICE" '.[] | .[1] as $f
            | [range(0; $f | length; 2) | {key: $f[.], value: $f[. + 1]}] | from_entries
            | select(.type == "dial" and .service == $svc) | "\(.callback_id) \(.attempt)"' \
            "$WORK/batch.json" >>"$WORK/dials"
        ((n == 1000)) || break
        last=$(jq -r '.[-1][0]' "$WORK/batch.json")
        start="(${last}"
    done
    sort -o "$WORK/dials" "$WORK/dials"
}

wait_secs=$(((first_due - now_ms) / 1000 + SPREAD))
stamp "waiting ${wait_secs}s for the due times, then up to ${DIAL_WAIT}s for the dials"
sleep "$wait_secs"
deadline=$((SECONDS + DIAL_WAIT))
while :; do
    read_dials
    dialled=$(cut -d' ' -f1 "$WORK/dials" | sort -u | wc -l)
    ((dialled >= COUNT || SECONDS >= deadline)) && break
    echo "  $dialled/$COUNT dialled"
    sleep 2
done
stamp "$dialled/$COUNT callbacks dialled"

# --- checks --------------------------------------------------------------------------------------

commands=$(wc -l <"$WORK/dials")
dup_commands=$(cut -d' ' -f1 "$WORK/dials" | uniq -d | wc -l)
not_attempt1=$(awk '$2 != "1"' "$WORK/dials" | wc -l)
missing=$(cut -d' ' -f1 "$WORK/dials" | sort -u | comm -23 "$WORK/ids" - | wc -l)
strangers=$(cut -d' ' -f1 "$WORK/dials" | sort -u | comm -13 "$WORK/ids" - | wc -l)
echo "dial commands in $ENGAGE_VOICE_COMMANDS_STREAM: $commands for $dialled callbacks" \
    "(duplicates $dup_commands, other attempts $not_attempt1, missing $missing, unknown ids $strangers)"
((dup_commands == 0)) || fail "$dup_commands callbacks have more than one dial command: $(cut -d' ' -f1 "$WORK/dials" | uniq -d | head -n 5 | paste -sd' ')"
((not_attempt1 == 0)) || fail "$not_attempt1 dial commands are for an attempt other than 1"
((missing == 0)) || fail "$missing callbacks were never dialled within ${DIAL_WAIT}s"
((strangers == 0)) || fail "$strangers dial commands of service $SERVICE name ids no create returned"

vredis --raw hgetall voicesim:dials | paste - - |
    awk -v t="$ENGAGE_TENANT_ID:" 'index($1, t) == 1 {sub(t, "", $1); print}' |
    sort >"$WORK/simdials"
sed 's/:/ /' "$WORK/simdials" | sort >"$WORK/simdials.split"
join "$WORK/ids" "$WORK/simdials.split" >"$WORK/simdials.ours"
sim_total=$(awk '{s += $3} END {print s + 0}' "$WORK/simdials.ours")
sim_dups=$(awk '$3 != 1' "$WORK/simdials.ours" | wc -l)
sim_attempts=$(awk '$2 != "1"' "$WORK/simdials.ours" | wc -l)
sim_ids=$(cut -d' ' -f1 "$WORK/simdials.ours" | sort -u | wc -l)
echo "voicesim:dials: $sim_total dials for $sim_ids callbacks (fields above 1: $sim_dups, other attempts: $sim_attempts)"
((sim_dups == 0)) || fail "voicesim:dials counts $sim_dups attempts more than once"
((sim_attempts == 0)) || fail "voicesim:dials has $sim_attempts fields for attempts other than 1"
((sim_ids == COUNT)) || fail "voicesim:dials has $sim_ids of the $COUNT callbacks"

m1_after=$(metric "$SUITE_SCHED_PORT" engage_callbacks_dispatched_total)
m2_after=$(metric "$REPLICA_PORT" engage_callbacks_dispatched_total)
d1=$((m1_after - m1_before))
d2=$((m2_after - m2_before))
dispatched_ids "$SUITE_LOG" "$suite_off" >"$WORK/disp.1"
dispatched_ids "$REPLICA_LOG" 0 >"$WORK/disp.2"
ours1=$(comm -12 "$WORK/ids" "$WORK/disp.1" | wc -l)
ours2=$(comm -12 "$WORK/ids" "$WORK/disp.2" | wc -l)
others=$(cat "$WORK/disp.1" "$WORK/disp.2" | sort | comm -23 - "$WORK/ids" | wc -l)
both=$(comm -12 "$WORK/disp.1" "$WORK/disp.2" | wc -l)
echo "engage_callbacks_dispatched_total grew by $d1 (suite scheduler) + $d2 (replica) = $((d1 + d2))"
echo "replica split: suite scheduler $ours1, replica $ours2 (from their logs; other tests' callbacks: $others)"
if ((others == 0)); then
    ((d1 + d2 == COUNT)) || fail "the schedulers' dispatched counters grew by $((d1 + d2)), not $COUNT"
elif ((d1 + d2 < COUNT || d1 + d2 > COUNT + others)); then
    # Other callbacks were falling due meanwhile: the logs were read after the metrics.
    fail "the schedulers' dispatched counters grew by $((d1 + d2)), not $COUNT (+ up to $others of other tests)"
fi
((ours1 + ours2 == COUNT)) || fail "the logs show $((ours1 + ours2)) dispatches of our callbacks, not $COUNT"
((both == 0)) || fail "$both callbacks were dispatched by both schedulers"
((ours1 > 0 && ours2 > 0)) || fail "one scheduler did all the work (suite $ours1, replica $ours2)"

# Let the calls finish, so the next tests do not queue behind 5,000 calls' progress events.
stamp "waiting up to ${DONE_WAIT}s for the $COUNT callbacks to complete (PostgreSQL)"
deadline=$((SECONDS + DONE_WAIT))
while :; do
    done_n=$(psql "$ENGAGE_PG_DSN" -X -At -c \
        "SELECT count(*) FROM callbacks WHERE service = '$SERVICE' AND tenant_id = '$ENGAGE_TENANT_ID'
           AND state = 'COMPLETED' AND reason = 'FAIL_CALL_TO_CUSTOMER'")
    ((done_n >= COUNT || SECONDS >= deadline)) && break
    sleep 2
done
stamp "$done_n/$COUNT completed"
((done_n == COUNT)) || fail "only $done_n of $COUNT callbacks completed within ${DONE_WAIT}s"

stamp "SIGTERM to the replica"
kill -TERM "$REPLICA_PID"
for ((i = 0; i < 50; i++)); do
    pid_alive "$REPLICA_PID" || break
    sleep 0.1
done
if pid_alive "$REPLICA_PID"; then
    fail "the replica did not exit within 5 s of SIGTERM"
else
    rc=0
    wait "$REPLICA_PID" || rc=$?
    ((rc == 0)) || fail "the replica exited with code $rc on SIGTERM"
fi
REPLICA_PID=""

echo "replicas report: callbacks=$COUNT dispatched=$((ours1 + ours2)) suite=$ours1 replica=$ours2 dial_commands=$commands duplicates=$((dup_commands + sim_dups))"
if ((failures > 0)); then
    echo "FAIL: $failures check(s) failed (logs: $SUITE_LOG, $REPLICA_LOG)"
    exit 1
fi
echo "PASS: two schedulers dispatched $COUNT callbacks, each exactly once ($((SECONDS - T0))s)"
