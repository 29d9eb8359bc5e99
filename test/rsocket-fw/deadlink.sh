#!/bin/bash
# deadlink.sh ROUTE CASE: a dead (or briefly broken) link between the test
# hosts under an established connection (issue 10), rsfw_deadlink.c's
# cases: keepalive, keepalive6, user_timeout, send_user_timeout, outage. ROUTE: kernel (the kernel subnet
# 192.168.22.0/24 through the preload: the reference), rsocket (the
# anchored rsocket route, 192.168.21.0/24), direct (the same with
# NSTACK_ANCHOR=0: direct module sockets). The link is host A's veth end
# taken down from host B's client (host B's end loses its carrier), as a
# cable pulled; the echo server runs on host A. The client's
# "detected: ..." line is the figure of doc/rsocket-framework.md's table.
. "$(dirname "$0")/rsfw_lib.sh"
route=$1; what=$2; how=${3:-down}     # down: host A's veth end down; del: the veth pair deleted
P=$NSTACK_BUILD/test/rsocket-fw/rsfw_deadlink
[ -x "$P" ] || fail "$P not built"
case $route in
kernel)  host_ip=$IP2_A; extra=() ;;
rsocket) host_ip=$IP_A;  extra=() ;;
direct)  host_ip=$IP_A;  extra=(NSTACK_ANCHOR=0) ;;
*) fail "unknown route $route" ;;
esac
rsfw_setup
PORT=$((23000 + RANDOM % 1000))
bg_a "${RS_ENV[@]}" "${extra[@]}" "$P" server "$PORT" >"$WORK/server.out" 2>&1
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not listen"; }
down="ip -n $NS_A link set eth0 down"
[ "$how" = del ] && down="ip -n $NS_A link del eth0"     # both ends of the pair vanish, as with A's namespace
in_b "${RS_ENV[@]}" "${extra[@]}" LINK_DOWN="$down" \
    LINK_UP="ip -n $NS_A link set eth0 up" timeout 60 "$P" client "$host_ip" "$PORT" "$what" \
    >"$WORK/client.out" 2>&1
rc=$?
cat "$WORK/client.out"
[ $rc = 0 ] || { echo "--- server:"; cat "$WORK/server.out"; fail "$route $what: client exited $rc"; }
expect_line "$WORK/client.out" "^detected: " "$route $what: detection line"
if [ "$route" = kernel ]; then
    expect_stack_zero "$WORK/client.out" rsocket sockets "$route $what"
else
    expect_stack "$WORK/client.out" rsocket tx_bytes 1 "$route $what"
fi
echo "PASS: deadlink $route $what ($how): $(grep '^detected: ' "$WORK/client.out")"
