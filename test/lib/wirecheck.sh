# shellcheck shell=bash
# What crossed kernel TCP, and which nStack stack carried the bytes.
#
# A TCP-anchored connection keeps its kernel TCP socket for the handshake
# and control packets only (at most 64 bytes of payload per packet); once
# upgraded, every application byte goes over RDMA. This helper counts the
# kernel TCP packets on a port that carry more than 64 bytes of payload,
# payload = ip.len - ip.hdr_len - tcp.hdr_len, computed by the capture
# filter itself (IPv4), so the kernel hands tcpdump nothing else.
#
#   wire_capture_start NS IFACE PORT DIR [FILTER]
#                                          tcpdump in NS on IFACE (returns
#                                          once it captures; bounded);
#                                          FILTER replaces the TCP payload
#                                          filter (e.g. "udp port 7000":
#                                          every kernel UDP packet counts)
#   wire_capture_stop                      WIRE_BIG: packets > 64 B payload,
#                                          WIRE_DROPPED: dropped by the kernel
#   wire_expect_no_payload WHAT            WIRE_BIG == 0 (and nothing dropped)
#   wire_payload_sum                       bytes of payload in those packets
#   wire_expect_payload WHAT               WIRE_BIG > 0: on the kernel route
#                                          the bulk is on TCP; proves the
#                                          check above can fail
#   stats_exit_bytes FILE STACK            tx+rx of STACK in the NSTACK_STATS=1
#                                          exit lines in FILE (all processes)
#   stats_live_bytes STACK PID...          tx+rx of STACK of live processes
#                                          (release/bin/nstack-stat)
#   expect_bulk_on STACK MIN BYTES WHAT    BYTES >= MIN, else fail naming it
#
# Needs test/lib/netns.sh (wait_until, bg_track) and tcpdump (tools/deps.sh).
# The caller defines wire_fail MSG (one line, exit 1); a default is below.

WIRE_MAX_PAYLOAD=64
WIRE_PID=""; WIRE_FILE=""; WIRE_ERR=""; WIRE_BIG=""; WIRE_DROPPED=""

declare -F wire_fail >/dev/null || wire_fail() { echo "FAIL: $*" >&2; exit 1; }

wire_filter() {
    echo "tcp port $1 and (ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2)) > $WIRE_MAX_PAYLOAD"
}

wire_capture_start() {
    local ns=$1 ifc=$2 port=$3 dir=$4 filter=${5:-}
    command -v tcpdump >/dev/null || wire_fail "tcpdump is not installed (tools/deps.sh)"
    WIRE_FILE=$dir/wire.$port.pcap; WIRE_ERR=$dir/wire.$port.err
    # An earlier capture on this port left "listening on" in WIRE_ERR, and
    # the background job below truncates the file only once it runs: the
    # wait would see the old line and return before this tcpdump listens
    # (the pull of servers.rsync.rsocket then ran uncaptured under load).
    # Emptied here, before the job starts, the wait sees only this one's.
    : >"$WIRE_ERR" || wire_fail "cannot write $WIRE_ERR"
    # -U: write each packet at once; -B: a large buffer so nothing drops;
    # --immediate-mode: packets reach tcpdump at once, not when a ring
    # block fills or times out (a capture stopped right after the traffic
    # would otherwise miss the last block).
    ip netns exec "$ns" tcpdump -i "$ifc" -n -U -B 8192 --immediate-mode -w "$WIRE_FILE" \
        "${filter:-$(wire_filter "$port")}" 2>"$WIRE_ERR" &
    WIRE_PID=$!; bg_track "$WIRE_PID"
    wait_until 20 grep -qs 'listening on' "$WIRE_ERR" ||
        wire_fail "tcpdump did not start capturing: $(cat "$WIRE_ERR")"
}

_wire_gone() { ! kill -0 "$WIRE_PID" 2>/dev/null; }
wire_capture_stop() {
    [ -n "$WIRE_PID" ] || wire_fail "wire_capture_stop without wire_capture_start"
    kill -INT "$WIRE_PID" 2>/dev/null
    wait_until 10 _wire_gone || kill -KILL "$WIRE_PID" 2>/dev/null
    wait "$WIRE_PID" 2>/dev/null
    WIRE_PID=""
    WIRE_BIG=$(tcpdump -r "$WIRE_FILE" -n 2>/dev/null | wc -l)
    WIRE_DROPPED=$(sed -n 's/^\([0-9]*\) packets dropped by kernel.*/\1/p' "$WIRE_ERR")
    WIRE_DROPPED=${WIRE_DROPPED:-0}
}

wire_expect_no_payload() {
    [ "$WIRE_DROPPED" -eq 0 ] || wire_fail "$1: the capture dropped $WIRE_DROPPED packets: cannot tell"
    [ "$WIRE_BIG" -eq 0 ] ||
        wire_fail "$1: $WIRE_BIG kernel TCP packets carried more than $WIRE_MAX_PAYLOAD bytes of payload, e.g.: $(tcpdump -r "$WIRE_FILE" -n -c 2 2>/dev/null | tr '\n' ' ')"
}

wire_payload_sum() {
    tcpdump -r "$WIRE_FILE" -n 2>/dev/null | sed -n 's/.* length \([0-9]*\)$/\1/p' |
        awk '{ s += $1 } END { printf "%.0f\n", s + 0 }'
}

wire_expect_payload() {
    [ "$WIRE_BIG" -gt 0 ] ||
        wire_fail "$1: no kernel TCP packet with more than $WIRE_MAX_PAYLOAD bytes of payload on the kernel route: the capture sees nothing ($(tr '\n' ' ' <"$WIRE_ERR"))"
}

stats_exit_bytes() {
    awk -v st="$2" '
        /nstack\[[0-9]+\]: stats: stack / {
            if ($4 != st ":") next
            for (i = 5; i < NF; i++) if ($i == "tx_bytes" || $i == "rx_bytes") s += $(i + 1)
        }
        END { printf "%.0f\n", s + 0 }' "$1"
}

# nstack-stat rows: stack sockets connect accept tx_bytes rx_bytes fallback
stats_live_bytes() {
    local st=$1; shift
    [ $# -gt 0 ] || { echo 0; return; }
    "$NSTACK_RELEASE/bin/nstack-stat" "$@" 2>/dev/null |
        awk -v st="$st" '$1 == st && NF >= 6 { s += $5 + $6 } END { printf "%.0f\n", s + 0 }'
}

expect_bulk_on() {
    [ "$3" -ge "$2" ] || wire_fail "$4: $3 bytes on stack $1, expected at least $2"
}
