#!/bin/bash
# Link state as the rdma_cm side of softrdma sees it, between the two
# namespace test hosts: with host A's veth end down, host B's interface
# has no carrier; B's port reports DOWN, and a new connection from B fails
# at address resolution (ADDR_ERROR, one line naming the interface)
# instead of resolving over a dead link. With the link back, the same
# connection works. (Established connections: doc/softrdma.md.)
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
LOG=$(mktemp -d /tmp/softrdma-link.XXXXXX)
netns_remove_on_exit "$LOG"
fail() { echo "FAIL: $*"; for f in "$LOG"/*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }
netns_setup || fail "netns setup"
PORT=$((21000 + RANDOM % 1000))
b_carrier() { ip -n "$NS_B" -br link show eth0 | grep -q LOWER_UP; }
b_no_carrier() { ! b_carrier; }

client() {  # LOG-NAME: one verified rping exchange from B
    timeout 60 ip netns exec "$NS_B" rping -c -a "$IP_A" -p "$PORT" -V -C 20 > "$LOG/$1.log" 2>&1
}

bg_a rping -s -P -a "$IP_A" -p "$PORT" > "$LOG/server.log" 2>&1
wait_until 30 test -e "$SOFTRDMA_FABRIC/cm/${IP_A}_$PORT" || fail "server did not listen"
client before || fail "rping before the link went down"

ip -n "$NS_A" link set eth0 down
wait_until 10 b_no_carrier || fail "host B's eth0 kept its carrier"
in_b ibv_devinfo > "$LOG/devinfo-down.log" 2>&1
grep -q "PORT_DOWN" "$LOG/devinfo-down.log" || fail "no port reported DOWN"
start=$SECONDS
client down && fail "rping connected over a link that is down"
[ $((SECONDS - start)) -lt 20 ] || fail "the failure took $((SECONDS - start)) s"
grep -q "ADDR_ERROR\|RDMA_CM_EVENT_ADDR_ERROR" "$LOG/down.log" || fail "no ADDR_ERROR"
grep -q "interface eth0 of the source address is down" "$LOG/down.log" || fail "no line naming eth0"

ip -n "$NS_A" link set eth0 up
wait_until 10 b_carrier || fail "host B's eth0 did not get its carrier back"
client after || fail "rping after the link came back"
grep -qi "error\|mismatch" "$LOG/before.log" "$LOG/after.log" && fail "rping reported errors"
echo "PASS: ${1:-resolve}"
