#!/usr/bin/env bash
# bench.sh - side-by-side benchmarks (not tests): each comparison runs its
# two sides interleaved A B A B ... in one invocation, compares medians and
# prints a table with ratios against the goals. doc/performance.md has the
# method and the recorded results.
#
#   tools/bench.sh [-r ROUNDS] [-s SECONDS] [--plot] [COMPARISON...]
#       defaults: 5 rounds, 3 s per timed run, all comparisons
#       --plot: each side-by-side table also as an SVG bar chart (gnuplot),
#       doc/perf/TABLE.svg (BENCH_PLOT_DIR=DIR elsewhere)
#       BENCH_NO_BUILD=1: the tree is built already (no deps.sh, no build)
#       BENCH_METRICS=REGEX: only the metrics whose name matches (e.g.
#       'iperf3|redis'), for a quick look at one figure
#
# Comparisons (the rsocket ones need libdmm_rsocket.so and the software
# RDMA device built, and root for the two test hosts):
#   preload       plain vs LD_PRELOAD=libnStackAPI.so, kernel stack, loopback
#   kernel-rs     kernel TCP vs rsocket between the test hosts (framework):
#                 sockperf, iperf3, redis, nginx, nginx as a reverse proxy
#   users         the same between users: iperf3 with the server, then the
#                 client, as www-data (ulimit -l 8 MiB, no capabilities);
#                 nginx + wrk with its worker as www-data
#   engine        rstream: engine API vs the framework on the rsocket route
#   instructions  callgrind: instructions per 64 B round trip, by object
#   copies        payload bytes copied per byte sent, per side and object
#   rspreload     librspreload on the engine vs the framework (apps)
#   softrdma      the software RDMA device alone (softrdma_bench)
#   connrate      kernel vs rsocket route: new connections/s (ab without
#                 keep-alive against nginx), descriptors per connection
#   rsocket       every comparison but preload;  all: every comparison
set -uo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
. "$NSTACK_SRC/test/lib/netns.sh"
. "$NSTACK_SRC/test/lib/nginx.sh"
. "$NSTACK_SRC/test/lib/nstack_env.sh"
. "$NSTACK_SRC/tools/lib/bench_measure.sh"
. "$NSTACK_SRC/tools/lib/bench_rstream.sh"
. "$NSTACK_SRC/tools/lib/bench_callgrind.sh"
. "$NSTACK_SRC/tools/lib/bench_copies.sh"
. "$NSTACK_SRC/tools/lib/bench_rspreload.sh"
. "$NSTACK_SRC/tools/lib/bench_softrdma.sh"
. "$NSTACK_SRC/tools/lib/bench_connrate.sh"
. "$NSTACK_SRC/tools/lib/bench_plot.sh"

ROUNDS=${BENCH_ROUNDS:-5}

ALL_COMPARISONS=(preload kernel-rs users engine instructions copies rspreload softrdma connrate)
usage() {
    echo "usage: tools/bench.sh [-r ROUNDS] [-s SECONDS] [--plot] [COMPARISON...]" >&2
    echo "       COMPARISON: ${ALL_COMPARISONS[*]} rsocket all (default: all)" >&2
    exit 2
}
# --plot (a long option getopts cannot parse) is taken out first.
BENCH_PLOT=0; _args=()
for _a in "$@"; do
    if [ "$_a" = --plot ]; then BENCH_PLOT=1; else _args+=("$_a"); fi
done
set -- "${_args[@]+"${_args[@]}"}"
while getopts "r:s:h" opt; do
    case $opt in
    r) ROUNDS=$OPTARG ;;
    s) BENCH_SECS=$OPTARG ;;
    *) usage ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]?$ ]] || die "-r: \"$ROUNDS\": rounds must be 1..99"
[[ "$BENCH_SECS" =~ ^[1-9][0-9]?$ ]] || die "-s: \"$BENCH_SECS\": seconds must be 1..99"
shift $((OPTIND - 1))

# select_comparisons NAME...: SELECTED gets the comparisons to run, in the
# order of ALL_COMPARISONS.
select_comparisons() {
    local want=" " n c
    [ $# -eq 0 ] && set -- all
    for n in "$@"; do
        case $n in
        all) want+="${ALL_COMPARISONS[*]} " ;;
        rsocket) want+="${ALL_COMPARISONS[*]:1} " ;;
        *) [[ " ${ALL_COMPARISONS[*]} " == *" $n "* ]] ||
               die "unknown comparison \"$n\" (one of: ${ALL_COMPARISONS[*]} rsocket all)"
           want+="$n " ;;
        esac
    done
    SELECTED=()
    for c in "${ALL_COMPARISONS[@]}"; do [[ "$want" == *" $c "* ]] && SELECTED+=("$c"); done
}
select_comparisons "$@"

median() {
    printf '%s\n' "$@" | grep -E '^[0-9.]+$' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2];
                                  else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# compare METRIC UNIT GOAL ENV_A ENV_B: ROUNDS x (A then B) of measure_METRIC,
# one table row. GOAL is "<=X", ">=X" or "=X" (within 1%) on the ratio B/A,
# or "-" (information only).
# ENV_A/ENV_B name functions that set BENCH_ENV (and hosts) for each side.
# A side whose first run gives no result (or 0) is not run again: a
# program that cannot work in that set-up (librspreload without epoll)
# would only burn its timeouts ROUNDS times.
compare() {
    local metric=$1 unit=$2 goal=$3 side_a=$4 side_b=$5 r a=() b=() v
    [[ "$metric" =~ ${BENCH_METRICS:-.} ]] || return 0
    for ((r = 1; r <= ROUNDS; r++)); do
        if [ "$r" -eq 1 ] || _has_result "${a[0]}"; then
            "$side_a"; v=$("measure_$metric") || v=""; a+=("$v")
        fi
        if [ "$r" -eq 1 ] || _has_result "${b[0]}"; then
            "$side_b"; v=$("measure_$metric") || v=""; b+=("$v")
        fi
    done
    local ma mb; ma=$(median "${a[@]}"); mb=$(median "${b[@]}")
    awk -v m="$metric" -v u="$unit" -v g="$goal" -v a="$ma" -v b="$mb" 'BEGIN {
        if (a == "" || b == "" || a + 0 == 0) { printf "%-26s %-8s %12s %12s %8s  %-7s %s\n", m, u, a, b, "n/a", g, "NO DATA"; exit }
        r = b / a; op = substr(g, 1, 2); lim = substr(g, 3) + 0
        if (g == "-") { printf "%-26s %-8s %12.3f %12.3f %8.3f  %-7s %s\n", m, u, a, b, r, g, "info"; exit }
        if (op == "<=") ok = r <= lim; else if (op == ">=") ok = r >= lim; else { lim = substr(g, 2) + 0; ok = (r > lim - 0.01 && r < lim + 0.01) }
        printf "%-26s %-8s %12.3f %12.3f %8.3f  %-7s %s\n", m, u, a, b, r, g, ok ? "ok" : "MISSED" }'
    BENCH_RAW+=("$BENCH_TABLE $metric A: ${a[*]}" "$BENCH_TABLE $metric B: ${b[*]}")
    bench_plot_row "$BENCH_TABLE" "$metric" "$unit" "$ma" "$mb" "$goal"
}

_has_result() { [[ "$1" =~ ^[0-9.]+$ ]] && awk -v v="$1" 'BEGIN { exit !(v + 0 > 0) }'; }

header() {
    echo
    echo "$1"
    printf '%-26s %-8s %12s %12s %8s  %-7s %s\n' metric unit "$2" "$3" ratio goal verdict
    bench_plot_header "$BENCH_TABLE" "$1" "$2" "$3"
}

side_plain()   { BENCH_ENV=(); }
side_preload() { BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}"); }

# Plain vs preloaded on loopback: the cost of the dispatcher on kernel sockets.
bench_preload() {
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

# rsocket_hosts WHAT: the two test hosts (made once per run) and the
# framework config routing 192.168.21.0/24 to rsocket; false, with a line
# saying why, when the rsocket stack is not built.
rsocket_hosts() {
    if ! rsocket_usable; then
        echo; echo "$1: skipped (libdmm_rsocket.so or release/lib64/softrdma not built)"
        return 1
    fi
    if [ -z "$NS_A" ]; then
        need_root "$1 (test hosts)"
        netns_setup || die "could not create the test hosts"
        trap bench_cleanup EXIT      # netns_setup replaced it; this one calls it
    fi
    nstack_write_config "$BENCH_TMP" rsocket "$NSTACK_RELEASE/lib64/libdmm_rsocket.so"
    nstack_preload_env "$NSTACK_RELEASE" "$BENCH_TMP"
    BENCH_NS_SRV=$NS_A; BENCH_NS_CLI=$NS_B
}

# rsocket (192.168.21.0/24) vs kernel (192.168.22.0/24) between the two
# test hosts, both under libnStackAPI.so.
side_kernel_subnet()  { BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}"); BENCH_ADDR=$IP2_A; }
side_rsocket_subnet() { BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}"); BENCH_ADDR=$IP_A; }
bench_kernel-rs() {
    rsocket_hosts "rsocket vs kernel" || return 0
    BENCH_TABLE=kernel-rs
    header "kernel vs rsocket (softrdma) between the test hosts, median of $ROUNDS" kernel rsocket
    compare sockperf_latency   usec    "-" side_kernel_subnet side_rsocket_subnet
    compare iperf3_throughput  Gbit/s  "-" side_kernel_subnet side_rsocket_subnet
    compare redis_rps          req/s   "-" side_kernel_subnet side_rsocket_subnet
    compare nginx_rps          req/s   "-" side_kernel_subnet side_rsocket_subnet
    compare nginx_proxy_rps    req/s   "-" side_kernel_subnet side_rsocket_subnet
}

# Between users (a server that dropped privileges, a client of another
# user): iperf3 with the server, then the client, as www-data under its
# 8 MiB locked-memory limit (rs_memlock.c: ODP buffers), root on the other end.
bench_users() {
    rsocket_hosts "between users" || return 0
    chmod 755 "$BENCH_TMP"          # the configuration, readable by www-data
    BENCH_TABLE=users
    header "kernel vs rsocket route between users (www-data, ulimit -l 8 MiB), median of $ROUNDS" kernel rsocket
    compare iperf3_server_www  Gbit/s  "-" side_kernel_subnet side_rsocket_subnet
    compare iperf3_client_www  Gbit/s  "-" side_kernel_subnet side_rsocket_subnet
    compare nginx_www_rps      req/s   "-" side_kernel_subnet side_rsocket_subnet
}

# Connection set-up between the test hosts, both routes under the preload
# (issue 8): goal >= 0.25x the kernel route's connection rate with the
# upgrade before the first byte; descriptors per connection (kernel: 1).
bench_connrate() {
    rsocket_hosts "connection rate" || return 0
    BENCH_TABLE=connrate
    header "kernel vs rsocket route: connection set-up, median of $ROUNDS" kernel rsocket
    compare nginx_connrate        conn/s  ">=0.25" side_kernel_subnet side_rsocket_subnet
    compare server_fds_per_conn   fd/conn "-"      side_kernel_subnet side_rsocket_subnet
    compare client_fds_per_conn   fd/conn "-"      side_kernel_subnet side_rsocket_subnet
}

# The issue's goal: the same rstream traffic through the framework (B) as
# through the engine's own API (A): throughput >= 0.95x, latency <= 1.05x.
bench_engine() {
    rsocket_hosts "framework vs engine API" || return 0
    BENCH_TABLE=engine
    header "rstream -T b: engine API (A) vs framework -> rsocket (B), median of $ROUNDS" engine framework
    compare rstream_lat_64B   usec/xfer "<=1.05" side_engine_api side_framework_rsocket
    compare rstream_bw_64KiB  Gbit/s    ">=0.95" side_engine_api side_framework_rsocket
    compare rstream_bw_1MiB   Gbit/s    ">=0.95" side_engine_api side_framework_rsocket
}

# Instructions per 64 B round trip by object, four configurations, median
# of CG_ROUNDS slopes each (default: ROUNDS, at most 3: the spread between
# callgrind runs is a few percent, not the 2x of timed runs). Then the same
# for 1 MiB transfers, engine API vs framework: the timed bandwidth runs
# cannot resolve a few percent on a shared machine; instructions can.
bench_instructions() {
    local CG_ROUNDS=${CG_ROUNDS:-$((ROUNDS < 3 ? ROUNDS : 3))}
    rsocket_hosts "instructions per round trip" || return 0
    command -v valgrind >/dev/null || { echo; echo "instructions: skipped (no valgrind)"; return 0; }
    CG_SHAPE=lat
    cg_instructions_table "per 64 B round trip" \
        cg_side_engine_api cg_side_framework_rs cg_side_kernel_plain cg_side_kernel_preload
    awk '$1 == "total" { t[++n] = $2 } END {
        if (n == 4) printf "framework overhead per round trip: rsocket route %+.0f, kernel route %+.0f instructions\n", t[2] - t[1], t[4] - t[3] }' "${CG_COLS[@]}"
    CG_SHAPE=bw
    cg_instructions_table "per 1 MiB transfer (rstream -S 1048576 -C N -I 1)" \
        cg_side_engine_api cg_side_framework_rs
    awk '$1 == "total" { t[++n] = $2 } END {
        if (n == 2 && t[1] > 0) printf "framework overhead per 1 MiB transfer: %+.0f instructions (%+.2f%%)\n", t[2] - t[1], 100 * (t[2] - t[1]) / t[1] }' "${CG_COLS[@]}"
    BENCH_RAW+=("instructions: profiles $BENCH_TMP/cg.* (kept with BENCH_KEEP=1)")
}

# cg_instructions_table WHAT SIDE...: one table, a column per side (median
# of CG_ROUNDS slopes, shape CG_SHAPE); CG_COLS gets the column files.
declare -A CG_COLUMN_NAMES=([cg_side_engine_api]=engine-API [cg_side_framework_rs]=fw-rsocket
                            [cg_side_kernel_plain]=kernel-plain [cg_side_kernel_preload]=kernel-fw)
cg_instructions_table() {
    local what=$1 side f c; shift
    CG_COLS=()
    for side in "$@"; do
        f=$BENCH_TMP/cg.$CG_SHAPE.$side.table
        cg_median_table "$side" "$CG_ROUNDS" >"$f"
        CG_COLS+=("$f")
    done
    echo
    echo "user-space instructions $what (callgrind, client process incl. device thread,"
    echo "(I($(cg_n2)) - I($(cg_n1))) / $(($(cg_n2) - $(cg_n1))), median of $CG_ROUNDS)"
    printf '%-10s' object
    for side in "$@"; do printf ' %12s' "${CG_COLUMN_NAMES[$side]}"; done
    echo
    for c in "${CG_CLASSES[@]}" total; do
        awk -v c="$c" -v n=$# 'FNR == 1 { col++ } $1 == c { v[col] = $2 }
            END { printf "%-10s", c; for (i = 1; i <= n; i++) printf " %12s", (i in v) ? sprintf("%.0f", v[i]) : "n/a"; print "" }' "${CG_COLS[@]}"
    done
}

# Payload bytes copied per byte sent, per side, 64 B and 64 KiB messages.
bench_copies() {
    rsocket_hosts "copies per byte" || return 0
    bench_build_helpers || return 0
    echo
    echo "bytes copied (memcpy & co.) per payload byte, framework -> rsocket, one-way stream of $COPIES_COUNT messages"
    printf '%-8s %-6s %10s %10s %10s %10s %10s\n' size side engine framework softrdma libc program
    local size f
    for size in 64 65536; do
        f=$BENCH_TMP/copies.$size
        copies_run "$size" >"$f" || { echo "$size: NO DATA"; continue; }
        for side in send recv; do
            awk -v s="$side" -v z="$size" '$1 == s { v[$2] = $3 } END {
                printf "%-8s %-6s %10.3f %10.3f %10.3f %10.3f %10.3f\n", z, s, v["engine"], v["framework"], v["softrdma"], v["libc"], v["program"] }' "$f"
        done
    done
    echo "goal: engine <= 1 copy per byte on each side (as rsockets)"
}

# librspreload on the engine (A) vs the framework (B), same programs.
bench_rspreload() {
    rsocket_hosts "librspreload vs framework" || return 0
    rspreload_present || { echo; echo "librspreload: skipped ($RSPRELOAD_LIB missing)"; return 0; }
    BENCH_TABLE=rspreload
    header "librspreload+engine (A) vs framework -> rsocket (B), median of $ROUNDS" rspreload framework
    compare sockperf_latency   usec    "-" side_rspreload side_framework_rs_apps
    compare iperf3_throughput  Gbit/s  "-" side_rspreload side_framework_rs_apps
    compare redis_rps          req/s   "-" side_rspreload side_framework_rs_apps
}

# The software device alone: ROUNDS runs of softrdma_bench, medians.
bench_softrdma() {
    rsocket_usable || { echo; echo "softrdma: skipped (not built)"; return 0; }
    [ -x "$NSTACK_RELEASE/bin/softrdma_bench" ] || { echo; echo "softrdma: skipped (no softrdma_bench)"; return 0; }
    local r lat=() bw=() msg=() out udlat=() udmsg=() udlost=()
    for ((r = 1; r <= ROUNDS; r++)); do
        out=$BENCH_TMP/softrdma_bench.out
        lat+=("$(_softrdma_bench_field latency_us)")
        bw+=("$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^write_MBps=/) { sub(/.*=/, "", $i); print $i } }' "$out")")
        msg+=("$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^send_msgs_per_s=/) { sub(/.*=/, "", $i); print $i } }' "$out")")
        _softrdma_ud_bench_run
        udlat+=("$(_softrdma_ud_field ud_latency_us)")
        udmsg+=("$(_softrdma_ud_field ud_send_msgs_per_s)")
        udlost+=("$(_softrdma_ud_field ud_lost)")
    done
    echo
    echo "software RDMA device alone (softrdma_bench $SOFTRDMA_BENCH_ITERS $SOFTRDMA_BENCH_MIB, one host), median of $ROUNDS"
    printf '%-26s %-8s %12s\n' metric unit median
    printf '%-26s %-8s %12s\n' send_latency usec "$(median "${lat[@]}")"
    printf '%-26s %-8s %12s\n' write_throughput MB/s "$(median "${bw[@]}")"
    printf '%-26s %-8s %12s\n' send_rate msg/s "$(median "${msg[@]}")"
    printf '%-26s %-8s %12s\n' ud_send_latency usec "$(median "${udlat[@]}")"
    printf '%-26s %-8s %12s\n' ud_send_rate msg/s "$(median "${udmsg[@]}")"
    printf '%-26s %-8s %12s\n' ud_lost "of $SOFTRDMA_UD_BENCH_MSGS" "$(median "${udlost[@]}")"
    BENCH_RAW+=("softrdma send_latency: ${lat[*]}" "softrdma write_throughput: ${bw[*]}" "softrdma send_rate: ${msg[*]}"
                "softrdma ud_send_latency: ${udlat[*]}" "softrdma ud_send_rate: ${udmsg[*]}" "softrdma ud_lost: ${udlost[*]}")
}

bench_cleanup() {
    bench_stop_all
    netns_cleanup
    # BENCH_KEEP=1 keeps the profiles and logs for a closer look.
    if [ -n "${BENCH_KEEP:-}" ]; then echo "bench: kept $BENCH_TMP"; else rm -rf "$BENCH_TMP"; fi
}

main() {
    if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
        "$NSTACK_SRC/tools/deps.sh" >/dev/null || die "installing dependencies failed"
        say "building $NSTACK_BUILD -> $NSTACK_RELEASE"
        build_tree "$NSTACK_BUILD" >/dev/null
    fi
    has_lib libnStackAPI.so || die "release/lib64/libnStackAPI.so is not built: nothing to compare"
    BENCH_TMP=$(mktemp -d /tmp/nstack-bench.XXXXXX)
    trap bench_cleanup EXIT
    BENCH_RAW=()
    [ "$BENCH_PLOT" = 1 ] && BENCH_PLOT_DATA=$BENCH_TMP/plot
    echo "bench: $(date -u '+%F %T UTC'), nproc $(nproc), $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1), kernel $(uname -r)"
    echo "bench: $ROUNDS rounds x ${BENCH_SECS}s, runs interleaved A B A B ..."
    echo "bench: comparisons: ${SELECTED[*]}; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    local c
    for c in "${SELECTED[@]}"; do "bench_$c"; done
    echo; echo "raw values:"; printf '  %s\n' "${BENCH_RAW[@]}"
    if [ "$BENCH_PLOT" = 1 ]; then
        echo; bench_plot_all "${BENCH_PLOT_DIR:-$NSTACK_SRC/doc/perf}"
    fi
}

main "$@"
