#!/usr/bin/env bash
# make run: install what is missing, build (release, build/), start the stack and every service
# on free loopback ports with a demo tenant, print how to use it, and supervise the services in
# the foreground. Ctrl-C, or `make stop` from another shell, stops everything.
#
# Environment: TOPOLOGY (single, the default, sentinel or cluster: see scripts/stack.sh),
# ENGAGE_RUN_DIR (default .run in the repo), ENGAGE_BUILD_DIR (default build),
# ENGAGE_SKIP_DEPS=1 and ENGAGE_SKIP_BUILD=1 to skip those steps.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/suite.sh
source "$ROOT/scripts/suite.sh"

RUN_DIR="$(abspath "${ENGAGE_RUN_DIR:-$ROOT/.run}")"
TOPOLOGY="${TOPOLOGY:-single}"
case "$TOPOLOGY" in
single | sentinel | cluster) ;;
*) die "TOPOLOGY=$TOPOLOGY: use single, sentinel or cluster" ;;
esac
BUILD_DIR="$(abspath "${ENGAGE_BUILD_DIR:-$ROOT/build}")"

mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs"
old="$(cat "$RUN_DIR/pids/run.pid" 2>/dev/null || true)"
if [[ "$old" != "$$" ]] && pid_matches "$old" 'scripts/run\.sh'; then
    die "Engage is already running from $RUN_DIR (run.sh pid $old); stop it with 'make stop'"
fi

if [[ "${ENGAGE_SKIP_DEPS:-0}" != 1 ]]; then
    log "checking Debian packages"
    "$ROOT/scripts/deps.sh"
fi
if [[ "${ENGAGE_SKIP_BUILD:-0}" != 1 ]]; then
    log "building (release) into $BUILD_DIR"
    cmake -S "$ROOT" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$BUILD_DIR" -j"$(nproc)"
fi

STOPPING=0
cleanup() {
    local rc=$?
    # Finish the stop even when Ctrl-C is pressed again.
    trap '' INT TERM
    trap - EXIT
    ((STOPPING)) && return
    STOPPING=1
    echo
    log "stopping Engage"
    # Forget our pid first: stack.sh stop must not wait for us.
    rm -f "$RUN_DIR/pids/run.pid"
    suite_stop_services || true
    "$ROOT/scripts/stack.sh" stop "$RUN_DIR" || true
    rm -f "$RUN_DIR/engage.env"
    log "stopped"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

echo "$$" >"$RUN_DIR/pids/run.pid"
suite_start "$RUN_DIR" "$BUILD_DIR/bin" "$TOPOLOGY"

ENV_FILE="$RUN_DIR/engage.env"
cat <<EOF

Engage is running.

  API URL       $ENGAGE_URL   (Engagement API v3 at /engagement/v3/, UI at /ges/)
  tenant        $ENGAGE_TENANT_ID
  API key       $ENGAGE_API_KEY
  admin key     $ENGAGE_ADMIN_KEY
  demo service  $ENGAGE_DEMO_SERVICE
  env file      $ENV_FILE
  logs          $RUN_DIR/logs/
  topology      $TOPOLOGY   (scripts/stack.sh status $RUN_DIR lists its nodes)

Try it:

  source $ENV_FILE
  curl -s "\$ENGAGE_URL/engagement/v3/callbacks/create" -H "x-api-key: \$ENGAGE_API_KEY" \\
    -H 'Content-Type: application/json' \\
    -d '{"serviceName":"demo","phoneNumber":"+15551234567"}' | jq .

Ctrl-C here, or 'make stop' in another shell, stops everything.

EOF

suite_supervise
