#!/bin/bash
# udp_echo.sh FAMILY SOCKETS COUNT [bad]: UDP echo over the rsocket route
# (datagram rsockets) between the test hosts. The server (host A, one
# socket) echoes to SOCKETS client sockets of one process on host B (many
# sockets, many peers on one socket); after warm-up round trips per socket
# until one round crosses without kernel UDP (first contact goes over UDP,
# as librdmacm's protocol has it, until the peer's address handle is made),
# COUNT round trips per socket with every byte checked must cross the
# wire with ZERO kernel UDP packets on the port (tcpdump on host B's
# interface), and the exit counters must show the bytes on the rsocket
# stack and none on the kernel stack. FAMILY 4 or 6. With "bad", a plain
# kernel UDP sender first throws malformed first-contact datagrams at the
# server (bad tag, version, length, family, no header): none may reach the
# application (the server fails on any datagram not from an echo client)
# and the echo must still work.
. "$(dirname "$0")/rsfw_lib.sh"
. "$NSTACK_SRC/test/lib/wirecheck.sh"
wire_fail() { fail "$@"; }
FAM=${1:-4}; SOCKS=${2:-1}; COUNT=${3:-200}; BAD=${4:-}
PY=$RSFW_DIR/udp_echo.py
rsfw_setup
if [ "$FAM" = 6 ]; then SRV=$IP6_A; CLI=$IP6_B; else SRV=$IP_A; CLI=$IP_B; fi
PORT=7000

bg_a "${RS_ENV[@]}" python3 "$PY" serve "$SRV" $PORT "$SOCKS" >"$WORK/server.out" 2>&1
srv=$BG_PID
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not start"; }
if [ -n "$BAD" ]; then
    in_b python3 "$PY" bad "$SRV" $PORT >"$WORK/bad.out" 2>&1 || { cat "$WORK/bad.out"; fail "bad sender"; }
fi
bg_b "${RS_ENV[@]}" python3 "$PY" client "$SRV" $PORT "$CLI" "$SOCKS" "$COUNT" "$WORK/go" \
    >"$WORK/client.out" 2>&1
cli=$BG_PID
wait_file_match "$WORK/client.out" "^warm 3" 60 || { cat "$WORK/client.out" "$WORK/server.out"; fail "client did not warm up"; }
# Every peer's address is resolved by now. A resolution needs no port of
# the RDMA UDP port space: the only plain (not REUSEADDR) claims there in
# host B's namespace are the sockets' own, one per UD QP. (A resolution's
# claim used to stay on a random port, from which the kernel may later
# give a new UDP socket its port: that socket's QP could not bind it and
# its data stayed on kernel UDP.)
b_netns=$(in_b stat -L -c %i /proc/self/ns/net)
plain=$(find "$SOFTRDMA_FABRIC/cm/udp-port" -path "*/${b_netns}_*/*" ! -name 'r*' 2>/dev/null | wc -l)
[ "$plain" -eq "$SOCKS" ] || fail "host B's RDMA UDP port space holds $plain plain claims, expected $SOCKS (one per socket): $(find "$SOFTRDMA_FABRIC/cm/udp-port" -path "*/${b_netns}_*/*" ! -name 'r*' | head -3 | tr '\n' ' ')"
# First contact is over when a whole warm-up round (every socket) crossed
# without a kernel UDP packet: the peers' address handles are made (slower
# on a loaded machine). At most 20 more rounds.
settled=0
for r in $(seq 4 23); do
    wire_capture_start "$NS_B" eth0 $PORT "$WORK" "udp port $PORT"
    touch "$WORK/go.more"
    wait_file_match "$WORK/client.out" "^warm $r\$" 60 || { cat "$WORK/client.out"; fail "client did not do warm-up round $r"; }
    wire_capture_stop
    [ "$WIRE_BIG" -eq 0 ] && [ "$WIRE_DROPPED" -eq 0 ] && { settled=1; break; }
done
[ $settled = 1 ] || { cat "$WORK/client.out" "$WORK/server.out"
    fail "first contact never ended: kernel UDP packets in every warm-up round"; }
echo "first contact settled after $((r - 1)) warm-up rounds"
wire_capture_start "$NS_B" eth0 $PORT "$WORK" "udp port $PORT"
touch "$WORK/go"
wait_exit "$cli" 120; crc=$?
wire_capture_stop
wait_exit "$srv" 30; src=$?
cat "$WORK/client.out" "$WORK/server.out"
[ "$crc" = 0 ] || fail "client exited $crc"
[ "$src" = 0 ] || fail "server exited $src"
expect_line "$WORK/client.out" "^PASS: $SOCKS sockets x $COUNT round trips" "client verdict"
expect_line "$WORK/server.out" "^served [0-9]+ datagrams from $SOCKS peers" "server saw every peer"
[ "$WIRE_DROPPED" -eq 0 ] || fail "the capture dropped $WIRE_DROPPED packets: cannot tell"
[ "$WIRE_BIG" -eq 0 ] ||
    fail "$WIRE_BIG kernel UDP packets on port $PORT after first contact, e.g.: $(tcpdump -r "$WIRE_FILE" -n -c 3 2>/dev/null | tr '\n' ' ')"
expect_stack "$WORK/client.out" rsocket tx_bytes $((SOCKS * COUNT)) client
expect_stack "$WORK/server.out" rsocket rx_bytes $((SOCKS * COUNT)) server
expect_stack_zero "$WORK/client.out" kernel tx_bytes client
expect_stack_zero "$WORK/server.out" kernel tx_bytes server
if [ -n "$BAD" ]; then    # one line naming the cause and the sender, then only counted
    expect_line "$WORK/server.out" "WAR: rsocket: datagram socket: dropped a datagram \(from $CLI port [0-9]+\): bad first-contact header" "the drop is logged"
    [ "$(grep -c 'dropped a datagram' "$WORK/server.out")" = 1 ] || fail "more than one drop line"
fi
echo "PASS: UDP echo IPv$FAM, $SOCKS sockets x $COUNT, zero kernel UDP packets after first contact${BAD:+, malformed datagrams dropped}"
