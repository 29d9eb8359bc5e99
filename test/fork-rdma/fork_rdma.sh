#!/bin/bash
# fork_rdma.sh SCENARIO - fork over rsocket between two namespace hosts
# (192.168.21.0/24 routed to rsocket, the software RDMA device).
#
#   fork_pair   TCP-anchored (the default): DMM's fork_server on host A
#               serves 3 fork_client runs in a row from host B, each
#               "Result = Success"; the data went over rsocket (client
#               counters: rsocket bytes, no kernel bytes; each of the 3
#               forked children anchored its connection, the parent none
#               and it sent no byte on TCP). NSTACK_FORK_SUPPORT=1, the
#               retired TCP-first switch, is set on the server: it only
#               logs that it is ignored.
#   probe       TCP-anchored: fork_probe's nonblocking epoll server that
#               waits for client data first (EPOLLET children), and clients
#               whose parent keeps its socket across fork (back on TCP
#               from the fork on, the report says why) and whose child
#               opens its own socket.
#   no_support  direct module sockets (NSTACK_ANCHOR=0): an
#               accept-then-fork server's child gets EOWNERDEAD at once
#               (one log line, no hang); with a server that does not fork,
#               a client's parent keeps its socket across fork, its child's
#               own new socket works, and its child touching the inherited
#               socket gets EOWNERDEAD.
set -u
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}" "${NSTACK_BUILD:?}"
. "$NSTACK_SRC/test/lib/netns.sh"
. "$NSTACK_SRC/test/lib/nstack_env.sh"
SCENARIO=${1:?scenario}
BIN=$NSTACK_RELEASE/bin
PROBE=$NSTACK_BUILD/test/fork-rdma/fork_probe
[ -e "$NSTACK_RELEASE/lib64/softrdma/librdmacm.so.1" ] || { echo "FAIL: softrdma not built"; exit 1; }
[ -x "$PROBE" ] || { echo "FAIL: $PROBE not built"; exit 1; }

WORK=$(mktemp -d /tmp/fork-rdma.XXXXXX)
nstack_write_config "$WORK" rsocket
nstack_preload_env "$NSTACK_RELEASE" "$WORK"
netns_setup || { echo "FAIL: netns_setup"; exit 1; }
trap 'netns_cleanup; rm -rf "$WORK"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
show() { for f in "$@"; do echo "--- $f"; cat "$f"; done; }
# run_env ANCHOR: the app environment; NSTACK_ANCHOR=1 (the default:
# TCP-anchored connections) or 0 (direct module sockets, which a fork child
# cannot use).
run_env() { ENV=(env "${NSTACK_PRELOAD_ENV[@]}" "NSTACK_ANCHOR=$1" NSTACK_STATS=1 VS_TIMEOUT=30); }

# start_a OUT CMD...: CMD on host A, waiting for its "listening" line.
start_a() {
    local out=$1; shift
    bg_a "$@" >"$out" 2>&1
    SERVER_PID=$BG_PID
    wait_file_match "$out" "^listening" 30 || { show "$out"; fail "server did not listen"; }
}
server_exit() {
    wait_until 90 sh -c "! kill -0 $SERVER_PID 2>/dev/null" || fail "server did not exit within 90 s"
    wait "$SERVER_PID"
}
# client_on_rsocket OUT: the client's exit counters show bytes on rsocket
# and none on the kernel stack.
client_on_rsocket() {
    grep -qE "stats: stack rsocket: .* tx_bytes [1-9][0-9]* rx_bytes [1-9]" "$1" ||
        { show "$1"; fail "client: no rsocket bytes in its counters"; }
    grep -qE "stats: stack kernel: .* tx_bytes 0 rx_bytes 0" "$1" ||
        { show "$1"; fail "client: bytes on the kernel stack"; }
}

scenario_fork_pair() {
    run_env 1
    start_a "$WORK/srv.out" "${ENV[@]}" NSTACK_FORK_SUPPORT=1 NSTACK_LOG_ON=DBG "$BIN/fork_server" -s "$IP_A" -p 20000 -n 3
    for i in 1 2 3; do
        timeout 120 ip netns exec "$NS_B" "${ENV[@]}" "$BIN/fork_client" -p 20000 -d "$IP_A" -t 200 \
            >"$WORK/c$i.out" 2>&1 || { show "$WORK/c$i.out" "$WORK/srv.out"; fail "fork_client $i exited $?"; }
        grep -q "^Result = Success$" "$WORK/c$i.out" || { show "$WORK/c$i.out"; fail "client $i result"; }
        client_on_rsocket "$WORK/c$i.out"
    done
    server_exit || { show "$WORK/srv.out"; fail "fork_server exit status"; }
    grep -q "served 3 connections, 3 ok, result=PASS" "$WORK/srv.out" || { show "$WORK/srv.out"; fail "server summary"; }
    grep -q "NSTACK_FORK_SUPPORT=1 is retired and ignored" "$WORK/srv.out" ||
        { show "$WORK/srv.out"; fail "no line saying NSTACK_FORK_SUPPORT is retired"; }
    local movers
    movers=$(grep -oE '^nstack\[[0-9]+\]: DBG: fd [0-9]+: anchored on rsocket' "$WORK/srv.out" |
             grep -oE '^nstack\[[0-9]+\]' | sort -u | wc -l)
    [ "$movers" = 3 ] || { show "$WORK/srv.out"; fail "expected 3 children to anchor their connection on rsocket, saw $movers"; }
    grep -q "^nstack\[$SERVER_PID\]: DBG: fd [0-9]*: anchored on" "$WORK/srv.out" &&
        fail "the parent server anchored a connection itself"
    # The parent's own exit counters: no byte on TCP (the children used RDMA).
    grep -qE "^nstack\[[0-9]+\]: stats: stack kernel: .* tx_bytes 0 rx_bytes 0" "$WORK/srv.out" ||
        { show "$WORK/srv.out"; fail "server parent counters"; }
}

scenario_probe() {
    run_env 1
    start_a "$WORK/srv.out" "${ENV[@]}" "$PROBE" server "$IP_A" 20001 3
    for mode in echo parent-keeps child-new; do
        timeout 120 ip netns exec "$NS_B" "${ENV[@]}" "$PROBE" client "$IP_A" 20001 "$mode" 300000 \
            >"$WORK/$mode.out" 2>&1 || { show "$WORK/$mode.out" "$WORK/srv.out"; fail "client $mode"; }
        grep -q "^OK client $mode: 300000 bytes" "$WORK/$mode.out" || { show "$WORK/$mode.out"; fail "client $mode result"; }
    done
    # parent-keeps forks after its connection was upgraded: the fork takes
    # it back to TCP (doc/fork.md), which its report names.
    client_on_rsocket "$WORK/echo.out"
    grep -q "stayed on TCP: fork/exec limitation" "$WORK/parent-keeps.out" ||
        { show "$WORK/parent-keeps.out"; fail "parent-keeps: no fork/exec reason in its report"; }
    server_exit || { show "$WORK/srv.out"; fail "server exit status"; }
    grep -q "^OK server: 3 connections, 0 children failed" "$WORK/srv.out" || { show "$WORK/srv.out"; fail "server result"; }
    [ "$(grep -c 'echoed 300000 bytes' "$WORK/srv.out")" = 3 ] || { show "$WORK/srv.out"; fail "3 children echoing 300000 bytes"; }
}

scenario_no_support() {
    run_env 0
    # An accept-then-fork server on direct module sockets: the child fails fast.
    start_a "$WORK/fs.out" "${ENV[@]}" "$BIN/fork_server" -s "$IP_A" -p 20000 -n 1 --timeout=20
    local t0=$SECONDS
    timeout 60 ip netns exec "$NS_B" "${ENV[@]}" "$BIN/fork_client" -p 20000 -d "$IP_A" -t 10 \
        >"$WORK/fc.out" 2>&1 && { show "$WORK/fc.out"; fail "fork_client succeeded on a direct module socket"; }
    server_exit && fail "fork_server passed on a direct module socket"
    grep -q "Owner died" "$WORK/fs.out" || { show "$WORK/fs.out"; fail "the child did not get EOWNERDEAD"; }
    grep -q "WAR: rsocket: a socket inherited across fork() is not usable in the child" "$WORK/fs.out" ||
        { show "$WORK/fs.out"; fail "no log line naming the inherited socket"; }
    [ $((SECONDS - t0)) -lt 20 ] || fail "the failure took $((SECONDS - t0)) s (expected at once)"
    # A server that does not fork: the client's fork cases.
    start_a "$WORK/srv.out" "${ENV[@]}" "$PROBE" server "$IP_A" 20001 3 nofork
    for mode in parent-keeps child-new inherit-err; do
        timeout 120 ip netns exec "$NS_B" "${ENV[@]}" "$PROBE" client "$IP_A" 20001 "$mode" 300000 \
            >"$WORK/$mode.out" 2>&1 || { show "$WORK/$mode.out" "$WORK/srv.out"; fail "client $mode"; }
        grep -q "^OK client $mode: 300000 bytes" "$WORK/$mode.out" || { show "$WORK/$mode.out"; fail "client $mode result"; }
    done
    for mode in parent-keeps inherit-err; do client_on_rsocket "$WORK/$mode.out"; done
    grep -q "^child: inherited socket: send and recv EOWNERDEAD" "$WORK/inherit-err.out" || fail "inherit-err child line"
    server_exit || { show "$WORK/srv.out"; fail "server exit status"; }
    grep -q "^OK server: 3 connections, 0 children failed" "$WORK/srv.out" || { show "$WORK/srv.out"; fail "server result"; }
}

case $SCENARIO in
    fork_pair|probe|no_support) "scenario_$SCENARIO" ;;
    *) fail "unknown scenario $SCENARIO" ;;
esac
echo "PASS: fork_rdma $SCENARIO"
