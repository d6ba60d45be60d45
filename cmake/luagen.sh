#!/bin/sh
# cmake/luagen.sh IN.lua OUTDIR [LUACHECK_CONFIG]
# Generates, from a Redis script with a KEYS/ARGV/RETURNS header (see cmake/luagen.awk):
# OUTDIR/<name>.lua (the script as Redis runs it), OUTDIR/<name>_lua.h and OUTDIR/<name>_lua.c.
# Then lints the script as Redis runs it with `luac5.1 -p` (Redis runs Lua 5.1) and luacheck
# (with the config given, or the repository's .luacheckrc), and only then moves the outputs into
# place: a script that does not parse or lint fails the build and leaves no stale output.
# Without luac5.1 or luacheck on PATH it fails (scripts/deps.sh installs lua5.1 and lua-check).
set -eu
in="$1"
outdir="$2"
here="$(cd "$(dirname "$0")" && pwd)"
config="${3:-$here/../.luacheckrc}"
name="$(basename "$in" .lua)"
mkdir -p "$outdir"
tmp="$(mktemp -d "$outdir/.luagen.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
awk -v name="$name" -v src="$in" -v out_lua="$tmp/$name.lua" -v out_h="$tmp/${name}_lua.h" \
    -v out_c="$tmp/${name}_lua.c" -f "$here/luagen.awk" "$in"
for tool in luac5.1 luacheck; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "$in: $tool is not installed (apt-get install lua5.1 lua-check; scripts/deps.sh does)" >&2
        exit 1
    fi
done
# Messages name the .lua file itself: its line numbers are the generated script's.
if ! luac5.1 -p -o /dev/null "$tmp/$name.lua" 2>"$tmp/luac.err"; then
    sed "s#$tmp/$name.lua#$in#g" "$tmp/luac.err" >&2
    exit 1
fi
if ! luacheck --no-color --quiet --config "$config" --filename "$in" - <"$tmp/$name.lua" \
    >"$tmp/luacheck.out" 2>&1; then
    cat "$tmp/luacheck.out" >&2
    exit 1
fi
for f in "$name.lua" "${name}_lua.h" "${name}_lua.c"; do
    mv "$tmp/$f" "$outdir/$f"
done
