# shellcheck shell=bash
# Harness for test/programs: run a real server and client either plainly on
# loopback, or under libnStackAPI.so between the two test hosts.
#
#   . "$NSTACK_SRC/test/lib/programs.sh"
#   prog_setup MODE BASE_PORT        MODE: plain | preload | rsocket
#   prog_server NAME CMD...          start the server in the background
#                                    (host A); output in $PROG_TMP/NAME.out
#   prog_wait_listen PORT            the server listens (deadline 30 s)
#   prog_client CMD...               run the client in the foreground (host B;
#                                    plain: host A, on its loopback)
#   prog_client_in FILE CMD...       the same with FILE as standard input
#   prog_check_framework             preload mode: the server uses libnStackAPI.so
#   prog_fail MSG                    one line, exit 1
#
# After prog_setup: $PROG_ADDR is the server address, $PROG_PORT the port,
# $PROG_TMP a private directory; everything is removed/killed on exit.
# Plain mode runs both ends on host A's own loopback: a private network
# namespace, so no port can clash with anything else on the machine.

. "$NSTACK_SRC/test/lib/netns.sh"
. "$NSTACK_SRC/test/lib/nstack_env.sh"

PROG_MODE=""; PROG_ADDR=""; PROG_PORT=""; PROG_TMP=""; PROG_STACK=kernel
_PROG_PIDS=()
NSTACK_PRELOAD_ENV=()

_prog_preloaded() { [ "$PROG_MODE" = preload ] || [ "$PROG_MODE" = rsocket ]; }

prog_fail() { echo "FAIL: ${PROG_NAME:-$0} [$PROG_MODE]: $*" >&2; exit 1; }
prog_note() { echo "${PROG_NAME:-$0} [$PROG_MODE]: $*"; }

# Servers run in their own process group (setsid), so a server that forks
# (sockperf does) is stopped whole: TERM first so it can exit cleanly, KILL
# whatever is left after a few seconds.
_group_gone() { [ -z "$(ps -o pid= -g "$1" 2>/dev/null)" ]; }
_stop_group() {
    local pgid=$1 pids
    pids=$(ps -o pid= -g "$pgid" 2>/dev/null)
    kill -TERM -- "-$pgid" 2>/dev/null
    wait_until 5 _group_gone "$pgid" || kill -KILL -- "-$pgid" 2>/dev/null
    wait_until 5 _group_gone "$pgid"
    # A process that did not reach exit() leaves its counters segment behind.
    for pid in $pids; do rm -f "/dev/shm/nstack-stat.$pid"; done
}

# PROG_KEEP=1 (debugging): leave $PROG_TMP (logs, captures) in /tmp.
prog_cleanup() {
    local pgid
    for pgid in "${_PROG_PIDS[@]}"; do _stop_group "$pgid"; done
    netns_cleanup
    [ -n "$PROG_TMP" ] && [ -z "${PROG_KEEP:-}" ] && rm -rf "$PROG_TMP"
    return 0
}

prog_setup() {
    PROG_MODE=$1
    PROG_TMP=$(mktemp -d "/tmp/nstack-prog.XXXXXX") || prog_fail "mktemp failed"
    case "$PROG_MODE" in
    plain)
        netns_setup || prog_fail "could not create the test hosts"
        trap prog_cleanup EXIT           # replaces netns_setup's trap; calls it
        PROG_ADDR=127.0.0.1
        PROG_PORT=$2                     # host A's private loopback
        ;;
    preload|rsocket)
        local lib="$NSTACK_RELEASE/lib64/libnStackAPI.so" stack=kernel
        [ -e "$lib" ] || prog_fail "$lib not built"
        if [ "$PROG_MODE" = rsocket ]; then
            stack=rsocket
            [ -e "$NSTACK_RELEASE/lib64/libdmm_rsocket.so" ] && [ -d "$NSTACK_RELEASE/lib64/softrdma" ] ||
                prog_fail "libdmm_rsocket.so or the softrdma device not built"
        fi
        netns_setup || prog_fail "could not create the test hosts"
        trap prog_cleanup EXIT           # replaces netns_setup's trap; calls it
        # 192.168.21.0/24 is routed to $stack, 192.168.22.0/24 to the kernel.
        PROG_ADDR=$IP2_A; [ "$stack" = rsocket ] && PROG_ADDR=$IP_A
        PROG_STACK=$stack
        PROG_PORT=$2                     # private namespaces: no clash possible
        nstack_write_config "$PROG_TMP" "$stack"
        nstack_preload_env "$NSTACK_RELEASE" "$PROG_TMP"
        ;;
    *) prog_fail "mode must be plain, preload or rsocket, got '$PROG_MODE'" ;;
    esac
}


# The subshell execs, and setsid execs too (the subshell is no group
# leader), so $! is the server itself and the leader of its own group.
# prog_server_in NS NAME CMD...: a server on host NS (an upstream on host
# B, say); stopped with the test's other servers.
prog_server_in() {
    local ns=$1 name=$2; shift 2
    (exec setsid ip netns exec "$ns" env "${NSTACK_PRELOAD_ENV[@]}" "$@" \
        >"$PROG_TMP/$name.out" 2>&1 </dev/null) &
    _PROG_PIDS+=("$!")
    PROG_SERVER_PID=$!
}
prog_server() { prog_server_in "$NS_A" "$@"; }

# The client runs on host B (preload) or host A (plain), in the foreground,
# with no input.
prog_client() { prog_client_in /dev/null "$@"; }

# prog_client_in FILE CMD...: the same, reading FILE as standard input.
prog_client_in() {
    local input=$1; shift
    if _prog_preloaded; then
        ip netns exec "$NS_B" env "${NSTACK_PRELOAD_ENV[@]}" "$@" <"$input"
    else
        ip netns exec "$NS_A" "$@" <"$input"
    fi
}

# On the rsocket route a listener is TCP-anchored (doc/fork.md): a kernel
# TCP listener, which ss shows, with the module's listener beside it for
# plain rsockets clients, whose listen name the software RDMA device puts
# in the test's fabric at rdma_listen().
_listening() {
    if [ "$PROG_MODE" = rsocket ]; then
        ip netns exec "$NS_A" ss -Hltn "sport = :$1" | grep -q . &&
            [ -e "$SOFTRDMA_FABRIC/cm/${PROG_ADDR}_$1" ]
    else
        ip netns exec "$NS_A" ss -Hltn "sport = :$1" | grep -q .
    fi
}

# prog_wait_listen PORT: fails the test if the server dies or never listens.
prog_wait_listen() {
    wait_until 30 _server_up_or_dead "$1" || prog_fail "server did not listen on port $1 within 30 s"
    kill -0 "$PROG_SERVER_PID" 2>/dev/null || prog_fail "server exited early: $(tail -5 "$PROG_TMP"/*.out)"
}
_server_up_or_dead() { _listening "$1" || ! kill -0 "$PROG_SERVER_PID" 2>/dev/null; }

# prog_sha256 FILE: the hex digest only.
prog_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# prog_random_file FILE BYTES: incompressible test data.
prog_random_file() { head -c "$2" /dev/urandom >"$1"; }

# _server_on_stack STACK: nstack-stat shows a socket of the server's process
# group on STACK.
_server_on_stack() {
    local pid
    for pid in $(ps -o pid= -g "$PROG_SERVER_PID"); do
        "$NSTACK_RELEASE/bin/nstack-stat" "$pid" 2>/dev/null |
            awk -v s="$1" '$1 == s && $2 > 0 { ok = 1 } END { exit !ok }' && return 0
    done
    return 1
}

# prog_check_framework: under the preload, the server really runs under
# libnStackAPI.so with its sockets on the expected stack (nstack-stat reads
# the framework's counters of a live process). A no-op in plain mode.
prog_check_framework() {
    _prog_preloaded || return 0
    if [ ! -x "$NSTACK_RELEASE/bin/nstack-stat" ]; then
        prog_note "nstack-stat not built: framework use not checked"
        return 0
    fi
    _server_on_stack "$PROG_STACK" ||
        prog_fail "server is not running under libnStackAPI.so on the $PROG_STACK stack (nstack-stat shows no such sockets)"
}
