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
srv_client timeout 90 "$B/srv_forkclient" "$PROG_ADDR" "$PROG_PORT" "$BYTES" \
    >"$PROG_TMP/client.out" 2>&1 || prog_fail "client: $(cat "$PROG_TMP/client.out") server: $(tail -n 3 "$PROG_TMP/server.out")"
grep -q "^child: read $BYTES bytes after fork, all checked" "$PROG_TMP/client.out" ||
    prog_fail "the child's verdict is missing: $(cat "$PROG_TMP/client.out")"
srv_server_done
# Both processes print their counters at exit: the parent sent, the child read.
srv_wire_verdict "fork after data" "$PROG_TMP/client.out" $((2 * BYTES))
prog_note "OK: parent wrote, child read $BYTES bytes after fork, all checked"
