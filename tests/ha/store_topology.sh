# shellcheck shell=bash
# Shared by tests/ha/store_cluster_test.sh and store_sentinel_test.sh (sourced): start one Redis
# topology of scripts/stack_redis.sh in a run directory of its own under /var/tmp, run one ha
# Criterion binary against it (--jobs 1: its tests move slots and kill servers), stop every node
# on exit (the data goes; the logs stay when the test failed).
#
#   store_topology_run cluster|sentinel BINARY
#
# Binaries: ENGAGE_TEST_BUILD_DIR (default build-test)/tests/ha/.
set -euo pipefail
ST_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/stack_redis.sh
source "$ST_ROOT/scripts/stack_redis.sh"
ST_DIR=""

store_topology_stop() {
    local rc=$? f pid
    trap - EXIT
    set +e
    if [[ -n "$ST_DIR" ]]; then
        for f in "$ST_DIR"/pids/*.pid; do
            [[ -f "$f" ]] || continue
            read -r pid <"$f" && [[ -n "$pid" ]] && kill -KILL "$pid" 2>/dev/null
        done
        if ((rc == 0)); then
            rm -rf "$ST_DIR"
        else
            echo "logs of this run kept in $ST_DIR/logs"
            find "$ST_DIR" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
        fi
    fi
    exit "$rc"
}

store_topology_run() { # TOPOLOGY BINARY
    local topology="$1" bin build line
    build="${ENGAGE_TEST_BUILD_DIR:-$ST_ROOT/build-test}"
    bin="$build/tests/ha/$2"
    [[ -x "$bin" ]] || die "no $bin: build first (cmake --build $build)"
    ST_DIR="$(mktemp -d "/var/tmp/engage-ha-store-$topology.XXXXXX")"
    trap store_topology_stop EXIT
    mkdir -p "$ST_DIR/pids" "$ST_DIR/logs"
    log "starting a Redis $topology in $ST_DIR"
    "redis_${topology}_start" "$ST_DIR"
    disown -a # the nodes are stopped by pid file, not waited for as jobs
    while IFS= read -r line; do
        case "$line" in
        ENGAGE_REDIS_CLUSTER=*) export ENGAGE_TEST_REDIS_CLUSTER="${line#*=}" ;;
        ENGAGE_REDIS_SENTINELS=*) export ENGAGE_TEST_REDIS_SENTINELS="${line#*=}" ;;
        esac
    done <"$ST_DIR/redis.env"
    export ENGAGE_TEST_STACK_REDIS="$ST_ROOT/scripts/stack_redis.sh" ENGAGE_TEST_REDIS_DIR="$ST_DIR"
    log "running $2"
    "$bin" --jobs 1 --verbose
}
