#!/bin/bash
# Connect fallback: the server on host A is a plain kernel listener (no
# preload), so a shadow client gets ECONNREFUSED. Without "fallback" the
# client sees that error; with "fallback": "kernel" on the ip_route entry
# the connect is retried on the kernel, the echo is digest-checked, one INF
# line names the fallback and the counters record it.
TEST_NAME=multistack.fallback
. "$NSTACK_SRC/test/multistack/ms_lib.sh"

write_config "" ""
start_server plain 1 0 plain
in_b env NSTACK_MOD_CFG_FILE="$WORK/module.json" NSTACK_MOD_CFG_RD="$WORK/rd.json" LD_PRELOAD="$LIB" \
    "$PEER" refused "$IP_A" "$PORT" >"$WORK/r.out" 2>&1 || fail "without fallback the connect must be refused: $(cat "$WORK/r.out")"

write_config "" ', "fallback": "kernel"'
"$TOOL" -m "$WORK/module.json" -r "$WORK/rd.json" --check >/dev/null || fail "config with fallback rejected"
out=$(in_b env NSTACK_LOG_ON=INF NSTACK_STATS=1 NSTACK_MOD_CFG_FILE="$WORK/module.json" NSTACK_MOD_CFG_RD="$WORK/rd.json" \
      LD_PRELOAD="$LIB" "$PEER" client "$IP_A" "$PORT" "$BYTES" 2>&1) || fail "client with fallback: $out"
[ "$(echo "$out" | grep -c 'falling back to kernel')" = 1 ] || fail "expected one INF line about the fallback: $out"
echo "$out" | grep -q "stats: connect fallbacks to kernel: 1" || fail "fallback counter: $out"
echo "$out" | grep -q "stats: stack kernel: .* connect 1 " || fail "kernel connect counter: $out"
echo "$out" | grep -q "stats: stack shadow: sockets 1 connect 0 " || fail "shadow counters: $out"
finish_server plain
grep -q "^accepted $IP_B\$" "$WORK/plain.out" || fail "the kernel server did not see the client: $(cat "$WORK/plain.out")"
echo "multistack.fallback: ok"
