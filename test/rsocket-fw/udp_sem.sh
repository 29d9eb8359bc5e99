#!/bin/bash
# udp_sem.sh FAMILY: rsfw_udp_sem (socket semantics of datagram sockets:
# sendto/recvfrom with source, EMSGSIZE, MSG_DONTWAIT, O_NONBLOCK,
# FIONREAD, MSG_PEEK, MSG_TRUNC, iovecs, epoll, connect and a stranger's
# datagram dropped, SO_RCVBUF) on host B's rsocket address, under the
# preload; the counters must show the datagrams on the rsocket stack.
. "$(dirname "$0")/rsfw_lib.sh"
PROG=$NSTACK_BUILD/test/rsocket-fw/rsfw_udp_sem
[ -x "$PROG" ] || fail "$PROG not built"
rsfw_setup
if [ "${1:-4}" = 6 ]; then IP=$IP6_B; else IP=$IP_B; fi
rs_b timeout 60 "$PROG" "$IP" >"$WORK/out" 2>&1; rc=$?
cat "$WORK/out"
[ "$rc" = 0 ] || fail "rsfw_udp_sem exited $rc"
expect_line "$WORK/out" "^PASS$" "verdict"
expect_stack "$WORK/out" rsocket tx_bytes 2000 "datagrams"
expect_stack_zero "$WORK/out" kernel tx_bytes "datagrams"
echo "PASS: datagram semantics IPv${1:-4} on rsocket"
