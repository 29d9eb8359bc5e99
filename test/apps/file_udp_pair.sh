#!/bin/bash
# file_udp_pair.sh MODE [LOSS%]: the UDP form of the file pair with DMM's
# arguments (vc_serv_file serv udp IP PORT FILE CHUNK, vc_cli_file cli udp
# SRV PORT CLI_IP FILE TARGET CHUNK) sends a 3 MiB + 123 byte random file
# in 1000-byte chunks. Asserts: both print "Result = Success", equal
# digests, the received file is byte-identical (cmp). With LOSS, both
# apps discard that share of the datagrams they receive (FU_TEST_DROP: the
# test hosts have no netem) and the sender must have retransmitted (the
# acknowledgement scheme is what made the file arrive).
# APPS_STACK=rsocket: the file's bytes went over the rsocket stack and
# none over the kernel stack, and the kernel UDP packets on the port
# (tcpdump on host B) are first contact only: fewer than 1 % of the chunks.
. "$(dirname "$0")/apps_lib.sh"
MODE=$1; LOSS=${2:-0}
apps_setup
where_ips "$MODE"
SIZE=$((3 * 1024 * 1024 + 123)); CHUNK=1000
head -c "$SIZE" /dev/urandom >"$WORK/file.txt"
export FU_TEST_DROP=$LOSS

if [ "${APPS_STACK:-kernel}" = rsocket ]; then
    . "$NSTACK_SRC/test/lib/wirecheck.sh"
    wire_fail() { fail "$@"; }
    wire_capture_start "$NS_B" eth0 20000 "$WORK" "udp port 20000"
fi
start_server_a "$WORK/server.out" "$BIN/vc_serv_file" serv udp "$SRV_IP" 20000 \
    "$WORK/receive_file.txt" "$CHUNK"
$CLIENT_RUN "${APP[@]}" "$BIN/vc_cli_file" cli udp "$SRV_IP" 20000 "$CLI_IP" \
    "$WORK/file.txt" target.txt "$CHUNK" >"$WORK/client.out" 2>&1
crc=$?
server_status; src=$?
cat "$WORK/client.out" "$WORK/server.out"

expect_file_result "$crc" "$src"
expect_line "$WORK/server.out" '^sender target name "target.txt"' "target name announced"
if [ "$LOSS" != 0 ]; then
    rtx=$(sed -n 's/.*(\([0-9]*\) retransmitted chunks).*/\1/p' "$WORK/client.out")
    [ "${rtx:-0}" -gt 0 ] || fail "with $LOSS% loss the sender retransmitted nothing"
fi
if [ "${APPS_STACK:-kernel}" = rsocket ]; then
    wire_capture_stop
    [ "$WIRE_DROPPED" -eq 0 ] || fail "the capture dropped $WIRE_DROPPED packets: cannot tell"
    chunks=$(( (SIZE + CHUNK - 1) / CHUNK ))
    [ "$WIRE_BIG" -lt $((chunks / 100)) ] ||
        fail "$WIRE_BIG kernel UDP packets on port 20000 for $chunks chunks: the data did not move to UD"
    echo "kernel UDP packets on the port: $WIRE_BIG (first contact)"
    for f in client server; do
        rs=$(stats_exit_bytes "$WORK/$f.out" rsocket)
        kb=$(stats_exit_bytes "$WORK/$f.out" kernel)
        expect_bulk_on rsocket "$SIZE" "$rs" "vc_${f} file bytes"
        [ "$kb" = 0 ] || fail "$f: $kb bytes over the kernel stack"
    done
fi
echo "PASS: UDP file pair $MODE loss $LOSS%"
