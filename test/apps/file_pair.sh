#!/bin/bash
# file_pair.sh MODE: vc_cli_file sends a 3 MiB + 123 byte random file to
# vc_serv_file (DMM's TCP form). Asserts: both print "Result = Success",
# the receiver's digest equals the sender's, and the received file is
# byte-identical (cmp) to the sent one (APPS_STACK=rsocket: and that it
# went over the rsocket stack).
. "$(dirname "$0")/apps_lib.sh"
MODE=$1
apps_setup
where_ips "$MODE"
SIZE=$((3 * 1024 * 1024 + 123))
head -c "$SIZE" /dev/urandom >"$WORK/file.txt"

start_server_a "$WORK/server.out" "$BIN/vc_serv_file" tcp "$SRV_IP" 20000 "$WORK/receive_file.txt"
$CLIENT_RUN "${APP[@]}" "$BIN/vc_cli_file" tcp "$SRV_IP" 20000 \
    "$WORK/file.txt" "$CLI_IP" >"$WORK/client.out" 2>&1
crc=$?
server_status; src=$?
cat "$WORK/client.out" "$WORK/server.out"

expect_file_result "$crc" "$src"
# header 16 + file + digest 8 one way, the verdict byte back
wire=$((SIZE + 24))
expect_stack_bytes "$WORK/client.out" "$wire" 1 vc_cli_file
expect_stack_bytes "$WORK/server.out" 1 "$wire" vc_serv_file
echo "PASS: file pair $MODE"
