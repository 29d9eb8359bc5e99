#!/usr/bin/env bash
# sendfile(2) of a 16 MiB file on a full nonblocking socket, as nginx does
# (srv_sendfile.c): the reader starts only once the sender met EAGAIN; every
# call must return > 0 or -1/EAGAIN (0 reads as end of file) and move the
# offset (or the file position) by exactly what it sent; the file arrives
# intact (sha256), carried by the mode's route (srv_wire_verdict). rsocket:
# the framework's m_sendfile; preload: the kernel's sendfile under the
# preload, the reference.
# Usage: sendfile.sh plain|preload|rsocket offset|position
set -uo pipefail
PROG_NAME=servers.sendfile_nonblock
. "$NSTACK_SRC/test/lib/servers.sh"

how=${2:-offset}
P=$NSTACK_BUILD/test/servers/srv_sendfile
[ -x "$P" ] || prog_fail "$P not built"
srv_setup "$1" 18580
prog_random_file "$PROG_TMP/file.bin" $((16 * 1024 * 1024))
flag=$PROG_TMP/eagain
prog_server server "$P" serve "$PROG_ADDR" "$PROG_PORT" "$PROG_TMP/file.bin" "$flag" "$how"
srv_wait_banner server

srv_wire_start "$PROG_PORT"
srv_client timeout 90 "$P" fetch "$PROG_ADDR" "$PROG_PORT" "$flag" >"$PROG_TMP/got.bin" \
    2>"$PROG_TMP/fetch.err" || prog_fail "fetch failed: $(cat "$PROG_TMP/fetch.err" "$PROG_TMP/server.out")"
srv_server_done
want=$(prog_sha256 "$PROG_TMP/file.bin"); got=$(prog_sha256 "$PROG_TMP/got.bin")
[ "$want" = "$got" ] ||
    prog_fail "file differs: sha256 $got, want $want ($(stat -c %s "$PROG_TMP/got.bin") bytes): $(cat "$PROG_TMP/server.out")"
srv_wire_verdict "sendfile 16 MiB" "$PROG_TMP/fetch.err" $((16 * 1024 * 1024))
prog_note "OK ($how): $(grep '^sent' "$PROG_TMP/server.out"); sha256 ${want:0:16}... intact"
