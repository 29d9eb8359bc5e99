#!/bin/bash
# Engine over the software RDMA device between two namespace hosts, through
# the module contract: data both ways with every send/recv form and
# several iovecs (IPv4 and IPv6), sends of sizes around the device's
# 64 KiB inline limit with the buffer overwritten after each (L), nonblocking connect (EINPROGRESS ->
# writable -> SO_ERROR 0), MSG_PEEK / MSG_WAITALL / MSG_DONTWAIT, FIONREAD,
# shutdown of each direction, close with pending data, ECONNREFUSED
# (blocking and nonblocking, bounded), keepalive on a live connection left
# idle for over 3 periods (K: the probe answer is polled before judging).
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
BIN="$NSTACK_BUILD/test/rsocket/rs_engine_test"
SOFT="$NSTACK_RELEASE/lib64/softrdma"
[ -e "$SOFT/librdmacm.so.1" ] || { echo "softrdma librdmacm missing: $SOFT"; exit 1; }
export LD_LIBRARY_PATH="$SOFT:$NSTACK_RELEASE/lib64"
netns_setup || exit 1
out=$(mktemp); trap 'rm -f "$out"; netns_cleanup' EXIT

bg_a "$BIN" server 7471 "$IP_A" "$IP6_A" >"$out" 2>&1
srv=$BG_PID
wait_file_match "$out" LISTENING 30 || { cat "$out"; echo "FAIL: server did not listen"; exit 1; }

fail() { echo "--- server output:"; cat "$out"; echo "FAIL: $*"; exit 1; }
timeout 300 ip netns exec "$NS_B" "$BIN" client "$IP_A" 7471 \
    D:4194304 D:1 D:65536 L:6291456 P S:1048576 R:1048576 C:8388608 K || fail "IPv4 scenarios"
timeout 120 ip netns exec "$NS_B" "$BIN" client "$IP6_A" 7471 D:2097152 P X || fail "IPv6 scenarios"
timeout 60 tail --pid="$srv" -f /dev/null
wait "$srv" || fail "server exit status"
grep -q "SERVER OK" "$out" || fail "server verdict"
# nothing listens on 7472: refused both ways, within the timeout
timeout 60 ip netns exec "$NS_B" "$BIN" refused "$IP_A" 7472 || fail "ECONNREFUSED"
timeout 60 ip netns exec "$NS_B" "$BIN" refused "$IP6_A" 7472 || fail "ECONNREFUSED (IPv6)"
echo PASS
