#!/usr/bin/env bash
# Installs the Debian 12 packages Engage needs to build, test and run, non-interactively.
# Fast when everything is present: it asks dpkg first and only then runs apt-get.
set -euo pipefail

PACKAGES=(
    # build
    build-essential cmake pkg-config
    # libraries (see ../shared/DESIGN.md "Dependencies")
    libnats-dev libprotobuf-c-dev protobuf-c-compiler libhiredis-dev libpq-dev
    libcivetweb-dev libcurl4-openssl-dev libcriterion-dev libjansson-dev libglib2.0-dev
    libsodium-dev zlib1g-dev
    # servers and their clients
    nats-server redis-server redis-tools postgresql postgresql-client
    # tools used by the scripts and tests
    curl jq prometheus wrk clang-format tzdata iproute2 procps
    # the Redis scripts are linted at build time (Redis runs Lua 5.1)
    lua5.1 lua-check
)

missing=()
for p in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$p")
    fi
done

if ((${#missing[@]} == 0)); then
    echo "==> deps: all ${#PACKAGES[@]} packages present"
    exit 0
fi

echo "==> deps: installing ${missing[*]}"
if [[ "$(id -u)" -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -n)
    else
        echo "ERROR: missing packages (${missing[*]}) and not root; install them as root" >&2
        exit 1
    fi
else
    SUDO=()
fi

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q --no-install-recommends -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold)
"${SUDO[@]}" apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install "${APT_OPTS[@]}" "${missing[@]}"

# Package post-install scripts may start servers (when policy-rc.d allows it). Our stack runs
# its own instances on free ports, so the system ones are not needed; leave them be.
echo "==> deps: done"
