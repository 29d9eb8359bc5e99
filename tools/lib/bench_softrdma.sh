# shellcheck shell=bash
# The software RDMA device alone: release/bin/softrdma_bench (two processes
# on this host, busy-polling CQs), one-way SEND latency and RDMA_WRITE
# throughput; release/bin/softrdma_ud_bench, the same for UD (64 B SEND
# latency, stream rate and loss). Sourced by tools/bench.sh.

SOFTRDMA_BENCH_ITERS=${SOFTRDMA_BENCH_ITERS:-5000}
SOFTRDMA_BENCH_MIB=${SOFTRDMA_BENCH_MIB:-256}

# _softrdma_bench_field NAME: one run; the value of NAME from its output
# ("latency_us X" / "write_MBps Y" or NAME=VALUE).
_softrdma_bench_field() {
    local out=$BENCH_TMP/softrdma_bench.out
    env LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma" SOFTRDMA_FABRIC="$BENCH_TMP/fabric-sb" \
        timeout 120 "$NSTACK_RELEASE/bin/softrdma_bench" "$SOFTRDMA_BENCH_ITERS" "$SOFTRDMA_BENCH_MIB" \
        >"$out" 2>&1 || { echo "bench: softrdma_bench failed: $(tail -n 2 "$out")" >&2; return 1; }
    tr '=:' '  ' <"$out" | awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'
}

SOFTRDMA_UD_BENCH_MSGS=${SOFTRDMA_UD_BENCH_MSGS:-200000}

# _softrdma_ud_bench_run: one run of softrdma_ud_bench into
# $BENCH_TMP/softrdma_ud_bench.out; _softrdma_ud_field NAME reads it.
_softrdma_ud_bench_run() {
    local out=$BENCH_TMP/softrdma_ud_bench.out
    env LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma" SOFTRDMA_FABRIC="$BENCH_TMP/fabric-sb" \
        timeout 120 "$NSTACK_RELEASE/bin/softrdma_ud_bench" "$SOFTRDMA_BENCH_ITERS" "$SOFTRDMA_UD_BENCH_MSGS" \
        >"$out" 2>&1 || { echo "bench: softrdma_ud_bench failed: $(tail -n 2 "$out")" >&2; : >"$out"; }
}
_softrdma_ud_field() {
    tr '=' ' ' <"$BENCH_TMP/softrdma_ud_bench.out" |
        awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i + 1); exit } }'
}
