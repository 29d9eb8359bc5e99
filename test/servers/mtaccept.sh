#!/usr/bin/env bash
# Two threads accept on one listener, each with its own epoll set
# (srv_mtaccept.c); 200 clients at once from the other host (rsfw_conns
# client) echo 64 KiB each, every byte checked. Bounded: a handshake that
# blocks a thread or makes one thread wait on the other fails the run at
# the server's deadline instead of hanging.
# Usage: mtaccept.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.mtaccept
. "$NSTACK_SRC/test/lib/servers.sh"

P=$NSTACK_BUILD/test/servers/srv_mtaccept
for p in "$P" "${SRV_CONNS:-}"; do [ -x "$p" ] || prog_fail "'$p' not built"; done
N=200; BYTES=65536
srv_setup "$1" 18880
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
prog_server server env SRV_TIMEOUT_S=90 "$P" "$PROG_ADDR" "$PROG_PORT" "$N" $((N * BYTES))
srv_wait_banner server

srv_conns_client "$N" "$BYTES"
srv_server_done
srv_wire_verdict "two accepting threads" "$PROG_TMP/client.out" $((2 * N * BYTES))
prog_note "OK: $(grep '^server:' "$PROG_TMP/server.out")"
