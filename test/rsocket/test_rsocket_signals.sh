#!/bin/bash
# The rsocket API without the dispatcher (LD_PRELOAD=libdmm_rsocket.so, as
# rstream runs) under signals: a blocked rrecv restarts or fails EINTR by
# the engine's scan of the handlers (rs_api_signals.c; under the
# dispatcher the decision is exact per signal: sem_signals).
set -u
BIN="$NSTACK_BUILD/test/rsocket/rs_api_signals"
LIB="$NSTACK_RELEASE/lib64/libdmm_rsocket.so"
[ -x "$BIN" ] || { echo "FAIL: $BIN not built"; exit 1; }
. "$NSTACK_SRC/test/rsocket/rs_test_env.sh"
timeout 120 ip netns exec "$NS_A" env LD_PRELOAD="$LIB" "$BIN" "$IP_A" 7590 >"$dir/signals.out" 2>&1 ||
    fail "rs_api_signals exited $?"
grep -q "SIGNALS OK" "$dir/signals.out" || fail "no verdict line"
echo PASS
