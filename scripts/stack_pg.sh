# shellcheck shell=bash
# A PostgreSQL streaming standby beside the primary that scripts/stack.sh starts, and the two
# steps of a failover. Sourced; every function takes the stack's run directory.
#
#   pg_standby_start DIR     pg_basebackup -R -X stream of the primary (with a replication slot)
#                            into the /var/tmp base of DIR, start it on a free port, wait until it
#                            streams, turn synchronous replication on (unless STACK_PG_SYNC=0),
#                            write DIR/pg.env:
#                              ENGAGE_PG_DSN       both hosts, primary first, read-write
#                              ENGAGE_PG_READ_DSN  both hosts, standby first, prefer-standby
#                            pid DIR/pids/pg-standby.pid, log DIR/logs/pg-standby.log;
#                            hot_standby_feedback=on, so replay does not cancel history reads
#   pg_primary_stop DIR      pg_ctl stop -m immediate of the primary (a crash: no checkpoint)
#   pg_standby_promote DIR   SELECT pg_promote(), then wait until pg_is_in_recovery() is false
#   pg_standby_stop DIR      pg_ctl stop -m immediate of the standby (its port is kept)
#   pg_standby_resume DIR    start a stopped standby again on its port, wait until it streams
#   pg_standby_port DIR      prints the standby's port
#
# The standby's data is DIR/pg/standby (DIR/pg links to /var/tmp/engage-<hash>, which the
# postgres user can reach; PostgreSQL refuses root, so its commands run as that user). stack.sh
# stop stops it with pg_ctl (-m fast) and stack.sh start/clean wipe it with the primary's data.
# After a promotion the old primary must not come back as a primary: both DSNs name it, and a
# client that reached it first would write to a second primary. Rebuild it as a standby instead.

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STACK_PG_BIN="${ENGAGE_PG_BIN:-/usr/lib/postgresql/15/bin}"
STACK_PG_SLOT=engage_standby

# The /var/tmp base of DIR's PostgreSQL (what stack.sh start linked as DIR/pg).
stack_pg_base() {
    local dir="$1" target
    [[ -L "$dir/pg" ]] || die "no $dir/pg: start the stack first (scripts/stack.sh start $dir)"
    target="$(readlink "$dir/pg")"
    [[ "$target" =~ ^/var/tmp/engage-[0-9a-f]{16}$ ]] || die "$dir/pg points at $target"
    printf '%s\n' "$target"
}

# Runs a command as the postgres user when we are root, from a directory it can enter.
stack_pg_as() {
    local base="$1"
    shift
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd "$base" && runuser -u postgres -- "$@")
    else
        (cd "$base" && "$@")
    fi
}

# The port in line 4 of a data directory's postmaster.pid.
stack_pg_port_of() {
    sed -n 4p "$1/postmaster.pid" 2>/dev/null || true
}

stack_pg_sql() { # PORT SQL: one value, unaligned
    psql -X -A -t -q -h 127.0.0.1 -p "$1" -U postgres -d engage -v ON_ERROR_STOP=1 -c "$2"
}

pg_standby_port() {
    local base port
    base="$(stack_pg_base "$1")"
    port="$(stack_pg_port_of "$base/standby")"
    [[ -n "$port" ]] || die "no standby running in $base/standby"
    printf '%s\n' "$port"
}

# Waits until the primary on PPORT sees the standby on SPORT stream (its WAL receiver).
stack_pg_wait_streaming() {
    local pport="$1" sport="$2" i streaming=""
    for ((i = 0; i < 100; i++)); do
        streaming="$(stack_pg_sql "$pport" "SELECT count(*) FROM pg_stat_replication WHERE \
state = 'streaming'" 2>/dev/null || true)"
        [[ "$streaming" =~ ^[1-9] ]] && return 0
        sleep 0.1
    done
    die "the standby on $sport does not stream from $pport"
}

pg_standby_stop() {
    local dir base
    dir="$(abspath "$1")"
    base="$(stack_pg_base "$dir")"
    [[ -f "$base/standby/postmaster.pid" ]] || die "the standby is not running"
    log "stopping the postgres standby (pg_ctl stop -m immediate)"
    stack_pg_as "$base" "$STACK_PG_BIN/pg_ctl" -D "$base/standby" -m immediate -w -t 30 stop \
        >/dev/null 2>&1 || die "pg_ctl stop -m immediate of the standby failed"
}

pg_standby_resume() {
    local dir base sport pport
    dir="$(abspath "$1")"
    base="$(stack_pg_base "$dir")"
    sport="$(cat "$base/standby.port" 2>/dev/null || true)"
    [[ -n "$sport" ]] || die "no standby was started in $base"
    pport="$(stack_pg_port_of "$base/pg")"
    log "starting the postgres standby on 127.0.0.1:$sport again"
    stack_pg_as "$base" "$STACK_PG_BIN/pg_ctl" -D "$base/standby" -l "$base/standby.log" \
        -o "-p $sport -c hot_standby_feedback=on" -w -t 60 start >/dev/null 2>&1 ||
        die "the standby did not start again on $sport"
    head -n1 "$base/standby/postmaster.pid" >"$dir/pids/pg-standby.pid"
    [[ -z "$pport" ]] || stack_pg_wait_streaming "$pport" "$sport"
}

pg_standby_start() {
    local dir base pport sport i t0
    dir="$(abspath "$1")"
    base="$(stack_pg_base "$dir")"
    pport="$(stack_pg_port_of "$base/pg")"
    [[ -n "$pport" ]] || die "the primary is not running ($base/pg/postmaster.pid)"
    if [[ -f "$base/standby/postmaster.pid" ]]; then
        stack_pg_as "$base" "$STACK_PG_BIN/pg_ctl" -D "$base/standby" -m immediate -w stop \
            >/dev/null 2>&1 || true
    fi
    rm -rf "$base/standby"
    stack_pg_sql "$pport" "SELECT pg_drop_replication_slot('$STACK_PG_SLOT') FROM \
pg_replication_slots WHERE slot_name = '$STACK_PG_SLOT'" >/dev/null
    t0="${EPOCHREALTIME/./}"
    log "pg_basebackup of 127.0.0.1:$pport into $base/standby (-R -X stream, slot $STACK_PG_SLOT)"
    if ! stack_pg_as "$base" "$STACK_PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$pport" -U postgres \
        -D "$base/standby" -R -X stream -C -S "$STACK_PG_SLOT" -c fast --no-sync \
        >"$base/basebackup.log" 2>&1; then
        cat "$base/basebackup.log" >&2
        die "pg_basebackup failed"
    fi
    log "base backup took $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
    ln -sfn "$base/standby.log" "$dir/logs/pg-standby.log"
    for ((i = 1; i <= 3; i++)); do
        sport="$(pick_free_port)"
        log "starting the postgres standby on 127.0.0.1:$sport (data $base/standby)"
        if stack_pg_as "$base" "$STACK_PG_BIN/pg_ctl" -D "$base/standby" -l "$base/standby.log" \
            -o "-p $sport -c hot_standby_feedback=on" -w -t 60 start >/dev/null 2>&1 &&
            pg_isready -q -h 127.0.0.1 -p "$sport" -t 10; then
            break
        fi
        warn "the standby did not come up on $sport (attempt $i); log tail:"
        tail -n 5 "$base/standby.log" >&2 || true
        stack_pg_as "$base" "$STACK_PG_BIN/pg_ctl" -D "$base/standby" -m immediate -w stop \
            >/dev/null 2>&1 || true
        sport=""
    done
    [[ -n "$sport" ]] || die "could not start the postgres standby"
    head -n1 "$base/standby/postmaster.pid" >"$dir/pids/pg-standby.pid"
    echo "$sport" >"$base/standby.port"
    stack_pg_wait_streaming "$pport" "$sport"
    if [[ "${STACK_PG_SYNC:-1}" == 1 ]]; then
        # Synchronous replication: a commit returns once the standby has flushed it, so a
        # promotion loses nothing a service was told was committed (the archiver acks JetStream
        # after its commit). Set on the primary only, after the base backup: the promoted
        # standby then runs without a standby to wait for.
        stack_pg_sql "$pport" "ALTER SYSTEM SET synchronous_standby_names = '*'" >/dev/null
        stack_pg_sql "$pport" "SELECT pg_reload_conf()" >/dev/null
        log "synchronous replication on (synchronous_standby_names = '*')"
    fi
    local common="user=postgres dbname=engage connect_timeout=2"
    {
        echo "# Written by scripts/stack_pg.sh: primary 127.0.0.1:$pport, standby 127.0.0.1:$sport"
        echo "ENGAGE_PG_DSN=$(shell_quote "host=127.0.0.1,127.0.0.1 port=$pport,$sport $common \
target_session_attrs=read-write")"
        echo "ENGAGE_PG_READ_DSN=$(shell_quote "host=127.0.0.1,127.0.0.1 port=$sport,$pport $common \
target_session_attrs=prefer-standby")"
    } >"$dir/pg.env.tmp.$$"
    mv -f "$dir/pg.env.tmp.$$" "$dir/pg.env"
    log "postgres standby streaming on 127.0.0.1:$sport ($dir/pg.env)"
}

pg_primary_stop() {
    local dir base
    dir="$(abspath "$1")"
    base="$(stack_pg_base "$dir")"
    [[ -f "$base/pg/postmaster.pid" ]] || die "the primary is not running"
    log "stopping the postgres primary (pg_ctl stop -m immediate)"
    stack_pg_as "$base" "$STACK_PG_BIN/pg_ctl" -D "$base/pg" -m immediate -w -t 30 stop \
        >/dev/null 2>&1 || die "pg_ctl stop -m immediate of the primary failed"
}

pg_standby_promote() {
    local dir port i t0 rec=""
    dir="$(abspath "$1")"
    port="$(pg_standby_port "$dir")"
    t0="${EPOCHREALTIME/./}"
    log "promoting the standby on 127.0.0.1:$port (pg_promote)"
    stack_pg_sql "$port" "SELECT pg_promote(true, 30)" >/dev/null || die "pg_promote failed"
    for ((i = 0; i < 300; i++)); do
        rec="$(stack_pg_sql "$port" "SELECT pg_is_in_recovery()" 2>/dev/null || true)"
        [[ "$rec" == f ]] && break
        sleep 0.1
    done
    [[ "$rec" == f ]] || die "the standby on $port is still in recovery 30 s after pg_promote"
    log "standby on 127.0.0.1:$port promoted in $(((${EPOCHREALTIME/./} - t0) / 1000)) ms"
}
