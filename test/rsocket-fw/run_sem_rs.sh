#!/bin/bash
# run_sem_rs.sh [--no-data] PROGRAM [CASE...] - a semantic test program of test/framework
# in mode "preload-rsocket": run_sem.sh's preload-shadow convention, with
# the test subnets (192.168.21.0/24, fd21::/64) routed to the rsocket stack
# over the software RDMA device. The program runs on namespace host A
# against its own 192.168.21.180 / fd21::180. Afterwards the framework's
# counters (NSTACK_STATS=1, every process) must show that rsocket carried
# data in both directions (with --no-data, for cases that move no data such
# as a refused connect: that rsocket sockets were made).
. "$(dirname "$0")/rsfw_lib.sh"
need_data=1
[ "${1:-}" = --no-data ] && { need_data=0; shift; }
prog=$1; shift
[ -x "$prog" ] || fail "program $prog not built"
rsfw_setup
cd "$WORK" || fail "cd $WORK"
SEM_ADDR=$IP_A SEM_ADDR6=$IP6_A in_a "${RS_ENV[@]}" "$prog" "$@" 2>"$WORK/stderr"
rc=$?
grep -v ': stats: stack ' "$WORK/stderr" >&2
[ $rc -eq 0 ] || fail "$(basename "$prog") $* exited $rc"
expect_stack "$WORK/stderr" rsocket sockets 1 "$(basename "$prog") $*"
if [ $need_data = 1 ]; then
    expect_stack "$WORK/stderr" rsocket tx_bytes 1 "$(basename "$prog") $*"
    expect_stack "$WORK/stderr" rsocket rx_bytes 1 "$(basename "$prog") $*"
fi
echo "PASS: $(basename "$prog") $* over rsocket (tx $(stack_count "$WORK/stderr" rsocket tx_bytes) rx $(stack_count "$WORK/stderr" rsocket rx_bytes) bytes)"
