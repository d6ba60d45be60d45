#!/usr/bin/env bash
# Fault test (issue 5, item 6): nothing accepted is lost and nothing is dialled twice, whatever
# crashes. While several loops create immediate callbacks (numbers voice-sim answers), this test
#   - kills -9 each service in turn: voice-sim, api, scheduler, ors-bridge, archiver, and waits
#     for the suite's supervisor to restart it (its pid file changes) and for its /readyz;
#     voice-sim loses the calls it is playing: the test's service gives an attempt up after
#     CHAOS_ATTEMPT_TIMEOUT seconds (default 15) without a word from the platform, cancels it and
#     dials the next attempt, so those callbacks complete on attempt 2;
#   - crashes redis-server (SIGKILL; it runs with appendfsync always) and nats-server (SIGKILL;
#     JetStream file store) and restarts each on the same port with the same data, then restarts
#     PostgreSQL (pg_ctl restart -m immediate: a crash and WAL recovery), all with
#     `scripts/stack.sh restart`; the services must reconnect by themselves.
# CHAOS_SERVER_STOP=term stops the three servers cleanly instead; CHAOS_FAULTS="redis nats"
# (any subset, in any order) runs only those faults, to narrow down a failure.
# On the other topologies of scripts/stack.sh (ENGAGE_TOPOLOGY in engage.env) the faults are
# the engines' failovers, again with `scripts/stack.sh kill|restart|promote`:
#   redis-primary  (sentinel) kill -9 the primary the sentinels name; once they promoted a
#                  replica, start it again: it must rejoin as a replica
#   redis-master   (cluster) kill -9 the master of the test tenant's hash slot ({t:<tenant>});
#                  once its replica took over, start it again (it rejoins as a replica)
#   nats-leader    (cluster) kill -9 the NATS node that leads the ENGAGE_EVENTS stream; once
#                  another leads it, start it again
#   pg-promote     (cluster) stop the PostgreSQL primary and promote the standby
# (defaults: redis-primary on sentinel, "redis-master nats-leader pg-promote" on cluster). Each
# failover's length is printed ("failover: ...").
#
# Then, after the load stopped, it checks:
#   1. every create answered 200 exists (retrieve over HTTP) and reaches COMPLETED with reason
#      AGENT_CONNECTED within CHAOS_SETTLE seconds (default 120) — or FAIL_AGENT_CONNECT when an
#      attempt was given up (TIMEOUT in its attempt log: voice-sim died after the customer
#      answered, which is what that reason means);
#   2. no attempt was dialled twice: in voice-sim's hash voicesim:dials (field
#      <tenant>:<callback id>:<attempt>) every field is 1; each accepted callback was dialled for
#      attempt 1, and for a later attempt only after as many attempts were given up (TIMEOUT);
#   3. PostgreSQL agrees with Redis: for every accepted id the `callbacks` row has the state and
#      reason retrieve shows (waiting up to CHAOS_PG_SETTLE seconds, default 60, for the archiver);
#   4. the dead-letter stream got nothing: no entry was added to ENGAGE_VOICE_DEADLETTER_STREAM
#      while this test ran. Tests run one after another, so every entry with an id (a Redis
#      timestamp) after this test's start was caused by it; entries other tests added on purpose
#      before it are left out by that bound.
# It prints `chaos report: sent=N accepted=N completed=N dials=N duplicates=N lost=N
# given_up=N unavailable_s=S` (given_up: attempts the scheduler gave up for lack of word;
# unavailable_s: the longest stretch, from the creators' timestamps, in which every create that
# ended got no 200 — a 503 or no answer — from the start of its first such request to the end
# of its last) and exits non-zero on any violation, printing the log lines of the callbacks
# concerned. Creates answered 503 (or not at all) while something restarted are not accepted
# and are not checked.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
# shellcheck source=scripts/stack_redis.sh
source "$ROOT/scripts/stack_redis.sh"
if [[ -f "$ROOT/scripts/stack_nats.sh" ]]; then
    # shellcheck source=/dev/null
    source "$ROOT/scripts/stack_nats.sh"
fi
: "${ENGAGE_ENV_FILE:?set ENGAGE_ENV_FILE to the engage.env of the suite (make test does)}"
load_env_file "$ENGAGE_ENV_FILE"
RUN_DIR="${ENGAGE_RUN_DIR:-$(dirname "$ENGAGE_ENV_FILE")}"
PIDS="$RUN_DIR/pids"
LOGS="$RUN_DIR/logs"
WORK="$(mktemp -d)"
export LC_ALL=C # one collation for sort, join and comm

CREATORS=${CHAOS_CREATORS:-4}
SETTLE=${CHAOS_SETTLE:-120}
PG_SETTLE=${CHAOS_PG_SETTLE:-60}
SERVER_STOP=${CHAOS_SERVER_STOP:-kill}
GAP=${CHAOS_GAP:-3} # seconds of load between two faults
# The faults, in order (a subset narrows down a failure; make test runs them all).
# voice-sim goes first: the calls it loses are given up after ATTEMPT_TIMEOUT while the other
# faults run.
TOPOLOGY=${ENGAGE_TOPOLOGY:-single}
case "$TOPOLOGY" in
sentinel) DEFAULT_FAULTS="redis-primary" ;;
cluster) DEFAULT_FAULTS="redis-master nats-leader pg-promote" ;;
*) DEFAULT_FAULTS="voice-sim api scheduler ors-bridge archiver redis nats postgres" ;;
esac
FAULTS=${CHAOS_FAULTS:-$DEFAULT_FAULTS}
FAILOVERS=()
ATTEMPT_TIMEOUT=${CHAOS_ATTEMPT_TIMEOUT:-15}
T0=$SECONDS

stop_creators() {
    touch "$WORK/stop"
    wait 2>/dev/null || true
}
cleanup() {
    stop_creators
    rm -rf "$WORK"
}
trap cleanup EXIT

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
stamp() { printf '[%3ds %s] %s\n' "$((SECONDS - T0))" "$(date -u +%H:%M:%S.%3N)" "$*"; }

# redis-cli on the voice Redis: ENGAGE_VOICE_REDIS_URL (with its db) when set; else Engage's
# own target: the primary the sentinels name, or the cluster (-c, from a node that answers).
vredis_raw() {
    local u hostport db=0 name seed
    if [[ -n "${ENGAGE_VOICE_REDIS_URL:-}" ]]; then
        u="${ENGAGE_VOICE_REDIS_URL#redis://}"
        hostport="${u%%/*}"
        [[ "$u" == */* ]] && db="${u#*/}"
        redis-cli --raw -h "${hostport%%:*}" -p "${hostport##*:}" -n "${db:-0}" "$@"
    elif [[ -n "${ENGAGE_REDIS_SENTINELS:-}" ]]; then
        name="$(redis_sentinel_primary "$RUN_DIR")"
        redis-cli --raw -h 127.0.0.1 -p "$(redis_node_port "$RUN_DIR" "$name")" "$@"
    elif [[ -n "${ENGAGE_REDIS_CLUSTER:-}" ]]; then
        for seed in ${ENGAGE_REDIS_CLUSTER//,/ }; do
            redis_ping "${seed##*:}" || continue
            redis-cli --raw -c -h "${seed%:*}" -p "${seed##*:}" "$@"
            return
        done
        die "no node of ENGAGE_REDIS_CLUSTER answers"
    else
        u="${ENGAGE_REDIS_URL#redis://}"
        redis-cli --raw -h "${u%%:*}" -p "${u##*:}" "$@"
    fi
}

# --- the load ------------------------------------------------------------------------------------

# Creates immediate callbacks until $WORK/stop exists; one line per answer:
# "<code> <id or -> <seconds since the test started> <sent at, ms> <answered at, ms>". Numbers
# end in 10, which voice-sim answers.
creator() {
    local c="$1" n=0 out code id sent
    while [[ ! -e "$WORK/stop" ]]; do
        n=$((n + 1))
        sent="${EPOCHREALTIME/./}"
        out="$(curl -s -m 10 -w '\n%{http_code}' -X POST "$ENGAGE_URL/engagement/v3/callbacks/create" \
            -H "x-api-key: $ENGAGE_API_KEY" -H 'Content-Type: application/json' \
            -d "{\"serviceName\":\"$SERVICE\",\"phoneNumber\":\"+1777$c$RUN_TAG$(printf '%04d' "$n")10\"}" ||
            true)"
        code="$(tail -n1 <<<"$out")"
        id="$(head -n1 <<<"$out" | jq -r '.data.id // empty' 2>/dev/null || true)"
        echo "${code:-000} ${id:--} $((SECONDS - T0)) $((sent / 1000)) $((${EPOCHREALTIME/./} / 1000))" \
            >>"$WORK/answers.$c"
        if [[ "$code" != 200 ]]; then
            printf '%s %s %s\n' "$(date -u +%H:%M:%S.%3N)" "${code:-000}" \
                "$(head -n1 <<<"$out" | jq -c '.status // empty' 2>/dev/null || true)" >>"$WORK/refusals"
        fi
        sleep 0.05
    done
}

# --- faults --------------------------------------------------------------------------------------

port_of() { # service name -> its HTTP port from engage.env
    local n="${1^^}" var
    var="ENGAGE_${n//-/_}_HTTP_PORT"
    printf '%s\n' "${!var:-}"
}

# wait_ready NAME TIMEOUT: /readyz of one service answers 200.
wait_ready() {
    local name="$1" timeout="$2" port
    port="$(port_of "$name")"
    [[ -n "$port" ]] || return 0
    if wait_http_200 "http://127.0.0.1:$port/readyz" "$timeout"; then
        return 0
    fi
    fail "$name not ready within ${timeout}s: $(curl -s -m 2 "http://127.0.0.1:$port/readyz" || echo 'no answer')"
    return 1
}

wait_all_ready() {
    local why="$1" name start=$SECONDS
    for name in api scheduler ors-bridge archiver voice-sim; do
        wait_ready "$name" 30 || echo "  (after $why)"
    done
    stamp "every service ready again $((SECONDS - start))s after $why"
}

kill_service() {
    local name="$1" pid newpid i
    pid="$(cat "$PIDS/$name.pid")"
    stamp "kill -9 $name (pid $pid)"
    kill -KILL "$pid"
    for ((i = 0; i < 150; i++)); do
        sleep 0.1
        newpid="$(cat "$PIDS/$name.pid" 2>/dev/null || true)"
        if [[ -n "$newpid" && "$newpid" != "$pid" ]] && pid_alive "$newpid"; then
            wait_ready "$name" 30 || return 0
            stamp "  $name restarted as pid $newpid and ready"
            return 0
        fi
    done
    fail "$name was not restarted within 15 s of kill -9"
}

restart_server() {
    local name="$1" before after
    before="$(cat "$PIDS/$name.pid" 2>/dev/null || true)"
    stamp "restart $name ($SERVER_STOP)"
    if ! "$ROOT/scripts/stack.sh" restart "$RUN_DIR" "$name" "$SERVER_STOP" | sed 's/^/  /'; then
        fail "scripts/stack.sh restart $name failed"
        return 0
    fi
    after="$(cat "$PIDS/$name.pid" 2>/dev/null || true)"
    if [[ "$before" == "$after" ]]; then
        fail "$name pid unchanged ($before) after its restart"
    fi
    stamp "  $name up again (pid $before -> $after)"
    wait_all_ready "the $name restart"
}

# wait_until TIMEOUT CMD...: polls CMD (every 0.2 s) until it succeeds; prints the seconds taken
# (one decimal), false on timeout.
wait_until() {
    local timeout="$1" start="${EPOCHREALTIME/./}" end
    shift
    end=$((start + timeout * 1000000))
    while ((${EPOCHREALTIME/./} < end)); do
        if "$@" >/dev/null 2>&1; then
            awk -v d="$((${EPOCHREALTIME/./} - start))" 'BEGIN {printf "%.1f\n", d / 1e6}'
            return 0
        fi
        sleep 0.2
    done
    return 1
}

need_topology() { # FAULT TOPOLOGY
    [[ "$TOPOLOGY" == "$2" ]] || die "fault $1 needs the $2 topology (this suite runs $TOPOLOGY)"
}

stack() { "$ROOT/scripts/stack.sh" "$@" 2>&1 | sed 's/^/  /'; }

failover_note() { # what took how long
    stamp "  $1"
    FAILOVERS+=("$1")
}

primary_is_not() { [[ "$(redis_sentinel_primary "$RUN_DIR" 2>/dev/null)" != "$1" ]]; }
is_replica() { # Redis node NAME says role:slave
    redis-cli -h 127.0.0.1 -p "$(redis_node_port "$RUN_DIR" "$1")" info replication 2>/dev/null |
        grep -q '^role:slave'
}
master_is_not() { # NAME KEY: another live master serves KEY's slot
    local m
    m="$(redis_cluster_master_for "$RUN_DIR" "$2" 2>/dev/null)" || return 1
    [[ -n "$m" && "$m" != "$1" ]]
}
leader_is_not() { # K STREAM: another node leads STREAM
    local k
    k="$(nats_stream_leader "$RUN_DIR" "$2" 2>/dev/null)" || return 1
    [[ -n "$k" && "$k" != "$1" ]]
}

fault_redis_primary() {
    local old t
    need_topology redis-primary sentinel
    old="$(redis_sentinel_primary "$RUN_DIR")"
    stamp "kill -9 the Redis primary $old"
    stack kill "$RUN_DIR" "$old" || { fail "scripts/stack.sh kill $old failed"; return 0; }
    if t="$(wait_until 30 primary_is_not "$old")"; then
        failover_note "redis-primary: the sentinels named $(redis_sentinel_primary "$RUN_DIR") primary ${t}s after the kill of $old"
    else
        fail "the sentinels did not name another primary within 30 s of the kill of $old"
    fi
    sleep "$GAP"
    stamp "start $old again"
    stack restart "$RUN_DIR" "$old" || { fail "scripts/stack.sh restart $old failed"; return 0; }
    if t="$(wait_until 30 is_replica "$old")"; then
        stamp "  $old rejoined as a replica ${t}s after its start"
    else
        fail "$old did not become a replica within 30 s of its start"
    fi
    wait_all_ready "the Redis failover"
}

fault_redis_master() {
    local key="{t:$ENGAGE_TENANT_ID}" old t
    need_topology redis-master cluster
    old="$(redis_cluster_master_for "$RUN_DIR" "$key")"
    stamp "kill -9 the Redis Cluster master $old (slot of $key)"
    stack kill "$RUN_DIR" "$old" || { fail "scripts/stack.sh kill $old failed"; return 0; }
    if t="$(wait_until 30 master_is_not "$old" "$key")"; then
        failover_note "redis-master: $(redis_cluster_master_for "$RUN_DIR" "$key") serves the slot ${t}s after the kill of $old"
    else
        fail "no replica took over the slot of $key within 30 s of the kill of $old"
    fi
    sleep "$GAP"
    stamp "start $old again"
    stack restart "$RUN_DIR" "$old" || { fail "scripts/stack.sh restart $old failed"; return 0; }
    if t="$(wait_until 30 is_replica "$old")"; then
        stamp "  $old rejoined as a replica ${t}s after its start"
    else
        fail "$old did not become a replica within 30 s of its start"
    fi
    wait_all_ready "the Redis Cluster failover"
}

fault_nats_leader() {
    local stream=ENGAGE_EVENTS old t n
    need_topology nats-leader cluster
    declare -F nats_stream_replicas >/dev/null || die "fault nats-leader needs scripts/stack_nats.sh"
    old="$(nats_stream_leader "$RUN_DIR" "$stream")"
    # A stream on one server cannot survive its loss: say so rather than wait for a new leader.
    n="$(nats_stream_replicas "$RUN_DIR" "$stream" 2>/dev/null || echo '?')"
    if [[ "$n" != 3 ]]; then
        fail "$stream is held by $n server(s), not 3 (ENGAGE_JS_REPLICAS=${ENGAGE_JS_REPLICAS:-unset}): its leader's loss was not tried"
        return 0
    fi
    # A replica still catching up may become the leader without the newest messages (seen on
    # nats-server 2.9.10): kill only once every replica is current, as an operator would.
    wait_until 30 nats_stream_current "$RUN_DIR" "$stream" >/dev/null ||
        warn "$stream: a replica is still not current after 30 s"
    stamp "kill -9 nats-$old, the leader of $stream (held by $n servers)"
    stack kill "$RUN_DIR" "nats-$old" || { fail "scripts/stack.sh kill nats-$old failed"; return 0; }
    if t="$(wait_until 30 leader_is_not "$old" "$stream")"; then
        failover_note "nats-leader: nats-$(nats_stream_leader "$RUN_DIR" "$stream") leads $stream ${t}s after the kill of nats-$old"
    else
        fail "no other NATS node led $stream within 30 s of the kill of nats-$old"
    fi
    sleep "$GAP"
    stamp "start nats-$old again"
    stack restart "$RUN_DIR" "nats-$old" || { fail "scripts/stack.sh restart nats-$old failed"; return 0; }
    wait_all_ready "the NATS leader's loss"
    wait_until 30 nats_stream_current "$RUN_DIR" "$stream" >/dev/null ||
        warn "$stream: nats-$old has not caught up 30 s after its start"
}

fault_pg_promote() {
    local start=${EPOCHREALTIME/./}
    need_topology pg-promote cluster
    stamp "stop the PostgreSQL primary and promote the standby"
    if ! "$ROOT/scripts/stack.sh" promote "$RUN_DIR" 2>&1 | sed 's/^/  /'; then
        fail "scripts/stack.sh promote failed"
        return 0
    fi
    failover_note "pg-promote: the standby accepts writes $(awk -v d="$((${EPOCHREALTIME/./} - start))" 'BEGIN {printf "%.1f", d / 1e6}')s after the primary's stop began"
    wait_all_ready "the PostgreSQL promotion"
}

# --- checks --------------------------------------------------------------------------------------

# retrieve_all IDS_FILE OUT: one line per id, "<id>\t<http code>\t<state>\t<reason>", from one
# curl per 500 ids (sequential requests on one curl process).
retrieve_all() {
    local ids="$1" out="$2" cfg="$WORK/retrieve.cfg" id chunk sep
    : >"$out.raw"
    split -l 500 "$ids" "$WORK/chunk."
    for chunk in "$WORK"/chunk.*; do
        [[ -f "$chunk" ]] || continue # no ids at all
        : >"$cfg"
        sep=""
        while read -r id; do
            {
                printf '%s' "$sep"
                printf 'url = "%s/engagement/v3/callbacks/retrieve"\n' "$ENGAGE_URL"
                printf 'header = "x-api-key: %s"\n' "$ENGAGE_API_KEY"
                printf 'json = "{\\"id\\":\\"%s\\"}"\n' "$id"
                printf 'write-out = "\\t%s\\t%%{http_code}\\n"\n' "$id"
                printf 'max-time = 10\n'
            } >>"$cfg"
            sep=$'next\n'
        done <"$chunk"
        curl -s -K "$cfg" >>"$out.raw" 2>/dev/null || true
        rm -f "$chunk"
    done
    jq -Rr 'split("\t") as $p
        | (($p[0] | fromjson?) // {}) as $b
        | [$p[1], $p[2], ($b.data.callbackState // "-"), ($b.data.callbackReason // "-"),
           ([$b.data.attemptLog // [] | .[] | select(.result == "TIMEOUT")] | length)] | @tsv' \
        <"$out.raw" | sort >"$out"
}

# show_logs ID...: every service log line that names one of the ids (at most 40 per id).
show_logs() {
    local id
    for id in "$@"; do
        echo "---- log lines naming $id ----"
        grep -h -F "$id" "$LOGS"/{api,scheduler,ors-bridge,archiver,voice-sim}.log 2>/dev/null |
            head -n 40 || true
        echo "  voicesim:dials: $(grep -F "$id" "$WORK/dials.all" | paste -sd' ' || true)"
    done
}

# --- run -----------------------------------------------------------------------------------------

RUN_TAG="$(printf '%02d' $((RANDOM % 100)))"
SERVICE="chaos-$RUN_TAG-$$"
code="$(curl -s -o "$WORK/service.json" -w '%{http_code}' -X PUT \
    "$ENGAGE_URL/ges/api/v1/services/$SERVICE" -H "x-api-key: $ENGAGE_ADMIN_KEY" \
    -H 'Content-Type: application/json' \
    -d "{\"retry\":{\"maxAttempts\":3,\"delaySeconds\":1,\"attemptTimeoutSeconds\":$ATTEMPT_TIMEOUT}}")"
[[ "$code" == 201 || "$code" == 200 ]] || die "cannot create the test's service $SERVICE: $code $(cat "$WORK/service.json")"
DL_STREAM="$ENGAGE_VOICE_DEADLETTER_STREAM"
DL_START="$(vredis_raw time | head -n1)"
DL_START_ID="$((DL_START * 1000))-0"
stamp "chaos test: $CREATORS creators; faults ${GAP}s apart: $FAULTS; servers stopped with '$SERVER_STOP'"

for ((c = 1; c <= CREATORS; c++)); do
    creator "$c" &
done
sleep "$GAP"
for fault in $FAULTS; do
    case "$fault" in
    api | scheduler | ors-bridge | archiver | voice-sim) kill_service "$fault" ;;
    redis | nats | postgres)
        need_topology "$fault" single
        restart_server "$fault"
        ;;
    redis-primary) fault_redis_primary ;;
    redis-master) fault_redis_master ;;
    nats-leader) fault_nats_leader ;;
    pg-promote) fault_pg_promote ;;
    *) die "CHAOS_FAULTS: unknown fault '$fault'" ;;
    esac
    sleep "$GAP"
done
LAST_FAULT=$((SECONDS - T0))
sleep "$GAP"
stamp "stopping the load"
stop_creators

cat "$WORK"/answers.* >"$WORK/all"
sent=$(wc -l <"$WORK/all")
awk '$1 == "200" && $2 != "-" {print $2}' "$WORK/all" | sort -u >"$WORK/accepted"
accepted=$(wc -l <"$WORK/accepted")
after_faults=$(awk -v t="$LAST_FAULT" '$1 == "200" && $3 >= t' "$WORK/all" | wc -l)
echo "answers by code: $(awk '{print $1}' "$WORK/all" | sort | uniq -c | awk '{printf "%s=%s ", $2, $1}')"
echo "accepted after the last fault: $after_faults"
# The longest run of answers (in the order they arrived, all creators together) that were not 200,
# from the start of its first request to the end of its last.
unavailable_s=$(sort -n -k5,5 "$WORK/all" | awk '
    $1 != "200" { if (!run) { run = 1; s = $4 } e = $5; next }
    run { if (e - s > m) m = e - s; run = 0 }
    END { if (run && e - s > m) m = e - s; printf "%.1f\n", m / 1000 }')
echo "longest stretch without a 200 to create: ${unavailable_s}s"
for note in "${FAILOVERS[@]}"; do echo "failover: $note"; done
if [[ -s "$WORK/refusals" ]]; then
    echo "creates not accepted (time, code, status):"
    sed 's/^/    /' "$WORK/refusals"
fi
if ((accepted < 50)); then
    fail "too few callbacks were accepted ($accepted) for the test to mean anything"
fi
if ((after_faults == 0)); then
    fail "no create was accepted after the last server restart: the services did not recover"
fi

# 1. every accepted callback exists and completes with AGENT_CONNECTED.
stamp "waiting up to ${SETTLE}s for $accepted accepted callbacks to complete"
completed=0
deadline=$((SECONDS + SETTLE))
while :; do
    retrieve_all "$WORK/accepted" "$WORK/states"
    completed=$(awk -F'\t' '$2 == "200" && $3 == "COMPLETED"' "$WORK/states" | wc -l)
    missing=$(awk -F'\t' '$2 == "404"' "$WORK/states" | wc -l)
    ((completed == accepted || SECONDS >= deadline)) && break
    stamp "  $completed/$accepted completed, $missing not found; waiting"
    sleep 3
done
stamp "$completed/$accepted completed"
awk -F'\t' '$2 == "404" {print $1}' "$WORK/states" >"$WORK/lost"
awk -F'\t' '$2 != "404" && !($2 == "200" && $3 == "COMPLETED" &&
    ($4 == "AGENT_CONNECTED" || ($4 == "FAIL_AGENT_CONNECT" && $5 > 0)))' \
    "$WORK/states" >"$WORK/bad_state"
given_up=$(awk -F'\t' '{s += $5} END {print s + 0}' "$WORK/states")
lost=$(wc -l <"$WORK/lost")
if ((lost > 0)); then
    fail "$lost accepted callbacks do not exist any more (retrieve: 404): $(head -n 5 "$WORK/lost" | paste -sd' ')"
fi
if [[ -s "$WORK/bad_state" ]]; then
    fail "$(wc -l <"$WORK/bad_state") accepted callbacks did not end COMPLETED/AGENT_CONNECTED (or FAIL_AGENT_CONNECT after a lost call) within ${SETTLE}s:"
    awk -F'\t' '{print $3 "/" $4 " (http " $2 ")"}' "$WORK/bad_state" | sort | uniq -c | sed 's/^/    /'
    head -n 10 "$WORK/bad_state" | sed 's/^/    /'
fi

# 2. dials: every field of voicesim:dials is 1; each accepted callback dialled once, attempt 1.
vredis_raw hgetall voicesim:dials | paste - - >"$WORK/dials.all"
awk -v t="$ENGAGE_TENANT_ID:" 'index($1, t) == 1 {sub(t, "", $1); split($1, a, ":"); print a[1] "\t" a[2] "\t" $2}' \
    "$WORK/dials.all" | sort >"$WORK/dials.tenant"
join -t $'\t' "$WORK/accepted" "$WORK/dials.tenant" >"$WORK/dials.ours"
dials=$(awk -F'\t' '{s += $3} END {print s + 0}' "$WORK/dials.ours")
duplicates=$(awk -F'\t' '$3 > 1' "$WORK/dials.ours" | wc -l)
if ((duplicates > 0)); then
    fail "$duplicates attempts of accepted callbacks were dialled more than once:"
    awk -F'\t' '$3 > 1 {print "    " $1 " attempt " $2 ": " $3 " dials"}' "$WORK/dials.ours" | head -n 20
fi
others=$(awk -F'\t' '$2 > 1' "$WORK/dials.all" | grep -c -v -F -f "$WORK/accepted" || true)
if ((others > 0)); then
    fail "$others other fields of voicesim:dials (earlier tests) are above 1:"
    awk -F'\t' '$2 > 1' "$WORK/dials.all" | head -n 10 | sed 's/^/    /'
fi
# A dial for attempt k > 1 needs k - 1 attempts given up (these numbers answer at once).
awk -F'\t' 'NR == FNR {timeouts[$1] = $5; next} $2 > 1 && $2 - 1 > timeouts[$1] + 0' \
    "$WORK/states" "$WORK/dials.ours" >"$WORK/other_attempts"
if [[ -s "$WORK/other_attempts" ]]; then
    fail "$(wc -l <"$WORK/other_attempts") dials for later attempts without as many attempts given up:"
    head -n 10 "$WORK/other_attempts" | sed 's/^/    /'
fi
cut -f1 "$WORK/dials.ours" | sort -u | comm -23 "$WORK/accepted" - >"$WORK/undialled"
if [[ -s "$WORK/undialled" ]]; then
    fail "$(wc -l <"$WORK/undialled") accepted callbacks were never dialled: $(head -n 5 "$WORK/undialled" | paste -sd' ')"
fi

# 3. PostgreSQL agrees with Redis (retrieve) for every id.
stamp "comparing PostgreSQL with Redis (up to ${PG_SETTLE}s for the archiver)"
ids_sql="{$(paste -sd, "$WORK/accepted")}"
deadline=$((SECONDS + PG_SETTLE))
while :; do
    psql "$ENGAGE_PG_DSN" -X -At -F $'\t' -c \
        "SELECT id, state, coalesce(reason, '-') FROM callbacks WHERE id = ANY('$ids_sql'::uuid[])" |
        sort >"$WORK/pg"
    awk -F'\t' '$2 == "200" {print $1 "\t" $3 "\t" ($3 == "COMPLETED" ? $4 : "-")}' "$WORK/states" |
        sort >"$WORK/redis"
    # PostgreSQL may keep a reason for states before COMPLETED; compare it only when completed.
    awk -F'\t' '{print $1 "\t" $2 "\t" ($2 == "COMPLETED" ? $3 : "-")}' "$WORK/pg" | sort >"$WORK/pg.cmp"
    diff "$WORK/redis" "$WORK/pg.cmp" >"$WORK/pg.diff" || true
    if [[ ! -s "$WORK/pg.diff" ]] || ((SECONDS >= deadline)); then break; fi
    sleep 2
    retrieve_all "$WORK/accepted" "$WORK/states"
done
if [[ -s "$WORK/pg.diff" ]]; then
    fail "PostgreSQL disagrees with Redis for $(grep -c '^<' "$WORK/pg.diff" || true) ids (< Redis, > PostgreSQL):"
    head -n 20 "$WORK/pg.diff" | sed 's/^/    /'
fi
pg_missing=$(comm -23 "$WORK/accepted" <(cut -f1 "$WORK/pg") | wc -l)
((pg_missing == 0)) || fail "$pg_missing accepted callbacks have no row in PostgreSQL"

# 4. nothing was dead-lettered while this test ran.
vredis_raw xrange "$DL_STREAM" "$DL_START_ID" + >"$WORK/deadletters" || true
dl_count=$(vredis_raw eval "return #redis.call('XRANGE', KEYS[1], ARGV[1], '+')" 1 "$DL_STREAM" "$DL_START_ID")
if ((dl_count > 0)); then
    fail "$dl_count entries were dead-lettered in $DL_STREAM during the test:"
    head -n 40 "$WORK/deadletters" | sed 's/^/    /'
fi

bad_ids=()
while read -r id; do bad_ids+=("$id"); done < <({
    cat "$WORK/lost"
    cut -f1 "$WORK/bad_state"
    awk -F'\t' '$3 > 1 {print $1}' "$WORK/dials.ours"
    cat "$WORK/undialled"
    grep -oE '^[<>] [0-9a-f-]{36}' "$WORK/pg.diff" | cut -c3-
} | sort -u | head -n 5)
if ((${#bad_ids[@]} > 0)); then
    show_logs "${bad_ids[@]}"
fi

echo "chaos report: topology=$TOPOLOGY sent=$sent accepted=$accepted completed=$completed dials=$dials duplicates=$duplicates lost=$lost given_up=$given_up unavailable_s=$unavailable_s"
if ((failures > 0)); then
    echo "FAIL: $failures check(s) failed (logs in $LOGS)"
    exit 1
fi
echo "PASS: every accepted callback completed once, PostgreSQL agrees, nothing dead-lettered ($((SECONDS - T0))s)"
