#!/bin/bash
# Engine robustness over the software RDMA device between two namespace
# hosts: many concurrent connections with data intact, 1000 sequential
# open/close with fds (both processes) and RSS back to baseline, the peer
# killed with -9 (the survivor's blocked recv ends, close is bounded), and
# SO_KEEPALIVE with TCP_KEEPIDLE=1 detecting a stopped (silent) peer.
set -u
BIN="$NSTACK_BUILD/test/rsocket/rs_engine_test"
MANY=${RS_TEST_MANY:-200}
LOOPS=${RS_TEST_LOOPS:-1000}
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
RS_LIBPATH_EXTRA="$NSTACK_RELEASE/lib64" . "$NSTACK_SRC/test/rsocket/rs_test_env.sh"

# 1. many concurrent connections, then sequential open/close hygiene
bg_a "$BIN" server 7471 "$IP_A" >"$dir/server" 2>&1
srv=$BG_PID
wait_file_match "$dir/server" LISTENING 30 || fail "server did not listen"
timeout 600 ip netns exec "$NS_B" "$BIN" client "$IP_A" 7471 "M:$MANY" "H:$LOOPS" X \
    >"$dir/client" 2>&1 || fail "many/hygiene scenarios"
cat "$dir/client"
timeout 60 tail --pid="$srv" -f /dev/null
wait "$srv" || fail "server exit status"
grep -q "SERVER OK" "$dir/server" || fail "server verdict"

# 2. peer death: kill -9 the peer while the survivor is blocked in recv
survive() {   # survive PORT [keepalive] SIGNAL
    local port=$1 ka=$2 sig=$3
    : >"$dir/idle"; : >"$dir/surv"
    bg_a "$BIN" idle "$IP_A" "$port" >"$dir/idle" 2>&1
    local idle=$BG_PID
    wait_file_match "$dir/idle" LISTENING 30 || fail "idle peer did not listen"
    bg_b timeout 120 "$BIN" survive "$IP_A" "$port" $ka >"$dir/surv" 2>&1
    local surv=$BG_PID
    wait_file_match "$dir/surv" READY 60 || fail "survivor not connected"
    wait_file_match "$dir/idle" "IDLE [0-9]+" 30 || fail "idle peer not idle"
    local pid; pid=$(sed -n 's/^IDLE \([0-9]*\)$/\1/p' "$dir/idle")
    kill -"$sig" "$pid"      # the program itself, not the bg_a shell
    wait "$surv" || fail "survivor ($sig, $ka): exit status $?"
    cat "$dir/surv"
    grep -q "SURVIVOR OK" "$dir/surv" || fail "survivor verdict ($sig, $ka)"
    kill -9 "$pid" "$idle" 2>/dev/null
}
survive 7472 "" KILL
# 3. keepalive: the peer stops answering (SIGSTOP); only keepalive can tell
survive 7473 keepalive STOP
echo PASS
