#!/usr/bin/env bash
# iperf3 client/server: a fixed byte count (-n) must be reported as sent by
# the client and as received by the server, and both ends must agree on the
# server's figure (all from --json).
# Usage: iperf3.sh plain|preload
set -uo pipefail
PROG_NAME=iperf3
. "$NSTACK_SRC/test/lib/programs.sh"

BYTES=$((32 * 1024 * 1024))
base=15201; [ "$1" = preload ] && base=15301
prog_setup "$1" "$base"

# -1: the server exits after one test, so its JSON is complete when it does.
prog_server server iperf3 -s -1 --json -B "$PROG_ADDR" -p "$PROG_PORT"
prog_wait_listen "$PROG_PORT"
prog_check_framework

prog_client timeout 60 iperf3 -c "$PROG_ADDR" -p "$PROG_PORT" -n "$BYTES" --json \
    >"$PROG_TMP/client.json" 2>"$PROG_TMP/client.err" ||
    prog_fail "client failed: $(cat "$PROG_TMP/client.err"; jq -r '.error // empty' "$PROG_TMP/client.json" 2>/dev/null)"
# With --json, iperf3 3.12 exits 0 even when it could not connect: the
# error is only in the JSON (any error fails, e.g. a getsockopt(TCP_INFO)
# the stack does not answer).
err=$(jq -r '.error // empty' "$PROG_TMP/client.json" 2>/dev/null)
[ -z "$err" ] || prog_fail "client failed: $err"

wait_until 30 sh -c "! kill -0 $PROG_SERVER_PID 2>/dev/null" ||
    prog_fail "server did not finish within 30 s after the client"

sent=$(jq -r '.end.sum_sent.bytes' "$PROG_TMP/client.json") || prog_fail "client JSON unreadable"
relayed=$(jq -r '.end.sum_received.bytes' "$PROG_TMP/client.json")
recv=$(jq -r '.end.sum_received.bytes' "$PROG_TMP/server.out") ||
    prog_fail "server JSON unreadable: $(head -c 400 "$PROG_TMP/server.out")"
bps=$(jq -r '.end.sum_received.bits_per_second' "$PROG_TMP/server.out")

[ "$sent" -ge "$BYTES" ] || prog_fail "client sent $sent bytes, asked for $BYTES"
# iperf3's server stops counting when the client's TEST_END arrives on the
# control connection, so bytes still queued in the socket are not counted:
# the server's figure may be lower than the client's, never higher, never 0.
[ "$recv" -gt 0 ] && [ "$recv" -le "$sent" ] ||
    prog_fail "server received $recv bytes, client sent $sent"
# The client learns the server's figure over the control connection.
[ "$relayed" = "$recv" ] || prog_fail "client reports server received $relayed, server says $recv"
prog_note "OK: $sent bytes sent, server received $recv, $(( ${bps%.*} / 1000000 )) Mbit/s"
