# shellcheck shell=bash
# A 3-node NATS JetStream cluster on loopback, for the cluster topology and the fault tests.
# Source it (it sources scripts/common.sh); it runs nothing by itself.
#
#   nats_cluster_start DIR        starts n1..n3 (cluster name engage) on free ports, waits until
#                                 JetStream has a meta leader, writes DIR/nats.env
#   nats_cluster_stop DIR         stops every node (SIGTERM, then SIGKILL)
#   nats_node_kill DIR K          SIGKILL node nK (K = 1, 2 or 3)
#   nats_node_start DIR K         starts nK again, same ports and store; waits until it runs
#                                 JetStream, and up to 5 s more until it is current
#   nats_node_url DIR K           prints nats://127.0.0.1:<client port of nK>
#   nats_stream_leader DIR STREAM prints K of the node leading STREAM (fails when none does)
#   nats_meta_leader DIR          prints K of the JetStream meta leader (fails when none)
#   nats_consumer_leader DIR STREAM DURABLE  prints K of the node leading that consumer
#   nats_stream_replicas DIR STREAM prints how many servers hold STREAM (leader + replicas)
#   nats_stream_current DIR STREAM  true when STREAM has a leader and its leader sees every
#                                 replica current (caught up): safe to lose a node
#
# Layout (the conventions of scripts/stack.sh): DIR/pids/nats-nK.pid, DIR/logs/nats-nK.log,
# stores under DIR/nats-cluster/nK, ports in DIR/nats-cluster/ports (one line per node:
# K client cluster monitoring). DIR/nats.env holds ENGAGE_NATS_URL (all three URLs) and
# ENGAGE_JS_REPLICAS=3.

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

_nats_ports_file() { printf '%s/nats-cluster/ports\n' "$1"; }

# _nats_port DIR K FIELD: FIELD 2 = client, 3 = cluster, 4 = monitoring.
_nats_port() {
    awk -v k="$2" -v f="$3" '$1 == k { print $f }' "$(_nats_ports_file "$1")"
}

nats_node_url() {
    printf 'nats://127.0.0.1:%s\n' "$(_nats_port "$1" "$2" 2)"
}

# _nats_launch DIR K: starts node K from the ports file, in the background, pid file written.
_nats_launch() {
    local dir="$1" k="$2" port cport mport routes="" j
    port="$(_nats_port "$dir" "$k" 2)"
    cport="$(_nats_port "$dir" "$k" 3)"
    mport="$(_nats_port "$dir" "$k" 4)"
    for j in 1 2 3; do
        ((j == k)) && continue
        routes="${routes:+$routes,}nats://127.0.0.1:$(_nats_port "$dir" "$j" 3)"
    done
    mkdir -p "$dir/nats-cluster/n$k" "$dir/logs" "$dir/pids"
    setsid nats-server -a 127.0.0.1 -p "$port" -m "$mport" -js -sd "$dir/nats-cluster/n$k" \
        --server_name "n$k" --cluster_name engage --cluster "nats://127.0.0.1:$cport" \
        --routes "$routes" </dev/null >>"$dir/logs/nats-n$k.log" 2>&1 &
    echo "$!" >"$dir/pids/nats-n$k.pid"
    # Not a job of this shell: a later kill -9 is no news to print ("Killed ...").
    disown "$!" 2>/dev/null || true
}

# _nats_wait_healthy DIR K SECONDS [QUERY]: the node answers /healthz?QUERY with ok (no QUERY:
# JetStream included, every stream and consumer current).
_nats_wait_healthy() {
    local dir="$1" k="$2" query="${4:-}" deadline mport pid
    deadline=$((SECONDS + $3))
    mport="$(_nats_port "$dir" "$k" 4)"
    pid="$(cat "$dir/pids/nats-n$k.pid" 2>/dev/null || true)"
    while ((SECONDS < deadline)); do
        if [[ "$(curl -s -m 1 "http://127.0.0.1:$mport/healthz${query:+?$query}" 2>/dev/null || true)" == *'"ok"'* ]]; then
            return 0
        fi
        pid_alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# _nats_jsz DIR K QUERY: node K's /jsz answer (empty when it does not answer).
_nats_jsz() {
    curl -s -m 1 "http://127.0.0.1:$(_nats_port "$1" "$2" 4)/jsz?$3" 2>/dev/null || true
}

nats_meta_leader() {
    local dir="$1" k leader
    for k in 1 2 3; do
        leader="$(_nats_jsz "$dir" "$k" "" | jq -r '.meta_cluster.leader // empty' 2>/dev/null)"
        if [[ "$leader" =~ ^n[123]$ ]]; then
            printf '%s\n' "${leader#n}"
            return 0
        fi
    done
    return 1
}

nats_stream_leader() {
    local dir="$1" stream="$2" k leader
    for k in 1 2 3; do
        leader="$(_nats_jsz "$dir" "$k" "accounts=true&streams=true" | jq -r --arg s "$stream" \
            '[.account_details[]?.stream_detail[]? | select(.name == $s) | .cluster.leader
              // empty] | first // empty' 2>/dev/null)"
        if [[ "$leader" =~ ^n[123]$ ]]; then
            printf '%s\n' "${leader#n}"
            return 0
        fi
    done
    return 1
}

nats_consumer_leader() {
    local dir="$1" stream="$2" durable="$3" k leader
    for k in 1 2 3; do
        leader="$(_nats_jsz "$dir" "$k" "accounts=true&streams=true&consumers=true" | jq -r \
            --arg s "$stream" --arg d "$durable" \
            '[.account_details[]?.stream_detail[]? | select(.name == $s) |
              .consumer_detail[]? | select(.name == $d) | .cluster.leader // empty]
             | first // empty' 2>/dev/null)"
        if [[ "$leader" =~ ^n[123]$ ]]; then
            printf '%s\n' "${leader#n}"
            return 0
        fi
    done
    return 1
}

nats_stream_replicas() {
    local dir="$1" stream="$2" k count
    for k in 1 2 3; do
        count="$(_nats_jsz "$dir" "$k" "accounts=true&streams=true" | jq -r --arg s "$stream" \
            '[.account_details[]?.stream_detail[]? | select(.name == $s) | .cluster
              | select(.leader != null) | 1 + (.replicas // [] | length)] | first // empty' \
            2>/dev/null)"
        if [[ "$count" =~ ^[0-9]+$ ]]; then
            printf '%s\n' "$count"
            return 0
        fi
    done
    return 1
}

nats_stream_current() {
    local dir="$1" stream="$2" k
    k="$(nats_stream_leader "$dir" "$stream")" || return 1
    _nats_jsz "$dir" "$k" "accounts=true&streams=true" | jq -e --arg s "$stream" \
        '[.account_details[]?.stream_detail[]? | select(.name == $s) | .cluster
          | select(.leader != null) | (.replicas // []) | length > 0 and all(.current)]
         | first // false' >/dev/null 2>&1
}

# _nats_cluster_try DIR: one start on fresh ports; false (everything stopped) when it failed.
_nats_cluster_try() {
    local dir="$1" k i
    rm -rf "$dir/nats-cluster"
    mkdir -p "$dir/nats-cluster" "$dir/logs" "$dir/pids"
    # Nine distinct ports: each pick_free_port runs in a subshell here, which forgets the ports
    # handed out before (two picks could name the same free port).
    local -a ports=()
    local p
    while ((${#ports[@]} < 9)); do
        p="$(pick_free_port)"
        [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
    done
    : >"$(_nats_ports_file "$dir")"
    for k in 1 2 3; do
        i=$(((k - 1) * 3))
        printf '%s %s %s %s\n' "$k" "${ports[$i]}" "${ports[$((i + 1))]}" "${ports[$((i + 2))]}" \
            >>"$(_nats_ports_file "$dir")"
    done
    log "starting the NATS cluster: n1 :$(_nats_port "$dir" 1 2), n2 :$(_nats_port "$dir" 2 2), n3 :$(_nats_port "$dir" 3 2) (JetStream in $dir/nats-cluster)"
    for k in 1 2 3; do
        _nats_launch "$dir" "$k"
    done
    for k in 1 2 3; do
        if ! _nats_wait_healthy "$dir" "$k" 20; then
            warn "nats n$k did not come up; log tail:"
            tail -n 5 "$dir/logs/nats-n$k.log" >&2 || true
            nats_cluster_stop "$dir"
            return 1
        fi
    done
    for ((i = 0; i < 200; i++)); do
        nats_meta_leader "$dir" >/dev/null && break
        sleep 0.1
    done
    if ! k="$(nats_meta_leader "$dir")"; then
        warn "the NATS cluster elected no JetStream meta leader within 20 s"
        nats_cluster_stop "$dir"
        return 1
    fi
    {
        printf 'ENGAGE_NATS_URL=%s\n' "$(shell_quote "$(nats_node_url "$dir" 1),$(nats_node_url "$dir" 2),$(nats_node_url "$dir" 3)")"
        printf 'ENGAGE_JS_REPLICAS=3\n'
    } >"$dir/nats.env"
    log "NATS cluster up, JetStream meta leader n$k ($dir/nats.env)"
}

nats_cluster_start() {
    local dir="$1" attempt
    command -v nats-server >/dev/null || die "nats-server is not installed"
    command -v jq >/dev/null || die "jq is not installed"
    # Another process may take a picked port before a node binds it: try again on new ones.
    for attempt in 1 2 3; do
        _nats_cluster_try "$dir" && return 0
        warn "the NATS cluster did not come up (attempt $attempt)"
    done
    return 1
}

nats_node_kill() {
    local dir="$1" k="$2" pid
    pid="$(cat "$dir/pids/nats-n$k.pid" 2>/dev/null || true)"
    if pid_matches "$pid" 'nats-server'; then
        kill -KILL "$pid" 2>/dev/null || true
        while pid_alive "$pid"; do sleep 0.05; done
    fi
    rm -f "$dir/pids/nats-n$k.pid"
}

nats_node_start() {
    local dir="$1" k="$2" pid
    pid="$(cat "$dir/pids/nats-n$k.pid" 2>/dev/null || true)"
    if pid_matches "$pid" 'nats-server'; then
        return 0
    fi
    _nats_launch "$dir" "$k"
    if ! _nats_wait_healthy "$dir" "$k" 20 js-enabled-only=true; then
        warn "nats n$k did not come back; log tail:"
        tail -n 5 "$dir/logs/nats-n$k.log" >&2 || true
        return 1
    fi
    # Up; give it a few seconds to catch up with the streams (a consumer with no traffic may
    # stay "not current" in 2.9's health check for longer: not waited for).
    if ! _nats_wait_healthy "$dir" "$k" 5; then
        log "nats n$k is up again, not yet current with every stream and consumer"
    fi
}

nats_cluster_stop() {
    local dir="$1" k pid
    for k in 1 2 3; do
        pid="$(cat "$dir/pids/nats-n$k.pid" 2>/dev/null || true)"
        if pid_matches "$pid" 'nats-server'; then
            stop_pid "$pid" 10 "nats n$k" || true
        fi
        rm -f "$dir/pids/nats-n$k.pid"
    done
}
