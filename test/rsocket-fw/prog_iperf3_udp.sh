#!/bin/bash
# prog_iperf3_udp.sh [RATE]: iperf3 -u under the preload over rsocket
# (datagram rsockets for the data, an anchored TCP connection for the
# control), server bound to 192.168.21.180 (host A), client on host B,
# 1400-byte datagrams at RATE (default 50M) for 3 s. Asserts: both ends
# finish, the server's loss report (JSON) exists, at least 70 % of the
# client's datagrams arrived (UD drops what finds no posted receive, as a
# full kernel socket buffer does: a receiver descheduled on a loaded
# machine loses datagrams; idle, 0 are lost), the counters put the datagram bytes on
# rsocket and nothing on the kernel stack, and that the datagrams went
# over RDMA: kernel UDP packets on the port (tcpdump on host B) are first
# contact only, fewer than 1 % of the datagrams.
. "$(dirname "$0")/rsfw_lib.sh"
. "$NSTACK_SRC/test/lib/wirecheck.sh"
wire_fail() { fail "$@"; }
RATE=${1:-50M}
rsfw_setup
bg_a "${RS_ENV[@]}" iperf3 -s -1 --json -B "$IP_A" -p 5201 >"$WORK/server.json" 2>"$WORK/server.err"
srv=$BG_PID
wire_capture_start "$NS_B" eth0 5201 "$WORK" "udp port 5201"
iperf3_client -u -c "$IP_A" -p 5201 -b "$RATE" -l 1400 -t 3
wait_exit "$srv" 60 || { cat "$WORK/server.err"; fail "iperf3 server did not finish"; }
wire_capture_stop
pk=$(jq -r '.end.sum.packets' "$WORK/server.json")
lost=$(jq -r '.end.sum.lost_packets' "$WORK/server.json")
pct=$(jq -r '.end.sum.lost_percent' "$WORK/server.json")
bps=$(jq -r '([.intervals[].sum.bytes] | add) * 8 / .end.sum.seconds' "$WORK/server.json")
jit=$(jq -r '.end.sum.jitter_ms' "$WORK/server.json")
[ "$pk" -gt 1000 ] 2>/dev/null || { cat "$WORK/server.json"; fail "server report: $pk datagrams"; }
[ "$lost" -le $((pk * 3 / 10)) ] || fail "lost $lost of $pk datagrams ($pct %)"
cb=$(jq -r '.end.sum.bytes' "$WORK/client.json")
expect_stack "$WORK/client.err" rsocket tx_bytes "$cb" "iperf3 -u client"
expect_stack_zero "$WORK/client.err" kernel tx_bytes "iperf3 -u client"
expect_stack_zero "$WORK/server.err" kernel rx_bytes "iperf3 -u server"
[ "$WIRE_DROPPED" -eq 0 ] || fail "the capture dropped $WIRE_DROPPED packets: cannot tell"
[ "$WIRE_BIG" -lt $((pk / 100)) ] ||
    fail "$WIRE_BIG kernel UDP packets on port 5201 for $pk datagrams: the data did not move to UD"
mbit=$(awk -v b="$bps" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "PASS: iperf3 -u over rsocket at $RATE: $WIRE_BIG kernel UDP packets (first contact), $pk datagrams, lost $lost ($pct %), jitter $jit ms, $mbit Mbit/s"
