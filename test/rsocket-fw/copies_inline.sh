#!/bin/bash
# copies_inline.sh SIZE COUNT - sends of at most the QP's inline size are
# posted inline straight from the caller's buffer: the engine makes no
# copy on the send side (the device moves the data at post time), and one
# on the receive side (rbuf -> caller). The software device grants 64 KiB
# of inline data, the engine's largest write, so bulk writes (SIZE 128 KiB)
# are not staged either. Counted with tools/bench/memcpy_count.so
# preloaded after the dispatcher; tools/bench/bench_stream moves COUNT x
# SIZE bytes one way, pattern-checked, host B -> host A.
. "$(dirname "$0")/rsfw_lib.sh"
SIZE=${1:-64}
COUNT=${2:-2000}
HELPER=$NSTACK_RELEASE/lib64/bench/memcpy_count.so
STREAM=$NSTACK_RELEASE/bin/bench_stream
[ -e "$HELPER" ] && [ -x "$STREAM" ] || fail "tools/bench helpers are not built ($HELPER, $STREAM)"
rsfw_setup
ENV=("${RS_ENV[@]}")
for i in "${!ENV[@]}"; do
    [[ ${ENV[$i]} == LD_PRELOAD=* ]] && ENV[i]="${ENV[i]} $HELPER"
done
PORT=23100
in_a "${ENV[@]}" "MEMCPY_COUNT_OUT=$WORK/srv.count" "$STREAM" -s "$IP_A" $PORT "$SIZE" "$COUNT" \
    >"$WORK/srv" 2>&1 &
SRV=$!
wait_until 60 grep -q listening "$WORK/srv" || fail "server not listening: $(tail -n 2 "$WORK/srv")"
in_b "${ENV[@]}" "MEMCPY_COUNT_OUT=$WORK/cli.count" "$STREAM" -c "$IP_A" $PORT "$SIZE" "$COUNT" \
    >"$WORK/cli" 2>&1 || fail "client failed: $(tail -n 2 "$WORK/cli")"
wait_exit $SRV 60 || fail "server failed: $(tail -n 2 "$WORK/srv")"
grep -q "^bench_stream: received $((SIZE * COUNT)) bytes" "$WORK/srv" || fail "server: $(tail -n 2 "$WORK/srv")"
expect_stack "$WORK/srv" rsocket rx_bytes $((SIZE * COUNT)) "bench_stream server"

# engine_copies FILE: engine bytes copied per payload byte, x100, integer.
engine_copies() {
    awk -v p=$((SIZE * COUNT)) '$1 == "memcpy_count:" && $5 == "engine" { b += $9 }
        END { printf "%d\n", b * 100 / p }' "$1"
}
[ -s "$WORK/cli.count" ] && [ -s "$WORK/srv.count" ] || fail "no copy counts written"
send=$(engine_copies "$WORK/cli.count")
recv=$(engine_copies "$WORK/srv.count")
echo "engine copies per byte x100: send $send recv $recv (size $SIZE)"
[ "$send" -lt 10 ] || fail "send side: the engine copied $send/100 bytes per payload byte (inline sends staged)"
[ "$recv" -ge 90 ] && [ "$recv" -le 110 ] || fail "receive side: the engine copied $recv/100 bytes per payload byte, expected 1"
echo "PASS: inline sends of $SIZE B: no engine copy on send, one on receive"
