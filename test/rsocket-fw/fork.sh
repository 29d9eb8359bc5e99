#!/bin/bash
# fork.sh: fork with rsocket sockets through the framework (rsfw_fork.c):
# the parent's connection keeps working after fork and after the child
# closed its copy; a socket the child creates works; the child's calls on
# the inherited socket fail at once with an error (no hang). The server
# (rsfw_conns, host B) checks the byte total: 3 parent rounds + 1 child round.
# Direct module sockets (NSTACK_ANCHOR=0 on both ends), whose fork
# behaviour this asserts: the TCP-anchored default returns an upgraded
# connection to TCP before the fork instead, so that the child can use it
# (servers.forkclient.rsocket, servers.forkdown.*.rsocket; doc/fork.md).
. "$(dirname "$0")/rsfw_lib.sh"
B=$NSTACK_BUILD/test/rsocket-fw
for p in rsfw_conns rsfw_fork; do [ -x "$B/$p" ] || fail "$B/$p not built"; done
rsfw_setup
ROUND=65536
bg_b "${RS_ENV[@]}" NSTACK_ANCHOR=0 "$B/rsfw_conns" server "$IP_B" 20000 2 $((4 * ROUND)) >"$WORK/server.out" 2>&1
srv=$BG_PID
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not listen"; }
in_a "${RS_ENV[@]}" NSTACK_ANCHOR=0 RDMAV_FORK_SAFE=1 "$B/rsfw_fork" "$IP_B" 20000 >"$WORK/client.out" 2>&1
crc=$?
wait_exit "$srv" 60; src=$?
cat "$WORK/client.out" "$WORK/server.out"
[ "$crc" = 0 ] || fail "rsfw_fork exited $crc"
[ "$src" = 0 ] || fail "server exited $src"
expect_line "$WORK/client.out" "^child: send on inherited socket: E" "child send error"
expect_line "$WORK/client.out" "^child: own connection echoed $ROUND bytes" "child's own connection"
expect_line "$WORK/client.out" "PASS" "rsfw_fork verdict"
expect_line "$WORK/server.out" "^server: 2 connections, $((4 * ROUND)) bytes echoed" "server totals"
# Parent and child each exit with their own counters: two rsocket connects.
expect_stack "$WORK/client.out" rsocket connect 2 "parent + child"
expect_stack "$WORK/client.out" rsocket tx_bytes $((4 * ROUND)) "parent + child"
echo "PASS: fork with rsocket sockets"
