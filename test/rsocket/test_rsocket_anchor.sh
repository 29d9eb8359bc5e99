#!/bin/bash
# TCP-anchored connections, module side, between two namespace hosts over
# the software RDMA device (rs_anchor_test.c lists what each scenario
# asserts): upgrade nonblocking and blocking with data checked both ways
# and at most 64 bytes on the anchor, a plain server and a plain client
# (fallback, no foreign byte, negative cache), connect-and-close (clean
# EOF), an anchor reset after the upgrade (peer death), a FIN on the
# anchor with data in flight (nothing lost), the return to TCP with
# unread bytes on both ends (down), and with a peer that answers late
# (downlate). Then the upgrade over IPv6
# and from an IPv6 socket to an IPv4-mapped address, and SO_OOBINLINE set
# by either application (the peer's hello never reaches its stream).
set -u
BIN="$NSTACK_BUILD/test/rsocket/rs_anchor_test"
RS_LIBPATH_EXTRA="$NSTACK_RELEASE/lib64" . "$NSTACK_SRC/test/rsocket/rs_test_env.sh"
SCEN="up up upb upr mt tiny tiny par pcli pclib sfirst eof fwclose rst fin down downlate up plain plain2"

bg_a "$BIN" server 7481 "$IP_A" $SCEN >"$dir/server" 2>&1
srv=$BG_PID
wait_file_match "$dir/server" LISTENING 30 || fail "server did not listen"
timeout 240 ip netns exec "$NS_B" "$BIN" client "$IP_A" 7481 $SCEN >"$dir/client" 2>&1 \
    || fail "client scenarios"
timeout 60 tail --pid="$srv" -f /dev/null
wait "$srv" || fail "server exit status"
cat "$dir/client" "$dir/server"
grep -q "SERVER OK" "$dir/server" || fail "server verdict"
grep -q "CLIENT OK" "$dir/client" || fail "client verdict"

# port server-address client-address scenario...
pair() {
    local port=$1 sa=$2 ca=$3
    shift 3
    : >"$dir/server"; : >"$dir/client"
    bg_a "$BIN" server "$port" "$sa" "$@" >"$dir/server" 2>&1
    local srv=$BG_PID
    wait_file_match "$dir/server" LISTENING 30 || fail "server ($sa) did not listen"
    timeout 120 ip netns exec "$NS_B" "$BIN" client "$ca" "$port" "$@" >"$dir/client" 2>&1 \
        || fail "client scenarios ($ca: $*)"
    timeout 60 tail --pid="$srv" -f /dev/null
    wait "$srv" || fail "server exit status ($sa: $*)"
    grep -q "SERVER OK" "$dir/server" || fail "server verdict ($sa: $*)"
    cat "$dir/client" "$dir/server" | grep -E " OK "
}
pair 7482 "$IP6_A" "$IP6_A" up upb
pair 7483 "$IP_A" "::ffff:$IP_A" up upb
# SO_OOBINLINE (own port: the client caches the oobsrv server as plain)
pair 7484 "$IP_A" "$IP_A" oobcli oobsrv
# no process may hold large buffers: the upgrade with rsockets' sizes
export RS_ANCHOR_BUF_CONNS=0
pair 7485 "$IP_A" "$IP_A" up upb
unset RS_ANCHOR_BUF_CONNS
echo PASS
