#!/bin/bash
# perf_pair.sh SERVER MODE FDS: a vs_* server on host A and vc_common with
# FDS connections (lo/lo6: same host over loopback; ns/ns6: from host B),
# DMM-style command line with a small -t. Asserts: both exit 0, the client
# verified every echo and printed its DMM lines, the server counted every
# message on every connection (APPS_STACK=rsocket: and that every byte
# went over the rsocket stack).
. "$(dirname "$0")/apps_lib.sh"
SERVER=$1 MODE=$2 FDS=$3
T=${APPS_T:-2000} U=500
apps_setup
where_ips "$MODE"

start_server_a "$WORK/server.out" "$BIN/$SERVER" -p 20000 -d "$CLI_IP" \
    -a 10000 -s "$SRV_IP" -l 200 -t "$T" -i 0 -f "$FDS" -r 20000 \
    -n "$FDS" -w 10 -u "$U" -e 10 -x 1
$CLIENT_RUN "${APP[@]}" "$BIN/vc_common" -p 20000 -d "$SRV_IP" -a 10000 \
    -s "$CLI_IP" -l 200 -t "$T" -i 100 -f "$FDS" -r 20000 -n "$FDS" -w 10 \
    -u "$U" -e 500 -x 1 >"$WORK/client.out" 2>&1
crc=$?
server_status; src=$?
cat "$WORK/client.out" "$WORK/server.out"

[ "$crc" = 0 ] || fail "vc_common exited $crc"
[ "$src" = 0 ] || fail "$SERVER exited $src"
for ((i = 0; i < FDS; i++)); do
    expect_line "$WORK/client.out" "^client $i send $T , sendtime : " "client $i final line"
    expect_line "$WORK/server.out" "^conn $i done: receive $T messages , $((T * 200)) bytes echoed , .*result=ok$" "server conn $i result"
done
[ "$(grep -c '^sendcount ' "$WORK/client.out")" = $((T / U)) ] || fail "expected $((T / U)) sendcount lines"
[ "$(grep -c '^conn [0-9]* receive ' "$WORK/server.out")" = $((FDS * T / U)) ] || fail "expected $((FDS * T / U)) receive lines"
expect_line "$WORK/client.out" "^vc_common: PASS: $FDS connection" "client PASS line"
expect_stack_bytes "$WORK/client.out" $((FDS * T * 200)) $((FDS * T * 200)) vc_common
expect_stack_bytes "$WORK/server.out" $((FDS * T * 200)) $((FDS * T * 200)) "$SERVER"
expect_line "$WORK/server.out" "^server summary: connections=$FDS complete=$FDS messages=$((FDS * T)) bytes=$((FDS * T * 200)) result=PASS$" "server summary"
echo "PASS: $SERVER $MODE -f $FDS"
