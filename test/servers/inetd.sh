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

srv_conns_client "$N" "$BYTES"
srv_server_done
srv_wire_verdict "inetd /bin/cat" "$PROG_TMP/client.out" $((2 * N * BYTES))
prog_note "OK: $N connections served by exec'd /bin/cat, $BYTES bytes each echoed and verified"
