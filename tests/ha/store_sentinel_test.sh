#!/usr/bin/env bash
# lib/store in sentinel mode against a real primary, 2 replicas and 3 sentinels:
# tests/ha/store_sentinel_test.c (WAIT for min_replicas, the primary killed under writes).
# Standalone: bash tests/ha/store_sentinel_test.sh
# shellcheck source=tests/ha/store_topology.sh
source "$(dirname "${BASH_SOURCE[0]}")/store_topology.sh"
store_topology_run sentinel ha-store_sentinel
