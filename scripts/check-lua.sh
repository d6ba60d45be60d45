#!/usr/bin/env bash
# The Redis scripts follow their rules (make test runs this):
#   1. No C file under services/, lib/ or tools/ holds Lua: `redis.call` appears in .lua files
#      only.
#   2. Every script (services/*/lua/*.lua) has its KEYS/ARGV/RETURNS header, parses with
#      `luac5.1 -p` and passes luacheck (cmake/luagen.sh generates and lints it, as the build
#      does).
#   3. No script builds a key: the key argument of every redis.call/redis.pcall is one of the
#      names its KEYS section declares, KEYS[...] (a variadic tail), or a lower-case local;
#      never a string literal, a concatenation or an ARGV name. A call whose key argument
#      cannot be read on its line fails too. Commands without a key (TIME) are allowed.
#      What a local holds is checked where the scripts run: with ENGAGE_STORE_CHECK_KEYS=1
#      (make test sets it for the services and the tests) lib/store runs every script with a
#      redis.call that refuses any key not among the script's KEYS.
#   4. In the scheduler only the store modules (*_store.c, queue_stats.c) send commands
#      (eg_store_command, _pipeline, _eval, _script_add): the rest call their typed functions.
# Exits 1 and names each offence with its file and line.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bad=0
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# 1. Lua in C.
if grep -rn --include='*.c' --include='*.h' 'redis\.p\?call' services lib tools >"$TMP/c.txt"; then
    echo "Lua in C source (move it into a .lua file beside the code):"
    sed 's/^/  /' "$TMP/c.txt"
    bad=1
fi

# 4. Commands only from the scheduler's store modules.
if grep -n -E 'eg_store_(command|pipeline|eval|script_add)\(' services/scheduler/*.c |
    grep -v -E '^services/scheduler/([a-z_]+_store|queue_stats|store_keys)\.c:' >"$TMP/st.txt"; then
    echo "Redis commands outside the scheduler's store modules (add a typed function there):"
    sed 's/^/  /' "$TMP/st.txt"
    bad=1
fi

mapfile -t scripts < <(find services tools -path '*/lua/*.lua' -type f | sort)
if ((${#scripts[@]} == 0)); then
    echo "check-lua: no scripts found under services/*/lua or tools/*/lua"
    exit 1
fi

KEYLESS='^(TIME|PING|ECHO)$'
for f in "${scripts[@]}"; do
    # 2. Header and linters.
    if ! sh "$ROOT/cmake/luagen.sh" "$f" "$TMP/gen" 2>"$TMP/gen.err"; then
        echo "$f: does not generate or lint:"
        sed 's/^/  /' "$TMP/gen.err"
        bad=1
        continue
    fi
    # 3. Keys: the names of the KEYS section.
    keys="$(awk '/^-- KEYS/ {k = 1; next} /^-- [A-Z]/ {k = 0} k && /^--   [A-Z]/ {print $2}
        !/^--/ {exit}' "$f")"
    n=0
    while IFS=: read -r line text; do
        n=$((n + 1))
        # Every call on the line, each as "<command>, <key>" (or just the command).
        while IFS= read -r call; do
            args="${call#*(}"
            cmd="$(sed -E "s/^[[:space:]]*([^,)]*).*/\1/; s/^['\"]//; s/['\"]$//" <<<"$args")"
            if [[ "$args" != *,* ]]; then
                if [[ ! "${cmd^^}" =~ $KEYLESS ]]; then
                    echo "$f:$line: redis.call($cmd ...) with no key argument on its line"
                    bad=1
                fi
                continue
            fi
            key="$(sed -E 's/^[^,]*,[[:space:]]*//; s/[[:space:]]*[,)].*$//' <<<"$args")"
            # A declared KEYS name or KEYS[...]: fine. A lower-case name is a local that holds
            # one of them (a loop over a variadic tail, a helper's parameter): the runtime check
            # (ENGAGE_STORE_CHECK_KEYS, on in make test) proves it is one of KEYS.
            if [[ "$key" =~ ^KEYS\[[^]]+\]$ || "$key" =~ ^[a-z_][a-z0-9_]*$ ]]; then
                continue
            fi
            if [[ "$key" =~ ^[A-Z][A-Z0-9_]*$ ]] && grep -qxF "$key" <<<"$keys"; then
                continue
            fi
            echo "$f:$line: the key of redis.call($cmd, $key, ...) is neither one of its KEYS nor a local holding one (a string, a concatenation or an argument)"
            bad=1
        done < <(grep -oE 'redis\.p?call\([^)]*\)?' <<<"$text")
    done < <(grep -nE 'redis\.p?call\(' "$f" || true)
    echo "  $f: header, luac5.1 -p, luacheck, $n lines with redis.call checked"
done

if ((bad)); then
    echo "check-lua: FAILED"
    exit 1
fi
echo "check-lua: ${#scripts[@]} scripts follow their rules"
