#!/bin/bash
# Negative cases of the RDMA examples: each must fail quickly, with a
# non-zero status and a one-line reason naming the program, never hang.
#
#   example_negative.sh no-server PROGRAM
#       client on host B, nothing listening on host A.
#   example_negative.sh small-server PROGRAM
#       the server's buffer (-S 4096) is smaller than the client's (-S 65536).
#   example_negative.sh client-dies rdma_async_msg
#       the client is killed mid-run: the server must notice and fail with
#       the count of messages it got, not wait for the rest.
set -u
case_name=$1 prog=$2
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}"
. "$NSTACK_SRC/test/lib/netns.sh"

bin="$NSTACK_RELEASE/bin/$prog"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
# hardware-exact work queue accounting (see doc/softrdma.md)
export SOFTRDMA_STRICT_SQ=${SOFTRDMA_STRICT_SQ:-1}
netns_setup || { echo "FAIL: test hosts"; exit 1; }
out=$(mktemp -d /tmp/example_neg.XXXXXX)
trap 'netns_cleanup; rm -rf "$out"' EXIT

fail() {
    echo "FAIL: $*"
    for f in "$out"/*; do echo "--- ${f##*/}"; cat "$f"; done
    exit 1
}

# expect_failure EXPECTED_REGEX CMD...: CMD exits 1 (not killed by the
# timeout guard) with exactly one line on stderr naming the program.
expect_failure() {
    local re=$1; shift
    "$@" >"$out/client.out" 2>"$out/client.err"; rc=$?
    [ "$rc" -eq 124 ] && fail "client hung (killed by the timeout guard)"
    [ "$rc" -eq 1 ] || fail "client exited with status $rc, expected 1"
    [ "$(wc -l <"$out/client.err")" -eq 1 ] || fail "expected one line of reason on stderr"
    grep -qE "^$prog: .*($re)" "$out/client.err" || fail "reason does not match /$re/"
    echo "PASS: $case_name $prog: $(cat "$out/client.err")"
}

case "$case_name" in
no-server)
    # rdma_cm reports REJECTED/UNREACHABLE; the TCP example a refused connect.
    expect_failure "REJECTED|UNREACHABLE|CONNECT_ERROR|ADDR_ERROR|ROUTE_ERROR|refused|connection failed" \
        in_b timeout 60 "$bin" -c "$IP_A" -t 30
    ;;
small-server)
    bg_a timeout 120 "$bin" -s -a "$IP_A" -S 4096 -t 90 >"$out/server.out" 2>"$out/server.err"
    wait_file_match "$out/server.out" "listening on" 30 || fail "server did not start listening"
    expect_failure "server buffer has 4096 bytes" in_b timeout 60 "$bin" -c "$IP_A" -S 65536 -t 30
    ;;
client-dies)
    bg_a timeout 120 "$bin" -s -a "$IP_A" -k 1 -t 90 >"$out/server.out" 2>"$out/server.err"
    server_pid=$BG_PID
    wait_file_match "$out/server.out" "listening on" 30 || fail "server did not start listening"
    bg_b "$bin" -c "$IP_A" -n 10000000 -w 1 -t 90 >"$out/client.out" 2>"$out/client.err"
    wait_file_match "$out/server.out" "established" 30 || fail "client did not connect"
    kill -9 "$BG_PID"
    wait "$server_pid"; rc=$?
    [ "$rc" -eq 124 ] && fail "server hung after the client died"
    [ "$rc" -eq 1 ] || fail "server exited with status $rc, expected 1"
    [ "$(wc -l <"$out/server.err")" -eq 1 ] || fail "expected one line of reason on stderr"
    grep -qE "^$prog: (client [0-9]+ disconnected after [0-9]+ of 10000000 messages|.*work completion error)" \
        "$out/server.err" || fail "server gave no reason"
    echo "PASS: $case_name $prog: $(cat "$out/server.err")"
    ;;
*)
    echo "FAIL: unknown case $case_name"; exit 1 ;;
esac
