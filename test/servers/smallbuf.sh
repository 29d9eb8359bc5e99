#!/usr/bin/env bash
# Static-file transfers with the small RDMA buffers of a server worker
# without CAP_IPC_LOCK (16 KiB per direction, rs_memlock.c; forced here
# with RS_MEM_DEFAULT/RS_WMEM_DEFAULT): srv_smallbuf.c's nonblocking
# EPOLLET server answers CLIENTS x ROUNDS requests of sizes that are not
# multiples of the buffers by sendfile (offset and position), writev and
# send, to slow readers; every byte is checked and a transfer that stops
# making progress fails (the curl of nginx/Apache that stopped ~49 KB
# before the end of an 8 MiB file).
# Usage: smallbuf.sh plain|preload|rsocket [small|big client buffers] [CLIENTS ROUNDS]
set -uo pipefail
PROG_NAME=servers.smallbuf
. "$NSTACK_SRC/test/lib/servers.sh"

cbuf=${2:-big}
clients=${3:-6}
rounds=${4:-200}
P=$NSTACK_BUILD/test/servers/srv_smallbuf
[ -x "$P" ] || prog_fail "$P not built"
srv_setup "$1" 18680
prog_random_file "$PROG_TMP/file.bin" $((18 * 1024 * 1024))
chmod a+r "$PROG_TMP/file.bin"
# small client buffers: the same 16 KiB, by the tunables
SMALL=(RS_MEM_DEFAULT=16384 RS_WMEM_DEFAULT=16384)
# The server as a worker runs: www-data, RLIMIT_MEMLOCK 8 MiB, no
# CAP_IPC_LOCK, on a NIC without on-demand paging (SOFTRDMA_ODP=0; with
# it the buffers would be full-size): rs_memlock.c sizes its buffers to
# 16 KiB per direction.
prog_server server env SOFTRDMA_ODP=0 prlimit --memlock=$((8 * 1024 * 1024)) \
    setpriv --reuid=www-data --regid=www-data --clear-groups --inh-caps=-all \
    "$P" serve "$PROG_ADDR" "$PROG_PORT" "$PROG_TMP/file.bin"
srv_wait_banner server

cenv=()
[ "$cbuf" = small ] && cenv=("${SMALL[@]}")
srv_wire_start "$PROG_PORT"
t0=$(date +%s)
srv_client timeout 280 env "${cenv[@]}" "$P" fetch "$PROG_ADDR" "$PROG_PORT" "$PROG_TMP/file.bin" \
    "$clients" "$rounds" >"$PROG_TMP/fetch.out" 2>"$PROG_TMP/fetch.err" ||
    prog_fail "fetch failed: $(grep -v 'stats:' "$PROG_TMP/fetch.err" | head -5) $(tail -3 "$PROG_TMP/server.out")"
kill -0 "$PROG_SERVER_PID" 2>/dev/null || prog_fail "server died: $(tail -3 "$PROG_TMP/server.out")"
# the condition under test: the server's buffers were the small ones
[ "$PROG_MODE" != rsocket ] || grep -q 'RDMA buffers of 16 KiB per direction' "$PROG_TMP/server.out" ||
    prog_fail "the server did not run with 16 KiB RDMA buffers: $(head -5 "$PROG_TMP/server.out")"
srv_wire_verdict "smallbuf $clients x $rounds" "$PROG_TMP/fetch.err" $((1024 * 1024))
prog_note "OK ($cbuf client buffers): $(cat "$PROG_TMP/fetch.out") in $(( $(date +%s) - t0 )) s"
