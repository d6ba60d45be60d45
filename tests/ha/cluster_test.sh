#!/usr/bin/env bash
# The cluster topology under failovers (issue 12, items 5 and 6): a whole suite on Redis Cluster
# (3 masters + 3 replicas), a 3-node NATS JetStream cluster and PostgreSQL primary + standby
# (scripts/stack.sh start RUNDIR cluster), in its own run directory. First the README example
# runs against it (tests/e2e/readme_test.sh: the suite runs unchanged there); then
# tests/e2e/chaos_test.sh's load runs while the test kills -9 the Redis master of the test
# tenant's slot, kills -9 the NATS node leading ENGAGE_EVENTS (each started again once another
# took over), and stops the PostgreSQL primary and promotes the standby. Passes when both pass
# and no service log holds a sanitizer report. CHAOS_* settings pass through.
set -euo pipefail

# shellcheck source=tests/ha/ha_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/ha_common.sh"

ha_start cluster
rc=0
bash "$HA_ROOT/tests/e2e/readme_test.sh" || rc=$?
CHAOS_FAULTS="${CHAOS_FAULTS:-redis-master nats-leader pg-promote}" \
    CHAOS_SETTLE="${CHAOS_SETTLE:-90}" bash "$HA_ROOT/tests/e2e/chaos_test.sh" || rc=$?
ha_check_logs || rc=1
exit "$rc"
