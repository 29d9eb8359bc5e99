#!/usr/bin/env bash
# bench.sh - side-by-side benchmarks (not tests): the same programs plainly
# and under libnStackAPI.so on the kernel stack, runs interleaved A B A B ...
# and medians compared. Prints one table with ratios against the goals.
#
#   tools/bench.sh [-r ROUNDS] [-s SECONDS]     defaults: 5 rounds, 3 s per run
#
# When the rsocket stack and the software RDMA device are built, a second
# table compares rsocket with the kernel between the two test hosts.
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$NSTACK_SRC/test/lib/netns.sh"
. "$NSTACK_SRC/test/lib/nginx.sh"
. "$NSTACK_SRC/test/lib/nstack_env.sh"
. "$NSTACK_SRC/tools/lib/bench_measure.sh"

ROUNDS=${BENCH_ROUNDS:-5}

usage() { echo "usage: tools/bench.sh [-r ROUNDS] [-s SECONDS]" >&2; exit 2; }
while getopts "r:s:h" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    s) BENCH_SECS=$OPTARG ;;
    *) usage ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || die "-r: \"$ROUNDS\": rounds must be 1..99"
[[ "$BENCH_SECS" =~ ^[1-9][0-9]?$ ]] || die "-s: \"$BENCH_SECS\": seconds must be 1..99"

median() {
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
                                  else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# compare METRIC UNIT GOAL ENV_A ENV_B: ROUNDS x (A then B) of measure_METRIC,
# one table row. GOAL is "<=X", ">=X" or "=X" (within 1%) on the ratio B/A,
# or "-" (information only).
# ENV_A/ENV_B name functions that set BENCH_ENV (and hosts) for each side.
compare() {
    local metric=$1 unit=$2 goal=$3 side_a=$4 side_b=$5 r a=() b=() v
    for ((r = 1; r <= ROUNDS; r++)); do
        "$side_a"; v=$("measure_$metric") || v=""; a+=("$v")
        "$side_b"; v=$("measure_$metric") || v=""; b+=("$v")
    done
    local ma mb; ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
    awk -v m="$metric" -v u="$unit" -v g="$goal" -v a="$ma" -v b="$mb" 'BEGIN {
        if (a == "" || b == "" || a + 0 == 0) { printf "%-26s %-8s %12s %12s %8s  %-7s %s\n", m, u, a, b, "n/a", g, "NO DATA"; exit }
        r = b / a; op = substr(g, 1, 2); lim = substr(g, 3) + 0
        if (g == "-") { printf "%-26s %-8s %12.3f %12.3f %8.3f  %-7s %s\n", m, u, a, b, r, g, "info"; exit }
        if (op == "<=") ok = r <= lim; else if (op == ">=") ok = r >= lim; else { lim = substr(g, 2) + 0; ok = (r > lim - 0.01 && r < lim + 0.01) }
        printf "%-26s %-8s %12.3f %12.3f %8.3f  %-7s %s\n", m, u, a, b, r, g, ok ? "ok" : "MISSED" }'
    BENCH_RAW+=("$BENCH_TABLE $metric A: ${a[*]}" "$BENCH_TABLE $metric B: ${b[*]}")
}

header() {
    echo
    echo "$1"
    printf '%-26s %-8s %12s %12s %8s  %-7s %s\n' metric unit "$2" "$3" ratio goal verdict
}

side_plain()   { BENCH_ENV=(); }
side_preload() { BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}"); }

# Plain vs preloaded on loopback: the cost of the dispatcher on kernel sockets.
bench_kernel_overhead() {
    nstack_write_config "$BENCH_TMP" kernel
    nstack_preload_env "$NSTACK_RELEASE" "$BENCH_TMP"
    BENCH_ADDR=127.0.0.1; BENCH_NS_SRV=""; BENCH_NS_CLI=""; BENCH_TABLE=preload
    header "plain vs LD_PRELOAD=libnStackAPI.so (kernel stack, loopback), median of $ROUNDS" plain preload
    compare sockperf_latency   usec    "<=1.03" side_plain side_preload
    compare iperf3_throughput  Gbit/s  ">=0.97" side_plain side_preload
    compare redis_rps          req/s   ">=0.97" side_plain side_preload
    compare nginx_rps          req/s   ">=0.97" side_plain side_preload
    compare nginx_syscalls     sys/req "=1.00"  side_plain side_preload
}

# Hook: rsocket (192.168.21.0/24) vs kernel (192.168.22.0/24) between the two
# test hosts, both under libnStackAPI.so. Runs when the stack is built.
side_kernel_subnet()  { BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}"); BENCH_ADDR=$IP2_A; }
side_rsocket_subnet() { BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}"); BENCH_ADDR=$IP_A; }
bench_rsocket_vs_kernel() {
    if ! rsocket_usable; then
        echo; echo "rsocket vs kernel: skipped (libdmm_rsocket.so or release/lib64/softrdma not built)"
        return 0
    fi
    need_root "the rsocket comparison (test hosts)"
    netns_setup || die "could not create the test hosts"
    trap bench_cleanup EXIT          # netns_setup replaced it; this one calls it
    nstack_write_config "$BENCH_TMP" rsocket "$NSTACK_RELEASE/lib64/libdmm_rsocket.so"
    nstack_preload_env "$NSTACK_RELEASE" "$BENCH_TMP"
    BENCH_NS_SRV=$NS_A; BENCH_NS_CLI=$NS_B; BENCH_TABLE=rsocket
    header "kernel vs rsocket (softrdma) between the test hosts, median of $ROUNDS" kernel rsocket
    compare sockperf_latency   usec    "-" side_kernel_subnet side_rsocket_subnet
    compare iperf3_throughput  Gbit/s  "-" side_kernel_subnet side_rsocket_subnet
}

bench_cleanup() {
    bench_stop_all
    netns_cleanup
    rm -rf "$BENCH_TMP"
}

main() {
    "$NSTACK_SRC/tools/deps.sh" >/dev/null || die "installing dependencies failed"
    say "building $NSTACK_BUILD -> $NSTACK_RELEASE"
    build_tree "$NSTACK_BUILD" >/dev/null
    has_lib libnStackAPI.so || die "release/lib64/libnStackAPI.so is not built: nothing to compare"
    BENCH_TMP=$(mktemp -d /tmp/nstack-bench.XXXXXX)
    trap bench_cleanup EXIT
    BENCH_RAW=()
    echo "bench: $(date -u '+%F %T UTC'), nproc $(nproc), $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
    echo "bench: $ROUNDS rounds x ${BENCH_SECS}s, runs interleaved A B A B ..."
    bench_kernel_overhead
    bench_rsocket_vs_kernel
    echo; echo "raw values:"; printf '  %s\n' "${BENCH_RAW[@]}"
}

main "$@"
