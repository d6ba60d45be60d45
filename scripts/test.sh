#!/usr/bin/env bash
# make test: install what is missing, build with ASan/UBSan (build-test/), start a private
# suite (stack + services + demo tenant) on free ports under /var/tmp, run every test, stop
# everything, print a summary, and exit non-zero when anything failed.
#
# Builds: the release configuration of `make run` (build/) and the sanitizer one (build-test/),
# both with -Werror; either failing fails the run.
#
# Order: the Criterion binaries in build-test/tests/{unit,integration,e2e}/ (each one's
# "Synthesis:" line stays in the output), then tests/e2e/*.sh, then scripts/check-includes.sh,
# scripts/check-readme.sh, scripts/check-lua.sh and the clang-format check; then checks on the services themselves
# (no crash during the tests, no sanitizer report in their logs, a clean exit on SIGTERM); last,
# with that suite stopped, the topology fault tests tests/ha/*_test.sh (names ha/<file>), each
# starting its own suite on its topology (sentinel, cluster) in its own run directory.
#
# Tests see the suite's environment: everything in engage.env (ENGAGE_URL, ENGAGE_API_KEY,
# ENGAGE_NATS_URL, ENGAGE_REDIS_URL, ENGAGE_PG_DSN, ENGAGE_BIN_DIR, ...) plus ENGAGE_ENV_FILE
# and ENGAGE_RUN_DIR. While they run, a supervisor restarts any service that exits and rewrites
# its pid file in $ENGAGE_RUN_DIR/pids.
#
# Environment: ENGAGE_TEST_BUILD_DIR (default build-test), ENGAGE_SKIP_DEPS=1,
# ENGAGE_SKIP_BUILD=1, ENGAGE_TEST_TIMEOUT (seconds per test, default 300),
# ENGAGE_TEST_SUPERVISE=0 to not restart services, ENGAGE_TEST_FILTER (regex on test names).
#
# The cleanup functions run from traps, which shellcheck 0.9 takes for unreachable code:
# shellcheck disable=SC2317
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/suite.sh
source "$ROOT/scripts/suite.sh"

BUILD_DIR="$(abspath "${ENGAGE_TEST_BUILD_DIR:-$ROOT/build-test}")"
RELEASE_BUILD_DIR="$ROOT/build"
TEST_TIMEOUT="${ENGAGE_TEST_TIMEOUT:-300}"
FILTER="${ENGAGE_TEST_FILTER:-}"
SERVICE_ASAN_OPTIONS="detect_leaks=1:abort_on_error=0"

# Sanitizer settings: the services get SERVICE_ASAN_OPTIONS; tests keep ASan's defaults.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}"
export ENGAGE_SERVICE_ASAN_OPTIONS="$SERVICE_ASAN_OPTIONS"
# Every Redis script runs behind a check that refuses a key not in its KEYS (lib/store.c), in
# the services and in the tests alike.
export ENGAGE_STORE_CHECK_KEYS=1
SUITE_SERVICE_ENV=("ASAN_OPTIONS=$SERVICE_ASAN_OPTIONS" "UBSAN_OPTIONS=$UBSAN_OPTIONS"
    "LSAN_OPTIONS=$LSAN_OPTIONS" "ENGAGE_STORE_CHECK_KEYS=1")
# The private suite registers with no Consul (tests/e2e/consul_test.sh brings its own fake).
unset ENGAGE_CONSUL_ADDR

RESULT_NAMES=()
RESULT_STATUS=()
RESULT_NOTES=()
CRIT_TESTED=0 CRIT_PASSING=0 CRIT_FAILING=0 CRIT_CRASHING=0
RUN_DIR=""
SUP_PID=""
CURRENT_TEST=""
CURRENT_TEST_NAME=""
SUITE_UP=0
INTERRUPTED=0
FINISHED=0
T0=$SECONDS

record() { # NAME PASS|FAIL NOTE
    RESULT_NAMES+=("$1")
    RESULT_STATUS+=("$2")
    RESULT_NOTES+=("${3:-}")
}

section() { printf '\n======== %s ========\n' "$*"; }

# run_test NAME LOGFILE CMD...: runs CMD with the timeout, output shown and kept in LOGFILE.
run_test() {
    local name="$1" logf="$2" rc t start synth note
    shift 2
    if [[ -n "$FILTER" && ! "$name" =~ $FILTER ]]; then
        return 0
    fi
    printf '\n---- %s ----\n' "$name"
    start=$SECONDS
    rc=0
    # In the background and waited for, so that Ctrl-C or SIGTERM reach our trap at once
    # (timeout puts the test in its own process group, out of the terminal's reach).
    (timeout -k 10 "$TEST_TIMEOUT" "$@" 2>&1 | tee "$logf") &
    CURRENT_TEST=$!
    CURRENT_TEST_NAME="$name"
    wait "$CURRENT_TEST" || rc=$?
    CURRENT_TEST=""
    t=$((SECONDS - start))
    note="${t}s"
    if ((rc == 124 || rc == 137)); then
        note="$note, timed out after ${TEST_TIMEOUT}s"
    elif ((rc != 0)); then
        note="$note, exit $rc"
    fi
    synth="$(sed 's/\x1b\[[0-9;]*m//g' "$logf" | grep -E 'Synthesis: Tested:' | tail -n 1 || true)"
    if [[ -n "$synth" ]]; then
        local tested passing failing crashing
        tested="$(sed -nE 's/.*Tested: ([0-9]+).*/\1/p' <<<"$synth")"
        passing="$(sed -nE 's/.*Passing: ([0-9]+).*/\1/p' <<<"$synth")"
        failing="$(sed -nE 's/.*Failing: ([0-9]+).*/\1/p' <<<"$synth")"
        crashing="$(sed -nE 's/.*Crashing: ([0-9]+).*/\1/p' <<<"$synth")"
        CRIT_TESTED=$((CRIT_TESTED + ${tested:-0}))
        CRIT_PASSING=$((CRIT_PASSING + ${passing:-0}))
        CRIT_FAILING=$((CRIT_FAILING + ${failing:-0}))
        CRIT_CRASHING=$((CRIT_CRASHING + ${crashing:-0}))
        note="$note, ${tested:-0} tested, ${passing:-0} passing"
    fi
    if ((rc == 0)); then
        record "$name" PASS "$note"
    else
        record "$name" FAIL "$note"
    fi
}

# Criterion binaries of one kind, in name order. Only targets the build still defines (ctest
# knows them), so a binary left from a deleted test does not run.
run_criterion_kind() {
    local kind="$1" dir t name known
    dir="$BUILD_DIR/tests/$kind"
    [[ -d "$dir" ]] || return 0
    known="$(ctest --test-dir "$BUILD_DIR" -N 2>/dev/null |
        sed -nE 's/^[[:space:]]*Test[[:space:]]+#[0-9]+: ([^[:space:]]+).*/\1/p' || true)"
    while IFS= read -r t; do
        name="$(basename "$t")"
        if [[ -n "$known" ]] && ! grep -qxF "$name" <<<"$known"; then
            log "skipping $name (not a test of the current build)"
            continue
        fi
        run_test "$name" "$RUN_DIR/test-logs/$name.log" "$t"
    done < <(find "$dir" -maxdepth 1 -type f -perm -u+x | sort)
}

run_shell_tests() {
    local t name
    for t in "$ROOT"/tests/e2e/*.sh; do
        [[ -f "$t" ]] || continue
        name="e2e/$(basename "$t")"
        run_test "$name" "$RUN_DIR/test-logs/$(basename "$t").log" bash "$t"
    done
}

# The topology fault tests, each with its own suite: run once the single suite is stopped.
ha_tests_wanted() {
    local t
    for t in "$ROOT"/tests/ha/*_test.sh; do
        [[ -f "$t" ]] || continue
        [[ -z "$FILTER" || "ha/$(basename "$t")" =~ $FILTER ]] && return 0
    done
    return 1
}

run_ha_tests() {
    local t name
    export ENGAGE_HA_BIN_DIR="$BUILD_DIR/bin"
    for t in "$ROOT"/tests/ha/*_test.sh; do
        [[ -f "$t" ]] || continue
        name="ha/$(basename "$t")"
        run_test "$name" "$RUN_DIR/test-logs/ha-$(basename "$t").log" bash "$t"
    done
}

run_format_check() {
    local -a files=()
    local f
    while IFS= read -r -d '' f; do
        files+=("$f")
    done < <(find lib services tools tests -type f \( -name '*.c' -o -name '*.h' \) \
        -not -path '*/build*' -print0 2>/dev/null | sort -z)
    if ((${#files[@]} == 0)); then
        echo "clang-format: no sources yet"
        return 0
    fi
    if clang-format --dry-run --Werror "${files[@]}" >"$RUN_DIR/test-logs/clang-format.out" 2>&1; then
        echo "clang-format: ${#files[@]} files formatted as .clang-format says"
        return 0
    fi
    echo "clang-format: these files need 'make format':"
    grep -oE '^[^:]+\.(c|h):' "$RUN_DIR/test-logs/clang-format.out" | sort -u | sed 's/:$//; s/^/  /'
    echo "(first lines of clang-format's report)"
    head -n 40 "$RUN_DIR/test-logs/clang-format.out"
    return 1
}

# After the services stopped: a clean SIGTERM exit, no crash while tests ran (SIGKILL and
# SIGTERM exits are tests at work), no sanitizer report in any service log.
check_services() {
    local f line code name bad=0 crashed=() sanitized=()
    f="$RUN_DIR/logs/shutdown.txt"
    if [[ -s "$f" ]]; then
        local not_clean
        not_clean="$(awk '$2 != "0"' "$f")"
        if [[ -z "$not_clean" ]]; then
            record "services: clean exit on SIGTERM" PASS "$(wc -l <"$f") services"
        else
            record "services: clean exit on SIGTERM" FAIL "$(tr '\n' ';' <<<"$not_clean")"
            while read -r name _; do crashed+=("$name"); done <<<"$not_clean"
        fi
    else
        record "services: clean exit on SIGTERM" FAIL "no shutdown record"
    fi

    if [[ -f "$RUN_DIR/logs/supervisor.log" ]]; then
        while IFS= read -r line; do
            code="$(sed -nE 's/.* exited with code ([0-9]+).*/\1/p' <<<"$line")"
            name="$(sed -nE 's/.* service ([a-z-]+) pid .*/\1/p' <<<"$line")"
            case "$code" in
            0 | 137 | 143 | "") ;;
            *)
                bad=1
                crashed+=("$name")
                echo "  $line"
                ;;
            esac
        done < <(grep ' exited with code ' "$RUN_DIR/logs/supervisor.log" || true)
    fi
    if ((bad)); then
        record "services: no crash during the tests" FAIL "see supervisor.log"
    else
        record "services: no crash during the tests" PASS
    fi

    local logf
    for logf in "$RUN_DIR"/logs/*.log; do
        [[ -f "$logf" ]] || continue
        case "$(basename "$logf")" in nats.log | redis.log | postgres.log | supervisor.log) continue ;; esac
        if grep -qE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' "$logf"; then
            sanitized+=("$(basename "$logf" .log)")
        fi
    done
    if ((${#sanitized[@]} == 0)); then
        record "services: no sanitizer report" PASS
    else
        record "services: no sanitizer report" FAIL "${sanitized[*]}"
        for name in "${sanitized[@]}"; do
            echo "---- sanitizer report in $RUN_DIR/logs/$name.log ----"
            grep -E -A 30 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' \
                "$RUN_DIR/logs/$name.log" | head -n 60
        done
    fi

    local -A shown=()
    for name in "${crashed[@]}"; do
        [[ -n "$name" && -z "${shown[$name]:-}" ]] || continue
        shown[$name]=1
        SUITE_RUNDIR="$RUN_DIR" suite_show_log_tail "$name" 40 2>&1
    done
}

# On an interruption: SIGTERM to the running test's timeout, which passes it on to the test.
stop_current_test() {
    local p i
    [[ -n "$CURRENT_TEST" ]] || return 0
    record "$CURRENT_TEST_NAME" FAIL "interrupted"
    for p in $(ps -o pid= --ppid "$CURRENT_TEST" 2>/dev/null || true); do
        kill -TERM "$p" 2>/dev/null || true
    done
    for ((i = 0; i < 100; i++)); do
        pid_alive "$CURRENT_TEST" || break
        sleep 0.1
    done
    CURRENT_TEST=""
}

stop_suite() {
    local i rc=0
    [[ -n "$SUP_PID" ]] || return 0
    if pid_alive "$SUP_PID"; then
        log "stopping the services"
        kill -TERM "$SUP_PID" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            pid_alive "$SUP_PID" || break
            sleep 0.1
        done
        if pid_alive "$SUP_PID"; then
            warn "the supervisor did not stop within 30 s; killing it"
            kill -KILL "$SUP_PID" 2>/dev/null || true
        fi
    fi
    wait "$SUP_PID" 2>/dev/null || rc=$?
    SUP_PID=""
    rm -f "$RUN_DIR/pids/supervisor.pid"
    return "$rc"
}

SUITE_STOPPED=0
stop_single_suite() {
    section "stopping"
    stop_suite
    if ((SUITE_UP)); then
        check_services
    fi
    "$ROOT/scripts/stack.sh" clean "$RUN_DIR"
    SUITE_STOPPED=1
}

finish() {
    local rc=$? i passed=0 failed=0
    set +e
    trap '' INT TERM
    trap - EXIT
    ((FINISHED)) && exit "$rc"
    FINISHED=1
    stop_current_test
    if [[ -n "$RUN_DIR" ]] && ((!SUITE_STOPPED)); then
        stop_single_suite
    fi
    ((INTERRUPTED)) && record "make test" FAIL "interrupted"
    if ((rc != 0 && ${#RESULT_NAMES[@]} == 0)); then
        record "make test" FAIL "stopped early (exit $rc)"
    fi

    section "summary"
    for i in "${!RESULT_NAMES[@]}"; do
        printf '%-4s  %-44s %s\n' "${RESULT_STATUS[$i]}" "${RESULT_NAMES[$i]}" "${RESULT_NOTES[$i]}"
        if [[ "${RESULT_STATUS[$i]}" == PASS ]]; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
        fi
    done
    echo
    echo "Criterion: Tested: $CRIT_TESTED | Passing: $CRIT_PASSING | Failing: $CRIT_FAILING | Crashing: $CRIT_CRASHING"
    echo "Checks: $passed passed, $failed failed, in $((SECONDS - T0))s"
    [[ -n "$RUN_DIR" ]] && echo "Logs: $RUN_DIR/logs (services), $RUN_DIR/test-logs (tests)"
    if ((failed == 0 && rc == 0)); then
        echo "RESULT: PASS"
        exit 0
    fi
    echo "RESULT: FAIL"
    exit 1
}
trap finish EXIT
trap 'INTERRUPTED=1; exit 130' INT TERM

# --- prepare -----------------------------------------------------------------------------------

if [[ "${ENGAGE_SKIP_DEPS:-0}" != 1 ]]; then
    section "dependencies"
    "$ROOT/scripts/deps.sh"
fi
BUILD_OK=1
if [[ "${ENGAGE_SKIP_BUILD:-0}" != 1 ]]; then
    # First the release configuration that `make run`, `make build` and `make bench` use, with
    # -Werror: gcc warns at -O2 of what -O0 does not see (format truncation, for one), so a
    # warning there must fail here too. tests/e2e/make_run_test.sh runs these binaries.
    section "build (release, -Werror) into $RELEASE_BUILD_DIR"
    if cmake -S "$ROOT" -B "$RELEASE_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DENGAGE_WERROR=ON &&
        cmake --build "$RELEASE_BUILD_DIR" -j"$(nproc)"; then
        record "build (release)" PASS
    else
        record "build (release)" FAIL "the build of make run, make build and make bench"
    fi
    section "build (ASan + UBSan) into $BUILD_DIR"
    if cmake -S "$ROOT" -B "$BUILD_DIR" -DENGAGE_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug \
        -DENGAGE_WERROR=ON &&
        cmake --build "$BUILD_DIR" -j"$(nproc)"; then
        record "build (ASan + UBSan)" PASS
    else
        record "build (ASan + UBSan)" FAIL
        BUILD_OK=0
    fi
fi

RUN_DIR="$(mktemp -d /var/tmp/engage-test.XXXXXX)"
mkdir -p "$RUN_DIR/pids" "$RUN_DIR/logs" "$RUN_DIR/test-logs"

run_checks() {
    section "checks"
    run_test "check-includes" "$RUN_DIR/test-logs/check-includes.log" \
        "$ROOT/scripts/check-includes.sh"
    run_test "check-readme" "$RUN_DIR/test-logs/check-readme.log" \
        "$ROOT/scripts/check-readme.sh"
    run_test "check-lua" "$RUN_DIR/test-logs/check-lua.log" "$ROOT/scripts/check-lua.sh"
    if [[ -z "$FILTER" || "clang-format" =~ $FILTER ]]; then
        printf '\n---- clang-format ----\n'
        if run_format_check; then
            record "clang-format" PASS
        else
            record "clang-format" FAIL "run 'make format'"
        fi
    fi
}

if ((!BUILD_OK)); then
    # Nothing to run, but the source checks need no build: report them too.
    run_checks
    exit 1
fi

# --- the suite -----------------------------------------------------------------------------------

section "suite in $RUN_DIR"
# The suite runs in a background subshell that owns the services (so it can restart them and
# learn their exit codes) while this shell runs the tests.
(
    # However it ends (SIGTERM from us, or a failed start), its services stop with it.
    trap 'rc=$?; trap - EXIT; suite_stop_services || rc=1; exit "$rc"' EXIT
    trap 'exit 0' TERM
    trap '' INT
    # Always the single topology (a TOPOLOGY left in the environment is for make run): the
    # others have their own tests in tests/ha.
    suite_start "$RUN_DIR" "$BUILD_DIR/bin" single || exit 1
    if [[ "${ENGAGE_TEST_SUPERVISE:-1}" == 1 ]]; then
        suite_supervise
    else
        while true; do sleep 0.3; done
    fi
) &
SUP_PID=$!
echo "$SUP_PID" >"$RUN_DIR/pids/supervisor.pid"

deadline=$((SECONDS + 300))
while [[ ! -f "$RUN_DIR/engage.env" ]]; do
    if ! pid_alive "$SUP_PID" || ((SECONDS > deadline)); then
        break
    fi
    sleep 0.2
done
if [[ -f "$RUN_DIR/engage.env" ]]; then
    SUITE_UP=1
    record "suite start" PASS
    load_env_file "$RUN_DIR/engage.env"
    export ENGAGE_ENV_FILE="$RUN_DIR/engage.env"
    export ENGAGE_RUN_DIR="$RUN_DIR"
else
    record "suite start" FAIL "see the output above and $RUN_DIR/logs"
fi

# --- the tests -----------------------------------------------------------------------------------

section "unit tests"
run_criterion_kind unit
if ((SUITE_UP)); then
    section "integration tests"
    run_criterion_kind integration
    section "end-to-end tests"
    run_criterion_kind e2e
    run_shell_tests
else
    log "suite not running: integration and end-to-end tests skipped"
    record "integration and end-to-end tests" FAIL "not run (suite start failed)"
fi

run_checks
if ha_tests_wanted; then
    # As finish would do it (set +e: the checks record failures, they do not stop the run).
    set +e
    stop_single_suite
    set -e
    section "topology fault tests (tests/ha)"
    run_ha_tests
fi
exit 0
