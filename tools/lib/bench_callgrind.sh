# shellcheck shell=bash
# User-space instructions per 64-byte ping-pong round trip, counted by
# valgrind's callgrind (instruction counts repeat to within a fraction of
# a percent however loaded the machine is, unlike times).
#
# The client, `rstream -S 64 -C 1 -I N` on host B, runs under callgrind
# (all its threads, so the software device's thread is included); the
# server on host A runs natively. Two runs with N = CG_N1 and CG_N2 and the
# difference divided by CG_N2 - CG_N1 give the cost of one round trip with
# start-up, connection set-up and exit cancelled. The profile's exclusive
# costs are summed by object (for a per-function view of a kept profile:
# callgrind_annotate --inclusive=no --threshold=100 PROFILE). The counts are exact
# for one run, but not identical between runs: how often a blocked call
# wakes, polls and re-arms depends on when the device thread delivers, so
# the slope is taken in several rounds and the median reported.
# Sourced by tools/bench.sh after bench_rstream.sh; needs the test hosts.

CG_N1=${CG_N1:-2000}
CG_N2=${CG_N2:-6000}
CG_CLASSES=(engine framework softrdma libc ld.so program other)

# The traffic shape: CG_SHAPE=lat, 64 B ping-pong, N round trips; or bw,
# 1 MiB transfers, N each way (rstream's bandwidth mode, -C N -I 1), to
# show what the framework adds where the timed bandwidth runs are too noisy
# to tell a few percent. cg_shape_args N prints rstream's arguments.
CG_SHAPE=lat
CG_BW_N1=${CG_BW_N1:-40}
CG_BW_N2=${CG_BW_N2:-120}
cg_shape_args() {
    if [ "$CG_SHAPE" = bw ]; then echo "-S 1048576 -C $1 -I 1"; else echo "-S 64 -C 1 -I $1"; fi
}
cg_n1() { if [ "$CG_SHAPE" = bw ]; then echo "$CG_BW_N1"; else echo "$CG_N1"; fi; }
cg_n2() { if [ "$CG_SHAPE" = bw ]; then echo "$CG_BW_N2"; else echo "$CG_N2"; fi; }

# The four configurations: environment, rstream mode, server address.
cg_side_engine_api()     { side_engine_api; CG_READY=fabric; }
cg_side_framework_rs()   { side_framework_rsocket; CG_READY=fabric; }
cg_side_kernel_plain()   { BENCH_ENV=(); RSTREAM_MODE=(-T s -T b); BENCH_ADDR=$IP2_A; CG_READY=tcp; }
cg_side_kernel_preload() { BENCH_ENV=("${NSTACK_PRELOAD_ENV[@]}"); RSTREAM_MODE=(-T s -T b); BENCH_ADDR=$IP2_A; CG_READY=tcp; }

_cg_server_ready() {
    if [ "$CG_READY" = fabric ]; then _fabric_listening "$BENCH_ADDR" "$1"
    else ip netns exec "$BENCH_NS_SRV" ss -Hltn "sport = :$1" | grep -q .; fi
}

# _cg_profile OUT N: one client run under callgrind; OUT gets the profile.
_cg_profile() {
    local out=$1 n=$2 port log=$BENCH_TMP/cg.cli shape
    read -r -a shape <<<"$(cg_shape_args "$n")"
    port=$(bench_next_port 19000)
    bench_server "$BENCH_TMP/cg.srv" timeout 300 rstream "${RSTREAM_MODE[@]}" \
        -b "$BENCH_ADDR" -p "$port" "${shape[@]}"
    wait_until 30 _cg_server_ready "$port" ||
        { echo "bench: callgrind: server not ready: $(tail -n 2 "$BENCH_TMP/cg.srv")" >&2; bench_stop_server; return 1; }
    bench_client timeout 300 valgrind --tool=callgrind --callgrind-out-file="$out" \
        rstream "${RSTREAM_MODE[@]}" -s "$BENCH_ADDR" -p "$port" "${shape[@]}" >"$log" 2>&1
    local rc=$?
    bench_stop_server
    [ "$rc" -eq 0 ] && grep -q '^custom' "$log" ||
        { echo "bench: callgrind: client failed ($rc): $(grep -v '^==' "$log" | tail -n 2)" >&2; return 1; }
}

# _cg_object_totals PROFILE: "object-path instructions" lines: every cost
# line of the profile added to the object it belongs to (the last "ob="),
# the inclusive cost line after each "calls=" skipped. Read from the
# profile itself, not from callgrind_annotate, because callgrind_annotate
# merges functions without symbols by name ("0x00000000000034f0") across
# objects: rstream's stripped send loop and an unnamed function in
# libdmm_rsocket.so at the same offset became one, so rstream's
# instructions were shown as the engine's. The sum is checked against the
# profile's summary line.
_cg_object_totals() {
    awk '
        /^positions:/ { npos = NF - 1 }
        /^summary:/ { summary = $2 }
        /^c?ob=/ {
            id = $1; sub(/^c?ob=/, "", id)
            if (NF > 1) { nm = $0; sub(/^c?ob=\([0-9]+\) /, "", nm); name[id] = nm }
            if ($0 ~ /^ob=/) cur = id
            next
        }
        /^calls=/ { skip = 1; next }
        /^[0-9+*-]/ {
            if (skip) { skip = 0; next }
            if (npos == 0) npos = 1
            if (NF > npos) { cost[cur] += $(npos + 1); sum += $(npos + 1) }
        }
        END {
            if (sum != summary) printf "bench: callgrind: objects add up to %d, summary says %d\n", sum, summary > "/dev/stderr"
            for (i in cost) print name[i], cost[i]
        }' "$1"
}

# _cg_by_object PROFILE: "class instructions" lines, summed by the class
# of each object.
_cg_by_object() {
    _cg_object_totals "$1" | awk '
        {
            obj = $1
            if (obj ~ /libdmm_rsocket\.so/) c = "engine"
            else if (obj ~ /libnStackAPI\.so/) c = "framework"
            else if (obj ~ /\/softrdma\//) c = "softrdma"
            else if (obj ~ /\/libc\.so/) c = "libc"
            else if (obj ~ /\/ld-linux/) c = "ld.so"
            else if (obj ~ /\/rstream$/) c = "program"
            else c = "other"
            s[c] += $2
        }
        END { for (c in s) print c, s[c] }'
}

# cg_per_round_trip SIDE ROUND: "class value" lines (value = instructions
# per round trip, or per 1 MiB transfer with CG_SHAPE=bw) plus "total
# value", for one configuration.
cg_per_round_trip() {
    "$1"
    local n1 n2; n1=$(cg_n1); n2=$(cg_n2)
    local p1=$BENCH_TMP/cg.$CG_SHAPE.$1.$2.$n1 p2=$BENCH_TMP/cg.$CG_SHAPE.$1.$2.$n2
    _cg_profile "$p1" "$n1" && _cg_profile "$p2" "$n2" || return 1
    join -a 1 -a 2 -e 0 -o 0,1.2,2.2 <(_cg_by_object "$p1" | sort) <(_cg_by_object "$p2" | sort) |
        awk -v d=$((n2 - n1)) '{ v = ($3 - $2) / d; print $1, v; t += v } END { print "total", t }'
}

# cg_median_table SIDE ROUNDS: ROUNDS slopes of SIDE, then the median of
# each class (and of the total) as "class value" lines.
cg_median_table() {
    local r
    for ((r = 1; r <= $2; r++)); do cg_per_round_trip "$1" "$r"; done |
        sort -k1,1 -k2,2g | awk '
            { v[$1, ++n[$1]] = $2 }
            END { for (c in n) { k = n[c]; m = (k % 2) ? v[c, (k + 1) / 2] : (v[c, k / 2] + v[c, k / 2 + 1]) / 2
                                 print c, m, k } }'
}
