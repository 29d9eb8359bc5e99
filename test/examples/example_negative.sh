#!/bin/bash
# Negative cases of the RDMA examples: each must fail quickly, with a
# non-zero status and a one-line reason naming the program, never hang.
#
#   example_negative.sh no-server PROGRAM
#       client on host B, nothing listening on host A.
#   example_negative.sh small-server PROGRAM
#       the server's buffer (-S 4096) is smaller than the client's (-S 65536).
set -u
case_name=$1 prog=$2
: "${NSTACK_SRC:?}" "${NSTACK_RELEASE:?}"
. "$NSTACK_SRC/test/lib/netns.sh"

bin="$NSTACK_RELEASE/bin/$prog"
[ -x "$bin" ] || { echo "FAIL: $bin not built"; exit 1; }
export LD_LIBRARY_PATH="$NSTACK_RELEASE/lib64/softrdma"
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
*)
    echo "FAIL: unknown case $case_name"; exit 1 ;;
esac
