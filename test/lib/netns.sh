# shellcheck shell=bash
# Test hosts for integration tests: two network namespaces joined by a veth
# pair, like the two machines of the DMM docs.
#
#   host A: 192.168.21.180/24 and 192.168.22.180/24 (and fd21::180/64)
#   host B: 192.168.21.181/24 and 192.168.22.181/24 (and fd21::181/64)
#
# Usage (bash, as root):
#   . "$NSTACK_SRC/test/lib/netns.sh"
#   netns_setup                    # creates the hosts; cleaned up on exit
#   in_a vs_epoll ... &            # run a command on host A
#   wait_tcp_listen "$NS_A" 192.168.21.180 20000 10
#   in_b vc_common ...
#
# Every name is unique per call, so tests may run in parallel. The hosts and
# every process started with in_a/in_b are removed on EXIT, even on failure.
# SOFTRDMA_FABRIC points at a private directory so that the software RDMA
# device of one test never sees another test's hosts.

NS_A=""; NS_B=""
IP_A=192.168.21.180; IP_B=192.168.21.181      # the rsocket subnet in the demo
IP2_A=192.168.22.180; IP2_B=192.168.22.181    # the kernel subnet in the demo
IP6_A=fd21::180; IP6_B=fd21::181
_NETNS_PIDS=()
_NETNS_DIRS=()      # removed by netns_cleanup (netns_remove_on_exit)

# A process killed here never reaches exit(), where the dispatcher removes
# its counters segment (/dev/shm/nstack-stat.PID): remove it for it (after
# SIGKILL it runs no more code that could create it again).
_netns_kill() {
    kill -9 "$1" 2>/dev/null || return 0
    rm -f "/dev/shm/nstack-stat.$1"
}

netns_cleanup() {
    local ns pid d
    for pid in "${_NETNS_PIDS[@]}"; do _netns_kill "$pid"; done
    for ns in "$NS_A" "$NS_B"; do
        [ -n "$ns" ] || continue
        # kill anything still running inside the namespace
        for pid in $(ip netns pids "$ns" 2>/dev/null); do _netns_kill "$pid"; done
        ip netns del "$ns" 2>/dev/null
    done
    [ -n "${SOFTRDMA_FABRIC:-}" ] && [ -n "${_NETNS_OWN_FABRIC:-}" ] && rm -rf "$SOFTRDMA_FABRIC"
    for d in "${_NETNS_DIRS[@]}"; do rm -rf "$d"; done
    return 0
}

# ctest kills a test that runs past its TIMEOUT with SIGKILL, so its EXIT
# trap never runs: the next setup removes hosts and fabrics whose creating
# script ($$ in their names) is gone. A live creator's hosts are never
# touched (a reused pid only delays the sweep).
_netns_owner_dead() { [ -n "$1" ] && ! kill -0 "$1" 2>/dev/null; }
netns_sweep_stale() {
    local ns owner pid d
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E '^nst[0-9]+_[0-9]+[ab]$'); do
        owner=${ns#nst}; owner=${owner%%_*}
        _netns_owner_dead "$owner" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do _netns_kill "$pid"; done
        ip netns del "$ns" 2>/dev/null
    done
    for d in /tmp/softrdma-fabric.nst* /dev/shm/softrdma-fabric.nst*; do
        [ -d "$d" ] || continue
        owner=${d##*/softrdma-fabric.nst}; owner=${owner%%.*}
        _netns_owner_dead "$owner" && rm -rf "$d"
    done
    return 0
}

# Test fabrics live in memory, as the device's default does (sr_fabric.c):
# on a disk file system every connection's port claim costs several times
# the CPU and would skew what the tests and benchmarks measure.
_netns_fabric_base() {
    if [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then
        echo /dev/shm
    else
        echo /tmp
    fi
}

netns_setup() {
    local tag="nst$$_${RANDOM}"
    netns_sweep_stale
    NS_A="${tag}a"; NS_B="${tag}b"
    trap netns_cleanup EXIT
    trap 'exit 130' INT TERM
    ip netns add "$NS_A" || return 1
    ip netns add "$NS_B" || return 1
    # veth names are global while created in the root namespace: keep them short and unique
    local va="v${$}${RANDOM}"; va=${va:0:13}; local vb="${va}b"; va="${va}a"
    ip link add "$va" type veth peer name "$vb" || return 1
    ip link set "$va" netns "$NS_A" && ip link set "$vb" netns "$NS_B" || return 1
    ip -n "$NS_A" link set lo up; ip -n "$NS_B" link set lo up
    ip -n "$NS_A" link set "$va" name eth0; ip -n "$NS_B" link set "$vb" name eth0
    ip -n "$NS_A" addr add "$IP_A/24" dev eth0; ip -n "$NS_B" addr add "$IP_B/24" dev eth0
    ip -n "$NS_A" addr add "$IP2_A/24" dev eth0; ip -n "$NS_B" addr add "$IP2_B/24" dev eth0
    ip -n "$NS_A" addr add "$IP6_A/64" dev eth0 nodad; ip -n "$NS_B" addr add "$IP6_B/64" dev eth0 nodad
    ip -n "$NS_A" link set eth0 up; ip -n "$NS_B" link set eth0 up
    if [ -z "${SOFTRDMA_FABRIC:-}" ]; then
        SOFTRDMA_FABRIC=$(mktemp -d "$(_netns_fabric_base)/softrdma-fabric.nst$$.XXXXXX"); _NETNS_OWN_FABRIC=1
        chmod 1777 "$SOFTRDMA_FABRIC"   # shared by every user, as /tmp (doc/softrdma.md)
    fi
    export SOFTRDMA_FABRIC NS_A NS_B
    wait_until 10 _netns_links_up || { echo "netns: veth link did not come up" >&2; return 1; }
}

_netns_links_up() {
    ip -n "$NS_A" -br link show eth0 | grep -q LOWER_UP &&
    ip -n "$NS_B" -br link show eth0 | grep -q LOWER_UP
}

# netns_remove_on_exit DIR...: a test's scratch directory goes with the
# hosts, whether the test passed or failed (its fail() prints what matters).
netns_remove_on_exit() { _NETNS_DIRS+=("$@"); }

# in_a CMD... / in_b CMD...: run on a host (environment is inherited).
in_a() { ip netns exec "$NS_A" "$@"; }
in_b() { ip netns exec "$NS_B" "$@"; }

# bg_a/bg_b CMD...: start in the background on a host; the pid is in $BG_PID
# and is killed on cleanup.
bg_a() { ip netns exec "$NS_A" "$@" & BG_PID=$!; _NETNS_PIDS+=("$BG_PID"); }
bg_b() { ip netns exec "$NS_B" "$@" & BG_PID=$!; _NETNS_PIDS+=("$BG_PID"); }
bg_track() { _NETNS_PIDS+=("$1"); }

# wait_until SECONDS CMD...: retry CMD until it succeeds or the deadline passes.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    while ! "$@"; do
        [ "$SECONDS" -ge "$deadline" ] && return 1
        sleep 0.05
    done
}

# wait_tcp_listen NS IP PORT SECONDS: a kernel TCP listener is up in NS.
wait_tcp_listen() {
    local ns=$1 ip=$2 port=$3
    wait_until "$4" sh -c "ip netns exec '$ns' ss -Hltn 'sport = :$port' | grep -q ."
}

# wait_file_match FILE REGEX SECONDS: FILE contains REGEX (a server printed its banner).
wait_file_match() {
    local f=$1 re=$2
    wait_until "$3" grep -qE "$re" "$f"
}
