#!/usr/bin/env bash
# The README's curl example works as written: it is taken from README.md between the markers
# <!-- curl-example --> and <!-- /curl-example -->, run against this suite (its env file in
# place of .run/engage.env), and must book a callback (create answers an id) and read it back
# (retrieve answers the same id, for the demo service's number).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
: "${ENGAGE_ENV_FILE:?set ENGAGE_ENV_FILE to the engage.env of the suite (make test does)}"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# The example: the lines between the markers, without the Markdown code fences.
sed -n '/<!-- curl-example -->/,/<!-- \/curl-example -->/p' "$ROOT/README.md" |
    grep -vE '^(<!--|```)' >"$TMP/example.sh"
if ! grep -q 'callbacks/create' "$TMP/example.sh" || ! grep -q 'callbacks/retrieve' "$TMP/example.sh"; then
    echo "FAIL: README.md has no curl example with create and retrieve between the markers"
    exit 1
fi
# It sources .run/engage.env; here the suite's env file stands in for it.
sed -i "s#\.run/engage\.env#$ENGAGE_ENV_FILE#g" "$TMP/example.sh"
echo "running the README example:"
sed 's/^/  | /' "$TMP/example.sh"

rc=0
(cd "$TMP" && bash -euo pipefail "$TMP/example.sh") >"$TMP/out.json" 2>"$TMP/err.txt" || rc=$?
echo "its output:"
sed 's/^/  > /' "$TMP/out.json" "$TMP/err.txt"
if ((rc != 0)); then
    echo "FAIL: the example exited with code $rc"
    exit 1
fi

# The output is the create answer then the retrieve answer (JSON documents, pretty or not).
if ! jq -s . "$TMP/out.json" >"$TMP/docs.json" 2>/dev/null; then
    echo "FAIL: the example's output is not a sequence of JSON documents"
    exit 1
fi
n="$(jq 'length' "$TMP/docs.json")"
if ((n < 2)); then
    echo "FAIL: expected two JSON answers (create, retrieve), got $n"
    exit 1
fi
id="$(jq -r '.[0].data.id // empty' "$TMP/docs.json")"
code="$(jq -r '.[0].status.code // empty' "$TMP/docs.json")"
echo "checking create answered 200 with an id"
if [[ "$code" != 200 || ! "$id" =~ ^[0-9a-fA-F-]{36}$ ]]; then
    echo "FAIL: create answered status.code '$code' and id '$id' (want 200 and a UUID)"
    exit 1
fi
echo "  ok: id $id"
echo "checking retrieve answered 200 with the same id"
rid="$(jq -r '.[1].data.id // empty' "$TMP/docs.json")"
rcode="$(jq -r '.[1].status.code // empty' "$TMP/docs.json")"
state="$(jq -r '.[1].data.callbackState // empty' "$TMP/docs.json")"
if [[ "$rcode" != 200 || "$rid" != "$id" ]]; then
    echo "FAIL: retrieve answered status.code '$rcode' and id '$rid' (want 200 and $id)"
    exit 1
fi
case "$state" in
SCHEDULED | QUEUED | ROUTING | PROCESSING | COMPLETED) ;;
*)
    echo "FAIL: retrieve's callbackState is '$state'"
    exit 1
    ;;
esac
echo "  ok: $rid is $state"

# Then the walking skeleton's promise: the callback goes through the voice platform (voice-sim)
# to COMPLETED, and PostgreSQL holds its row and at least four events.
# shellcheck source=scripts/common.sh
source "$ROOT/scripts/common.sh"
load_env_file "$ENGAGE_ENV_FILE"
echo "checking $id reaches COMPLETED with its row and >= 4 events in PostgreSQL within 15 s"
for _ in $(seq 1 75); do
    row="$(psql "$ENGAGE_PG_DSN" -Atc "SELECT state || ' ' || coalesce(reason, '') || ' ' ||
        (SELECT count(*) FROM callback_events e WHERE e.callback_id = c.id)
        FROM callbacks c WHERE c.id = '$id'")"
    read -r pstate preason nevents <<<"${row:-none none 0}"
    [[ "$pstate" == COMPLETED && "$nevents" -ge 4 ]] && break
    sleep 0.2
done
if [[ "$pstate" != COMPLETED || "$nevents" -lt 4 ]]; then
    echo "FAIL: PostgreSQL shows '$row' for $id (want COMPLETED with >= 4 events)"
    exit 1
fi
echo "  ok: $pstate $preason with $nevents events"
echo "readme_test: OK"
