#!/usr/bin/env bash
# An rsync-style client (srv_forkclient.c): connect, a 4 KiB round trip,
# then fork; the parent writes 8 MiB and shuts its side down, the child
# reads every echoed byte until EOF and checks it. The echo server is
# srv_mtaccept (one connection, exact byte total).
# Usage: forkclient.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.forkclient
. "$NSTACK_SRC/test/lib/servers.sh"

B=$NSTACK_BUILD/test/servers
for p in srv_forkclient srv_mtaccept; do [ -x "$B/$p" ] || prog_fail "$B/$p not built"; done
BYTES=$((8 * 1024 * 1024))
srv_setup "$1" 18780
prog_server server "$B/srv_mtaccept" "$PROG_ADDR" "$PROG_PORT" 1 $((4096 + BYTES))
srv_wait_banner server

srv_wire_start "$PROG_PORT"
# rsocket: the client stops right before fork() so that the wire up to the
# fork is judged on its own: no kernel TCP packet with more than 64 B of
# payload while the connection is upgraded. At fork() the client returns
# the connection to TCP (doc/fork.md, "fork after the upgrade"): after it
# both processes carry it on TCP by design, which the counters show.
GATE_ENV=()
[ "$1" = rsocket ] && GATE_ENV=(SRV_FORK_GATE="$PROG_TMP/gate")
srv_client timeout 90 env "${GATE_ENV[@]}" "$B/srv_forkclient" "$PROG_ADDR" "$PROG_PORT" "$BYTES" \
    >"$PROG_TMP/client.out" 2>&1 &
CLIENT=$!
if [ "$1" = rsocket ]; then
    _ready_or_gone() { [ -e "$PROG_TMP/gate.ready" ] || ! kill -0 "$CLIENT" 2>/dev/null; }
    wait_until 60 _ready_or_gone
    [ -e "$PROG_TMP/gate.ready" ] || prog_fail "the client did not reach its fork: $(cat "$PROG_TMP/client.out")"
    wire_capture_stop
    wire_expect_no_payload "before fork (upgraded)"
    prog_note "before fork: $WIRE_BIG kernel TCP packets with > $WIRE_MAX_PAYLOAD B payload"
    touch "$PROG_TMP/gate.go"
fi
wait "$CLIENT" || prog_fail "client: $(cat "$PROG_TMP/client.out") server: $(tail -n 3 "$PROG_TMP/server.out")"
grep -q "^child: read $BYTES bytes after fork, all checked" "$PROG_TMP/client.out" ||
    prog_fail "the child's verdict is missing: $(cat "$PROG_TMP/client.out")"
srv_server_done
if [ "$1" = rsocket ]; then
    # Both processes print their counters at exit: the 4 KiB round trip on
    # rsocket (parent), the 8 MiB each way after the fork on the kernel.
    expect_bulk_on rsocket $((2 * 4096)) "$(stats_exit_bytes "$PROG_TMP/client.out" rsocket)" "before fork: client"
    expect_bulk_on kernel $((2 * BYTES)) "$(stats_exit_bytes "$PROG_TMP/client.out" kernel)" "after fork: client"
    grep -q 'could not return to TCP' "$PROG_TMP/client.out" && prog_fail "the release timed out: $(cat "$PROG_TMP/client.out")"
else
    # Both processes print their counters at exit: the parent sent, the child read.
    srv_wire_verdict "fork after data" "$PROG_TMP/client.out" $((2 * BYTES))
fi
prog_note "OK: parent wrote, child read $BYTES bytes after fork, all checked"
