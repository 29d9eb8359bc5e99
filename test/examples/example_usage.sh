#!/bin/bash
# Bad command lines: every example exits 2 with one line of reason (naming
# the program and the offending option) followed by its usage, before it
# touches any RDMA device. Needs no test hosts.
set -u
: "${NSTACK_RELEASE:?}"
status=0

# check PROGRAM EXPECTED_REGEX ARGS...
check() {
    local prog=$1 re=$2; shift 2
    local err rc
    err=$(timeout 20 "$NSTACK_RELEASE/bin/$prog" "$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -ne 2 ] || ! head -n1 <<<"$err" | grep -qE "^$prog: .*$re"; then
        echo "FAIL: $prog $* -> status $rc, output: $err"
        status=1
    else
        echo "PASS: $prog $* -> $(head -n1 <<<"$err")"
    fi
}

# check_bad_address PROGRAM: exits 1 naming the address.
check_bad_address() {
    local prog=$1 err rc
    err=$(timeout 20 "$NSTACK_RELEASE/bin/$prog" -c 192.168.21.x 2>&1 >/dev/null); rc=$?
    if [ "$rc" -ne 1 ] || ! grep -qE "^$prog: address '192.168.21.x'" <<<"$err"; then
        echo "FAIL: $prog -c 192.168.21.x -> status $rc, output: $err"
        status=1
    else
        echo "PASS: $prog -c 192.168.21.x -> $err"
    fi
}

for prog in rdma_write_read rdma_write_imm rdma_async_msg rdma_tcp_exchange; do  # rdma_errors: own options, see example_errors.sh
    [ -x "$NSTACK_RELEASE/bin/$prog" ] || { echo "FAIL: $prog not built"; status=1; continue; }
    check "$prog" "choose a mode"
    check "$prog" "option -p: expected 1..65535, got '0'" -s -p 0
    check "$prog" "option -n: expected" -c 127.0.0.1 -n many
    check "$prog" "unknown option" -s -x
    check "$prog" "unexpected argument 'extra'" -s extra
    check_bad_address "$prog"
done
check rdma_async_msg "option -w: at most 8 messages in flight, got 9" -c 127.0.0.1 -w 9
check rdma_errors "the local address \\(-a\\) is required"
check rdma_errors "bad option '-x'" -a 127.0.0.1 -x
exit $status
