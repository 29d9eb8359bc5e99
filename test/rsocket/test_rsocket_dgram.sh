#!/bin/bash
# Datagram rsockets through the rsocket API (rs_dgram_api with
# LD_PRELOAD=libdmm_rsocket.so): server on host A, client on host B, 300
# round trips of 1..2000 bytes checked, IPv4 and IPv6.
set -u
. "$NSTACK_SRC/test/rsocket/rs_test_env.sh"
LIB="$NSTACK_RELEASE/lib64/libdmm_rsocket.so"
BIN="$NSTACK_BUILD/test/rsocket/rs_dgram_api"
for pair in "$IP_A $IP_B 7100" "$IP6_A $IP6_B 7101"; do
    set -- $pair
    bg_a env LD_PRELOAD="$LIB" "$BIN" server "$1" "$3" 300 >"$dir/server.$3" 2>&1
    srv=$BG_PID
    wait_file_match "$dir/server.$3" "^ready" 20 || fail "server $1 not ready"
    timeout 120 ip netns exec "$NS_B" env LD_PRELOAD="$LIB" "$BIN" client "$1" "$3" "$2" 300 \
        >"$dir/client.$3" 2>&1 || fail "client to $1 failed"
    wait_until 20 sh -c "! kill -0 $srv 2>/dev/null" || fail "server $1 did not finish"
    wait "$srv" || fail "server $1 failed"
    grep -q "^PASS: 300 round trips" "$dir/client.$3" || fail "client verdict ($1)"
    grep -q "^echoed 300 datagrams" "$dir/server.$3" || fail "server verdict ($1)"
done
# A malicious UD peer (plain verbs): malformed UD headers never reach the
# application, the valid datagrams do, in order.
ROGUE="$NSTACK_BUILD/test/rsocket/rs_dgram_rogue"
bg_a env LD_PRELOAD="$LIB" "$BIN" sink "$IP_A" 7102 >"$dir/sink" 2>&1
srv=$BG_PID
wait_file_match "$dir/sink" "^ready" 20 || fail "sink not ready"
timeout 60 ip netns exec "$NS_B" "$ROGUE" "$IP_A" 7102 "$IP_B" >"$dir/rogue" 2>&1 || fail "rogue peer"
wait_until 20 sh -c "! kill -0 $srv 2>/dev/null" || fail "sink did not see END"
wait "$srv" || fail "sink failed"
got=$(sed -n 's/^got [0-9]*: //p' "$dir/sink" | tr '\n' ' ')
[ "$got" = "GOOD0 GOOD END " ] || fail "the sink delivered '$got', expected 'GOOD0 GOOD END '"
echo "PASS: datagram rsocket API, IPv4 and IPv6; malformed UD messages dropped"
