#!/bin/bash
# tsan_fw_shared.sh PROGRAM: tsan_fw_shared (one connection shared by five
# threads, plain libc calls) under the libnStackAPI.so preload on namespace
# host A, its address routed to the rsocket module; the dispatcher's exit
# counters must show that the rsocket stack carried the data.
set -u
prog=$1
# In the ThreadSanitizer tree: the device's emulated DMA is suppressed
# (tsan.supp says why); a caller's own TSAN_OPTIONS win. Ignored elsewhere.
export TSAN_OPTIONS=${TSAN_OPTIONS:-"suppressions=$(cd "$(dirname "$0")" && pwd)/tsan.supp"}
# shellcheck source=../rsocket-fw/rsfw_lib.sh
. "$NSTACK_SRC/test/rsocket-fw/rsfw_lib.sh"
[ -x "$prog" ] || fail "$prog is not built"
rsfw_setup
out=$WORK/out
timeout 280 ip netns exec "$NS_A" "${RS_ENV[@]}" "$prog" "$IP_A" >"$out" 2>&1
rc=$?
cat "$out"
[ $rc -eq 0 ] || fail "tsan_fw_shared exited with status $rc"
grep -q "PASS tsan_rs_shared" "$out" || fail "no PASS line"
expect_stack "$out" rsocket rx_bytes 8388608 "both directions over rsocket"
expect_stack_zero "$out" kernel tx_bytes "no data on the kernel stack"
echo "PASS tsan_fw_shared"
