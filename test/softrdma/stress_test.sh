#!/bin/bash
# softrdma under load: hunts hangs and races with unmodified Debian tools.
#   rping     several rping pairs at once: between the namespace hosts (both
#             directions) and on each host's loopback, every one -V verified
#   ucmatose  one ucmatose client with many connections (-c 50) at once
#   imm       sr_imm_stress: bursts of small inline WRITEs, WRITE_WITH_IMMs
#             and SEND_WITH_IMMs from host B to host A, both directions at
#             once, every byte and immediate checked (a lost wake-up fails
#             it: no completion for 30 s); SOFTRDMA_STRESS_ROUNDS rounds
# Every client runs under timeout: a hang fails the test instead of
# stalling it. SOFTRDMA_STRESS_COUNT sets rping's iterations (default 5000;
# the manual hunt used 20000).
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
# hardware-exact work queue accounting (see doc/softrdma.md)
export SOFTRDMA_STRICT_SQ=${SOFTRDMA_STRICT_SQ:-1}
LOG=$(mktemp -d /tmp/softrdma-stress.XXXXXX)
netns_remove_on_exit "$LOG"
fail() { echo "FAIL: $*"; for f in "$LOG"/*.log; do echo "--- $f"; tail -n 8 "$f"; done; exit 1; }
netns_setup || fail "netns setup"
N=${SOFTRDMA_STRESS_COUNT:-5000}
NSINO_A=$(ip netns exec "$NS_A" stat -Lc %i /proc/self/ns/net)
NSINO_B=$(ip netns exec "$NS_B" stat -Lc %i /proc/self/ns/net)
SPIDS=()
CPIDS=()

# start_pair NAME SERVER_NS CLIENT_NS ADDR LISTENER_NAME PORT
start_pair() {
    local name=$1 sns=$2 cns=$3 addr=$4 lname=$5 port=$6
    ip netns exec "$sns" rping -s -a "$addr" -p "$port" -C "$N" > "$LOG/$name-server.log" 2>&1 &
    SPIDS+=($!); bg_track $!
    wait_until 60 test -e "$SOFTRDMA_FABRIC/cm/${lname}_$port" || fail "$name: server did not listen"
    timeout 600 ip netns exec "$cns" rping -c -a "$addr" -p "$port" -V -C "$N" \
        > "$LOG/$name-client.log" 2>&1 &
    CPIDS+=($!); bg_track $!
}

run_rping() {
    start_pair ab "$NS_A" "$NS_B" "$IP_A" "$IP_A" 7601
    start_pair ba "$NS_B" "$NS_A" "$IP_B" "$IP_B" 7602
    start_pair loa "$NS_A" "$NS_A" 127.0.0.1 "h$NSINO_A-127.0.0.1" 7603
    start_pair lob "$NS_B" "$NS_B" 127.0.0.1 "h$NSINO_B-127.0.0.1" 7604
    for p in "${CPIDS[@]}"; do
        wait "$p" || fail "an rping client failed or hung (status $?)"
    done
    for p in "${SPIDS[@]}"; do
        timeout 60 tail --pid="$p" -f /dev/null || fail "an rping server did not exit"
        wait "$p" || fail "an rping server failed"
    done
    ! grep -qi "error\|mismatch" "$LOG"/*.log || fail "rping reported errors"
}

run_ucmatose() {
    bg_a ucmatose -b "$IP_A" -c 50 -C 100 > "$LOG/ucmatose-server.log" 2>&1; local spid=$BG_PID
    wait_until 60 test -e "$SOFTRDMA_FABRIC/cm/${IP_A}_7471" || fail "ucmatose server did not listen"
    timeout 300 ip netns exec "$NS_B" ucmatose -s "$IP_A" -c 50 -C 100 > "$LOG/ucmatose-client.log" 2>&1 \
        || fail "ucmatose client exit status"
    timeout 60 tail --pid="$spid" -f /dev/null || fail "ucmatose server did not exit"
    wait "$spid" || fail "ucmatose server exit status"
    grep -q "return status 0" "$LOG/ucmatose-client.log" || fail "ucmatose client status"
}

# imm_pair NAME SERVER_NS CLIENT_NS ADDR PORT
imm_pair() {
    local name=$1 sns=$2 cns=$3 addr=$4 port=$5
    local bin="$NSTACK_BUILD/test/softrdma/sr_imm_stress" rounds=${SOFTRDMA_STRESS_ROUNDS:-300}
    ip netns exec "$sns" "$bin" server "$addr" "$port" "$rounds" > "$LOG/$name-server.log" 2>&1 &
    SPIDS+=($!); bg_track $!
    wait_until 60 test -e "$SOFTRDMA_FABRIC/cm/${addr}_$port" || fail "$name: server did not listen"
    timeout 600 ip netns exec "$cns" "$bin" client "$addr" "$port" "$rounds" > "$LOG/$name-client.log" 2>&1 &
    CPIDS+=($!); bg_track $!
}

run_imm() {
    imm_pair ab "$NS_A" "$NS_B" "$IP_A" 7611
    imm_pair ba "$NS_B" "$NS_A" "$IP_B" 7612
    for p in "${CPIDS[@]}"; do
        wait "$p" || fail "an sr_imm_stress client failed or hung (status $?)"
    done
    for p in "${SPIDS[@]}"; do
        timeout 60 tail --pid="$p" -f /dev/null || fail "an sr_imm_stress server did not exit"
        wait "$p" || fail "an sr_imm_stress server failed"
    done
    [ "$(grep -l "messages verified" "$LOG"/*-server.log | wc -l)" = 2 ] || fail "a server did not verify its rounds"
}

case "${1:-}" in
rping) run_rping ;;
ucmatose) run_ucmatose ;;
imm) run_imm ;;
*) echo "usage: $0 rping|ucmatose|imm"; exit 2 ;;
esac
echo "PASS: stress $1"
