#!/usr/bin/env bash
# Fails, listing the offenders, when a .c or .h outside lib/ (services/, tools/, tests/)
# includes a third-party header that only lib/'s adapters may see: nats, hiredis, libpq,
# civetweb, curl, jansson, GLib/GIO or libsodium (see ../shared/CONVENTIONS.md).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# How the target of such an #include starts (<...> or "..."), as an extended regex.
FORBIDDEN='(nats/|nats\.h|hiredis|(postgresql/)?libpq|civetweb\.h|curl/|jansson|glib|gio/|gio\.h|gmodule|gobject/|sodium|zlib\.h)'
PATTERN="^[[:space:]]*#[[:space:]]*include[[:space:]]*[<\"]${FORBIDDEN}"

dirs=()
for d in services tools tests; do
    [[ -d "$d" ]] && dirs+=("$d")
done
if ((${#dirs[@]} == 0)); then
    echo "check-includes: no services/, tools/ or tests/ yet: OK"
    exit 0
fi

count="$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) | wc -l)"
offenders="$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' \) -print0 |
    xargs -0 -r grep -nHE "$PATTERN" || true)"

if [[ -n "$offenders" ]]; then
    echo "check-includes: FAIL: only lib/ may include third-party library headers; offenders:"
    printf '%s\n' "$offenders" | sed 's/^/  /'
    exit 1
fi
echo "check-includes: OK ($count files under ${dirs[*]} include no third-party library header)"
