# shellcheck shell=bash
# Redis topologies on loopback, for scripts/stack.sh (sourced; it runs nothing by itself):
#
#   redis_cluster_start DIR      6 nodes redis-1..redis-6 (cluster-enabled, node timeout 2 s),
#                                `redis-cli --cluster create --cluster-replicas 1`: 3 masters and
#                                3 replicas; returns once every node says cluster_state:ok
#   redis_sentinel_start DIR     redis-1 the primary, redis-2 and redis-3 its replicas
#                                (replicaof), sentinel-1..sentinel-3 monitoring it as master
#                                `engage` (quorum 2, down after 2 s, failover timeout 10 s);
#                                returns once every sentinel knows both replicas and the other
#                                two sentinels
#   redis_node_kill DIR NAME     SIGKILL to one node or sentinel (its pid file stays: stack.sh
#                                status shows it "not running")
#   redis_node_start DIR NAME    starts it again on the same port with the same data and config
#                                (a cluster node rejoins from its nodes.conf; an old primary
#                                comes back as a primary and the sentinels turn it into a replica)
#   redis_sentinel_primary DIR   prints the NAME of the primary the sentinels point at
#   redis_cluster_master_for DIR KEY
#                                prints the NAME of the master serving KEY's slot
#   redis_node_names DIR         prints every NAME of the topology, one a line
#   redis_node_port DIR NAME     prints its port
#
# Every data node has the persistence of the single Redis of stack.sh: AOF with appendfsync
# always, no RDB snapshots. Layout: DIR/<name>/ (the node's config file, data, nodes.conf or the
# sentinel's rewritten sentinel.conf), DIR/logs/<name>.log, DIR/pids/<name>.pid, DIR/redis.nodes
# ("name port" lines), and DIR/redis.env (NAME=value lines the suite puts into engage.env):
#   cluster:  ENGAGE_REDIS_CLUSTER (every node as seeds), ENGAGE_REDIS_MIN_REPLICAS=1
#   sentinel: ENGAGE_REDIS_SENTINELS, ENGAGE_REDIS_MASTER=engage, ENGAGE_REDIS_MIN_REPLICAS=1
#   both:     ENGAGE_REDIS_URL, one node, for redis-cli based checks (-c in cluster mode)
# No password is configured (the single Redis has none either).

if ! declare -F pick_free_port >/dev/null; then
    # shellcheck source=scripts/common.sh
    source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
fi

REDIS_SENTINEL_MASTER=engage

redis_node_port() { # DIR NAME
    local p
    p="$(awk -v n="$2" '$1 == n {print $2}' "$1/redis.nodes" 2>/dev/null || true)"
    [[ -n "$p" ]] || die "no Redis node $2 in $1/redis.nodes"
    printf '%s\n' "$p"
}

redis_node_names() { # DIR
    awk '{print $1}' "$1/redis.nodes" 2>/dev/null || true
}

# NAME of the node listening on PORT, or nothing.
redis_name_of_port() { # DIR PORT
    awk -v p="$2" '$2 == p {print $1}' "$1/redis.nodes" 2>/dev/null || true
}

redis_ping() { # PORT: true when the server on PORT answers PONG
    [[ "$(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null || true)" == PONG ]]
}

# Starts NAME from DIR/NAME/NAME.conf (sentinel-* as a sentinel) and waits up to 30 s (an AOF
# replay) for PONG; false when it did not come up.
redis_launch() { # DIR NAME
    local dir="$1" name="$2" port pid i conf
    local -a flags=()
    port="$(redis_node_port "$dir" "$name")"
    conf="$dir/$name/$name.conf"
    [[ -f "$conf" ]] || die "no config $conf for Redis node $name"
    [[ "$name" == sentinel-* ]] && flags=(--sentinel)
    mkdir -p "$dir/pids" "$dir/logs"
    setsid redis-server "$conf" "${flags[@]}" </dev/null >>"$dir/logs/$name.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pids/$name.pid"
    for ((i = 0; i < 300; i++)); do
        redis_ping "$port" && return 0
        pid_alive "$pid" || break
        sleep 0.1
    done
    warn "Redis node $name did not come up on 127.0.0.1:$port; log tail:"
    tail -n 5 "$dir/logs/$name.log" >&2 || true
    stop_pid "$pid" 5 "$name" || true
    return 1
}

# Writes DIR/NAME/NAME.conf for a data node; EXTRA lines are appended.
redis_write_conf() { # DIR NAME PORT EXTRA...
    local dir="$1" name="$2" port="$3" line
    shift 3
    mkdir -p "$dir/$name"
    {
        echo "# Written by scripts/stack_redis.sh"
        echo "port $port"
        echo "bind 127.0.0.1"
        echo "protected-mode yes"
        echo "daemonize no"
        echo "logfile \"\""
        echo "dir $dir/$name"
        echo "appendonly yes"
        echo "appendfsync always"
        echo "save \"\""
        # A replica's first sync starts at once instead of after the 5 s default.
        echo "repl-diskless-sync-delay 0"
        for line in "$@"; do echo "$line"; done
    } >"$dir/$name/$name.conf"
}

# Starts the data nodes listed in DIR/redis.nodes whose names match REGEX; a node that does not
# come up gets a fresh port and another try (another process may have taken the first).
redis_launch_all() { # DIR REGEX WRITE_FN
    local dir="$1" re="$2" writer="$3" name attempt port
    while read -r name port; do
        [[ "$name" =~ $re ]] || continue
        for ((attempt = 1; ; attempt++)); do
            "$writer" "$dir" "$name" "$port"
            redis_launch "$dir" "$name" && break
            ((attempt < 3)) || die "could not start Redis node $name"
            port="$(pick_free_port)"
            sed -i "s/^$name .*/$name $port/" "$dir/redis.nodes"
        done
    done < <(cat "$dir/redis.nodes")
}

redis_env_write() { # DIR LINE...: DIR/redis.env, atomically
    local dir="$1" tmp
    shift
    tmp="$dir/redis.env.tmp.$$"
    printf '%s\n' "# Written by scripts/stack_redis.sh" "$@" >"$tmp"
    mv -f "$tmp" "$dir/redis.env"
}

# --- cluster -----------------------------------------------------------------------------------

redis_cluster_conf() { # DIR NAME PORT: a cluster node's config, with its bus on a picked port
    local bus
    bus="$(pick_free_port)"
    redis_write_conf "$1" "$2" "$3" "cluster-enabled yes" \
        "cluster-config-file $1/$2/nodes.conf" "cluster-node-timeout 2000" "cluster-port $bus"
}

redis_cluster_start() { # DIR
    local dir="$1" i name port ok seeds="" first="" state
    local -a addrs=()
    mkdir -p "$dir/pids" "$dir/logs"
    : >"$dir/redis.nodes"
    for i in 1 2 3 4 5 6; do
        rm -rf "${dir:?}/redis-$i"
        echo "redis-$i $(pick_free_port)" >>"$dir/redis.nodes"
    done
    log "starting a Redis Cluster of 6 nodes (AOF, appendfsync always) in $dir/redis-{1..6}"
    redis_launch_all "$dir" '^redis-[0-9]+$' redis_cluster_conf
    while read -r name port; do
        addrs+=("127.0.0.1:$port")
        seeds="${seeds:+$seeds,}127.0.0.1:$port"
        [[ -n "$first" ]] || first="$port"
    done <"$dir/redis.nodes"
    log "redis-cli --cluster create ${addrs[*]} --cluster-replicas 1"
    if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
        >"$dir/logs/redis-cluster-create.log" 2>&1; then
        tail -n 20 "$dir/logs/redis-cluster-create.log" >&2
        die "redis-cli --cluster create failed"
    fi
    # Up when every node says cluster_state:ok, sees 3 masters and 3 replicas, and every
    # replica's link to its master is up.
    for ((i = 0; i < 300; i++)); do
        ok=1
        while read -r name port; do
            state="$(redis-cli -h 127.0.0.1 -p "$port" cluster info 2>/dev/null | tr -d '\r' |
                sed -n 's/^cluster_state://p')"
            [[ "$state" == ok ]] || ok=0
            ((ok)) || break
            state="$(redis-cli -h 127.0.0.1 -p "$port" cluster nodes 2>/dev/null | tr -d '\r' |
                awk '$3 !~ /fail/ && $3 ~ /master/ && NF > 8 {m++} $3 !~ /fail/ && $3 ~ /slave/ {r++}
                    END {print m + 0, r + 0}')"
            [[ "$state" == "3 3" ]] || ok=0
            ((ok)) || break
            if redis-cli -h 127.0.0.1 -p "$port" info replication 2>/dev/null | grep -q '^role:slave'; then
                redis-cli -h 127.0.0.1 -p "$port" info replication 2>/dev/null |
                    grep -q '^master_link_status:up' || ok=0
            fi
            ((ok)) || break
        done <"$dir/redis.nodes"
        ((ok)) && break
        sleep 0.1
    done
    ((ok)) || die "the Redis Cluster was not up (cluster_state:ok, 3 masters, 3 replicas in sync on every node) within 30 s"
    redis_env_write "$dir" "ENGAGE_REDIS_CLUSTER=$seeds" "ENGAGE_REDIS_MIN_REPLICAS=1" \
        "ENGAGE_REDIS_URL=redis://127.0.0.1:$first"
    log "Redis Cluster up: $(redis_cluster_roles "$dir")"
}

# "redis-1 master 0-5460, redis-4 replica of redis-1, ..." from one live node's CLUSTER NODES.
redis_cluster_roles() { # DIR
    local dir="$1" nodes
    nodes="$(redis_cluster_nodes "$dir")" || return 0
    awk -v names="$(cat "$dir/redis.nodes")" '
        BEGIN { n = split(names, a, "\n"); for (i = 1; i <= n; i++) { split(a[i], f, " "); nm[f[2]] = f[1] } }
        { split($2, hp, "[:@]"); port[$1] = hp[2]; flags[$1] = $3; master[$1] = $4; slots[$1] = "";
          for (i = 9; i <= NF; i++) slots[$1] = slots[$1] (i > 9 ? "," : "") $i; ids[++k] = $1 }
        END { for (j = 1; j <= k; j++) { id = ids[j]; s = nm[port[id]] " ";
                if (flags[id] ~ /fail/ && flags[id] !~ /fail\?/) s = s "failed ";
                if (flags[id] ~ /master/) s = s "master " slots[id];
                else s = s "replica of " nm[port[master[id]]];
                out = out (j > 1 ? ", " : "") s } print out }' <<<"$nodes"
}

# CLUSTER NODES from the first node that answers.
redis_cluster_nodes() { # DIR
    local dir="$1" name port out
    while read -r name port; do
        if out="$(redis-cli -h 127.0.0.1 -p "$port" cluster nodes 2>/dev/null)" &&
            [[ "$out" == *myself* ]]; then
            printf '%s\n' "$out" | tr -d '\r' | sort -t' ' -k2
            return 0
        fi
    done <"$dir/redis.nodes"
    return 1
}

redis_cluster_master_for() { # DIR KEY
    local dir="$1" key="$2" name port slot nodes
    slot=""
    while read -r name port; do
        slot="$(redis-cli -h 127.0.0.1 -p "$port" cluster keyslot "$key" 2>/dev/null || true)"
        [[ "$slot" =~ ^[0-9]+$ ]] && break
        slot=""
    done <"$dir/redis.nodes"
    [[ -n "$slot" ]] || die "no Redis Cluster node answers CLUSTER KEYSLOT"
    nodes="$(redis_cluster_nodes "$dir")" || die "no Redis Cluster node answers CLUSTER NODES"
    port="$(awk -v s="$slot" '$3 ~ /master/ && $3 !~ /fail/ {
            for (i = 9; i <= NF; i++) {
                if ($i ~ /^\[/) continue
                n = split($i, r, "-"); lo = r[1]; hi = (n > 1 ? r[2] : r[1])
                if (s + 0 >= lo + 0 && s + 0 <= hi + 0) { split($2, hp, "[:@]"); print hp[2]; exit }
            } }' <<<"$nodes")"
    [[ -n "$port" ]] || die "no live master serves slot $slot (of key $key)"
    name="$(redis_name_of_port "$dir" "$port")"
    [[ -n "$name" ]] || die "the master of slot $slot listens on $port, which is none of $dir/redis.nodes"
    printf '%s\n' "$name"
}

# --- sentinel ----------------------------------------------------------------------------------

redis_sentinel_data_conf() { # DIR NAME PORT: redis-1 the primary, the others its replicas
    local primary
    if [[ "$2" == redis-1 ]]; then
        redis_write_conf "$1" "$2" "$3"
    else
        primary="$(redis_node_port "$1" redis-1)"
        redis_write_conf "$1" "$2" "$3" "replicaof 127.0.0.1 $primary"
    fi
}

# A sentinel's config; the sentinel rewrites it (what it learnt: replicas, other sentinels,
# the current primary), so it lives in DIR and a restart keeps that knowledge.
redis_sentinel_conf() { # DIR NAME PORT
    local dir="$1" name="$2" port="$3" primary
    primary="$(redis_node_port "$dir" redis-1)"
    mkdir -p "$dir/$name"
    cat >"$dir/$name/$name.conf" <<EOF
# Written by scripts/stack_redis.sh; redis-server --sentinel rewrites it
port $port
bind 127.0.0.1
protected-mode yes
daemonize no
logfile ""
dir $dir/$name
sentinel monitor $REDIS_SENTINEL_MASTER 127.0.0.1 $primary 2
sentinel down-after-milliseconds $REDIS_SENTINEL_MASTER 2000
sentinel failover-timeout $REDIS_SENTINEL_MASTER 10000
sentinel parallel-syncs $REDIS_SENTINEL_MASTER 1
EOF
}

redis_sentinel_start() { # DIR
    local dir="$1" i name port ok n_rep n_sen sentinels="" primary
    mkdir -p "$dir/pids" "$dir/logs"
    : >"$dir/redis.nodes"
    for name in redis-1 redis-2 redis-3 sentinel-1 sentinel-2 sentinel-3; do
        rm -rf "${dir:?}/$name"
        echo "$name $(pick_free_port)" >>"$dir/redis.nodes"
    done
    log "starting Redis redis-1 (primary), redis-2, redis-3 (replicas) in $dir/redis-{1..3}"
    redis_launch_all "$dir" '^redis-1$' redis_sentinel_data_conf
    redis_launch_all "$dir" '^redis-[23]$' redis_sentinel_data_conf
    for ((i = 0; i < 300; i++)); do
        ok=1
        for name in redis-2 redis-3; do
            port="$(redis_node_port "$dir" "$name")"
            redis-cli -h 127.0.0.1 -p "$port" info replication 2>/dev/null |
                grep -q '^master_link_status:up' || ok=0
        done
        ((ok)) && break
        sleep 0.1
    done
    ((ok)) || die "the Redis replicas did not sync with redis-1 within 30 s"
    log "starting sentinel-1..sentinel-3 (master $REDIS_SENTINEL_MASTER, quorum 2)"
    redis_launch_all "$dir" '^sentinel-[0-9]+$' redis_sentinel_conf
    # Each sentinel must know both replicas (from the primary's INFO) and the other two sentinels
    # (from their hellos) before a failover can happen.
    for ((i = 0; i < 300; i++)); do
        ok=1
        for name in sentinel-1 sentinel-2 sentinel-3; do
            port="$(redis_node_port "$dir" "$name")"
            n_rep="$(redis-cli -h 127.0.0.1 -p "$port" sentinel replicas "$REDIS_SENTINEL_MASTER" \
                2>/dev/null | grep -c '^name$' || true)"
            n_sen="$(redis-cli -h 127.0.0.1 -p "$port" sentinel sentinels "$REDIS_SENTINEL_MASTER" \
                2>/dev/null | grep -c '^name$' || true)"
            ((n_rep == 2 && n_sen == 2)) || ok=0
        done
        ((ok)) && break
        sleep 0.1
    done
    ((ok)) || die "the sentinels did not learn both replicas and each other within 30 s"
    for name in sentinel-1 sentinel-2 sentinel-3; do
        sentinels="${sentinels:+$sentinels,}127.0.0.1:$(redis_node_port "$dir" "$name")"
    done
    primary="$(redis_node_port "$dir" redis-1)"
    redis_env_write "$dir" "ENGAGE_REDIS_SENTINELS=$sentinels" \
        "ENGAGE_REDIS_MASTER=$REDIS_SENTINEL_MASTER" "ENGAGE_REDIS_MIN_REPLICAS=1" \
        "ENGAGE_REDIS_URL=redis://127.0.0.1:$primary"
    log "Redis Sentinel up: primary redis-1 :$primary, sentinels $sentinels"
}

redis_sentinel_primary() { # DIR
    local dir="$1" name port out p
    while read -r name port; do
        [[ "$name" == sentinel-* ]] || continue
        out="$(redis-cli -h 127.0.0.1 -p "$port" sentinel get-master-addr-by-name \
            "$REDIS_SENTINEL_MASTER" 2>/dev/null | tr -d '\r' || true)"
        p="$(sed -n 2p <<<"$out")"
        [[ "$p" =~ ^[0-9]+$ ]] || continue
        name="$(redis_name_of_port "$dir" "$p")"
        [[ -n "$name" ]] || die "the sentinels' primary 127.0.0.1:$p is none of $dir/redis.nodes"
        printf '%s\n' "$name"
        return 0
    done <"$dir/redis.nodes"
    die "no sentinel of $dir answers get-master-addr-by-name $REDIS_SENTINEL_MASTER"
}

# --- one node ----------------------------------------------------------------------------------

redis_node_kill() { # DIR NAME
    local dir="$1" name="$2" pid="" i
    redis_node_port "$dir" "$name" >/dev/null
    [[ -f "$dir/pids/$name.pid" ]] && read -r pid <"$dir/pids/$name.pid"
    if ! pid_matches "$pid" 'redis-server'; then
        warn "Redis node $name is not running"
        return 0
    fi
    log "kill -9 $name (pid $pid)"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    die "$name (pid $pid) still alive 10 s after SIGKILL"
}

redis_node_start() { # DIR NAME
    local dir="$1" name="$2" pid="" port attempt
    port="$(redis_node_port "$dir" "$name")"
    [[ -f "$dir/pids/$name.pid" ]] && read -r pid <"$dir/pids/$name.pid"
    if pid_matches "$pid" 'redis-server'; then
        warn "Redis node $name already runs (pid $pid)"
        return 0
    fi
    for ((attempt = 1; attempt <= 3; attempt++)); do
        log "starting $name on 127.0.0.1:$port again (data and config in $dir/$name)"
        redis_launch "$dir" "$name" && return 0
        sleep 1
    done
    die "could not start $name on 127.0.0.1:$port again"
}
