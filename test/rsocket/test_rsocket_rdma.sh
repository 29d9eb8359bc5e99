#!/bin/bash
# Engine over the software RDMA device between two namespace hosts:
# data with pattern check both ways (IPv4), nonblocking connect, SO_ERROR,
# shutdown/EOF, close, ECONNREFUSED. Not registered in ctest until
# tools/softrdma provides librdmacm.so.1.
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
BIN="$NSTACK_BUILD/test/rsocket/rs_engine_test"
SOFT="$NSTACK_RELEASE/lib64/softrdma"
[ -e "$SOFT/librdmacm.so.1" ] || { echo "softrdma librdmacm missing: $SOFT"; exit 1; }
export LD_LIBRARY_PATH="$SOFT:$NSTACK_RELEASE/lib64"
netns_setup || exit 1
out=$(mktemp); trap 'rm -f "$out"; netns_cleanup' EXIT
bg_a "$BIN" server "$IP_A" 7471 $((4 << 20)) >"$out" 2>&1
srv=$BG_PID
wait_file_match "$out" LISTENING 30 || { cat "$out"; echo "server did not listen"; exit 1; }
timeout 120 ip netns exec "$NS_B" "$BIN" client "$IP_A" 7471 $((4 << 20)) || exit 1
timeout 60 tail --pid="$srv" -f /dev/null
wait "$srv" || { cat "$out"; exit 1; }
grep -q "SERVER OK" "$out" || { cat "$out"; exit 1; }
timeout 60 ip netns exec "$NS_B" "$BIN" refused "$IP_A" 7472 || exit 1
echo PASS
