#!/usr/bin/env bash
# `make run`, the README's first command, works: it is started here as a user starts it (from
# the repository root, in a clean environment, the release build in build/), in the background
# with its run directory in a temporary folder, until its engage.env appears; then the README's
# curl example runs against it (tests/e2e/readme_test.sh, pointed at that engage.env) and books
# and retrieves a callback that goes on to COMPLETED; last, `make stop` stops it all, and no
# process of it is left.
#
# A broken release build, a failing start or a broken example turn this test red, and with it
# `make test`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"

START_TIMEOUT="${ENGAGE_MAKE_RUN_TIMEOUT:-240}"
TMP="$(mktemp -d /var/tmp/engage-make-run.XXXXXX)"
RUN_DIR="$TMP/run"
OUT="$TMP/make-run.out"
RUN_PID=""

# Only what a user's shell would have: none of the suite's ENGAGE_* settings leak into it.
clean_env() {
    env -i PATH="$PATH" HOME="${HOME:-/root}" LANG="${LANG:-C.UTF-8}" TERM="${TERM:-dumb}" \
        ENGAGE_RUN_DIR="$RUN_DIR" "$@"
}

stop_it() {
    clean_env make -C "$ROOT" --no-print-directory stop >"$TMP/make-stop.out" 2>&1 || true
    if [[ -n "$RUN_PID" ]]; then
        for _ in $(seq 1 300); do
            pid_alive "$RUN_PID" || break
            sleep 0.1
        done
        if pid_alive "$RUN_PID"; then
            kill -KILL -- "-$RUN_PID" 2>/dev/null || kill -KILL "$RUN_PID" 2>/dev/null || true
        fi
    fi
}

cleanup() {
    local rc=$?
    stop_it
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*"
    echo "last lines of make run's output:"
    tail -n 40 "$OUT" 2>/dev/null | sed 's/^/  | /'
    exit 1
}

echo "starting 'make run' in the background (run directory $RUN_DIR)"
# Its own process group (setsid), so that whatever it leaves can be found and stopped.
(cd "$ROOT" && clean_env setsid make --no-print-directory run </dev/null >"$OUT" 2>&1) &
RUN_PID=$!

start=$SECONDS
while [[ ! -f "$RUN_DIR/engage.env" ]]; do
    pid_alive "$RUN_PID" || fail "make run exited before $RUN_DIR/engage.env appeared"
    ((SECONDS - start < START_TIMEOUT)) || fail "no engage.env within ${START_TIMEOUT}s"
    sleep 0.5
done
echo "  ok: engage.env after $((SECONDS - start))s"

grep -q 'Engage is running' "$OUT" || fail "make run did not print its 'Engage is running' banner"
load_env_file "$RUN_DIR/engage.env"
for var in ENGAGE_URL ENGAGE_API_KEY ENGAGE_ADMIN_KEY ENGAGE_TENANT_ID ENGAGE_PG_DSN; do
    [[ -n "${!var:-}" ]] || fail "engage.env has no $var"
done
[[ "$ENGAGE_BIN_DIR" == "$ROOT/build/bin" ]] ||
    fail "make run serves binaries from $ENGAGE_BIN_DIR, not the release build $ROOT/build/bin"
echo "  ok: the suite runs the release binaries of $ENGAGE_BIN_DIR at $ENGAGE_URL"

echo "running the README example against it"
ENGAGE_ENV_FILE="$RUN_DIR/engage.env" bash "$ROOT/tests/e2e/readme_test.sh" ||
    fail "the README example failed against make run"

echo "stopping it with 'make stop'"
stop_it
pid_alive "$RUN_PID" && fail "make run still runs after make stop"
RUN_PID=""
[[ -f "$RUN_DIR/engage.env" ]] && fail "engage.env is still there after make stop"
left="$(pgrep -f -- "$RUN_DIR" || true)"
[[ -z "$left" ]] || fail "processes of make run left after make stop: $left"
echo "  ok: everything stopped"
echo "make_run_test: OK"
