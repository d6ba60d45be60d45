#!/usr/bin/env bash
# Every running service (a pid file in $ENGAGE_RUN_DIR/pids and its port as
# ENGAGE_<NAME>_HTTP_PORT in the env file) answers GET /healthz with 200 and GET /metrics with
# Prometheus text that `promtool check metrics` parses. promtool's lint remarks (exit code 3,
# e.g. naming advice) are shown but do not fail the test; a parse error (any other non-zero
# exit) does.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
: "${ENGAGE_ENV_FILE:?set ENGAGE_ENV_FILE to the engage.env of the suite (make test does)}"
load_env_file "$ENGAGE_ENV_FILE"
RUN_DIR="${ENGAGE_RUN_DIR:-$(dirname "$ENGAGE_ENV_FILE")}"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

failures=0
checked=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

for f in "$RUN_DIR"/pids/*.pid; do
    [[ -f "$f" ]] || continue
    name="$(basename "$f" .pid)"
    case "$name" in nats | redis | postgres | run | supervisor) continue ;; esac
    upper="${name^^}"
    var="ENGAGE_${upper//-/_}_HTTP_PORT"
    port="${!var:-}"
    if [[ -z "$port" ]]; then
        fail "$name: no $var in $ENGAGE_ENV_FILE"
        continue
    fi
    base="http://127.0.0.1:$port"
    checked=$((checked + 1))

    echo "checking $name: GET $base/healthz is 200"
    code="$(curl -s -o /dev/null -m 5 -w '%{http_code}' "$base/healthz" || true)"
    [[ "$code" == 200 ]] || fail "$name: /healthz answered '$code', want 200"

    echo "checking $name: GET $base/metrics is valid Prometheus text (promtool check metrics)"
    code="$(curl -s -o "$TMP/$name.metrics" -D "$TMP/$name.headers" -m 5 -w '%{http_code}' \
        "$base/metrics" || true)"
    if [[ "$code" != 200 ]]; then
        fail "$name: /metrics answered '$code', want 200"
        continue
    fi
    if ! grep -qiE '^content-type: *text/plain' "$TMP/$name.headers"; then
        fail "$name: /metrics Content-Type is not text/plain: $(grep -i '^content-type' "$TMP/$name.headers" || echo none)"
    fi
    samples="$(grep -cvE '^(#|[[:space:]]*$)' "$TMP/$name.metrics" || true)"
    if ((samples == 0)); then
        fail "$name: /metrics has no samples"
        continue
    fi
    rc=0
    promtool check metrics <"$TMP/$name.metrics" >"$TMP/$name.promtool" 2>&1 || rc=$?
    case "$rc" in
    0) echo "  ok: $samples samples" ;;
    3)
        echo "  ok: $samples samples; promtool lint remarks (not errors):"
        sed 's/^/    /' "$TMP/$name.promtool"
        ;;
    *)
        fail "$name: promtool check metrics failed (exit $rc):"
        sed 's/^/    /' "$TMP/$name.promtool"
        ;;
    esac
done

if ((checked == 0)); then
    fail "no running service found in $RUN_DIR/pids"
fi
if ((failures > 0)); then
    echo "metrics_test: $failures failure(s) over $checked service(s)"
    exit 1
fi
echo "metrics_test: OK ($checked services)"
