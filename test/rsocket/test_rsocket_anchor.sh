#!/bin/bash
# TCP-anchored connections, module side, between two namespace hosts over
# the software RDMA device (rs_anchor_test.c lists what each scenario
# asserts): upgrade nonblocking and blocking with data checked both ways
# and at most 64 bytes on the anchor, a plain server and a plain client
# (fallback, no foreign byte, negative cache), connect-and-close (clean
# EOF), an anchor reset after the upgrade (peer death), a FIN on the
# anchor with data in flight (nothing lost). Then the upgrade over IPv6
# and from an IPv6 socket to an IPv4-mapped address.
set -u
BIN="$NSTACK_BUILD/test/rsocket/rs_anchor_test"
RS_LIBPATH_EXTRA="$NSTACK_RELEASE/lib64" . "$NSTACK_SRC/test/rsocket/rs_test_env.sh"
SCEN="up up upb upr mt par pcli pclib sfirst eof fwclose rst fin up plain plain2"

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

# port server-address client-address
pair() {
    : >"$dir/server"; : >"$dir/client"
    bg_a "$BIN" server "$1" "$2" up upb >"$dir/server" 2>&1
    local srv=$BG_PID
    wait_file_match "$dir/server" LISTENING 30 || fail "server ($2) did not listen"
    timeout 120 ip netns exec "$NS_B" "$BIN" client "$3" "$1" up upb >"$dir/client" 2>&1 \
        || fail "client scenarios ($3)"
    timeout 60 tail --pid="$srv" -f /dev/null
    wait "$srv" || fail "server exit status ($2)"
    grep -q "SERVER OK" "$dir/server" || fail "server verdict ($2)"
    echo "upgrade $3 -> $2: OK"
}
pair 7482 "$IP6_A" "$IP6_A"
pair 7483 "$IP_A" "::ffff:$IP_A"
echo PASS
