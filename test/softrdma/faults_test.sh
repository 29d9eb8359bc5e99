#!/bin/bash
# softrdma fault behaviour with unmodified rping between the namespace hosts:
#   peer_death  the server process dies: the client gets DISCONNECTED, exits
#   delay       SOFTRDMA_DELAY_MS: slow completions, data still verified
#   force_rnr   SOFTRDMA_FORCE_RNR on the client: rnr_retry 7 rides it out
#   drop        SOFTRDMA_DROP_AFTER: the link breaks, both sides fail cleanly
set -u
. "$NSTACK_SRC/test/lib/netns.sh"
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
# hardware-exact work queue accounting (see doc/softrdma.md)
export SOFTRDMA_STRICT_SQ=${SOFTRDMA_STRICT_SQ:-1}
LOG=$(mktemp -d /tmp/softrdma-faults.XXXXXX)
netns_remove_on_exit "$LOG"
fail() { echo "FAIL: $*"; for f in "$LOG"/*.log; do echo "--- $f"; tail -n 20 "$f"; done; exit 1; }
netns_setup || fail "netns setup"
wait_listener() { wait_until 60 test -e "$SOFTRDMA_FABRIC/cm/$1_$2"; }
exited() { ! kill -0 "$1" 2>/dev/null; }

start_server() {   # ENV... : rping server on host A, port 7180
    bg_a env "$@" rping -s -a "$IP_A" -p 7180 -C "$N" > "$LOG/server.log" 2>&1; SPID=$BG_PID
    wait_listener "$IP_A" 7180 || fail "server did not listen"
}

case "${1:-}" in
peer_death)
    N=1000000
    start_server
    ip netns exec "$NS_B" rping -c -a "$IP_A" -p 7180 -V -C "$N" > "$LOG/client.log" 2>&1 & CPID=$!
    bg_track "$CPID"
    # traffic is flowing once both QPs exist and the server keeps reading
    wait_until 60 sh -c "[ \$(ls '$SOFTRDMA_FABRIC/qp' | wc -l) -ge 2 ]" || fail "no connection"
    base=$(awk '/^rchar/ {print $2}' "/proc/$SPID/io")
    # (the data moves through shared memory: the server's reads are its
    # completion channel's 8-byte wake-ups, fewer on a loaded machine)
    wait_until 60 sh -c "[ \$(awk '/^rchar/ {print \$2}' /proc/$SPID/io) -gt $((base + 8000)) ]" \
        || fail "no traffic"
    kill -9 "$SPID"
    wait_until 60 exited "$CPID" || fail "client did not notice the dead peer"
    # rping exits 0 on DISCONNECTED; either the CM event or an error
    # completion of its outstanding work must have ended it
    grep -qE "DISCONNECT EVENT|completion failed status (5|12)" "$LOG/client.log" \
        || fail "client saw neither DISCONNECTED nor an error completion"
    ;;
delay|force_rnr)
    N=50
    if [ "$1" = delay ]; then SENV=SOFTRDMA_DELAY_MS=5; CENV=SOFTRDMA_DELAY_MS=5
    else SENV=SOFTRDMA_X=0; CENV=SOFTRDMA_FORCE_RNR=5; fi
    start_server "$SENV"
    timeout 120 ip netns exec "$NS_B" env "$CENV" rping -c -a "$IP_A" -p 7180 -V -C "$N" \
        > "$LOG/client.log" 2>&1 || fail "client exit status"
    wait_until 60 exited "$SPID" || fail "server did not exit"
    wait "$SPID" || fail "server exit status"
    ;;
drop)
    N=100
    start_server
    timeout 60 ip netns exec "$NS_B" env SOFTRDMA_DROP_AFTER=5 rping -c -a "$IP_A" -p 7180 -V -C "$N" \
        > "$LOG/client.log" 2>&1
    rc=$?
    # 124: timeout (hang); 129..254: killed by a signal (rping's -1 is 255)
    if [ "$rc" -eq 124 ] || { [ "$rc" -gt 128 ] && [ "$rc" -lt 255 ]; }; then
        fail "client hung or crashed over a dropped link (exit $rc)"
    fi
    grep -q "SOFTRDMA_DROP_AFTER: dropping" "$LOG/client.log" || fail "the link was not dropped"
    # Exit statuses are no signal: rping's client and server return 0 when
    # the DISCONNECTED event reaches the main thread before the CQ thread
    # reports the RETRY_EXC_ERR completion (a race between rping's own
    # threads, seen under load). The client's loop ending early is:
    grep -qE "wait for RDMA_WRITE_(ADV|COMPLETE) state|post send error" "$LOG/client.log" \
        || fail "client did not stop its loop over the dropped link"
    grep -qE "completion failed status 12|DISCONNECT EVENT" "$LOG/client.log" \
        || fail "client saw neither a transport error nor DISCONNECTED"
    wait_until 60 exited "$SPID" || fail "server did not notice the drop"
    ;;
*) echo "usage: $0 peer_death|delay|force_rnr|drop"; exit 2 ;;
esac
echo "PASS: $1"
