#!/bin/bash
# dmm_stacks.sh SERVER CONNS: DMM's documented perf-test line over the
# rsocket stack, with a second pair on the kernel subnet at the same time,
# both routed by the one rd_config.json. The framework's own counters
# (NSTACK_STATS=1 at exit) must show that rsocket carried the first pair and
# the kernel the second, each with the exact byte count.
#
# Literal line (doc): server "-d 192.168.21.180 -s 192.168.21.181" (so it
# listens on .181, host B), client "-d 192.168.21.181 -s 192.168.21.180"
# (host A). -t defaults to 500000 (the literal count); ctest sets DMM_T.
. "$(dirname "$0")/rsfw_lib.sh"
SERVER=${1:-vs_epoll}
F=${2:-1}
T=${DMM_T:-500000}
L=1000
rsfw_setup

# The rsocket pair: DMM's flags; -f/-n set to CONNS (1 in the doc).
bg_b "${RS_ENV[@]}" "$BIN/$SERVER" -p 20000 -d "$IP_A" -a 10000 -s "$IP_B" \
    -l $L -t "$T" -i 0 -f "$F" -r 20000 -n "$F" -w 10 -u 50000 -e 10 -x 1 >"$WORK/rs_server.out" 2>&1
rs_srv=$BG_PID
# The kernel pair on 192.168.22.0/24, same programs, same config.
bg_b "${RS_ENV[@]}" "$BIN/$SERVER" -p 20001 -d "$IP2_A" -a 11000 -s "$IP2_B" \
    -l $L -t "$T" -i 0 -f "$F" -r 20001 -n "$F" -w 10 -u 50000 -e 10 -x 1 >"$WORK/k_server.out" 2>&1
k_srv=$BG_PID
wait_file_match "$WORK/rs_server.out" "^listening" 30 || { cat "$WORK/rs_server.out"; fail "rsocket server did not listen"; }
wait_file_match "$WORK/k_server.out" "^listening" 30 || { cat "$WORK/k_server.out"; fail "kernel server did not listen"; }

bg_a "${RS_ENV[@]}" "$BIN/vc_common" -p 20000 -d "$IP_B" -a 10000 -s "$IP_A" \
    -l $L -t "$T" -i 0 -f "$F" -r 20000 -n "$F" -w 10 -u 50000 -e 10 -x 1 >"$WORK/rs_client.out" 2>&1
rs_cli=$BG_PID
bg_a "${RS_ENV[@]}" "$BIN/vc_common" -p 20001 -d "$IP2_B" -a 11000 -s "$IP2_A" \
    -l $L -t "$T" -i 0 -f "$F" -r 20001 -n "$F" -w 10 -u 50000 -e 10 -x 1 >"$WORK/k_client.out" 2>&1
k_cli=$BG_PID

for p in "$rs_cli rs_client" "$k_cli k_client" "$rs_srv rs_server" "$k_srv k_server"; do
    set -- $p
    wait_exit "$1" 600; rc=$?
    [ "$rc" = 0 ] || { cat "$WORK/$2.out"; fail "$2 (pid $1) exited $rc"; }
done

bytes=$((F * T * L))
expect_line "$WORK/rs_client.out" "^client 0 send $T , sendtime : " "rsocket client final line"
expect_line "$WORK/rs_server.out" "^server summary: connections=$F complete=$F messages=$((F * T)) .*result=PASS$" "rsocket server summary"
expect_line "$WORK/k_client.out" "^client 0 send $T , sendtime : " "kernel client final line"
expect_line "$WORK/k_server.out" "^server summary: connections=$F complete=$F messages=$((F * T)) .*result=PASS$" "kernel server summary"

# Which stack carried what: exact byte counts on the right stack, nothing on the other.
for side in rs_client rs_server; do
    expect_stack "$WORK/$side.out" rsocket tx_bytes "$bytes" "$side"
    expect_stack "$WORK/$side.out" rsocket rx_bytes "$bytes" "$side"
    expect_stack_zero "$WORK/$side.out" kernel tx_bytes "$side"
done
expect_stack "$WORK/rs_client.out" rsocket connect "$F" "rs_client"
expect_stack "$WORK/rs_server.out" rsocket accept "$F" "rs_server"
for side in k_client k_server; do
    expect_stack "$WORK/$side.out" kernel tx_bytes "$bytes" "$side"
    expect_stack "$WORK/$side.out" kernel rx_bytes "$bytes" "$side"
    expect_stack_zero "$WORK/$side.out" rsocket sockets "$side"
done
grep 'pps=' "$WORK/rs_client.out" | tail -n 1
grep 'pps=' "$WORK/k_client.out" | tail -n 1
echo "PASS: $SERVER, $F connection(s) x $T messages of $L bytes: rsocket carried 192.168.21.0/24, kernel carried 192.168.22.0/24"
