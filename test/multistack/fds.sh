#!/bin/bash
# The dispatcher's own fds stay out of the app's fd range (ms_fds.c).
TEST_NAME=multistack.fds
. "$(dirname "$0")/ms_lib.sh"
PROG="$NSTACK_BUILD/test/multistack/ms_fds"
[ -x "$PROG" ] || fail "$PROG not built"
write_config "" ""
in_a env NSTACK_LOG_ON=INF NSTACK_MOD_CFG_FILE="$WORK/module.json" NSTACK_MOD_CFG_RD="$WORK/rd.json" \
    NSTACK_STATS=1 LD_PRELOAD="$LIB" "$PROG" "$IP_A" >"$WORK/fds.out" 2>"$WORK/fds.err" ||
    fail "ms_fds failed: $(cat "$WORK/fds.out" "$WORK/fds.err")"
grep -q 'wildcard listener also on shadow' "$WORK/fds.err" ||
    fail "the listener was not on two stacks: $(cat "$WORK/fds.err")"
[ "$(stat_field "$WORK/fds.err" shadow accept)" = 1 ] ||
    fail "the connection did not go through the shadow: $(cat "$WORK/fds.err")"
echo "PASS multistack.fds: $(cat "$WORK/fds.out")"
