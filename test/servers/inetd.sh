#!/usr/bin/env bash
# inetd style (srv_inetd.c): accept, fork, the child makes the connection
# its stdin/stdout and execs /bin/cat, which echoes it. 8 clients at once
# from the other host send 1 MiB each of a per-connection pattern and
# check every echoed byte (rsfw_conns client); every child must exit 0.
# Usage: inetd.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.inetd
. "$NSTACK_SRC/test/lib/servers.sh"

P=$NSTACK_BUILD/test/servers/srv_inetd
for p in "$P" "${SRV_CONNS:-}"; do [ -x "$p" ] || prog_fail "'$p' not built"; done
N=8; BYTES=$((1024 * 1024))
srv_setup "$1" 18680
prog_server server "$P" "$PROG_ADDR" "$PROG_PORT" "$N" /bin/cat
srv_wait_banner server

srv_wire_start "$PROG_PORT"
srv_client timeout 90 "$SRV_CONNS" client "$PROG_ADDR" "$PROG_PORT" "$N" "$BYTES" \
    >"$PROG_TMP/client.out" 2>&1 || prog_fail "client: $(tail -n 3 "$PROG_TMP/client.out") server: $(tail -n 3 "$PROG_TMP/server.out")"
grep -q "PASS: $N connections x $BYTES bytes echoed and verified" "$PROG_TMP/client.out" ||
    prog_fail "client verdict missing: $(cat "$PROG_TMP/client.out")"
srv_wait_gone "$PROG_SERVER_PID" 30 || prog_fail "server did not finish: $(cat "$PROG_TMP/server.out")"
wait "$PROG_SERVER_PID" || prog_fail "server: $(cat "$PROG_TMP/server.out")"
srv_wire_verdict "inetd /bin/cat" "$PROG_TMP/client.out" $((2 * N * BYTES))
prog_note "OK: $N connections served by exec'd /bin/cat, $BYTES bytes each echoed and verified"
