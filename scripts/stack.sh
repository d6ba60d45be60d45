#!/usr/bin/env bash
# The local stack of real servers Engage runs against: nats-server (JetStream), redis-server
# (AOF, appendfsync always) and PostgreSQL 15, each on a free loopback port.
#
#   stack.sh start RUNDIR   stop leftovers, wipe old data, start all three fresh, write
#                           RUNDIR/stack.env (ENGAGE_NATS_URL, ENGAGE_REDIS_URL,
#                           ENGAGE_VOICE_REDIS_URL, ENGAGE_PG_DSN)
#   stack.sh stop RUNDIR    stop every process with a pid file in RUNDIR/pids (controllers such
#                           as run.sh first, then services, then the servers; PostgreSQL with
#                           pg_ctl stop -m fast)
#   stack.sh clean RUNDIR   stop, then delete the servers' data (logs stay in RUNDIR/logs)
#   stack.sh status RUNDIR  which of the recorded processes are alive
#   stack.sh restart RUNDIR redis|nats|postgres [term|kill]
#                           stop one server and start it again on the same port with the same
#                           data (Redis replays its AOF, NATS its JetStream store); term (the
#                           default) stops it cleanly (PostgreSQL: pg_ctl restart -m fast), kill
#                           crashes it (SIGKILL; PostgreSQL: -m immediate, then WAL recovery)
#
# Layout: RUNDIR/nats (JetStream store), RUNDIR/redis (AOF), RUNDIR/logs/*.log,
# RUNDIR/pids/{nats,redis,postgres}.pid. PostgreSQL refuses root and its user must reach the
# data directory through every parent (a checkout under /root is not reachable), so its data
# lives in /var/tmp/engage-<hash of RUNDIR>/ and RUNDIR/pg is a symlink to it.
set -euo pipefail

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PG_BIN="${ENGAGE_PG_BIN:-/usr/lib/postgresql/15/bin}"
START_ATTEMPTS=3

usage() {
    echo "usage: $0 start|stop|clean|status RUNDIR" >&2
    echo "       $0 restart RUNDIR redis|nats|postgres [term|kill]" >&2
    exit 2
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

do_stop() {
    [[ -d "$RUNDIR" ]] || return 0
    stop_controllers
    stop_services
    stop_postgres
    stop_pg_standby
    stop_server nats 'nats-server'
    stop_server redis 'redis-server'
}

wipe_data() {
    rm -rf "$RUNDIR/nats" "$RUNDIR/redis"
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

write_stack_env() {
    local tmp="$RUNDIR/stack.env.tmp.$$"
    {
        echo "# Written by scripts/stack.sh; servers of the stack in $RUNDIR"
        echo "ENGAGE_NATS_URL=$(shell_quote "nats://127.0.0.1:$NATS_PORT")"
        echo "ENGAGE_NATS_MONITOR_URL=$(shell_quote "http://127.0.0.1:$NATS_MPORT")"
        echo "ENGAGE_REDIS_URL=$(shell_quote "redis://127.0.0.1:$REDIS_PORT")"
        echo "ENGAGE_VOICE_REDIS_URL=$(shell_quote "redis://127.0.0.1:$REDIS_PORT/1")"
        echo "ENGAGE_PG_DSN=$(shell_quote "host=127.0.0.1 port=$PG_PORT user=postgres dbname=engage")"
    } >"$tmp"
    mv -f "$tmp" "$RUNDIR/stack.env"
}

do_start() {
    mkdir -p "$RUNDIR/pids" "$RUNDIR/logs"
    # Anything left from an earlier run goes first, then its data: every start is fresh.
    do_stop
    wipe_data
    rm -f "$RUNDIR/stack.env" "$RUNDIR/pg.env" "$RUNDIR/logs/nats.log" "$RUNDIR/logs/redis.log" \
        "$RUNDIR/logs/postgres.log"
    start_nats
    start_redis
    start_postgres
    create_database
    write_stack_env
    log "stack up: nats :$NATS_PORT, redis :$REDIS_PORT, postgres :$PG_PORT ($RUNDIR/stack.env)"
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

do_status() {
    local f name pid
    for f in "$RUNDIR"/pids/*.pid; do
        [[ -f "$f" ]] || continue
        name="$(basename "$f" .pid)"
        pid="$(read_pid "$f")"
        if pid_alive "$pid"; then
            printf '%-12s pid %-8s running\n' "$name" "$pid"
        else
            printf '%-12s pid %-8s not running\n' "$name" "$pid"
        fi
    done
}

main() {
    (($# >= 2)) || usage
    local cmd="$1"
    RUNDIR="$(abspath "$2")"
    PGBASE="$(pg_base_for "$RUNDIR")"
    case "$cmd" in
    start) do_start ;;
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
    restart)
        (($# >= 3 && $# <= 4)) || usage
        [[ "${4:-term}" =~ ^(term|kill)$ ]] || usage
        do_restart "$3" "${4:-term}"
        ;;
    *) usage ;;
    esac
}

main "$@"
