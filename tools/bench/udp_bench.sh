#!/bin/bash
# udp_bench.sh [SECONDS]: UDP over rsocket (datagram rsockets on the
# software device) vs kernel UDP between the two namespace test hosts,
# with sockperf (a plain UDP program under the preload): ping-pong latency
# at 64 B and 1 KiB, and the datagram rate a sender reaches and the
# receiver gets (sockperf throughput) at 64 B and 1 KiB. Run as root from
# the tree after a build; prints one table (doc/performance.md).
set -u
NSTACK_SRC=$(cd "$(dirname "$0")/../.." && pwd)
NSTACK_RELEASE=${NSTACK_RELEASE:-$NSTACK_SRC/release}
T=${1:-5}
. "$NSTACK_SRC/test/lib/netns.sh"
netns_setup || exit 1
RS=(env "LD_LIBRARY_PATH=$NSTACK_RELEASE/lib64:$NSTACK_RELEASE/lib64/softrdma"
    "LD_PRELOAD=$NSTACK_RELEASE/lib64/libnStackAPI.so"
    "NSTACK_MOD_CFG_FILE=$NSTACK_SRC/stacks/rsocket/config/module_config.json"
    "NSTACK_MOD_CFG_RD=$NSTACK_SRC/stacks/rsocket/config/rd_config.json" NSTACK_STATS=1)
KERNEL=(env)
out=$(mktemp -d); trap 'rm -rf "$out"; netns_cleanup' EXIT

# run STACK MODE SIZE: one sockperf run, its summary line(s)
run() {
    local -n envv=$1
    local mode=$2 size=$3 port=$((12000 + RANDOM % 1000))
    bg_a "${envv[@]}" sockperf sr -i "$IP_A" -p "$port" >"$out/srv" 2>&1
    local srv=$BG_PID
    wait_file_match "$out/srv" "listen on" 10 >/dev/null || true
    in_b "${envv[@]}" timeout 60 sockperf "$mode" -i "$IP_A" -p "$port" -m "$size" -t "$T" \
        >"$out/cli" 2>&1
    kill -INT "$srv"     # ip netns exec and env exec: the pid is sockperf's
    wait "$srv" 2>/dev/null
    local on=kernel
    grep -qE "stats: stack rsocket: .* rx_bytes [1-9]" "$out/srv" && on=rsocket
    if [ "$mode" = pp ]; then
        awk -v on="$on" '/avg-latency=/ { sub(/.*avg-latency=/, ""); split($0, a, " "); avg=a[1] }
             /percentile 50.000/ { med=$NF } END { printf "%s us one-way (avg %s) [%s]", med, avg, on }' "$out/cli"
    else
        local rx
        rx=$(sed -n 's/.*Total \([0-9]*\) messages received.*/\1/p' "$out/srv")
        awk -v on="$on" -v rx="${rx:-0}" -v t="$T" '/Summary: Message Rate is/ { for (i = 1; i <= NF; i++) if ($i == "is") r=$(i+1) }
             END { printf "%s sent, %d received/s [%s]", r, rx / t, on }' "$out/cli"
    fi
}

printf "%-16s %-44s %-44s\n" "test" "rsocket (datagram rsockets)" "kernel UDP"
for size in 64 1024; do
    printf "%-16s %-44s %-44s\n" "latency ${size} B" "$(run RS pp $size)" "$(run KERNEL pp $size)"
    printf "%-16s %-44s %-44s\n" "rate ${size} B" "$(run RS tp $size)" "$(run KERNEL tp $size)"
done
