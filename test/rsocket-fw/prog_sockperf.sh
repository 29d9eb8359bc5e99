#!/bin/bash
# prog_sockperf.sh: sockperf ping-pong under the preload over rsocket
# (server bound to 192.168.21.180 on host A, client on host B) with
# --data-integrity: every answer counted, none lost/duplicated/reordered.
. "$(dirname "$0")/rsfw_lib.sh"
rsfw_setup
bg_a "${RS_ENV[@]}" sockperf sr --tcp -i "$IP_A" -p 11111 >"$WORK/server.out" 2>&1
srv=$BG_PID
out=$WORK/client.out
ok=0
for try in $(seq 1 20); do
    rs_b timeout 120 sockperf pp --tcp -i "$IP_A" -p 11111 -t 3 -m 256 --data-integrity >"$out" 2>&1 && { ok=1; break; }
    grep -q "Connection refused" "$out" || break
    kill -0 "$srv" 2>/dev/null || break
    wait_until 1 false
done
[ $ok = 1 ] || { cat "$out" "$WORK/server.out"; fail "sockperf client failed"; }
valid=$(grep -F '[Valid Duration]' "$out") || fail "no [Valid Duration] line: $(tail -5 "$out")"
sent=$(sed -n 's/.*SentMessages=\([0-9]*\).*/\1/p' <<<"$valid")
recv=$(sed -n 's/.*ReceivedMessages=\([0-9]*\).*/\1/p' <<<"$valid")
[ -n "$sent" ] && [ "$sent" -gt 0 ] || fail "no messages sent: $valid"
[ "$recv" -eq "$sent" ] || fail "sent $sent messages, $recv answered"
grep -q 'dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0' "$out" ||
    fail "lost or reordered messages: $(grep -F 'dropped messages' "$out")"
grep -qF "data integrity test failed" "$out" && fail "data integrity check failed"
median=$(sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$out")
[ -n "$median" ] || fail "no median latency in the output"
# The client closed first: as on kernel TCP the TIME-WAIT is the client's,
# the server's end closes at once (its FIN answers the client's). Before
# the anchor's FIN left with the DISCONNECT (rs_close_drain), the server's
# FIN often went first and its port stayed in TIME-WAIT: sockperf, which
# binds without SO_REUSEADDR, then could not listen there again.
srv_conns() { ip netns exec "$NS_A" ss -Htan "( sport = :11111 )" | grep -v LISTEN; }
no_srv_conns() { [ -z "$(srv_conns)" ]; }
wait_until 10 no_srv_conns || fail "the server's end after the client's close: $(srv_conns)"
expect_stack "$out" rsocket tx_bytes $((sent * 256)) "sockperf client"
expect_stack "$out" rsocket connect 1 "sockperf client"
echo "PASS: sockperf over rsocket: $sent round trips of 256 bytes, median latency $median usec"
