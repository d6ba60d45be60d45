#!/usr/bin/env bash
# README.md names only what exists: every relative Markdown link, every `path` in backticks that
# starts with a folder or file of the repository, and every entry of the Layout block (its
# first column, and the `name/` or `name.sh` entries of its descriptions, relative to that
# line's folder) must exist in the tree, and no link may leave it (../ is not in a user's clone). Paths made at run time (.run/, build/, build-test/,
# /var/tmp) are not checked. Exits 1 and names each missing path.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
README="${1:-$ROOT/README.md}"
cd "$ROOT"

missing=0
checked=0
check() { # PATH WHERE
    local p="${1%%#*}"
    [[ -n "$p" ]] || return 0
    checked=$((checked + 1))
    if [[ ! -e "$p" ]]; then
        echo "README.md names '$1' ($2), which is not in the repository"
        missing=$((missing + 1))
    fi
}

# Relative Markdown links: ](target)
while IFS= read -r target; do
    case "$target" in
    http://* | https://* | mailto:* | '#'*) continue ;;
    esac
    case "$target" in
    /* | ../* | */../*)
        echo "README.md links '$target', outside the repository (a user's clone has no such path)"
        missing=$((missing + 1))
        continue
        ;;
    esac
    check "$target" "a link"
done < <(grep -oE '\]\([^)[:space:]]+\)' "$README" | sed -E 's/^\]\((.*)\)$/\1/')

# `paths` in backticks whose first component is a top-level entry of the repository.
while IFS= read -r token; do
    token="${token#\`}"
    token="${token%\`}"
    first="${token%%/*}"
    [[ "$token" == */* || "$token" == *.md ]] || continue
    case "$first" in
    '' | .run | build | build-test | '$'* | '~'*) continue ;;
    esac
    [[ -e "$first" ]] || [[ "$token" == */* && "$first" =~ ^(deploy|tests|services|lib|tools|docs|scripts|proto|cmake)$ ]] ||
        continue
    check "$token" "in backticks"
done < <(grep -oE '`[A-Za-z0-9_.][A-Za-z0-9_./-]*`' "$README")

# The Layout block: the first ``` block after "## Layout".
dir=""
while IFS= read -r line; do
    if [[ "$line" =~ ^([^[:space:]][^[:space:]]*(,[[:space:]][^[:space:]]+)*)[[:space:]]{2,}(.*)$ ]]; then
        names="${BASH_REMATCH[1]}"
        desc="${BASH_REMATCH[3]}"
        dir=""
        IFS=',' read -ra parts <<<"$names"
        for n in "${parts[@]}"; do
            n="${n# }"
            check "$n" "in the Layout block"
            [[ "$n" == */ ]] && dir="$n"
        done
    elif [[ "$line" =~ ^[[:space:]]+(.*)$ ]]; then
        desc="${BASH_REMATCH[1]}"
    else
        continue
    fi
    [[ -n "$dir" ]] || continue
    # Entries of the description: "name/" folders and script or data files, relative to dir.
    while IFS= read -r entry; do
        check "$dir$entry" "in the Layout block"
    done < <(grep -oE '(^|[[:space:],(])[A-Za-z0-9_-]+(/|\.(sh|json|proto|lua))([[:space:],):;]|$)' <<<"$desc" |
        sed -E 's/^[[:space:],(]//; s/[[:space:],):;]$//')
done < <(awk '/^## Layout/ {l = 1; next} l && /^```/ {if (in_block) exit; in_block = 1; next}
    in_block {print}' "$README")

if ((missing > 0)); then
    echo "check-readme: $missing of $checked paths named in README.md are missing"
    exit 1
fi
echo "check-readme: all $checked paths named in README.md exist"
