#!/bin/bash
# fork_pair.sh MODE: fork_server on host A serves two fork_client runs at
# once (one bound with -s/-a, one not); each child echoes until "#exit".
# Asserts: both clients print "Result = Success" and exit 0; the server ran
# two distinct children that both saw "#exit" and reports PASS.
. "$(dirname "$0")/apps_lib.sh"
MODE=$1 T=300
apps_setup
where_ips "$MODE"

start_server_a "$WORK/server.out" "$BIN/fork_server" -s "$SRV_IP" -p 20000 -n 2
$CLIENT_RUN "${APP[@]}" "$BIN/fork_client" -p 20000 -d "$SRV_IP" \
    -s "$CLI_IP" -a 10000 -t "$T" >"$WORK/c1.out" 2>&1 &
c1=$!; bg_track $c1
$CLIENT_RUN "${APP[@]}" "$BIN/fork_client" -p 20000 -d "$SRV_IP" -t "$T" \
    >"$WORK/c2.out" 2>&1
c2rc=$?
wait $c1; c1rc=$?
server_status; src=$?
cat "$WORK/c1.out" "$WORK/c2.out" "$WORK/server.out"

[ "$c1rc" = 0 ] && [ "$c2rc" = 0 ] || fail "fork_client exited $c1rc / $c2rc"
expect_line "$WORK/c1.out" "^Result = Success$" "client 1 result"
expect_line "$WORK/c2.out" "^Result = Success$" "client 2 result"
[ "$src" = 0 ] || fail "fork_server exited $src"
expect_line "$WORK/server.out" "served 2 connections, 2 ok, result=PASS" "server summary"
children=$(grep -oE '^child [0-9]+ conn [01]: echoed [0-9]+ bytes, got #exit' "$WORK/server.out" | awk '{print $2}' | sort -u | wc -l)
[ "$children" = 2 ] || fail "expected 2 distinct children that got #exit, saw $children"
grep -q "^child $SERVER_PID " "$WORK/server.out" && fail "the parent echoed instead of a child"
grep -q "echoed $((T * 50)) bytes" "$WORK/server.out" || fail "a child did not echo $((T * 50)) bytes"
echo "PASS: fork pair $MODE"
