# shellcheck shell=bash
# Bytes copied per payload byte, per side, on the rsocket path.
#
# Method: tools/bench/memcpy_count.so is preloaded after libnStackAPI.so; it
# interposes memcpy/memmove/mempcpy (and their _chk forms), attributes each
# call to the calling object by its return address, and writes the byte
# totals at exit. tools/bench/bench_stream moves COUNT x SIZE bytes one way
# (client sends, server receives, pattern checked), so the client's counts
# are the send side and the server's the receive side. Copies per byte =
# counted bytes / payload bytes. All of the engine's variable-length copies
# are PLT calls to memcpy (check: objdump -d libdmm_rsocket.so), so none is
# missed; inlined fixed-size copies are headers, not payload.
# Sourced by tools/bench.sh; needs the test hosts and bench_build_helpers.

COPIES_COUNT=${COPIES_COUNT:-2000}

# bench_build_helpers: BENCH_HELPERS gets a directory holding
# memcpy_count.so and bench_stream: the CMake build's (release/lib64/bench,
# release/bin) once tools/bench is in the top-level list, else compiled
# here with cc into $NSTACK_BUILD/bench.
bench_build_helpers() {
    local src=$NSTACK_SRC/tools/bench out=$NSTACK_BUILD/bench
    local flags=(-std=gnu11 -O2 -g -Wall -Wextra -Werror)
    if [ -e "$NSTACK_RELEASE/lib64/bench/memcpy_count.so" ] && [ -x "$NSTACK_RELEASE/bin/bench_stream" ]; then
        mkdir -p "$out"
        ln -sf "$NSTACK_RELEASE/lib64/bench/memcpy_count.so" "$out/memcpy_count.so"
        ln -sf "$NSTACK_RELEASE/bin/bench_stream" "$out/bench_stream"
        BENCH_HELPERS=$out
        return 0
    fi
    mkdir -p "$out"
    cc "${flags[@]}" -fPIC -shared -fno-tree-loop-distribute-patterns \
        -o "$out/memcpy_count.so" "$src/memcpy_count.c" -ldl &&
    cc "${flags[@]}" -o "$out/bench_stream" "$src/bench_stream.c" ||
        { echo "bench: building tools/bench helpers failed" >&2; return 1; }
    BENCH_HELPERS=$out
}

# copies_run SIZE: "side class copies_per_byte" lines for one one-way
# stream of COPIES_COUNT x SIZE bytes through the framework on rsocket.
copies_run() {
    local size=$1 port env=("${NSTACK_PRELOAD_ENV[@]}") i
    local srv=$BENCH_TMP/copies.srv cli=$BENCH_TMP/copies.cli
    for i in "${!env[@]}"; do
        [[ ${env[$i]} == LD_PRELOAD=* ]] && env[i]="${env[i]} $BENCH_HELPERS/memcpy_count.so"
    done
    rm -f "$srv.count" "$cli.count"
    port=$(bench_next_port 23000)
    BENCH_ENV=("${env[@]}" "MEMCPY_COUNT_OUT=$srv.count")
    bench_server "$srv" timeout 120 "$BENCH_HELPERS/bench_stream" -s "$IP_A" "$port" "$size" "$COPIES_COUNT"
    wait_until 30 grep -q listening "$srv" ||
        { echo "bench: copies: server not listening: $(tail -n 2 "$srv")" >&2; bench_stop_server; return 1; }
    BENCH_ENV=("${env[@]}" "MEMCPY_COUNT_OUT=$cli.count")
    bench_client timeout 120 "$BENCH_HELPERS/bench_stream" -c "$IP_A" "$port" "$size" "$COPIES_COUNT" \
        >"$cli" 2>&1 || { echo "bench: copies: client failed: $(tail -n 2 "$cli")" >&2; bench_stop_server; return 1; }
    wait_until 60 grep -q '^bench_stream: received' "$srv" ||
        { echo "bench: copies: server did not receive everything: $(tail -n 2 "$srv")" >&2; bench_stop_server; return 1; }
    wait_until 30 _group_gone "$BENCH_SERVER"     # it writes its counts at exit
    bench_stop_server
    local payload=$((size * COPIES_COUNT))
    # Summed over the processes of a side (timeout(1) runs preloaded too).
    _copies_per_byte send "$payload" "$cli.count"
    _copies_per_byte recv "$payload" "$srv.count"
}

# _copies_per_byte SIDE PAYLOAD COUNTFILE: "SIDE class copies_per_byte".
_copies_per_byte() {
    awk -v side="$1" -v p="$2" '$1 == "memcpy_count:" { b[$5] += $9 }
        END { for (c in b) print side, c, b[c] / p }' "$3"
}
