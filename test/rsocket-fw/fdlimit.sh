#!/bin/bash
# fdlimit.sh LIMIT BYTES: descriptor exhaustion on the rsocket route
# (issues 8 and 10). A client under `ulimit -n LIMIT` (host A) opens
# anchored connections to a server (host B) one at a time, BYTES echoed
# and checked on each, until one fails: that failure must be EMFILE (or
# ENFILE) from the call the kernel would fail (socket/connect), never a
# hang, ETIMEDOUT or a broken connection; then every connection made
# before carries BYTES more each way, checked. Connections the module
# could not get descriptors for stay on TCP and work; at least one must
# have been carried by rsocket, and there must be more than LIMIT/10 of
# them (about 8 descriptors per RDMA connection with the software device
# today, 4 of them its own: doc/rsocket-framework.md "Descriptors").
. "$(dirname "$0")/rsfw_lib.sh"
LIMIT=${1:-128}; BYTES=${2:-4096}
PROG=$NSTACK_BUILD/test/rsocket-fw/rsfw_fds
[ -x "$PROG" ] || fail "$PROG not built"
rsfw_setup

bg_b "${RS_ENV[@]}" "$PROG" server "$IP_B" 20000 4096 "$BYTES" >"$WORK/server.out" 2>&1
srv=$BG_PID
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not listen"; }
in_a bash -c 'ulimit -n "$0" && exec "$@"' "$LIMIT" env RSFW_FDS_LIMIT=1 RSFW_TIMEOUT_S=120 \
    "${RS_ENV[@]}" "$PROG" client "$IP_B" 20000 4096 "$BYTES" >"$WORK/client.out" 2>&1
crc=$?
kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null
cat "$WORK/client.out"; [ "$crc" = 0 ] || { echo "--- server:"; cat "$WORK/server.out"; }
[ "$crc" = 0 ] || fail "client exited $crc"
expect_line "$WORK/client.out" "failed at socket/connect: (Too many open files|Too many open files in system)" "the first failure is EMFILE from socket/connect"
n=$(sed -nE 's/.*PASS: ([0-9]+) connections, then EMFILE.*/\1/p' "$WORK/client.out")
[ -n "$n" ] || fail "no verdict"
[ "$n" -gt $((LIMIT / 10)) ] || fail "only $n connections under ulimit -n $LIMIT"
rx=$(stack_count "$WORK/client.out" rsocket rx_bytes)
[ "$rx" -gt 0 ] || fail "no connection was carried by rsocket"
echo "PASS: ulimit -n $LIMIT: $n connections (rsocket rx $rx bytes), then EMFILE; all kept working"
