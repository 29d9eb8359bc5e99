#!/bin/bash
# conns.sh N BYTES: N concurrent rsocket connections in one process (the
# client on host A; the server, also one process, on host B), all
# established at the same time, BYTES of a per-connection pattern echoed
# and verified on each. The counters must show N rsocket connects/accepts
# and every byte on rsocket.
. "$(dirname "$0")/rsfw_lib.sh"
N=${1:-1000}; BYTES=${2:-65536}
PROG=$NSTACK_BUILD/test/rsocket-fw/rsfw_conns
[ -x "$PROG" ] || fail "$PROG not built"
ulimit -n "$(ulimit -Hn)" || fail "cannot raise the fd limit"
rsfw_setup

bg_b "${RS_ENV[@]}" "$PROG" server "$IP_B" 20000 "$N" $((N * BYTES)) >"$WORK/server.out" 2>&1
srv=$BG_PID
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not listen"; }
start=$SECONDS
in_a "${RS_ENV[@]}" "$PROG" client "$IP_B" 20000 "$N" "$BYTES" >"$WORK/client.out" 2>&1
crc=$?
wait_exit "$srv" 120; src=$?
cat "$WORK/client.out" "$WORK/server.out"
[ "$crc" = 0 ] || fail "client exited $crc"
[ "$src" = 0 ] || fail "server exited $src"
expect_line "$WORK/client.out" "^client: $N connections established at once" "client: all connections up at once"
expect_line "$WORK/client.out" "PASS: $N connections x $BYTES bytes echoed and verified" "client verdict"
expect_line "$WORK/server.out" "^server: $N connections, $((N * BYTES)) bytes echoed" "server totals"
expect_stack "$WORK/client.out" rsocket connect "$N" client
expect_stack "$WORK/client.out" rsocket tx_bytes $((N * BYTES)) client
expect_stack "$WORK/client.out" rsocket rx_bytes $((N * BYTES)) client
expect_stack "$WORK/server.out" rsocket accept "$N" server
expect_stack_zero "$WORK/client.out" kernel tx_bytes client
echo "PASS: $N concurrent rsocket connections x $BYTES bytes in $((SECONDS - start)) s"
