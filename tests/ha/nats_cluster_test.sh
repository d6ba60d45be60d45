#!/usr/bin/env bash
# Fault test of the NATS cluster topology: starts a 3-node JetStream cluster
# (scripts/stack_nats.sh) in a temporary run directory, runs the Criterion binary ha-nats_cluster
# against it (it kills -9 the stream leader, the requester's and the responder's servers and the
# consumer's leader at known points, and checks that every event is stored exactly once and that
# request/reply goes on), and stops the cluster however it ends.
#
# Standalone from the repository root: bash tests/ha/nats_cluster_test.sh. The binary comes from
# ENGAGE_TEST_BUILD_DIR (default build-test; or the parent of ENGAGE_HA_BIN_DIR), built by make
# test or `cmake --build build-test --target ha-nats_cluster`. Takes about 40 s. Exits non-zero
# on failure.
#
# The cleanup function runs from a trap, which shellcheck 0.9 takes for unreachable code:
# shellcheck disable=SC2317
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/stack_nats.sh
source "$ROOT/scripts/stack_nats.sh"

# scripts/test.sh gives its binaries' directory (BUILD/bin) as ENGAGE_HA_BIN_DIR.
if [[ -z "${ENGAGE_TEST_BUILD_DIR:-}" && -n "${ENGAGE_HA_BIN_DIR:-}" ]]; then
    ENGAGE_TEST_BUILD_DIR="$(dirname "$ENGAGE_HA_BIN_DIR")"
fi
BUILD_DIR="${ENGAGE_TEST_BUILD_DIR:-$ROOT/build-test}"
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR="$ROOT/$BUILD_DIR" ;; esac
BIN="$BUILD_DIR/tests/ha/ha-nats_cluster"
[[ -x "$BIN" ]] || die "$BIN is missing: build it (cmake --build $BUILD_DIR --target ha-nats_cluster)"

HA_DIR="$(mktemp -d /var/tmp/engage-ha-nats.XXXXXX)"
cleanup() {
    local rc=$?
    nats_cluster_stop "$HA_DIR"
    if ((rc == 0)); then
        rm -rf "$HA_DIR"
    else
        echo "nats_cluster_test: FAIL; the nodes' logs are in $HA_DIR/logs" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start=$SECONDS
nats_cluster_start "$HA_DIR"
load_env_file "$HA_DIR/nats.env"
export ENGAGE_HA_DIR="$HA_DIR" ENGAGE_REPO_ROOT="$ROOT"
# Criterion forks the test: -j1 and no extra parallelism, the nodes are shared state.
"$BIN" -j1 --verbose=0
log "nats cluster fault test passed in $((SECONDS - start)) s"
