#!/usr/bin/env bash
# node.js's HTTP server (libuv's epoll loop; libuv closes every descriptor
# with syscall(SYS_close), not close()) as a user runs it: a 4 MiB GET three
# times (sha256), a 1 MiB POST (count and sum), ab with keep-alive and ab
# with a new connection per request, 0 failures each; the wire and counters
# say which route carried the bytes.
# Usage: node.sh plain|preload|rsocket
set -uo pipefail
PROG_NAME=servers.node
. "$NSTACK_SRC/test/lib/servers.sh"
command -v node >/dev/null || prog_fail "node not installed (tools/deps.sh: nodejs)"
command -v ab >/dev/null || prog_fail "ab not installed (tools/deps.sh: apache2-utils)"
srv_setup "$1" 18080
prog_server node node "$NSTACK_SRC/test/servers/node_server.js" "$PROG_ADDR" "$PROG_PORT"
prog_wait_listen "$PROG_PORT"

srv_http_big_and_post "http://$PROG_ADDR:$PROG_PORT"
srv_ab_both "http://$PROG_ADDR:$PROG_PORT/"
srv_wire_verdict "node" "$PROG_TMP/curl.1.err" $((4 << 20)) "$(srv_server_bytes)"
prog_note "OK: 3 x 4 MiB GET intact, 1 MiB POST, ab $(awk '/^Requests per second/ { printf "%s ", $4 }' "$PROG_TMP/ab.keepalive" "$PROG_TMP/ab.close")req/s (keep-alive, new connections)"
