#!/bin/bash
# rs_dgram_engine on host A (IPv4 and IPv6): datagram rsockets through the
# module contract alone, over the software RDMA device.
set -u
. "$NSTACK_SRC/test/rsocket/rs_test_env.sh"
BIN="$NSTACK_BUILD/test/rsocket/rs_dgram_engine"
for ip in "$IP_A" "$IP6_A"; do
    timeout 120 ip netns exec "$NS_A" "$BIN" "$ip" >"$dir/out.$ip" 2>&1 || fail "rs_dgram_engine $ip"
    grep -q "^PASS" "$dir/out.$ip" || fail "no PASS ($ip)"
done
echo "PASS: datagram engine, IPv4 and IPv6"
