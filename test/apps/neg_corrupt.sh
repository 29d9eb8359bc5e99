#!/bin/bash
# neg_corrupt.sh: the checks catch bad data. Against the broken servers of
# bogus_echo, vc_common must exit 1 naming the fault: a flipped byte (exact
# message and offset), a short echo, a silent peer (idle timeout). A vs_*
# server must fail a client that stops early, and vc_serv_file must reject
# a wrong digest and a short file.
. "$(dirname "$0")/apps_lib.sh"
BOGUS=$NSTACK_BUILD/test/apps/bogus_echo
apps_setup

# expect_fail WHAT RC OUTFILE REGEX
expect_fail() {
    cat "$3"
    [ "$2" = 1 ] || fail "$1: exited $2, expected 1"
    expect_line "$3" "$4" "$1: reason"
}

bogus() {   # MODE PORT -> runs vc_common against bogus_echo MODE
    start_server_a "$WORK/bogus_$1.out" "$BOGUS" "$1" "$2" 100
    in_a "${APP[@]}" VS_TIMEOUT="${3:-30}" "$BIN/vc_common" -d 127.0.0.1 \
        -p "$2" -l 100 -t 10 >"$WORK/vc_$1.out" 2>&1
}

bogus flip 20001
expect_fail "flipped byte" $? "$WORK/vc_flip.out" \
    "FAIL: client 0 message 2: echo mismatch at byte 5 \(expected 0x[0-9a-f]{2}, got 0x[0-9a-f]{2}\)"
bogus short 20002
expect_fail "short echo" $? "$WORK/vc_short.out" \
    "FAIL: client 0 message 0: short echo: peer closed after 50 of 100 bytes"
bogus silent 20003 2
expect_fail "silent peer" $? "$WORK/vc_silent.out" \
    "FAIL: client 0 message 0: short echo: timeout after 2 s waiting to receive"

# The server side: a client that sends 5 of the 10 messages the server expects.
start_server_a "$WORK/srv.out" "$BIN/vs_epoll" -s 127.0.0.1 -r 20004 -l 100 -t 10 -n 1
in_a "${APP[@]}" "$BIN/vc_common" -d 127.0.0.1 -p 20004 -l 100 -t 5 >"$WORK/vc5.out" 2>&1 ||
    fail "vc_common -t 5 should pass on its own side"
server_status
expect_fail "server sees an early close" $? "$WORK/srv.out" \
    "^conn 0 done: receive 5 messages .*result=FAIL : peer closed after 5 of 10 messages"
expect_line "$WORK/srv.out" "result=FAIL$" "server summary FAIL"

# File receiver: right length, wrong digest; then a stream cut short.
send_raw() {   # PORT PRINTF_FORMAT
    in_a bash -c "printf '$2' >/dev/tcp/127.0.0.1/$1"
}
start_server_a "$WORK/fs1.out" "$BIN/vc_serv_file" tcp 127.0.0.1 20005 "$WORK/r1"
send_raw 20005 'NSTF\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x0a0123456789\x01\x02\x03\x04\x05\x06\x07\x08'
server_status
expect_fail "wrong digest" $? "$WORK/fs1.out" "FAIL: digest mismatch: sender fnv1a64=0102030405060708"
expect_line "$WORK/fs1.out" "^Result = Fail$" "receiver Result = Fail"
start_server_a "$WORK/fs2.out" "$BIN/vc_serv_file" tcp 127.0.0.1 20006 "$WORK/r2"
send_raw 20006 'NSTF\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x640123456789'
server_status
expect_fail "short file" $? "$WORK/fs2.out" "FAIL: file shorter than the announced 100 bytes \(chunk at byte 0: peer closed after 10 of 100 bytes\)"
echo "PASS: corrupted, short and missing data are detected"
