#!/bin/bash
# One wildcard listener, two stacks: the server on host A listens on
# 0.0.0.0; a kernel client (192.168.22.180, routed to the kernel) and a
# shadow client (192.168.21.180, routed to the shadow) both reach it, in a
# nonblocking phase (found by epoll, poll and select) and a blocking phase.
# The server's counters show each connection on its own stack. With
# "multi_stack_listen": false the shadow client is refused.
TEST_NAME=multistack.listen
. "$NSTACK_SRC/test/multistack/ms_lib.sh"

write_config "" ""
said=$(in_a "$TOOL" -m "$WORK/module.json" -r "$WORK/rd.json" listen 0.0.0.0:8080)
want="listen 0.0.0.0:8080 tcp -> kernel + shadow (default_stack_name; ip_route[0] covers local 192.168.21.180)"
[ "$said" = "$want" ] || fail "nstack-route said: $said"

# The server registers its listener with EPOLLEXCLUSIVE (nginx workers):
# the multi-stack listener's app fd is an epoll fd, which the kernel cannot
# watch exclusively; the framework must not let that fail.
MS_EXCLUSIVE=1 start_server srv 2 2
for phase in 1 2; do
    [ "$phase" = 2 ] && { wait_file_match "$WORK/srv.out" '^phase2$' 120 || fail "no phase 2: $(cat "$WORK/srv.err")"; }
    client_b "$IP2_A" >"$WORK/k$phase.out" 2>&1 & kc=$!
    client_b "$IP_A" >"$WORK/s$phase.out" 2>&1 & sc=$!
    bg_track "$kc"; bg_track "$sc"
    wait "$kc" || fail "kernel client (phase $phase): $(cat "$WORK/k$phase.out")"
    wait "$sc" || fail "shadow client (phase $phase): $(cat "$WORK/s$phase.out")"
    grep -q "stats: stack shadow: .* connect 1 " "$WORK/s$phase.out" || fail "the shadow client did not use the shadow: $(cat "$WORK/s$phase.out")"
    grep -q "stats: stack kernel: .* connect 1 " "$WORK/k$phase.out" || fail "the kernel client did not use the kernel: $(cat "$WORK/k$phase.out")"
done
finish_server srv
[ "$(grep -c "^accepted $IP_B\$" "$WORK/srv.out")" = 2 ] || fail "server did not accept the shadow client twice: $(cat "$WORK/srv.out")"
[ "$(grep -c "^accepted $IP2_B\$" "$WORK/srv.out")" = 2 ] || fail "server did not accept the kernel client twice: $(cat "$WORK/srv.out")"
[ "$(stat_field "$WORK/srv.err" shadow accept)" = 2 ] || fail "shadow accept counter: $(cat "$WORK/srv.err")"
[ "$(stat_field "$WORK/srv.err" kernel accept)" = 2 ] || fail "kernel accept counter: $(cat "$WORK/srv.err")"
[ "$(stat_field "$WORK/srv.err" shadow rx_bytes)" = $((2 * BYTES)) ] || fail "shadow rx_bytes: $(cat "$WORK/srv.err")"
grep -q "wildcard listener also on shadow (ip_route\[0\] covers local 192.168.21.180)" "$WORK/srv.err" ||
    fail "no INF line about the second stack: $(cat "$WORK/srv.err")"

# The switch: only the kernel listens, the shadow client finds no listener.
write_config '"multi_stack_listen": false,' ""
said=$(in_a "$TOOL" -m "$WORK/module.json" -r "$WORK/rd.json" listen 0.0.0.0:8080)
[ "$said" = "listen 0.0.0.0:8080 tcp -> kernel (default_stack_name)" ] || fail "nstack-route with the switch off: $said"
start_server off 1 0
in_b env NSTACK_MOD_CFG_FILE="$WORK/module.json" NSTACK_MOD_CFG_RD="$WORK/rd.json" LD_PRELOAD="$LIB" \
    "$PEER" refused "$IP_A" "$PORT" >"$WORK/r.out" 2>&1 || fail "shadow client with multi_stack_listen off: $(cat "$WORK/r.out")"
client_b "$IP2_A" >"$WORK/k3.out" 2>&1 || fail "kernel client with the switch off: $(cat "$WORK/k3.out")"
finish_server off
echo "multistack.listen: ok"
