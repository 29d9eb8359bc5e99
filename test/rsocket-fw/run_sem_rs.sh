#!/bin/bash
# run_sem_rs.sh [--no-data | --ll N] PROGRAM [CASE...] - a semantic test program of test/framework
# in mode "preload-rsocket": run_sem.sh's preload-shadow convention, with
# the test subnets (192.168.21.0/24, fd21::/64) routed to the rsocket stack
# over the software RDMA device. The program runs on namespace host A
# against its own 192.168.21.180 / fd21::180. Afterwards the framework's
# counters (NSTACK_STATS=1, every process) must show that rsocket carried
# data in both directions (with --no-data, for cases that move no data such
# as a refused connect: that rsocket sockets were made).
# With --ll N the route has the long-lived policy ("upgrade_after_bytes": N):
# connections that carry less stay in their TCP phase, where a blocking
# receive waits in the dispatcher (anchor_ll.c); then the exit report must
# name that route, and rsocket need not carry data.
. "$(dirname "$0")/rsfw_lib.sh"
. "$NSTACK_SRC/test/lib/nstack_env.sh"
need_data=1 ll=
[ "${1:-}" = --no-data ] && { need_data=0; shift; }
[ "${1:-}" = --ll ] && { ll=$2; need_data=0; shift 2; }
prog=$1; shift
[ -x "$prog" ] || fail "program $prog not built"
rsfw_setup
cd "$WORK" || fail "cd $WORK"
env_cfg=()
if [ -n "$ll" ]; then
    NSTACK_UPGRADE_AFTER=$ll nstack_write_config "$WORK" rsocket
    env_cfg=("NSTACK_MOD_CFG_FILE=$WORK/module_config.json" "NSTACK_MOD_CFG_RD=$WORK/rd_config.json")
fi
SEM_ADDR=$IP_A SEM_ADDR6=$IP6_A in_a "${RS_ENV[@]}" "${env_cfg[@]}" "$prog" "$@" 2>"$WORK/stderr"
rc=$?
grep -v ': stats: stack ' "$WORK/stderr" >&2
[ $rc -eq 0 ] || fail "$(basename "$prog") $* exited $rc"
if [ -n "$ll" ]; then
    expect_line "$WORK/stderr" "rsocket \\(upgrade after $ll bytes\\)" "no connection on the long-lived route"
    echo "PASS: $(basename "$prog") $* on the long-lived route (upgrade after $ll bytes)"
    exit 0
fi
expect_stack "$WORK/stderr" rsocket sockets 1 "$(basename "$prog") $*"
if [ $need_data = 1 ]; then
    expect_stack "$WORK/stderr" rsocket tx_bytes 1 "$(basename "$prog") $*"
    expect_stack "$WORK/stderr" rsocket rx_bytes 1 "$(basename "$prog") $*"
fi
echo "PASS: $(basename "$prog") $* over rsocket (tx $(stack_count "$WORK/stderr" rsocket tx_bytes) rx $(stack_count "$WORK/stderr" rsocket rx_bytes) bytes)"
