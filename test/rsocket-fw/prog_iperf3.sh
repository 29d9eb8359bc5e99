#!/bin/bash
# prog_iperf3.sh: iperf3 under the preload over rsocket, server bound to
# 192.168.21.180 (host A), client on host B: -n bytes, both ends report
# them (JSON), and the framework's counters put the bytes on rsocket.
. "$(dirname "$0")/rsfw_lib.sh"
BYTES=$((64 * 1024 * 1024))
rsfw_setup
bg_a "${RS_ENV[@]}" iperf3 -s -1 --json -B "$IP_A" -p 5201 >"$WORK/server.json" 2>"$WORK/server.err"
srv=$BG_PID
iperf3_client -c "$IP_A" -p 5201 -n "$BYTES"
wait_exit "$srv" 60 || { cat "$WORK/server.err"; fail "iperf3 server did not finish"; }
sent=$(jq -r '.end.sum_sent.bytes' "$WORK/client.json")
relayed=$(jq -r '.end.sum_received.bytes' "$WORK/client.json")
recv=$(jq -r '.end.sum_received.bytes' "$WORK/server.json")
bps=$(jq -r '.end.sum_received.bits_per_second' "$WORK/server.json")
[ "$sent" -ge "$BYTES" ] || fail "client sent $sent bytes, asked for $BYTES"
[ "$recv" -gt 0 ] && [ "$recv" -le "$sent" ] || fail "server received $recv bytes, client sent $sent"
[ "$relayed" = "$recv" ] || fail "client reports server received $relayed, server says $recv"
expect_stack "$WORK/client.err" rsocket tx_bytes "$BYTES" "iperf3 client"
# The server stops reading its data connection at the end-of-test message,
# so bytes still in flight are legitimately unread: the server's rsocket
# counter may be below the client's, never above it. Both counters also
# hold the control connection, which each side reads completely, so
# (server's counter - server's data figure) must equal
# (client's counter - client's data figure) exactly.
ctx=$(stack_count "$WORK/client.err" rsocket tx_bytes)
srx=$(stack_count "$WORK/server.err" rsocket rx_bytes)
[ "$srx" -le "$ctx" ] || fail "server's rsocket rx_bytes $srx exceed the client's tx_bytes $ctx"
[ $((srx - recv)) -eq $((ctx - sent)) ] ||
    fail "server read $srx bytes on rsocket, iperf3 reports $recv data bytes; control bytes $((srx - recv)) != client's $((ctx - sent))"
expect_stack_zero "$WORK/client.err" kernel tx_bytes "iperf3 client"
echo "PASS: iperf3 over rsocket: client sent $sent bytes, server received $recv, $(( ${bps%.*} / 1000000 )) Mbit/s"
