#!/usr/bin/env bash
# make stop: stops what `make run` started. It signals run.sh (pid in RUN_DIR/pids/run.pid),
# which stops its services and the stack; then, whatever happened to run.sh, it stops every
# process left with a pid file in RUN_DIR/pids and the stack (PostgreSQL included).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

RUN_DIR="$(abspath "${ENGAGE_RUN_DIR:-$ROOT/.run}")"
if [[ ! -d "$RUN_DIR" ]]; then
    log "nothing to stop ($RUN_DIR does not exist)"
    exit 0
fi

pid="$(cat "$RUN_DIR/pids/run.pid" 2>/dev/null || true)"
if pid_matches "$pid" 'scripts/run\.sh'; then
    log "asking make run (pid $pid) to stop"
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    if pid_alive "$pid"; then
        warn "run.sh (pid $pid) still running after 30 s; stopping its processes directly"
    fi
fi

# Whatever is left (run.sh killed with -9, or it failed midway): every pid file and the stack.
"$ROOT/scripts/stack.sh" stop "$RUN_DIR"
rm -f "$RUN_DIR/engage.env"
