#!/bin/bash
# Debian's perftest binaries on the softrdma device between the two
# namespace test hosts. They link Debian's libmlx5 and libefa directly,
# which import libibverbs' private provider interface: they must load,
# find softrdma0, and run to completion with a sane result row.
# Usage: perftest_test.sh send_lat|write_bw|read_lat|send_lat_ud
# The parameters are exchanged over kernel TCP (perftest's default). With
# -R (rdma_cm) perftest listens twice on one port, and its client may
# connect between the two listens: a REQ without a listener is rejected at
# once, here as on hardware, and perftest then crashes (doc/softrdma.md).
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
export SOFTRDMA_STRICT_SQ=${SOFTRDMA_STRICT_SQ:-1}
LOG=$(mktemp -d /tmp/softrdma-perftest.XXXXXX)
netns_remove_on_exit "$LOG"
fail() { echo "FAIL: $*"; for f in "$LOG"/*.log; do echo "--- $f"; tail -n 30 "$f"; done; exit 1; }
command -v ib_send_lat >/dev/null || fail "perftest is not installed (tools/deps.sh)"
netns_setup || fail "netns setup"

N=500
PORT=$((19000 + RANDOM % 1000))

# run_pair PROG ARGS...: server on host A, client on host B.
run_pair() {
    local prog=$1; shift
    bg_a timeout 120 "$prog" -p "$PORT" -n "$N" "$@" > "$LOG/server.log" 2>&1; local spid=$BG_PID
    wait_tcp_listen "$NS_A" 0.0.0.0 "$PORT" 60 || fail "$prog server did not listen"
    timeout 120 ip netns exec "$NS_B" "$prog" -p "$PORT" -n "$N" "$@" "$IP_A" > "$LOG/client.log" 2>&1 \
        || fail "$prog client exit status $?"
    wait "$spid" || fail "$prog server exit status"
    ! grep -q "not supported by softrdma\|provider interface" "$LOG"/*.log ||
        fail "$prog reached an unsupported entry point"
    grep -q "Device *: softrdma0" "$LOG/client.log" || fail "$prog did not use softrdma0"
}

# The first result row after the header: "#bytes #iterations ...".
result_row() { awk '/#bytes/ {getline; print; exit}' "$1"; }

check_lat() {   # bytes iterations t_min t_max t_typical ...
    local f row
    for f in "$LOG/client.log" "$LOG/server.log"; do
        row=$(result_row "$f")
        [ -n "$row" ] || fail "no result row in $f"
        # ib_read_lat reports on the client only
        echo "$row" | awk -v n="$N" '$2 == n && $5 > 0 {ok=1} END {exit !ok}' ||
            fail "bad latency row in $f: $row"
        echo "$(basename "$f"): $row"
        [ "$1" = client ] && break
    done
}

check_bw() {    # bytes iterations BW_peak BW_average MsgRate
    local row
    row=$(result_row "$LOG/client.log")
    echo "$row" | awk -v n="$N" '$2 == n && $4 > 0 {ok=1} END {exit !ok}' ||
        fail "bad bandwidth row: $row"
    echo "client: $row"
}

case "${1:-}" in
send_lat) run_pair ib_send_lat; check_lat both ;;
read_lat) run_pair ib_read_lat; check_lat client ;;
write_bw) run_pair ib_write_bw -s 65536; check_bw ;;
send_lat_ud) run_pair ib_send_lat -c UD; check_lat both ;;     # UD QPs and AHs
*) echo "usage: $0 send_lat|write_bw|read_lat|send_lat_ud"; exit 2 ;;
esac
echo "PASS: $1"
