#!/bin/bash
# rsbug_run.sh FLAVOUR CASE: one known-bug case (doc/rsocket-bugs.md)
# between two fresh namespace hosts on a private software RDMA fabric.
#   FLAVOUR api: rsbug_api, the engine's rsocket API (libdmm_rsocket.so);
#           api_asan: the same under AddressSanitizer;
#           fw: rsbug_fw, libc calls under the libnStackAPI.so preload,
#           routed to the rsocket module (the counters must say so).
# The server side runs on host A (192.168.21.180), the client on host B.
# Peers are killed here (crash, deadclose); every wait has a deadline.
set -u
FLAVOUR=$1 CASE=$2
# shellcheck source=../rsocket-fw/rsfw_lib.sh
. "$NSTACK_SRC/test/rsocket-fw/rsfw_lib.sh"
PORT=7600
SOFT="$NSTACK_RELEASE/lib64/softrdma"
case "$FLAVOUR" in
api|api_asan)
    BIN="$NSTACK_BUILD/test/rsocket-bugs/rsbug_$FLAVOUR"
    RUN=(env "LD_LIBRARY_PATH=$SOFT:$NSTACK_RELEASE/lib64" "ASAN_OPTIONS=detect_leaks=0:abort_on_error=1")
    ;;
fw)
    BIN="$NSTACK_BUILD/test/rsocket-bugs/rsbug_fw"
    RUN=("${RS_ENV[@]}")
    # fork: the engine's registered memory must be there at fork time, as
    # with direct module sockets; a TCP-anchored connection returns to TCP
    # (and frees it) before the fork (doc/fork.md), tested by servers.forkdown
    [ "$CASE" = fork ] && RUN+=(NSTACK_ANCHOR=0)
    ;;
*) fail "FLAVOUR must be api, api_asan or fw, not '$FLAVOUR'" ;;
esac
[ -x "$BIN" ] || fail "$BIN is not built"
rsfw_setup
SRV=$WORK/server.out CLI=$WORK/client.out GO=$WORK/go

show() { for f in "$WORK"/*.out; do echo "--- $f:"; cat "$f"; done; }
die() { show; fail "rsbug $FLAVOUR $CASE: $*"; }

start_server() {
    bg_a "${RUN[@]}" "$BIN" "$CASE" server "$IP_A" "$PORT" >"$SRV" 2>&1
    SRV_PID=$BG_PID
    wait_file_match "$SRV" LISTENING 60 || die "server did not listen"
}
start_client() {
    bg_b "${RUN[@]}" "$BIN" "$CASE" client "$IP_A" "$PORT" "$@" >"$CLI" 2>&1
    CLI_PID=$BG_PID
}
# finish PID WHO FILE: the side exits 0 within the deadline, saying OK.
finish() {
    wait_exit "$1" 280 || die "$2 failed (status $?)"
    grep -q "$2 OK" "$3" || die "$2 verdict missing"
}
# the framework flavour must have carried the case over rsocket
fw_routed() {
    [ "$FLAVOUR" = fw ] || return 0
    expect_stack "$1" rsocket "$2" 1 "$CASE routed to rsocket"
    expect_stack_zero "$1" kernel tx_bytes "$CASE kept off the kernel stack"
}

case "$CASE" in
selfconn)
    bg_a "${RUN[@]}" "$BIN" "$CASE" server "$IP_A" "$PORT" >"$SRV" 2>&1
    finish "$BG_PID" SERVER "$SRV"
    fw_routed "$SRV" accept ;;
refused)
    start_client
    finish "$CLI_PID" CLIENT "$CLI" ;;
discbatch)
    start_server
    start_client "$GO"
    finish "$SRV_PID" SERVER "$SRV"     # closed with its data unread
    touch "$GO"
    finish "$CLI_PID" CLIENT "$CLI"
    fw_routed "$CLI" connect ;;
crash)
    start_server
    start_client
    wait_file_match "$SRV" ACCEPTED 120 || die "server did not get the hello"
    wait_file_match "$CLI" SENT 60 || die "client did not say SENT"
    kill -9 "$CLI_PID"
    finish "$SRV_PID" SERVER "$SRV" ;;
deadclose)
    start_server
    start_client "$GO"
    wait_file_match "$CLI" FULL 120 || die "client did not fill its send side"
    kill -9 "$SRV_PID"
    touch "$GO"
    finish "$CLI_PID" CLIENT "$CLI" ;;
stalledclose)
    CASE=deadclose
    start_server
    start_client -
    finish "$CLI_PID" CLIENT "$CLI"
    kill -0 "$SRV_PID" || die "the stalled server died" ;;
*)
    start_server
    start_client
    finish "$CLI_PID" CLIENT "$CLI"
    finish "$SRV_PID" SERVER "$SRV"
    fw_routed "$CLI" connect ;;
esac
cat "$WORK"/*.out
echo "PASS rsbug $FLAVOUR $CASE"
