#!/bin/bash
# Unmodified Debian rdmacm-utils / ibverbs-utils programs on the softrdma
# device, between the two namespace test hosts.
# Usage: debian_tools_test.sh devices|rping|ucmatose|ucmatose6|rdma_server|ud_pingpong|ud_pingpong_gid|udaddy|udaddy6
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
# hardware-exact work queue accounting (see doc/softrdma.md)
export SOFTRDMA_STRICT_SQ=${SOFTRDMA_STRICT_SQ:-1}
LOG=$(mktemp -d /tmp/softrdma-tools.XXXXXX)
netns_remove_on_exit "$LOG"
fail() { echo "FAIL: $*"; for f in "$LOG"/*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }
netns_setup || fail "netns setup"

# a server's CM listener shows up as a name in the fabric directory
wait_listener() { wait_until 60 test -e "$SOFTRDMA_FABRIC/cm/$1_$2"; }

run_devices() {
    in_a ibv_devices > "$LOG/devices.log" 2>&1 || fail "ibv_devices exit status"
    grep -q softrdma0 "$LOG/devices.log" || fail "ibv_devices does not list softrdma0"
    in_a ibv_devinfo -v > "$LOG/devinfo.log" 2>&1 || fail "ibv_devinfo exit status"
    grep -q "hca_id:.*softrdma0" "$LOG/devinfo.log" || fail "no hca_id"
    grep -q "PORT_ACTIVE" "$LOG/devinfo.log" || fail "no active port"
    grep -q "::ffff:$IP_A, RoCE v2" "$LOG/devinfo.log" || fail "no RoCE v2 GID for $IP_A"
    grep -q "$IP6_A, RoCE v2" "$LOG/devinfo.log" || fail "no GID for $IP6_A"
    grep -q "max_qp_wr:" "$LOG/devinfo.log" || fail "no device limits"
}

run_rping() {
    local n=2000
    bg_a rping -s -a "$IP_A" -p 7174 -C "$n" > "$LOG/rping-server.log" 2>&1; local spid=$BG_PID
    wait_listener "$IP_A" 7174 || fail "rping server did not listen"
    timeout 120 ip netns exec "$NS_B" rping -c -a "$IP_A" -p 7174 -V -C "$n" > "$LOG/rping-client.log" 2>&1 \
        || fail "rping client exit status"
    timeout 60 tail --pid="$spid" -f /dev/null || fail "rping server did not exit"
    wait "$spid" || fail "rping server exit status"
    ! grep -qi "error\|mismatch" "$LOG/rping-client.log" "$LOG/rping-server.log" || fail "rping reported errors"
}

run_ucmatose() {
    local a=$1 port=7471
    bg_a ucmatose -b "$a" -c 4 -C 50 > "$LOG/ucmatose-server.log" 2>&1; local spid=$BG_PID
    wait_listener "$a" "$port" || fail "ucmatose server did not listen"
    timeout 120 ip netns exec "$NS_B" ucmatose -s "$a" -c 4 -C 50 > "$LOG/ucmatose-client.log" 2>&1 \
        || fail "ucmatose client exit status"
    timeout 60 tail --pid="$spid" -f /dev/null || fail "ucmatose server did not exit"
    wait "$spid" || fail "ucmatose server exit status"
    grep -q "return status 0" "$LOG/ucmatose-client.log" || fail "ucmatose client status"
}

run_rdma_server() {
    bg_a rdma_server -s "$IP_A" -p 7472 > "$LOG/rdma_server.log" 2>&1; local spid=$BG_PID
    wait_listener "$IP_A" 7472 || fail "rdma_server did not listen"
    timeout 60 ip netns exec "$NS_B" rdma_client -s "$IP_A" -p 7472 > "$LOG/rdma_client.log" 2>&1 \
        || fail "rdma_client exit status"
    timeout 60 tail --pid="$spid" -f /dev/null || fail "rdma_server did not exit"
    wait "$spid" || fail "rdma_server exit status"
    grep -q "rdma_client: end 0" "$LOG/rdma_client.log" || fail "rdma_client result"
    grep -q "rdma_server: end 0" "$LOG/rdma_server.log" || fail "rdma_server result"
}

# ibv_ud_pingpong (UD QPs, AHs, the GRH space of every receive) with its
# default size (2048 B) and iteration count (1000); its parameters go over
# kernel TCP. With -g the AH carries the peer's GID (checked by the device).
run_ud_pingpong() {
    local port=$((18600 + RANDOM % 400)) n=1000
    bg_a timeout 120 ibv_ud_pingpong -p "$port" "$@" > "$LOG/ud-server.log" 2>&1; local spid=$BG_PID
    wait_tcp_listen "$NS_A" 0.0.0.0 "$port" 60 || fail "ibv_ud_pingpong server did not listen"
    timeout 120 ip netns exec "$NS_B" ibv_ud_pingpong -p "$port" "$@" "$IP_A" > "$LOG/ud-client.log" 2>&1 \
        || fail "ibv_ud_pingpong client exit status $?"
    wait "$spid" || fail "ibv_ud_pingpong server exit status"
    local f
    for f in "$LOG/ud-client.log" "$LOG/ud-server.log"; do
        grep -q "^$((n * 2048)) bytes in" "$f" || fail "no byte count in $f"
        grep -q "^$n iters in" "$f" || fail "no iteration count in $f"
        grep "iters in" "$f"
    done
    ! grep -q "softrdma\[" "$LOG"/ud-*.log || fail "the device complained"
}

# udaddy: RDMA_PS_UDP ids, SIDR (rdma_listen/connect/accept on UD ids, the
# AH from ESTABLISHED's param.ud), datagrams and replies built with
# ibv_create_ah_from_wc; 4 ids of 50 messages each.
run_udaddy() {
    local a=$1
    bg_a timeout 120 udaddy -b "$a" -c 4 -C 50 > "$LOG/udaddy-server.log" 2>&1; local spid=$BG_PID
    wait_until 60 test -e "$SOFTRDMA_FABRIC/cm/udp-${a}_7174" || fail "udaddy server did not listen"
    timeout 120 ip netns exec "$NS_B" udaddy -s "$a" -c 4 -C 50 > "$LOG/udaddy-client.log" 2>&1 \
        || fail "udaddy client exit status"
    wait "$spid" || fail "udaddy server exit status"
    grep -q "return status 0" "$LOG/udaddy-client.log" || fail "udaddy client status"
    grep -q "return status 0" "$LOG/udaddy-server.log" || fail "udaddy server status"
    ! grep -q "softrdma\[" "$LOG"/udaddy-*.log || fail "the device complained"
}

case "${1:-}" in
devices) run_devices ;;
rping) run_rping ;;
ucmatose) run_ucmatose "$IP_A" ;;
ucmatose6) run_ucmatose "$IP6_A" ;;
rdma_server) run_rdma_server ;;
ud_pingpong) run_ud_pingpong ;;
ud_pingpong_gid) run_ud_pingpong -g 0 ;;
udaddy) run_udaddy "$IP_A" ;;
udaddy6) run_udaddy "$IP6_A" ;;
*) echo "usage: $0 devices|rping|ucmatose|ucmatose6|rdma_server|ud_pingpong|ud_pingpong_gid|udaddy|udaddy6"; exit 2 ;;
esac
echo "PASS: $1"
