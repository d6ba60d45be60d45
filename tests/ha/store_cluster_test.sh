#!/usr/bin/env bash
# lib/store's cluster client against a real 3 + 3 Redis Cluster: tests/ha/store_cluster_test.c
# (a batch over every master, scripts on every master, cross-slot refused, a slot migrated under
# load, a failover under load). Standalone: bash tests/ha/store_cluster_test.sh
# shellcheck source=tests/ha/store_topology.sh
source "$(dirname "${BASH_SOURCE[0]}")/store_topology.sh"
store_topology_run cluster ha-store_cluster
