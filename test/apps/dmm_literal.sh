#!/bin/bash
# dmm_literal.sh SERVER: DMM's documented perf-test command line, verbatim,
# on two hosts (server on A, vc_common on B):
#   -p 20000 -d <peer> -a 10000 -s <self> -l 200 -t 5000000 -i 0 -f 1
#   -r 20000 -n 1 -w 10 -u 10000 -e 10 -x 1
# -t 5000000 takes minutes of ping-pong here, so ctest sets DMM_T=50000
# (the count DMM's CSIT ran, grepping "send 50000"); unset DMM_T to run
# the literal count. Asserts the CSIT check plus our own verdicts.
. "$(dirname "$0")/apps_lib.sh"
SERVER=${1:-vs_epoll}
T=${DMM_T:-5000000}
apps_setup

start_server_a "$WORK/server.out" "$BIN/$SERVER" -p 20000 -d "$IP_B" -a 10000 \
    -s "$IP_A" -l 200 -t "$T" -i 0 -f 1 -r 20000 -n 1 -w 10 -u 10000 -e 10 -x 1
in_b "${APP[@]}" "$BIN/vc_common" -p 20000 -d "$IP_A" -a 10000 -s "$IP_B" \
    -l 200 -t "$T" -i 0 -f 1 -r 20000 -n 1 -w 10 -u 10000 -e 10 -x 1 \
    >"$WORK/client.out" 2>&1
crc=$?
server_status; src=$?
tail -n 3 "$WORK/client.out"; tail -n 3 "$WORK/server.out"
[ "$crc" = 0 ] || { cat "$WORK/client.out"; fail "vc_common exited $crc"; }
[ "$src" = 0 ] || { cat "$WORK/server.out"; fail "$SERVER exited $src"; }
grep -q "send $T" "$WORK/client.out" || fail "CSIT check: no \"send $T\" line"
expect_line "$WORK/client.out" "^client 0 send $T , sendtime : " "client final line"
expect_line "$WORK/server.out" "^server summary: connections=1 complete=1 messages=$T .*result=PASS$" "server summary"
echo "PASS: DMM command line, -t $T, $SERVER"
