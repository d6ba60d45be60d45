#!/usr/bin/env bash
# PostgreSQL failover under load: a primary with a streaming standby (scripts/stack_pg.sh), the
# scheduler, archiver and api on the multi-host DSNs of DIR/pg.env. While immediate callbacks are
# created and the scheduler takes admin writes (PUT of a callback service), the primary is
# stopped (-m immediate) and, after OUTAGE seconds, the standby promoted. The services are not
# restarted. The test fails unless:
#   - every lifecycle event in the JetStream stream is in callback_events exactly once, and every
#     accepted callback has its row in callbacks (the archiver lost nothing and doubled nothing);
#   - every service is still the process it was, and admin writes succeed again after the
#     promotion (the scheduler found the new primary);
#   - history search (ENGAGE_PG_READ_DSN) answers while the standby is down (from the primary),
#     while the primary is down (from the standby), and after the promotion.
# It prints the replication lag it measured (a row written on the primary until the standby
# shows it), the longest stretch in which writes failed (admin writes through the scheduler, and
# plain libpq writes on ENGAGE_PG_DSN), and a report line. Bounded (about 40 s); run it from the
# repo root: bash tests/ha/pg_standby_test.sh. It starts and stops its own stack (KEEP_RUN=1
# keeps the run directory and its logs).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
# shellcheck source=scripts/stack_pg.sh
source "$ROOT/scripts/stack_pg.sh"

LOAD_BEFORE=${PG_HA_LOAD_BEFORE:-3} # seconds of load before the primary stops
OUTAGE=${PG_HA_OUTAGE:-2}           # seconds between the stop and the promotion
LOAD_AFTER=${PG_HA_LOAD_AFTER:-4}   # seconds of load after the promotion
SETTLE=${PG_HA_SETTLE:-30}          # seconds the archiver gets to catch up

if [[ -z "${ENGAGE_BIN_DIR:-}" ]]; then
    ENGAGE_BIN_DIR="$ROOT/build-test/bin"
    [[ -x "$ENGAGE_BIN_DIR/engage-archiver" ]] || ENGAGE_BIN_DIR="$ROOT/build/bin"
fi
for b in engage-scheduler engage-archiver engage-api engagectl; do
    [[ -x "$ENGAGE_BIN_DIR/$b" ]] || die "no $b in $ENGAGE_BIN_DIR (build first)"
done

RUN="$(mktemp -d /tmp/engage-pg-ha.XXXXXX)"
WORK="$RUN/work"
mkdir -p "$WORK" "$RUN/pids" "$RUN/logs"
declare -a BG=()
cleanup() {
    local p
    touch "$WORK/stop" 2>/dev/null || true
    for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
    "$ROOT/scripts/stack.sh" clean "$RUN" >/dev/null 2>&1 || true
    if [[ -n "${KEEP_RUN:-}" ]]; then echo "run directory kept: $RUN"; else rm -rf "$RUN"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    echo "FAIL: $*"
    FAILED=1
}
FAILED=0

"$ROOT/scripts/stack.sh" start "$RUN" >"$RUN/logs/stack-start.log" 2>&1 ||
    { cat "$RUN/logs/stack-start.log"; die "stack.sh start failed"; }
pg_standby_start "$RUN"
load_env_file "$RUN/stack.env"
load_env_file "$RUN/pg.env"
PRIMARY_PORT="$(sed -n 4p "$RUN/pg/pg/postmaster.pid")"
STANDBY_PORT="$(pg_standby_port "$RUN")"

export ENGAGE_HTTP_ADDR=127.0.0.1 ENGAGE_LOG_LEVEL=info ENGAGE_WORKERS=2
export ENGAGE_KEY_PEPPER
ENGAGE_KEY_PEPPER="$(head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n')"
export ENGAGE_VOICE_EVENTS_STREAM=engage:voice:events ENGAGE_VOICE_COMMANDS_STREAM=engage:voice:commands
export ENGAGE_VOICE_DEADLETTER_STREAM=engage:voice:deadletter
export ASAN_OPTIONS="${ENGAGE_SERVICE_ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}"
unset ENGAGE_CONSUL_ADDR

declare -A PORT=() PID=()
start_service() { # NAME BINARY
    PORT[$1]="$(pick_free_port)"
    ENGAGE_HTTP_PORT="${PORT[$1]}" setsid "$ENGAGE_BIN_DIR/$2" </dev/null >>"$RUN/logs/$1.log" 2>&1 &
    PID[$1]=$!
    echo "${PID[$1]}" >"$RUN/pids/$1.pid"
}
# The scheduler first: it applies the migrations, on the multi-host DSN.
start_service scheduler engage-scheduler
wait_http_200 "http://127.0.0.1:${PORT[scheduler]}/readyz" 30 "${PID[scheduler]}" ||
    { tail -n 20 "$RUN/logs/scheduler.log"; die "scheduler not ready"; }
start_service archiver engage-archiver
start_service api engage-api
for s in archiver api; do
    wait_http_200 "http://127.0.0.1:${PORT[$s]}/readyz" 30 "${PID[$s]}" ||
        { tail -n 20 "$RUN/logs/$s.log"; die "$s not ready"; }
done
export ENGAGE_URL="http://127.0.0.1:${PORT[api]}"
json="$("$ENGAGE_BIN_DIR/engagectl" tenant create "ha-$$" --json 2>>"$RUN/logs/engagectl.log" | grep '^{' | tail -n1)"
API_KEY="$(jq -er .apiKey <<<"$json")"
export ENGAGE_ADMIN_KEY
ENGAGE_ADMIN_KEY="$(jq -er .adminKey <<<"$json")"
"$ENGAGE_BIN_DIR/engagectl" service put demo "$ROOT/scripts/demo-service.json" \
    >>"$RUN/logs/engagectl.log" 2>&1 || die "engagectl service put failed"
echo "stack up: primary :$PRIMARY_PORT, standby :$STANDBY_PORT; services scheduler, archiver, api"

now_ms() { printf '%s\n' "$((${EPOCHREALTIME/./} / 1000))"; }

# Immediate creates, one line per answer: "<ms> <code> <id>".
creator() {
    local n=0 out code id
    while [[ ! -e "$WORK/stop" ]]; do
        n=$((n + 1))
        out="$(curl -s -m 5 -w '\n%{http_code}' -X POST "$ENGAGE_URL/engagement/v3/callbacks/create" \
            -H "x-api-key: $API_KEY" -H 'Content-Type: application/json' \
            -d "{\"serviceName\":\"demo\",\"phoneNumber\":\"+1888$1$(printf '%05d' "$n")\"}" || true)"
        code="$(tail -n1 <<<"$out")"
        id="$(head -n1 <<<"$out" | jq -r '.data.id // empty' 2>/dev/null || true)"
        echo "$(now_ms) ${code:-000} ${id:-none}" >>"$WORK/creates.$1"
        sleep 0.05
    done
}

# Admin writes through the api to the scheduler, which stores them in PostgreSQL: "<ms> <code>".
admin_writer() {
    local n=0 code
    while [[ ! -e "$WORK/stop" ]]; do
        n=$((n + 1))
        code="$(jq -c ".capacity.default = $((50 + n % 7))" "$ROOT/scripts/demo-service.json" |
            curl -s -m 5 -o /dev/null -w '%{http_code}' -X PUT "$ENGAGE_URL/ges/api/v1/services/demo" \
                -H "x-api-key: $ENGAGE_ADMIN_KEY" -H 'Content-Type: application/json' --data-binary @- ||
            true)"
        echo "$(now_ms) ${code:-000}" >>"$WORK/admin"
        sleep 0.1
    done
}

# Plain libpq writes on ENGAGE_PG_DSN (a new connection each): "<ms> <0 ok|1 failed>".
pg_writer() {
    local rc
    while [[ ! -e "$WORK/stop" ]]; do
        rc=0
        psql -X -q "$ENGAGE_PG_DSN" -c "INSERT INTO ha_writes VALUES (now())" >/dev/null 2>&1 || rc=1
        echo "$(now_ms) $rc" >>"$WORK/pgwrites"
        sleep 0.05
    done
}

# Longest run of failures in FILE (lines "<ms> <result>"; ok matches a good result), in
# seconds: from the first failure of a run to the next success.
longest_outage() { # FILE OK_REGEX
    awk -v ok="$2" '{ good = ($2 ~ ok) }
        !good && start == "" { start = $1 }
        good && start != "" { if ($1 - start > max) max = $1 - start; start = "" }
        END { if (start != "") { if ($1 - start > max) max = $1 - start; open = 1 }
              printf "%.1f%s\n", max / 1000, open ? " (still failing at the end)" : "" }' "$1"
}

search_ok() { # 0 when the admin history search answers 200 with at least one callback
    local out
    out="$(curl -s -m 5 -H "x-api-key: $ENGAGE_ADMIN_KEY" \
        "$ENGAGE_URL/ges/api/v1/callbacks?limit=5" || true)"
    [[ "$(jq -r '.status.code' <<<"$out" 2>/dev/null)" == 200 ]] &&
        [[ "$(jq -r '.data.callbacks | length' <<<"$out" 2>/dev/null || echo 0)" -gt 0 ]]
}

psql -X -q -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d engage -v ON_ERROR_STOP=1 \
    -c "CREATE TABLE ha_writes (at timestamptz)" \
    -c "CREATE TABLE ha_probe (id int PRIMARY KEY, at timestamptz)" >/dev/null

for c in 1 2; do
    creator "$c" &
    BG+=($!)
done
admin_writer &
BG+=($!)
pg_writer &
BG+=($!)

# Replication lag under this load: the standby polls for rows the primary commits 50 ms apart
# and keeps the longest time from a row's insert on the primary to its first sight there.
sleep 1
psql -X -q -h 127.0.0.1 -p "$STANDBY_PORT" -U postgres -d engage -c "DO \$\$
DECLARE seen int := 0; n int; lag interval; worst interval := '0'; t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    SELECT count(*), max(clock_timestamp() - at) FILTER (WHERE id > seen) INTO n, lag FROM ha_probe;
    IF n > seen THEN worst := greatest(worst, lag); seen := n; END IF;
    EXIT WHEN seen >= 20 OR clock_timestamp() - t0 > interval '10 s';
    PERFORM pg_sleep(0.001);
  END LOOP;
  RAISE WARNING 'lag_ms=% rows=%', round(extract(epoch FROM worst) * 1000, 1), seen;
END \$\$" 2>"$WORK/lag" &
prober=$!
sleep 0.2
psql -X -q -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d engage -c "DO \$\$ BEGIN
  FOR i IN 1..20 LOOP INSERT INTO ha_probe VALUES (i, clock_timestamp()); COMMIT;
  PERFORM pg_sleep(0.05); END LOOP; END \$\$" >/dev/null
wait "$prober" || true
lag_ms="$(grep -o 'lag_ms=[0-9.]*' "$WORK/lag" | cut -d= -f2 || true)"
replay_lag="$(psql -X -A -t -h 127.0.0.1 -p "$PRIMARY_PORT" -U postgres -d engage -c \
    "SELECT coalesce(round(extract(epoch FROM replay_lag) * 1000, 1)::text, '0') FROM pg_stat_replication")"
echo "replication lag: a row committed on the primary showed on the standby within ${lag_ms:-?} ms" \
    "(worst of 20; pg_stat_replication replay_lag ${replay_lag:-?} ms)"
[[ -n "$lag_ms" ]] || fail "the standby did not show the probe rows"

# The standby down: searches move to the primary (prefer-standby) and keep answering.
pg_standby_stop "$RUN"
if search_ok; then
    echo "history search answered (from the primary) while the standby was down"
else
    fail "history search did not answer while the standby was down"
fi
pg_standby_resume "$RUN"
sleep "$LOAD_BEFORE"
search_ok || fail "history search did not answer before the failover"
t_stop=$(now_ms)
pg_primary_stop "$RUN"
sleep 0.5
# The primary is gone: history search reads on ENGAGE_PG_READ_DSN, the standby.
if search_ok; then
    echo "history search answered from the standby while the primary was down"
else
    fail "history search (ENGAGE_PG_READ_DSN) did not answer while the primary was down"
fi
sleep "$OUTAGE"
pg_standby_promote "$RUN"
t_promoted=$(now_ms)
sleep "$LOAD_AFTER"
touch "$WORK/stop"
for p in "${BG[@]}"; do wait "$p" || true; done
BG=()

search_ok || fail "history search did not answer after the promotion"
for s in scheduler archiver api; do
    pid_alive "${PID[$s]}" || fail "$s (pid ${PID[$s]}) exited during the failover"
done
if ! awk -v t="$t_promoted" '$1 > t && $2 == 200 { ok = 1 } END { exit !ok }' "$WORK/admin"; then
    fail "no admin write succeeded after the promotion (the scheduler did not reconnect)"
fi

cat "$WORK"/creates.* >"$WORK/creates"
sent=$(wc -l <"$WORK/creates")
awk '$2 == 200 { print $3 }' "$WORK/creates" | sort -u >"$WORK/accepted"
accepted=$(wc -l <"$WORK/accepted")
((accepted >= 20)) || fail "only $accepted callbacks accepted: too few for the test to mean anything"
ids="{$(paste -sd, "$WORK/accepted")}"

# Settle: the archiver's durable consumer has nothing pending or unacknowledged (it acks only
# after its commit), and PostgreSQL holds every accepted callback with one event per version.
pgq() { psql -X -A -t -q "$ENGAGE_PG_DSN" -v ON_ERROR_STOP=1 -c "$1"; }
consumer_state() { # "<pending> <ack pending>" of the archiver's durable
    curl -s -m 2 "$ENGAGE_NATS_MONITOR_URL/jsz?consumers=true" | jq -r '[.account_details[]?.stream_detail[]?
        | select(.name == "ENGAGE_EVENTS") | .consumer_detail[]? | select(.name == "archiver")][0]
        | "\(.num_pending // "?") \(.num_ack_pending // "?")"'
}
deadline=$((SECONDS + SETTLE))
while :; do
    read -r pending unacked < <(consumer_state)
    read -r missing short events rows distinct < <(pgq "SELECT
        count(*) FILTER (WHERE c.id IS NULL), count(*) FILTER (WHERE e.n < c.version), sum(e.n),
        (SELECT count(*) FROM callback_events), (SELECT count(DISTINCT event_id) FROM callback_events)
        FROM unnest('$ids'::uuid[]) AS a(id) LEFT JOIN callbacks c ON c.id = a.id
        LEFT JOIN LATERAL (SELECT count(*) AS n FROM callback_events x WHERE x.callback_id = a.id) e
        ON true" | tr '|' ' ')
    [[ "$pending $unacked $missing $short" == "0 0 0 0" ]] && break
    ((SECONDS < deadline)) || break
    sleep 0.5
done
lost=$((missing + short))
duplicates=$((rows - distinct))
[[ "$pending $unacked" == "0 0" ]] ||
    fail "the archiver's consumer still has $pending pending and $unacked unacknowledged events"
((missing == 0)) || fail "$missing accepted callbacks have no row in callbacks"
((short == 0)) || fail "$short accepted callbacks have fewer events in callback_events than versions"
((duplicates == 0)) || fail "$duplicates events are in callback_events more than once"
dropped="$(grep -c 'dropping event' "$RUN/logs/archiver.log" || true)"
((dropped == 0)) || fail "the archiver dropped $dropped event(s) for good"
redelivered="$(grep -c 'will be redelivered' "$RUN/logs/archiver.log" || true)"

# The services stop cleanly, with no sanitizer report (the test build runs them under ASan).
for s in scheduler archiver api; do kill -TERM "${PID[$s]}" 2>/dev/null || true; done
for s in scheduler archiver api; do
    code=0
    wait "${PID[$s]}" || code=$?
    ((code == 0)) || fail "$s exited with code $code on SIGTERM"
    rm -f "$RUN/pids/$s.pid"
done
if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$RUN"/logs/{scheduler,archiver,api}.log; then
    fail "a sanitizer report in the services' logs (above)"
fi

admin_out="$(longest_outage "$WORK/admin" '^200$')"
pg_out="$(longest_outage "$WORK/pgwrites" '^0$')"
create_out="$(longest_outage "$WORK/creates" '^200$')"
# Seconds from the end of the promotion to the first write in FILE that succeeded.
resumed_after() { # FILE OK_REGEX
    awk -v t="$t_promoted" -v ok="$2" '$1 >= t && $2 ~ ok { printf "%.2f\n", ($1 - t) / 1000; f = 1; exit }
        END { if (!f) print "never" }' "$1"
}
awk -v a="$t_stop" -v b="$t_promoted" 'BEGIN { printf "primary stopped at +0 s, standby promoted (pg_is_in_recovery false) at +%.1f s\n", (b - a) / 1000 }'
echo "writes resumed after the promotion: admin writes in $(resumed_after "$WORK/admin" '^200$') s," \
    "libpq writes in $(resumed_after "$WORK/pgwrites" '^0$') s"
echo "writes failed for at most: admin writes ${admin_out} s, libpq writes on ENGAGE_PG_DSN" \
    "${pg_out} s (creates, which need no PostgreSQL: ${create_out} s)"
echo "archiver: $redelivered batch(es) or event(s) left for redelivery while PostgreSQL was away"
echo "sent=$sent accepted=$accepted events=$events lost=$lost" \
    "duplicates=$duplicates unavailable_s=${admin_out%% *}"
if ((FAILED)); then
    for s in scheduler archiver api; do
        echo "---- last lines of $s.log ----"
        tail -n 15 "$RUN/logs/$s.log"
    done
    exit 1
fi
echo "PASS: PostgreSQL failover: nothing lost, nothing doubled, services reconnected"
