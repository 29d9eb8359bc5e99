#!/bin/bash
# side.sh wild|wild6|fork|forkwild: plain rsockets clients (unmodified
# rstream over rdma_cm: LD_PRELOAD=libdmm_rsocket.so in front of the
# software device's librdmacm, no TCP at all) reach a framework server
# through the rdma_cm listener beside its TCP listener (anchor_side.c).
#   wild      rstream -T s (plain sockets) under the framework listens on
#             0.0.0.0: its side listens on the rdma_cm wildcard; a plain
#             rsockets rstream client passes its verified run; the
#             server's exit counters show the connection accepted on
#             rsocket and no byte on the kernel stack
#   wild6     the same with an IPv6 wildcard server (::, dual-stack) and
#             the client on fd21::180
#   fork      rsfw_side_srv: listen, then 2 forked workers accept with
#             EPOLLEXCLUSIVE, the master never does (nginx/Apache):
#             4 plain rsockets clients, then 2 framework clients (TCP,
#             anchored: an upgraded connection each), all verified; the
#             master accepts nothing, the workers everything
#   forkwild  the same with the server on 0.0.0.0
#   accfork   rsfw_side_srv WORKERS 0: the master accepts, forks a helper
#             per connection and serves it itself: it waited on the
#             listener before its first fork and keeps the side across the
#             forks (3 plain rsockets clients in a row)
. "$(dirname "$0")/rsfw_lib.sh"
MODE=${1:?wild|wild6|fork|forkwild|accfork}
PORT=7610
SOFT=$NSTACK_RELEASE/lib64/softrdma
command -v rstream >/dev/null || fail "rstream missing (rdmacm-utils)"
PLAIN=(env "LD_LIBRARY_PATH=$SOFT" "LD_PRELOAD=$NSTACK_RELEASE/lib64/libdmm_rsocket.so")
rsfw_setup

# the device names a listener $SOFTRDMA_FABRIC/cm/<ip>_<port> (a wildcard
# listener: one per local address)
side_up() { wait_until 30 test -e "$SOFTRDMA_FABRIC/cm/$1_$PORT"; }

# plain_client N ADDR: rstream's verified run as a plain rsockets client
plain_client() {
    in_b timeout 60 "${PLAIN[@]}" rstream -s "$2" -p "$PORT" -T v -S 3000 -C 8 -I 3 \
        >"$WORK/plain$1.out" 2>&1 || { cat "$WORK/plain$1.out"; fail "plain rsockets client $1"; }
    expect_line "$WORK/plain$1.out" "^custom" "plain rsockets client $1: no result line"
}

case $MODE in
wild|wild6)
    addr=$IP_A; any=0.0.0.0; fmt=ip
    [ "$MODE" = wild6 ] && { addr=fd21::180; any=::; fmt=ipv6; }
    bg_a "${RS_ENV[@]}" NSTACK_LOG_ON=INF rstream -T s -b "$any" -f "$fmt" -p "$PORT" -T v \
        -S 3000 -C 8 -I 3 >"$WORK/srv.out" 2>&1
    srv=$BG_PID
    wait_tcp_listen "$NS_A" "$any" "$PORT" 20 || { cat "$WORK/srv.out"; fail "server did not listen"; }
    side_up "$addr" || { cat "$WORK/srv.out"; ls "$SOFTRDMA_FABRIC/cm"; fail "no rdma_cm listener for $addr beside the wildcard listener"; }
    plain_client 1 "$addr"
    wait_exit "$srv" 30 || { cat "$WORK/srv.out"; fail "server exit status"; }
    expect_line "$WORK/srv.out" "^custom" "server: no result line"
    expect_stack "$WORK/srv.out" rsocket accept 1 "the plain client's connection accepted on rsocket"
    expect_stack "$WORK/srv.out" rsocket rx_bytes 72000 "the plain client's bytes on rsocket"
    expect_stack_zero "$WORK/srv.out" kernel rx_bytes "no byte on the kernel stack"
    echo "client: $(grep '^custom' "$WORK/plain1.out")"
    ;;
fork|forkwild)
    bind=$IP_A
    [ "$MODE" = forkwild ] && bind=0.0.0.0
    bg_a "${RS_ENV[@]}" NSTACK_LOG_ON=INF "$NSTACK_BUILD/test/rsocket-fw/rsfw_side_srv" "$bind" "$PORT" 2 6 \
        >"$WORK/srv.out" 2>&1
    srv=$BG_PID
    wait_file_match "$WORK/srv.out" LISTENING 20 || { cat "$WORK/srv.out"; fail "server did not start"; }
    # the side moves to the first worker that waits on the listener
    side_up "$IP_A" || { cat "$WORK/srv.out"; fail "no rdma_cm listener in a worker"; }
    for i in 1 2 3 4; do plain_client "$i" "$IP_A"; done
    for i in 1 2; do
        rs_b rstream -T s -s "$IP_A" -p "$PORT" -T v -S 3000 -C 8 -I 3 >"$WORK/fw$i.out" 2>&1 ||
            { cat "$WORK/fw$i.out"; fail "framework client $i"; }
        expect_line "$WORK/fw$i.out" "^custom" "framework client $i: no result line"
        expect_stack "$WORK/fw$i.out" rsocket tx_bytes 72000 "framework client $i: its bytes on rsocket (anchored)"
        expect_stack_zero "$WORK/fw$i.out" kernel tx_bytes "framework client $i: no byte on the kernel stack"
    done
    wait_exit "$srv" 60 || { cat "$WORK/srv.out"; fail "server exit status"; }
    expect_line "$WORK/srv.out" "^served 6" "server: not every connection served"
    cat "$WORK/srv.out" | grep -E "^worker|stats: stack rsocket|rdma_cm"
    master=$(grep "stats: stack rsocket" "$WORK/srv.out" | grep "nstack\[$srv\]" || true)
    [ -n "$master" ] || fail "no exit counters of the master (pid $srv)"
    echo "$master" | grep -q " accept 0 " || fail "the master accepted: $master"
    expect_stack "$WORK/srv.out" rsocket accept 6 "every connection accepted on rsocket (4 direct, 2 anchored)"
    expect_line "$WORK/srv.out" "this process now takes rsocket clients of the listener over rdma_cm" \
        "no worker took the side listener"
    ;;
accfork)
    bg_a "${RS_ENV[@]}" NSTACK_LOG_ON=INF "$NSTACK_BUILD/test/rsocket-fw/rsfw_side_srv" "$IP_A" "$PORT" 0 3 \
        >"$WORK/srv.out" 2>&1
    srv=$BG_PID
    wait_file_match "$WORK/srv.out" LISTENING 20 || { cat "$WORK/srv.out"; fail "server did not start"; }
    side_up "$IP_A" || { cat "$WORK/srv.out"; fail "no rdma_cm listener"; }
    for i in 1 2 3; do plain_client "$i" "$IP_A"; done
    wait_exit "$srv" 60 || { cat "$WORK/srv.out"; fail "server exit status"; }
    expect_line "$WORK/srv.out" "^served 3" "server: not every connection served"
    grep -q "this process now takes" "$WORK/srv.out" && { cat "$WORK/srv.out"; fail "the side listener moved: the master waited before forking"; }
    expect_stack "$WORK/srv.out" rsocket accept 3 "the plain clients' connections accepted on rsocket"
    ;;
*) fail "mode $MODE" ;;
esac
echo "PASS: side $MODE"
