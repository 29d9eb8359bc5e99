#!/bin/bash
# edge_cases.sh: command-line handling. Without -u/-x the pair still works
# (DMM's client divided by zero there); bad values are usage errors (exit
# 2, one line naming the flag); a server nobody connects to gives up after
# the idle timeout with exit 1.
. "$(dirname "$0")/apps_lib.sh"
apps_setup

start_server_a "$WORK/s.out" "$BIN/vs_select" -s 127.0.0.1 -r 20001 -t 300 -l 64
in_a "${APP[@]}" "$BIN/vc_common" -d 127.0.0.1 -p 20001 -t 300 -l 64 >"$WORK/c.out" 2>&1 ||
    { cat "$WORK/c.out"; fail "vc_common without -u failed"; }
server_status || fail "vs_select without -u failed"
expect_line "$WORK/c.out" "^client 0 send 300 , sendtime" "client final line"
grep -q sendcount "$WORK/c.out" && fail "sendcount printed without -x/-u"

usage() {   # REGEX APP ARGS...
    local re=$1; shift
    in_a "${APP[@]}" "$BIN/$1" "${@:2}" >"$WORK/u.out" 2>&1
    local rc=$?
    [ "$rc" = 2 ] || { cat "$WORK/u.out"; fail "$* exited $rc, expected 2"; }
    expect_line "$WORK/u.out" "$re" "$*: diagnostic"
}
usage '-l: "70000": expected a number in 1\.\.65536' vc_common -d 127.0.0.1 -l 70000
usage '-d: destination IP is required' vc_common -p 1
usage '-d: "300.1.1.1": not an IPv4 or IPv6 address' vc_common -d 300.1.1.1
usage '-f: "0": expected a number' vs_epoll -f 0
usage '--timeout: "x": timeout must be seconds' vs_poll --timeout=x
VS_TIMEOUT=-1 usage 'VS_TIMEOUT: "-1": timeout must be seconds' vs_common
usage 'chunk "0": expected a number in 1\.\.65000' vc_serv_file serv udp 127.0.0.1 1 "$WORK/f" 0
usage 'usage: vc_serv_file \[serv\] udp' vc_serv_file udp 127.0.0.1 1 f
usage 'usage: vc_cli_file \[cli\] udp' vc_cli_file cli udp 127.0.0.1 1 127.0.0.1 f t
usage 'usage: vc_cli_file \[cli\] tcp' vc_cli_file tcp 127.0.0.1
usage '-t: "abc": expected a number' fork_client -d 127.0.0.1 -t abc

in_a "${APP[@]}" "$BIN/vs_epoll" -s 127.0.0.1 -r 20002 --timeout=1 >"$WORK/idle.out" 2>&1
rc=$?
[ "$rc" = 1 ] || fail "idle vs_epoll exited $rc, expected 1"
expect_line "$WORK/idle.out" "FAIL: accepted 0 of 1 connections: timeout after 1 s waiting for a connection" "idle server reason"
echo "PASS: edge cases"
