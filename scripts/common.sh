# shellcheck shell=bash
# Helpers shared by the Engage scripts and the shell e2e tests. Source it; it runs nothing.
#
#   log MSG...              progress line on stdout ("==> MSG")
#   warn MSG... / die MSG...  to stderr (die exits 1)
#   pick_free_port          prints a free loopback TCP port (see below)
#   port_in_use PORT        true when something listens on / uses 127.0.0.1:PORT
#   pid_alive PID           true when PID runs (a zombie counts as dead)
#   pid_matches PID REGEX   true when PID is alive and its command line matches REGEX
#   stop_pid PID TIMEOUT NAME  SIGTERM, wait up to TIMEOUT s, then SIGKILL
#   wait_http_200 URL TIMEOUT  polls URL until it answers 200
#   abspath PATH            absolute path without resolving the last component

ENGAGE_REPO_ROOT="${ENGAGE_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"

log() { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

abspath() {
    local p="$1"
    case "$p" in
    /*) ;;
    *) p="$PWD/$p" ;;
    esac
    local dir base
    dir="$(dirname "$p")"
    base="$(basename "$p")"
    mkdir -p "$dir"
    printf '%s/%s\n' "$(cd "$dir" && pwd -P)" "$base"
}

# Ports handed out by this shell, so two picks in a row never collide before the first one
# is bound.
declare -g -A _ENGAGE_PICKED_PORTS=()

# True when 127.0.0.1:PORT is taken: a listener, or any TCP socket with that local port (an
# outgoing connection's port can also make bind() fail), or something answering on it.
port_in_use() {
    local port="$1"
    if command -v ss >/dev/null 2>&1; then
        if ss -Htan "( sport = :$port )" 2>/dev/null | grep -q .; then
            return 0
        fi
    fi
    # A connect that succeeds means something listens (covers a missing ss, and namespaces).
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        return 0
    fi
    return 1
}

# Prints a free port in 20000-60000, avoiding the kernel's ephemeral range when possible (an
# outgoing connection could take an ephemeral port between our check and the bind).
pick_free_port() {
    local lo=20000 hi=60000 elo ehi
    if read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null; then
        if ((elo - 1 - lo >= 2000)); then
            hi=$((elo - 1))
        elif ((hi - ehi - 1 >= 2000)); then
            lo=$((ehi + 1))
        fi
    fi
    local i port
    for ((i = 0; i < 200; i++)); do
        port=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        [[ -n "${_ENGAGE_PICKED_PORTS[$port]:-}" ]] && continue
        port_in_use "$port" && continue
        _ENGAGE_PICKED_PORTS[$port]=1
        printf '%s\n' "$port"
        return 0
    done
    die "no free TCP port found in $lo-$hi"
}

pid_alive() {
    local pid="$1" stat state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # kill -0 succeeds on a zombie. /proc/PID/stat is "pid (comm) state ..."; comm may hold
    # spaces, so take the field after the last ')'.
    stat="$(cat "/proc/$pid/stat" 2>/dev/null || true)"
    [[ -n "$stat" ]] || return 1
    state="${stat##*) }"
    state="${state%% *}"
    [[ "$state" != "Z" && "$state" != "X" ]]
}

pid_matches() {
    local pid="$1" re="$2" cmd
    pid_alive "$pid" || return 1
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    [[ "$cmd" =~ $re ]]
}

# stop_pid PID TIMEOUT NAME: SIGTERM, wait up to TIMEOUT seconds, then SIGKILL.
# Returns 0 when it exited within TIMEOUT, 1 when it had to be killed.
stop_pid() {
    local pid="$1" timeout="$2" name="${3:-$1}" i
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < timeout * 10; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.1
    done
    warn "$name (pid $pid) did not exit within ${timeout}s of SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || break
        sleep 0.1
    done
    return 1
}

# wait_http_200 URL TIMEOUT_SECONDS [PID]: stops early (failure) when PID dies.
wait_http_200() {
    local url="$1" timeout="$2" pid="${3:-}" deadline code
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$url" 2>/dev/null || true)"
        [[ "$code" == "200" ]] && return 0
        if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
            return 1
        fi
        sleep 0.2
    done
    return 1
}

# Reads KEY='value' lines (as written by suite.sh) into the environment, exported.
load_env_file() {
    local f="$1"
    [[ -r "$f" ]] || die "cannot read env file $f"
    set -a
    # shellcheck disable=SC1090
    source "$f"
    set +a
}

# Quotes a value for a KEY='value' line (single quotes; a ' inside becomes '\'').
shell_quote() {
    local v="$1"
    printf "'%s'" "${v//\'/\'\\\'\'}"
}
