# shellcheck shell=bash
# rstream (rdmacm-utils) between the test hosts, for "the framework vs the
# engine's own API": side A runs rstream on the rsocket API with
# LD_PRELOAD=libdmm_rsocket.so (the engine, nothing else in between), side
# B runs `rstream -T s` (plain socket calls) under libnStackAPI.so with
# 192.168.21.0/24 routed to the rsocket module (framework -> module ->
# engine). Both in blocking mode (-T b): the nonblocking modes spin and
# starve the software device's threads on 2 cores.
# Sourced by tools/bench.sh after bench_measure.sh; needs the test hosts.

RSTREAM_MODE=()
# Transfers per run, chosen so one run takes 1.5-3 s on the shared 2-core
# machine: with 0.5 s runs the spread between runs (+-15%) hid the
# difference being measured (overridable).
RSTREAM_LAT_ITERS=${RSTREAM_LAT_ITERS:-40000}
RSTREAM_BW64K_COUNT=${RSTREAM_BW64K_COUNT:-120000}
RSTREAM_BW1M_COUNT=${RSTREAM_BW1M_COUNT:-6000}

side_engine_api() {
    BENCH_ENV=("LD_LIBRARY_PATH=$NSTACK_RELEASE/lib64/softrdma"
               "LD_PRELOAD=$NSTACK_RELEASE/lib64/libdmm_rsocket.so")
    RSTREAM_MODE=(-T b); BENCH_ADDR=$IP_A
}
side_framework_rsocket() {
    BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}")
    RSTREAM_MODE=(-T s -T b); BENCH_ADDR=$IP_A
}

# bench_next_port BASE: a port not used before in this run (a counter file,
# since every measurement runs in its own subshell). rsocket listeners are
# invisible to ss, so "free" cannot be asked of the kernel.
bench_next_port() {
    local f=$BENCH_TMP/port.$1 n=0
    [ -s "$f" ] && n=$(cat "$f")
    echo $((n + 1)) >"$f"
    echo $(($1 + n % 2000))
}

# The software device names a listener $SOFTRDMA_FABRIC/cm/<ip>_<port>,
# whichever library asked for it: the readiness signal for both sides.
_fabric_listening() { test -L "$SOFTRDMA_FABRIC/cm/${1}_$2"; }

# _rstream_run COLUMN ARGS...: one server/client pair; prints rstream's
# column 7 (Gb/sec) or 8 (usec/xfer) of the client's result line.
_rstream_run() {
    local col=$1 port out=$BENCH_TMP/rstream.cli; shift
    port=$(bench_next_port 17000)
    bench_server "$BENCH_TMP/rstream.srv" timeout 120 rstream "${RSTREAM_MODE[@]}" \
        -b "$BENCH_ADDR" -p "$port" "$@"
    wait_until 30 _fabric_listening "$BENCH_ADDR" "$port" ||
        { echo "bench: rstream server not listening: $(tail -n 2 "$BENCH_TMP/rstream.srv")" >&2; bench_stop_server; return 1; }
    bench_client timeout 120 rstream "${RSTREAM_MODE[@]}" -s "$BENCH_ADDR" -b "$IP_B" \
        -p "$port" "$@" >"$out" 2>&1
    bench_stop_server
    awk -v c="$col" '$1 == "custom" { print $c }' "$out" | grep -E '^[0-9.]+$' ||
        { echo "bench: rstream $*: no result: $(tail -n 2 "$out")" >&2; return 1; }
}

# usec per transfer (rstream's one-way figure: half a round trip), 64 B ping-pong.
measure_rstream_lat_64B()  { _rstream_run 8 -S 64 -C 1 -I "$RSTREAM_LAT_ITERS"; }
# Gbit/s, 64 KiB and 1 MiB transfers (rstream sends the count each way).
measure_rstream_bw_64KiB() { _rstream_run 7 -S 65536 -C "$RSTREAM_BW64K_COUNT" -I 1; }
measure_rstream_bw_1MiB()  { _rstream_run 7 -S 1048576 -C "$RSTREAM_BW1M_COUNT" -I 1; }
