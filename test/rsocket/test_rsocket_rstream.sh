#!/bin/bash
# Unmodified rstream and riostream (rdmacm-utils) on this engine:
# LD_PRELOAD=libdmm_rsocket.so in front of the software RDMA device,
# server on host A, client on host B, data verified (-T v) in latency
# (64 B, count 1) and bandwidth (1 MiB, inline 0) shapes, and rstream's
# blocking (-T b), poll-driven (-T a) and nonblocking (-T n) I/O modes.
# (rstream's default run does 100000 latency iterations: too slow for a
# shared 2-core machine, so each shape is run as a custom test.)
set -u
LIB="$NSTACK_RELEASE/lib64/libdmm_rsocket.so"
command -v rstream >/dev/null || { echo "rstream missing (rdmacm-utils)"; exit 1; }
. "$NSTACK_SRC/test/rsocket/rs_test_env.sh"
port=7471

# run PROG ARGS...: one server/client pair on a fresh port; both must exit
# 0 and print a result line.
run() {
    local prog=$1; shift
    port=$((port + 1))
    bg_a env LD_PRELOAD="$LIB" "$prog" -b "$IP_A" -p "$port" "$@" >"$dir/srv" 2>&1
    local srv=$BG_PID
    # the device names a listener $SOFTRDMA_FABRIC/cm/<ip>_<port>
    wait_until 30 test -L "$SOFTRDMA_FABRIC/cm/${IP_A}_$port" ||
        { cat "$dir/srv"; echo "FAIL: $prog server did not listen"; exit 1; }
    if ! timeout 120 ip netns exec "$NS_B" env LD_PRELOAD="$LIB" "$prog" \
            -s "$IP_A" -b "$IP_B" -p "$port" "$@" >"$dir/cli" 2>&1; then
        cat "$dir/cli" "$dir/srv"; echo "FAIL: $prog $* (client)"; exit 1
    fi
    timeout 60 tail --pid="$srv" -f /dev/null
    wait "$srv" || { cat "$dir/srv"; echo "FAIL: $prog $* (server)"; exit 1; }
    grep -q "^custom" "$dir/cli" && grep -q "^custom" "$dir/srv" ||
        { cat "$dir/cli" "$dir/srv"; echo "FAIL: $prog $*: no result line"; exit 1; }
    echo "$prog $*: $(grep '^custom' "$dir/cli")"
}

run rstream -T v -S 64 -C 1 -I 500
run rstream -T v -S 1048576 -C 20 -I 1 -i 0
run rstream -T b -T v -S 65536 -C 100 -I 2
run rstream -T a -T v -S 4096 -C 100 -I 5
run rstream -T n -T v -S 100000 -C 10 -I 3
run riostream -T v -S 64 -C 1 -I 500
run riostream -T v -S 1048576 -C 20 -I 1 -i 0
run riostream -T b -T v -S 65536 -C 50 -I 2
echo PASS
