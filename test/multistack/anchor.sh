#!/bin/bash
# TCP-anchored connections between processes on two hosts (doc/fork.md).
# The server on host A listens on 0.0.0.0, whose own route is the kernel
# (the default stack), with EPOLLEXCLUSIVE: a kernel listener. Per phase
# three clients from host B reach it: a preloaded client over the kernel
# route (192.168.22.180), a preloaded client over the shadow route
# (192.168.21.180: its connection is anchored on both ends, told apart at
# the server by the accepted socket's local address), and a client without
# the framework over the shadow route (both ends keep TCP; no foreign byte:
# its digest-checked echo would fail). The counters prove each path.
TEST_NAME=multistack.anchor
. "$NSTACK_SRC/test/multistack/ms_lib.sh"

MS_ANCHOR=true write_config "" ""
MS_EXCLUSIVE=1 start_server srv 3 3
for phase in 1 2; do
    [ "$phase" = 2 ] && { wait_file_match "$WORK/srv.out" '^phase2$' 120 || fail "no phase 2: $(cat "$WORK/srv.err")"; }
    client_b "$IP2_A" >"$WORK/k$phase.out" 2>&1 || fail "kernel client (phase $phase): $(cat "$WORK/k$phase.out")"
    client_b "$IP_A" >"$WORK/s$phase.out" 2>&1 || fail "anchored client (phase $phase): $(cat "$WORK/s$phase.out")"
    in_b "$PEER" client "$IP_A" "$PORT" "$BYTES" >"$WORK/p$phase.out" 2>&1 ||
        fail "client without the framework (phase $phase): $(cat "$WORK/p$phase.out")"
    grep -q "stats: anchored on shadow: 1, stayed on TCP: 0$" "$WORK/s$phase.out" ||
        fail "the shadow-route client was not anchored: $(cat "$WORK/s$phase.out")"
    [ "$(stat_field "$WORK/s$phase.out" shadow tx_bytes)" = "$BYTES" ] ||
        fail "the anchored client's bytes did not go through the shadow: $(cat "$WORK/s$phase.out")"
    [ "$(stat_field "$WORK/s$phase.out" kernel tx_bytes)" = 0 ] ||
        fail "the anchored client sent bytes on the kernel stack: $(cat "$WORK/s$phase.out")"
    grep -q "anchored on" "$WORK/k$phase.out" && fail "the kernel client was anchored: $(cat "$WORK/k$phase.out")"
done
finish_server srv
grep -q "wildcard listener also on" "$WORK/srv.err" && fail "a multi-stack listener was built: $(cat "$WORK/srv.err")"
grep -q "stats: anchored on shadow: 2, stayed on TCP: 2$" "$WORK/srv.err" ||
    fail "server: expected 2 anchored and 2 kept on TCP: $(cat "$WORK/srv.err")"
[ "$(stat_field "$WORK/srv.err" shadow accept)" = 4 ] || fail "shadow accept counter: $(cat "$WORK/srv.err")"
[ "$(stat_field "$WORK/srv.err" kernel accept)" = 2 ] || fail "kernel accept counter: $(cat "$WORK/srv.err")"
[ "$(stat_field "$WORK/srv.err" shadow rx_bytes)" = $((2 * BYTES)) ] || fail "shadow rx_bytes: $(cat "$WORK/srv.err")"
echo "multistack.anchor: ok"
