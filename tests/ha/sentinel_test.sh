#!/usr/bin/env bash
# The Sentinel topology under a failover (issue 12, item 6): a whole suite on Redis primary + 2
# replicas + 3 sentinels (scripts/stack.sh start RUNDIR sentinel), in its own run directory;
# tests/e2e/chaos_test.sh's load runs while the Redis primary is killed -9 and, once the
# sentinels promoted a replica, started again (it must rejoin as a replica). Passes when chaos
# passes (nothing accepted lost, nothing dialled twice, PostgreSQL agrees) and no service log
# holds a sanitizer report; the report line gives unavailable_s. CHAOS_* settings pass through.
set -euo pipefail

# shellcheck source=tests/ha/ha_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/ha_common.sh"

ha_start sentinel
rc=0
CHAOS_FAULTS="${CHAOS_FAULTS:-redis-primary}" CHAOS_SETTLE="${CHAOS_SETTLE:-90}" \
    bash "$HA_ROOT/tests/e2e/chaos_test.sh" || rc=$?
ha_check_logs || rc=1
exit "$rc"
