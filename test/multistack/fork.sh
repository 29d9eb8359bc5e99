#!/bin/bash
# fork() while another thread holds a multi-stack listener's accept lock:
# every child's accept() on the listener must answer at once (ms_fork.c).
TEST_NAME=multistack.fork
. "$(dirname "$0")/ms_lib.sh"
FORKER="$NSTACK_BUILD/test/multistack/ms_fork"
[ -x "$FORKER" ] || fail "$FORKER not built"
write_config "" ""
in_a env NSTACK_LOG_ON=INF NSTACK_MOD_CFG_FILE="$WORK/module.json" NSTACK_MOD_CFG_RD="$WORK/rd.json" \
    LD_PRELOAD="$LIB" "$FORKER" >"$WORK/fork.out" 2>"$WORK/fork.err" ||
    fail "ms_fork failed: $(cat "$WORK/fork.out" "$WORK/fork.err")"
grep -q 'wildcard listener also on shadow' "$WORK/fork.err" ||
    fail "the listener was not on two stacks: $(cat "$WORK/fork.err")"
grep -q '^ok ' "$WORK/fork.out" || fail "no ok line: $(cat "$WORK/fork.out")"
echo "PASS multistack.fork: $(cat "$WORK/fork.out")"
