#!/usr/bin/env bash
# The local stack of real servers Engage runs against: nats-server (JetStream), redis-server
# (AOF, appendfsync always) and PostgreSQL 15, each on a free loopback port, in one of three
# topologies (the third argument of start, else $TOPOLOGY, else single):
#   single    one of each (the default)
#   sentinel  Redis primary + 2 replicas + 3 sentinels (scripts/stack_redis.sh), one NATS, one
#             PostgreSQL
#   cluster   Redis Cluster 3 masters + 3 replicas (stack_redis.sh), a 3-node NATS JetStream
#             cluster (stack_nats.sh), PostgreSQL primary + streaming standby (stack_pg.sh)
#
#   stack.sh start RUNDIR [single|sentinel|cluster]
#                           stop leftovers, wipe old data, start the topology fresh, write
#                           RUNDIR/stack.env: ENGAGE_TOPOLOGY, ENGAGE_NATS_URL (a list in
#                           cluster), ENGAGE_REDIS_URL, ENGAGE_PG_DSN, and per topology
#                           ENGAGE_VOICE_REDIS_URL (single), ENGAGE_REDIS_SENTINELS,
#                           ENGAGE_REDIS_MASTER, ENGAGE_REDIS_CLUSTER, ENGAGE_REDIS_MIN_REPLICAS,
#                           ENGAGE_JS_REPLICAS, ENGAGE_PG_READ_DSN (the engines' RUNDIR/*.env)
#   stack.sh stop RUNDIR    stop every process with a pid file in RUNDIR/pids (controllers such
#                           as run.sh first, then services, then the servers; PostgreSQL with
#                           pg_ctl stop -m fast)
#   stack.sh clean RUNDIR   stop, then delete the servers' data (logs stay in RUNDIR/logs)
#   stack.sh status RUNDIR  every node: alive or not, and its role (primary, replica, ...)
#   stack.sh kill RUNDIR NODE
#                           SIGKILL one node: redis-N, sentinel-N, nats-N, postgres (the
#                           primary: pg_ctl -m immediate stop), pg-standby; in single also
#                           redis and nats
#   stack.sh restart RUNDIR NODE [term|kill]
#                           stop that node if it runs (term, the default, or kill) and start it
#                           again on its port with its data
#   stack.sh promote RUNDIR stop the PostgreSQL primary (immediate) and promote the standby
#   stack.sh restart RUNDIR redis|nats|postgres [term|kill]
#                           stop one server and start it again on the same port with the same
#                           data (Redis replays its AOF, NATS its JetStream store); term (the
#                           default) stops it cleanly (PostgreSQL: pg_ctl restart -m fast), kill
#                           crashes it (SIGKILL; PostgreSQL: -m immediate, then WAL recovery)
#
# Layout: RUNDIR/nats (JetStream store), RUNDIR/redis (AOF), RUNDIR/logs/*.log,
# RUNDIR/pids/{nats,redis,postgres}.pid; the other topologies' nodes in RUNDIR/<node>/ with
# RUNDIR/pids/<node>.pid and RUNDIR/logs/<node>.log, RUNDIR/topology names the running one. PostgreSQL refuses root and its user must reach the
# data directory through every parent (a checkout under /root is not reachable), so its data
# lives in /var/tmp/engage-<hash of RUNDIR>/ and RUNDIR/pg is a symlink to it.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_BIN="${ENGAGE_PG_BIN:-/usr/lib/postgresql/15/bin}"
START_ATTEMPTS=3
STACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The servers' processes (a pid file of one of them is a node, not a service).
SERVER_RE='^(redis-server|nats-server|/usr/lib/postgresql/[0-9]+/bin/postgres|postgres)'

# shellcheck source=scripts/stack_redis.sh
source "$STACK_DIR/stack_redis.sh"
# The NATS cluster and the PostgreSQL standby have their own libraries; a topology that needs
# one that is missing says so (need_lib).
if [[ -f "$STACK_DIR/stack_nats.sh" ]]; then
    # shellcheck source=/dev/null
    source "$STACK_DIR/stack_nats.sh"
fi
if [[ -f "$STACK_DIR/stack_pg.sh" ]]; then
    # shellcheck source=/dev/null
    source "$STACK_DIR/stack_pg.sh"
fi

usage() {
    echo "usage: $0 start RUNDIR [single|sentinel|cluster]" >&2
    echo "       $0 stop|clean|status|promote RUNDIR" >&2
    echo "       $0 kill RUNDIR NODE" >&2
    echo "       $0 restart RUNDIR NODE [term|kill]" >&2
    exit 2
}

need_lib() { # FILE FUNCTION...: die unless FILE was sourced and defines every FUNCTION
    local file="$1" fn
    shift
    for fn in "$@"; do
        declare -F "$fn" >/dev/null ||
            die "this topology needs scripts/$file (function $fn), which is missing or incomplete"
    done
}

topology_of() { # the topology RUNDIR runs (single when it never said)
    local t=single
    [[ -f "$RUNDIR/topology" ]] && read -r t <"$RUNDIR/topology"
    printf '%s\n' "${t:-single}"
}

# Runs a command as the postgres user when we are root (PostgreSQL refuses root), from a
# directory that user can enter.
as_pg() {
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd "$PGBASE" && runuser -u postgres -- "$@")
    else
        (cd "$PGBASE" && "$@")
    fi
}

pg_base_for() {
    local rundir="$1" h target
    # An earlier start recorded the directory as RUNDIR/pg; trust it only when it has our shape,
    # since it is deleted on the next start.
    if [[ -L "$rundir/pg" ]]; then
        target="$(readlink "$rundir/pg")"
        if [[ "$target" =~ ^/var/tmp/engage-[0-9a-f]{16}$ ]]; then
            printf '%s\n' "$target"
            return 0
        fi
    fi
    h="$(printf '%s' "$rundir" | sha256sum | cut -c1-16)"
    printf '/var/tmp/engage-%s\n' "$h"
}

read_pid() {
    local f="$1" pid=""
    if [[ -f "$f" ]]; then read -r pid <"$f" || true; fi
    printf '%s' "$pid"
}

# True when PID is one of this shell's ancestors (or itself): never signal those.
is_ancestor() {
    local target="$1" p=$$ ppid
    while [[ -n "$p" && "$p" != 0 ]]; do
        [[ "$p" == "$target" ]] && return 0
        ppid="$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)"
        p="$ppid"
    done
    return 1
}

# --- stop --------------------------------------------------------------------------------------

stop_controllers() {
    local f pid name i
    for f in "$RUNDIR"/pids/run.pid "$RUNDIR"/pids/supervisor.pid; do
        [[ -f "$f" ]] || continue
        name="$(basename "$f" .pid)"
        pid="$(read_pid "$f")"
        if pid_matches "$pid" 'bash' && ! is_ancestor "$pid"; then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            # It stops its own services; give it time for that (services have 5 s each).
            for ((i = 0; i < 300; i++)); do
                pid_alive "$pid" || break
                sleep 0.1
            done
            if pid_alive "$pid"; then
                warn "$name (pid $pid) still running after 30 s; killing it"
                kill -KILL "$pid" 2>/dev/null || true
            fi
        fi
        is_ancestor "$pid" || rm -f "$f"
    done
}

stop_services() {
    local f name pid i
    local -a names=() pids=()
    for f in "$RUNDIR"/pids/*.pid; do
        [[ -f "$f" ]] || continue
        name="$(basename "$f" .pid)"
        case "$name" in nats | redis | postgres | pg-* | run | supervisor) continue ;; esac
        pid="$(read_pid "$f")"
        # The topologies' nodes are stopped after the services (stop_nodes).
        pid_matches "$pid" "$SERVER_RE" && continue
        if pid_matches "$pid" '(engage-[a-z-]+|voice-sim|fake-[a-z-]+)'; then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            names+=("$name")
            pids+=("$pid")
        fi
        rm -f "$f"
    done
    ((${#pids[@]} == 0)) && return 0
    for ((i = 0; i < 50; i++)); do
        local any=0 p
        for p in "${pids[@]}"; do pid_alive "$p" && any=1; done
        ((any)) || return 0
        sleep 0.1
    done
    for i in "${!pids[@]}"; do
        if pid_alive "${pids[$i]}"; then
            warn "${names[$i]} (pid ${pids[$i]}) did not exit within 5 s of SIGTERM; killing it"
            kill -KILL "${pids[$i]}" 2>/dev/null || true
        fi
    done
}

stop_postgres() {
    local pid
    pid="$(read_pid "$RUNDIR/pids/postgres.pid")"
    if [[ -f "$PGBASE/pg/postmaster.pid" ]]; then
        log "stopping postgres"
        if ! as_pg "$PG_BIN/pg_ctl" -D "$PGBASE/pg" -m fast -w -t 30 stop >/dev/null 2>&1; then
            [[ -n "$pid" ]] || pid="$(head -n1 "$PGBASE/pg/postmaster.pid" 2>/dev/null || true)"
        else
            pid=""
        fi
    fi
    if pid_matches "$pid" 'postgres'; then
        stop_pid "$pid" 15 postgres || true
    fi
    rm -f "$RUNDIR/pids/postgres.pid"
}

# The streaming standby of scripts/stack_pg.sh, when one was started (data in $PGBASE/standby).
stop_pg_standby() {
    if [[ -f "$PGBASE/standby/postmaster.pid" ]]; then
        log "stopping the postgres standby"
        as_pg "$PG_BIN/pg_ctl" -D "$PGBASE/standby" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            as_pg "$PG_BIN/pg_ctl" -D "$PGBASE/standby" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -f "$RUNDIR/pids/pg-standby.pid"
}

stop_server() {
    local name="$1" re="$2" pid
    pid="$(read_pid "$RUNDIR/pids/$name.pid")"
    if pid_matches "$pid" "$re"; then
        log "stopping $name (pid $pid)"
        stop_pid "$pid" 10 "$name" || true
    fi
    rm -f "$RUNDIR/pids/$name.pid"
}

# Every other node with a pid file: PostgreSQL ones (a standby) with a fast shutdown (SIGINT),
# Redis and NATS ones with SIGTERM, all at once; 30 s, then SIGKILL.
stop_nodes() {
    local f name pid i any
    local -A waiting=()
    for f in "$RUNDIR"/pids/*.pid; do
        [[ -f "$f" ]] || continue
        name="$(basename "$f" .pid)"
        pid="$(read_pid "$f")"
        if pid_matches "$pid" 'postgres'; then
            log "stopping $name (pid $pid)"
            kill -INT "$pid" 2>/dev/null || true
            waiting[$name]="$pid"
        elif pid_matches "$pid" '^(redis-server|nats-server)'; then
            log "stopping $name (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            waiting[$name]="$pid"
        elif ! pid_alive "$pid"; then
            # A node killed earlier. Anything else alive (run.sh, whose stack.sh start this may
            # be) is not a node: its pid file stays.
            rm -f "$f"
        fi
    done
    for ((i = 0; i < 300; i++)); do
        any=0
        for name in "${!waiting[@]}"; do
            pid_alive "${waiting[$name]}" && any=1
        done
        ((any)) || break
        sleep 0.1
    done
    for name in "${!waiting[@]}"; do
        if pid_alive "${waiting[$name]}"; then
            warn "$name (pid ${waiting[$name]}) still running 30 s after its stop; killing it"
            kill -KILL "${waiting[$name]}" 2>/dev/null || true
        fi
        rm -f "$RUNDIR/pids/$name.pid"
    done
}

do_stop() {
    [[ -d "$RUNDIR" ]] || return 0
    stop_controllers
    stop_services
    stop_postgres
    stop_pg_standby
    stop_server nats 'nats-server'
    stop_server redis 'redis-server'
    stop_nodes
    # A standby (scripts/stack_pg.sh, data in $PGBASE/standby) whose pid file went missing.
    if [[ -f "$PGBASE/standby/postmaster.pid" ]] &&
        pid_matches "$(head -n1 "$PGBASE/standby/postmaster.pid")" postgres; then
        log "stopping the postgres standby"
        as_pg "$PG_BIN/pg_ctl" -D "$PGBASE/standby" -m fast -w -t 30 stop >/dev/null 2>&1 || true
    fi
}

wipe_data() {
    local d t
    rm -rf "$RUNDIR/nats" "$RUNDIR/redis" "$RUNDIR"/redis-[0-9]* "$RUNDIR"/sentinel-[0-9]* \
        "$RUNDIR/nats-cluster" "$RUNDIR/redis.nodes" "$RUNDIR/pg-nodes" "$RUNDIR/pg-promoted" \
        "$RUNDIR/topology" "$RUNDIR/redis.env" "$RUNDIR/nats.env" "$RUNDIR/pg.env"
    # A standby's data may live in its own /var/tmp directory, recorded as a link in RUNDIR.
    for d in "$RUNDIR"/pg-*; do
        [[ -L "$d" ]] || continue
        t="$(readlink "$d")"
        [[ "$t" =~ ^/var/tmp/engage-[0-9a-zA-Z._-]+$ ]] && rm -rf "$t"
        rm -f "$d"
    done
    if [[ -d "$PGBASE" ]]; then
        # Keep the last PostgreSQL log beside the others.
        if [[ -f "$PGBASE/postgres.log" ]]; then
            rm -f "$RUNDIR/logs/postgres.log"
            cp "$PGBASE/postgres.log" "$RUNDIR/logs/postgres.log" 2>/dev/null || true
        fi
        rm -rf "$PGBASE"
    fi
    rm -f "$RUNDIR/pg"
}

# --- start -------------------------------------------------------------------------------------

# launch_nats PORT MPORT: starts nats-server on the store in RUNDIR/nats (kept as it is) and
# waits for its /healthz; false when it did not come up (it is stopped again).
launch_nats() {
    local port="$1" mport="$2" pid i
    mkdir -p "$RUNDIR/nats"
    setsid nats-server -a 127.0.0.1 -p "$port" -m "$mport" -js \
        -sd "$RUNDIR/nats" </dev/null >>"$RUNDIR/logs/nats.log" 2>&1 &
    pid=$!
    echo "$pid" >"$RUNDIR/pids/nats.pid"
    for ((i = 0; i < 150; i++)); do
        if [[ "$(curl -s -m 1 "http://127.0.0.1:$mport/healthz" 2>/dev/null || true)" == *'"ok"'* ]]; then
            return 0
        fi
        pid_alive "$pid" || break
        sleep 0.1
    done
    stop_pid "$pid" 5 nats-server || true
    return 1
}

start_nats() {
    local attempt port mport
    for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
        port="$(pick_free_port)"
        mport="$(pick_free_port)"
        rm -rf "$RUNDIR/nats"
        log "starting nats-server on 127.0.0.1:$port (monitoring $mport, JetStream in $RUNDIR/nats)"
        if launch_nats "$port" "$mport"; then
            NATS_PORT="$port"
            NATS_MPORT="$mport"
            return 0
        fi
        warn "nats-server did not come up on $port (attempt $attempt); log tail:"
        tail -n 5 "$RUNDIR/logs/nats.log" >&2 || true
    done
    die "could not start nats-server"
}

# launch_redis PORT: starts redis-server on the data in RUNDIR/redis (kept as it is: a restart
# loads its AOF) and waits for PONG; false when it did not come up (it is stopped again).
launch_redis() {
    local port="$1" pid i
    mkdir -p "$RUNDIR/redis"
    setsid redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes \
        --appendonly yes --appendfsync always --dir "$RUNDIR/redis" --save '' \
        --daemonize no --logfile '' </dev/null >>"$RUNDIR/logs/redis.log" 2>&1 &
    pid=$!
    echo "$pid" >"$RUNDIR/pids/redis.pid"
    # Up to 30 s: a restart replays the AOF before it answers.
    for ((i = 0; i < 300; i++)); do
        if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == "PONG" ]]; then
            return 0
        fi
        pid_alive "$pid" || break
        sleep 0.1
    done
    stop_pid "$pid" 5 redis-server || true
    return 1
}

start_redis() {
    local attempt port
    for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
        port="$(pick_free_port)"
        rm -rf "$RUNDIR/redis"
        log "starting redis-server on 127.0.0.1:$port (AOF, appendfsync always, in $RUNDIR/redis)"
        if launch_redis "$port"; then
            REDIS_PORT="$port"
            return 0
        fi
        warn "redis-server did not come up on $port (attempt $attempt); log tail:"
        tail -n 5 "$RUNDIR/logs/redis.log" >&2 || true
    done
    die "could not start redis-server"
}

start_postgres() {
    local attempt port i
    [[ -x "$PG_BIN/initdb" ]] || die "PostgreSQL 15 not found in $PG_BIN (run scripts/deps.sh)"
    mkdir -p "$PGBASE"
    chmod 700 "$PGBASE"
    if [[ "$(id -u)" -eq 0 ]]; then
        chown postgres:postgres "$PGBASE"
    fi
    ln -sfn "$PGBASE" "$RUNDIR/pg"
    ln -sfn "$PGBASE/postgres.log" "$RUNDIR/logs/postgres.log"
    log "initdb in $PGBASE/pg"
    if ! as_pg "$PG_BIN/initdb" -D "$PGBASE/pg" -A trust -U postgres -E UTF8 \
        --locale=C.UTF-8 --no-sync >"$PGBASE/initdb.log" 2>&1; then
        cat "$PGBASE/initdb.log" >&2
        die "initdb failed"
    fi
    cat >>"$PGBASE/pg/postgresql.conf" <<EOF

# Engage dev/test stack (scripts/stack.sh)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PGBASE'
max_connections = 200
EOF
    for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
        port="$(pick_free_port)"
        log "starting postgres on 127.0.0.1:$port (data $PGBASE/pg)"
        if as_pg "$PG_BIN/pg_ctl" -D "$PGBASE/pg" -l "$PGBASE/postgres.log" -o "-p $port" \
            -w -t 60 start >/dev/null 2>&1; then
            for ((i = 0; i < 100; i++)); do
                if pg_isready -q -h 127.0.0.1 -p "$port" -t 1; then
                    head -n1 "$PGBASE/pg/postmaster.pid" >"$RUNDIR/pids/postgres.pid"
                    PG_PORT="$port"
                    return 0
                fi
                sleep 0.1
            done
            as_pg "$PG_BIN/pg_ctl" -D "$PGBASE/pg" -m immediate -w stop >/dev/null 2>&1 || true
        fi
        warn "postgres did not come up on $port (attempt $attempt); log tail:"
        tail -n 5 "$PGBASE/postgres.log" >&2 || true
    done
    die "could not start postgres"
}

create_database() {
    log "creating database engage"
    psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c 'CREATE DATABASE engage' >/dev/null
}

declare -g -A STACK_ENV=()
declare -g -a STACK_ENV_ORDER=()
stack_env_set() { # KEY VALUE
    [[ -n "${STACK_ENV[$1]+set}" ]] || STACK_ENV_ORDER+=("$1")
    STACK_ENV[$1]="$2"
}

# Adds the NAME=value lines of an engine's env file (value as is, or in single or double
# quotes); a later file's value wins.
stack_env_merge() { # FILE
    local line k v
    [[ -f "$1" ]] || return 0
    while IFS= read -r line || [[ -n "$line" ]]; do
        [[ "$line" =~ ^[[:space:]]*([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
        k="${BASH_REMATCH[1]}"
        v="${BASH_REMATCH[2]}"
        if [[ "$v" =~ ^\'(.*)\'$ ]]; then
            v="${BASH_REMATCH[1]}"
            v="${v//\'\\\'\'/\'}"
        elif [[ "$v" =~ ^\"(.*)\"$ ]]; then
            v="${BASH_REMATCH[1]}"
        fi
        stack_env_set "$k" "$v"
    done <"$1"
}

write_stack_env() { # TOPOLOGY
    local topo="$1" tmp="$RUNDIR/stack.env.tmp.$$" k f
    stack_env_set ENGAGE_TOPOLOGY "$topo"
    if [[ -n "${NATS_PORT:-}" ]]; then
        stack_env_set ENGAGE_NATS_URL "nats://127.0.0.1:$NATS_PORT"
        stack_env_set ENGAGE_NATS_MONITOR_URL "http://127.0.0.1:$NATS_MPORT"
    fi
    if [[ -n "${REDIS_PORT:-}" ]]; then
        stack_env_set ENGAGE_REDIS_URL "redis://127.0.0.1:$REDIS_PORT"
        stack_env_set ENGAGE_VOICE_REDIS_URL "redis://127.0.0.1:$REDIS_PORT/1"
    fi
    # In the other topologies the voice platform's Redis is Engage's own target (lib/config.c).
    stack_env_set ENGAGE_PG_DSN "host=127.0.0.1 port=$PG_PORT user=postgres dbname=engage"
    for f in redis.env nats.env pg.env; do
        stack_env_merge "$RUNDIR/$f"
    done
    {
        echo "# Written by scripts/stack.sh; servers of the stack ($topo) in $RUNDIR"
        for k in "${STACK_ENV_ORDER[@]}"; do
            echo "$k=$(shell_quote "${STACK_ENV[$k]}")"
        done
    } >"$tmp"
    mv -f "$tmp" "$RUNDIR/stack.env"
}

# RUNDIR/pg-nodes: "name datadir port" of every running PostgreSQL, so that a node can be
# started again after a kill (postgres runs in its data directory).
record_pg_nodes() {
    local f name pid dd port
    : >"$RUNDIR/pg-nodes.tmp"
    for f in "$RUNDIR"/pids/*.pid; do
        [[ -f "$f" ]] || continue
        name="$(basename "$f" .pid)"
        pid="$(read_pid "$f")"
        pid_matches "$pid" 'postgres' || continue
        dd="$(readlink "/proc/$pid/cwd" 2>/dev/null || true)"
        [[ -f "$dd/postmaster.pid" ]] || continue
        port="$(sed -n 4p "$dd/postmaster.pid")"
        echo "$name $dd $port" >>"$RUNDIR/pg-nodes.tmp"
    done
    # Nodes that are down keep what was recorded while they ran.
    if [[ -f "$RUNDIR/pg-nodes" ]]; then
        awk 'NR == FNR {seen[$1] = 1; next} !($1 in seen)' "$RUNDIR/pg-nodes.tmp" \
            "$RUNDIR/pg-nodes" >>"$RUNDIR/pg-nodes.tmp2" || true
        cat "$RUNDIR/pg-nodes.tmp2" >>"$RUNDIR/pg-nodes.tmp" 2>/dev/null || true
        rm -f "$RUNDIR/pg-nodes.tmp2"
    fi
    mv -f "$RUNDIR/pg-nodes.tmp" "$RUNDIR/pg-nodes"
}

do_start() {
    local topo="$1" f
    case "$topo" in
    single | sentinel) ;;
    cluster)
        need_lib stack_nats.sh nats_cluster_start nats_node_kill nats_node_start
        need_lib stack_pg.sh pg_standby_start pg_primary_stop pg_standby_promote
        ;;
    *) die "unknown topology '$topo' (single, sentinel or cluster)" ;;
    esac
    mkdir -p "$RUNDIR/pids" "$RUNDIR/logs"
    # Anything left from an earlier run goes first, then its data: every start is fresh.
    do_stop
    wipe_data
    rm -f "$RUNDIR/stack.env" "$RUNDIR/pg.env" "$RUNDIR/logs/nats.log" "$RUNDIR/logs/redis.log" \
        "$RUNDIR/logs/postgres.log"
    for f in "$RUNDIR"/logs/{redis,sentinel,nats,pg}-*.log; do
        rm -f "$f"
    done
    echo "$topo" >"$RUNDIR/topology"
    case "$topo" in
    single)
        start_nats
        start_redis
        ;;
    sentinel)
        start_nats
        redis_sentinel_start "$RUNDIR"
        ;;
    cluster)
        nats_cluster_start "$RUNDIR" || die "could not start the NATS cluster"
        redis_cluster_start "$RUNDIR"
        ;;
    esac
    start_postgres
    create_database
    if [[ "$topo" == cluster ]]; then
        pg_standby_start "$RUNDIR" || die "could not start the PostgreSQL standby"
    fi
    record_pg_nodes
    write_stack_env "$topo"
    if [[ "$topo" == single ]]; then
        log "stack up: nats :$NATS_PORT, redis :$REDIS_PORT, postgres :$PG_PORT ($RUNDIR/stack.env)"
    else
        log "stack up ($topo): $(awk '{print $1}' <(do_status) | paste -sd' ') ($RUNDIR/stack.env)"
    fi
}

# --- restart (one server, same port, same data) ------------------------------------------------

# Ports of the running stack, from RUNDIR/stack.env.
stack_port() { # VAR: the port at the end of host:port in ${VAR}, or after "port=" in a DSN
    local v="${!1:-}"
    if [[ "$v" =~ port=([0-9]+) ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    elif [[ "$v" =~ :([0-9]+)(/[0-9]*)?$ ]]; then
        printf '%s\n' "${BASH_REMATCH[1]}"
    else
        die "no port in $1 of $RUNDIR/stack.env"
    fi
}

# kill_server NAME REGEX MODE: MODE kill = SIGKILL (a crash), term = SIGTERM (a clean stop).
kill_server() {
    local name="$1" re="$2" mode="$3" pid i
    pid="$(read_pid "$RUNDIR/pids/$name.pid")"
    pid_matches "$pid" "$re" || return 0
    if [[ "$mode" == kill ]]; then
        log "kill -9 $name (pid $pid)"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            pid_alive "$pid" || return 0
            sleep 0.1
        done
        die "$name (pid $pid) still alive 10 s after SIGKILL"
    fi
    log "stopping $name (pid $pid)"
    stop_pid "$pid" 30 "$name" || true
}

do_restart() {
    local name="$1" mode="$2" port mport pgmode attempt
    [[ -f "$RUNDIR/stack.env" ]] || die "no $RUNDIR/stack.env: is the stack running?"
    load_env_file "$RUNDIR/stack.env"
    case "$name" in
    redis)
        port="$(stack_port ENGAGE_REDIS_URL)"
        kill_server redis 'redis-server' "$mode"
        for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
            log "starting redis-server on 127.0.0.1:$port again (AOF in $RUNDIR/redis)"
            launch_redis "$port" && return 0
            warn "redis-server did not come up on $port (attempt $attempt); log tail:"
            tail -n 5 "$RUNDIR/logs/redis.log" >&2 || true
            sleep 1
        done
        die "could not restart redis-server on $port"
        ;;
    nats)
        port="$(stack_port ENGAGE_NATS_URL)"
        mport="$(stack_port ENGAGE_NATS_MONITOR_URL)"
        kill_server nats 'nats-server' "$mode"
        for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
            log "starting nats-server on 127.0.0.1:$port again (JetStream in $RUNDIR/nats)"
            launch_nats "$port" "$mport" && return 0
            warn "nats-server did not come up on $port (attempt $attempt); log tail:"
            tail -n 5 "$RUNDIR/logs/nats.log" >&2 || true
            sleep 1
        done
        die "could not restart nats-server on $port"
        ;;
    postgres)
        port="$(stack_port ENGAGE_PG_DSN)"
        pgmode=fast
        [[ "$mode" == kill ]] && pgmode=immediate
        [[ -f "$PGBASE/pg/postmaster.pid" ]] || die "postgres is not running (no postmaster.pid)"
        log "restarting postgres on 127.0.0.1:$port (pg_ctl restart -m $pgmode)"
        as_pg "$PG_BIN/pg_ctl" -D "$PGBASE/pg" -l "$PGBASE/postgres.log" -o "-p $port" \
            -m "$pgmode" -w -t 60 restart >/dev/null 2>&1 || die "pg_ctl restart failed"
        pg_isready -q -h 127.0.0.1 -p "$port" -t 30 || die "postgres not ready after restart"
        head -n1 "$PGBASE/pg/postmaster.pid" >"$RUNDIR/pids/postgres.pid"
        ;;
    *) usage ;;
    esac
}

# --- one node of any topology -------------------------------------------------------------------

pg_node_field() { # NAME FIELD(2 datadir, 3 port): from RUNDIR/pg-nodes
    local v
    v="$(awk -v n="$1" -v f="$2" '$1 == n {print $f}' "$RUNDIR/pg-nodes" 2>/dev/null || true)"
    [[ -n "$v" ]] || die "no PostgreSQL node $1 in $RUNDIR/pg-nodes"
    printf '%s\n' "$v"
}

pg_node_kill() { # NAME: pg_ctl stop -m immediate (a crash: WAL recovery on the next start)
    local name="$1" dd
    dd="$(pg_node_field "$name" 2)"
    if ! pid_matches "$(read_pid "$RUNDIR/pids/$name.pid")" 'postgres'; then
        warn "$name is not running"
        return 0
    fi
    log "stopping $name at once (pg_ctl stop -m immediate, data $dd)"
    as_pg "$PG_BIN/pg_ctl" -D "$dd" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
        die "pg_ctl stop -m immediate failed for $name"
}

pg_node_start() { # NAME
    local name="$1" dd port logf
    if [[ "$name" == postgres && -f "$RUNDIR/pg-promoted" ]]; then
        die "the standby was promoted: the old primary must not come back as a second primary"
    fi
    dd="$(pg_node_field "$name" 2)"
    port="$(pg_node_field "$name" 3)"
    if pid_matches "$(read_pid "$RUNDIR/pids/$name.pid")" 'postgres'; then
        warn "$name already runs"
        return 0
    fi
    case "$name" in
    postgres) logf="$PGBASE/postgres.log" ;;
    pg-standby) logf="$PGBASE/standby.log" ;;
    *) logf="$dd/../$name-restart.log" ;;
    esac
    log "starting $name on 127.0.0.1:$port again (data $dd)"
    as_pg "$PG_BIN/pg_ctl" -D "$dd" -l "$logf" -o "-p $port" -w -t 60 start >/dev/null 2>&1 ||
        die "pg_ctl start failed for $name (log $logf)"
    pg_isready -q -h 127.0.0.1 -p "$port" -t 30 || die "$name not ready after its start"
    head -n1 "$dd/postmaster.pid" >"$RUNDIR/pids/$name.pid"
}

nats_node_index() { # nats-K or nats-nK (its pid file's name) -> K
    local k="${1#nats-}"
    k="${k#n}"
    [[ "$k" =~ ^[0-9]+$ ]] || die "unknown NATS node $1 (nats-1, nats-2, nats-3)"
    printf '%s\n' "$k"
}

# Dies unless NODE is one of this stack's (a killed NATS node has no pid file: its ports do).
node_exists() { # NODE
    local node="$1"
    case "$node" in
    nats-*)
        awk -v k="$(nats_node_index "$node")" '$1 == k {f = 1} END {exit !f}' \
            "$RUNDIR/nats-cluster/ports" 2>/dev/null && return 0
        ;;
    *) [[ -f "$RUNDIR/pids/$node.pid" ]] && return 0 ;;
    esac
    die "no node $node in the $(topology_of) stack of $RUNDIR (see: $0 status $RUNDIR)"
}

node_kill() { # NODE
    local node="$1" topo
    topo="$(topology_of)"
    node_exists "$node"
    case "$node" in
    redis | nats)
        [[ "$topo" == single ]] || die "$node is a node of the single topology (this one is $topo)"
        kill_server "$node" "$node-server" kill
        ;;
    redis-[0-9]* | sentinel-[0-9]*) redis_node_kill "$RUNDIR" "$node" ;;
    nats-*)
        need_lib stack_nats.sh nats_node_kill
        log "kill -9 $node"
        nats_node_kill "$RUNDIR" "$(nats_node_index "$node")"
        ;;
    postgres | pg-*) pg_node_kill "$node" ;;
    *) die "unknown node '$node' (see: $0 status $RUNDIR)" ;;
    esac
}

node_restart() { # NODE MODE
    local node="$1" mode="$2" pid
    node_exists "$node"
    pid="$(read_pid "$RUNDIR/pids/$node.pid")"
    [[ "$node" == nats-* ]] && pid="$(read_pid "$RUNDIR/pids/nats-n$(nats_node_index "$node").pid")"
    case "$node" in
    redis | nats | postgres)
        if [[ "$node" == postgres ]] && ! pid_matches "$pid" postgres; then
            pg_node_start postgres
        else
            do_restart "$node" "$mode"
        fi
        ;;
    redis-[0-9]* | sentinel-[0-9]*)
        if [[ "$mode" == kill ]]; then
            redis_node_kill "$RUNDIR" "$node"
        elif pid_matches "$pid" redis-server; then
            log "stopping $node (pid $pid)"
            stop_pid "$pid" 30 "$node" || true
        fi
        redis_node_start "$RUNDIR" "$node"
        ;;
    nats-*)
        need_lib stack_nats.sh nats_node_kill nats_node_start
        if [[ "$mode" == kill ]] || ! pid_matches "$pid" nats-server; then
            nats_node_kill "$RUNDIR" "$(nats_node_index "$node")"
        else
            log "stopping $node (pid $pid)"
            stop_pid "$pid" 30 "$node" || true
        fi
        log "starting $node again (same ports and JetStream store)"
        nats_node_start "$RUNDIR" "$(nats_node_index "$node")" || die "could not start $node again"
        ;;
    pg-*)
        if [[ "$mode" == kill ]]; then
            pg_node_kill "$node"
        elif pid_matches "$pid" postgres; then
            log "stopping $node (pg_ctl stop -m fast)"
            as_pg "$PG_BIN/pg_ctl" -D "$(pg_node_field "$node" 2)" -m fast -w -t 30 stop \
                >/dev/null 2>&1 || die "pg_ctl stop failed for $node"
        fi
        pg_node_start "$node"
        ;;
    *) die "unknown node '$node' (see: $0 status $RUNDIR)" ;;
    esac
}

do_promote() {
    local start="${EPOCHREALTIME/./}"
    need_lib stack_pg.sh pg_primary_stop pg_standby_promote
    [[ -f "$RUNDIR/pg-promoted" ]] && die "the standby was promoted already"
    log "stopping the PostgreSQL primary"
    pg_primary_stop "$RUNDIR"
    # From here on the old primary must stay down (pg_node_start refuses it).
    touch "$RUNDIR/pg-promoted"
    log "promoting the standby"
    pg_standby_promote "$RUNDIR"
    record_pg_nodes
    log "standby promoted: it accepts writes $(((${EPOCHREALTIME/./} - start) / 1000)) ms after the primary's stop began"
}

# The role of one alive node, as its server says.
node_role() { # NAME PID
    local name="$1" pid="$2" port out
    case "$name" in
    redis | redis-[0-9]*)
        [[ "$name" == redis ]] && return 0
        port="$(redis_node_port "$RUNDIR" "$name" 2>/dev/null)" || return 0
        out="$(redis-cli -h 127.0.0.1 -p "$port" info replication 2>/dev/null | tr -d '\r' |
            sed -n 's/^role://p')"
        printf ':%s %s' "$port" "${out/slave/replica}"
        ;;
    sentinel-[0-9]*)
        port="$(redis_node_port "$RUNDIR" "$name" 2>/dev/null)" || return 0
        printf ':%s sentinel' "$port"
        ;;
    nats-n[0-9]*)
        port="$(awk -v k="${name#nats-n}" '$1 == k {print $2}' "$RUNDIR/nats-cluster/ports" \
            2>/dev/null || true)"
        [[ -n "$port" ]] && printf ':%s' "$port"
        ;;
    postgres | pg-*)
        port="$(awk -v n="$name" '$1 == n {print $3}' "$RUNDIR/pg-nodes" 2>/dev/null || true)"
        [[ -n "$port" ]] || return 0
        out="$(psql -X -At -h 127.0.0.1 -p "$port" -U postgres -d postgres \
            -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)"
        case "$out" in t) out=standby ;; f) out=primary ;; esac
        printf ':%s %s' "$port" "$out"
        ;;
    *) : "$pid" ;;
    esac
}

do_status() {
    local f name pid k
    for f in "$RUNDIR"/pids/*.pid; do
        [[ -f "$f" ]] || continue
        name="$(basename "$f" .pid)"
        pid="$(read_pid "$f")"
        if pid_alive "$pid"; then
            printf '%-12s pid %-8s running %s\n' "$name" "$pid" "$(node_role "$name" "$pid")"
        else
            printf '%-12s pid %-8s not running\n' "$name" "$pid"
        fi
    done
    # A killed NATS node has no pid file (stack_nats.sh removes it).
    if [[ -f "$RUNDIR/nats-cluster/ports" ]]; then
        while read -r k _; do
            [[ -f "$RUNDIR/pids/nats-n$k.pid" ]] || printf '%-12s pid %-8s not running\n' "nats-n$k" -
        done <"$RUNDIR/nats-cluster/ports"
    fi
}

main() {
    (($# >= 2)) || usage
    local cmd="$1"
    RUNDIR="$(abspath "$2")"
    PGBASE="$(pg_base_for "$RUNDIR")"
    case "$cmd" in
    start)
        (($# <= 3)) || usage
        do_start "${3:-${TOPOLOGY:-single}}"
        ;;
    stop)
        do_stop
        log "stack stopped ($RUNDIR)"
        ;;
    clean)
        do_stop
        wipe_data
        log "stack stopped and its data removed ($RUNDIR)"
        ;;
    status) do_status ;;
    kill)
        (($# == 3)) || usage
        node_kill "$3"
        ;;
    restart)
        (($# >= 3 && $# <= 4)) || usage
        [[ "${4:-term}" =~ ^(term|kill)$ ]] || usage
        node_restart "$3" "${4:-term}"
        ;;
    promote)
        (($# == 2)) || usage
        do_promote
        ;;
    *) usage ;;
    esac
}

main "$@"
