#!/bin/bash
# tools/demo.sh (short run, tree already built): live progress while each
# subnet runs (a "msg/s" line naming the stack that carried the messages),
# the per-connection view of both subnets (nstack-stat -c: the upgraded
# rsocket connection on 192.168.21.0/24, the kernel one on 192.168.22.0/24),
# then the unchanged summary table ending in RESULT: PASS.
set -u
LOG=$(mktemp /tmp/nstack-demo-test.XXXXXX)
trap 'rm -f "$LOG"' EXIT
fail() { echo "FAIL: $*"; cat "$LOG"; exit 1; }

DEMO_NO_BUILD=1 DEMO_MESSAGES=400000 timeout 300 bash "$NSTACK_SRC/tools/demo.sh" >"$LOG" 2>&1 ||
    fail "tools/demo.sh exit status $?"
[ "$(tail -n 1 "$LOG")" = "RESULT: PASS" ] || fail "last line is not RESULT: PASS"
grep -qE '^  192\.168\.21\.0/24 +[0-9.]+ s +[0-9]+ msg/s  rsocket ' "$LOG" ||
    fail "no live progress line for 192.168.21.0/24 on rsocket"
grep -qE '^  192\.168\.22\.0/24 +[0-9.]+ s +[0-9]+ msg/s  kernel ' "$LOG" ||
    fail "no live progress line for 192.168.22.0/24 on kernel"
# progress comes before the summary, the per-connection view between them
conn=$(grep -n '^==* per connection' "$LOG" | cut -d: -f1)
summ=$(grep -n '^==* tools/demo.sh summary' "$LOG" | cut -d: -f1)
prog=$(grep -nE 'msg/s  (rsocket|kernel) ' "$LOG" | tail -n 1 | cut -d: -f1)
[ -n "$conn" ] && [ -n "$summ" ] && [ -n "$prog" ] && [ "$prog" -lt "$conn" ] &&
    [ "$conn" -lt "$summ" ] || fail "sections out of order (progress $prog, connections $conn, summary $summ)"
sed -n "${conn},${summ}p" "$LOG" >"$LOG.c"
grep -qE '192\.168\.21\.181:10000 +192\.168\.21\.180:20000 +rsocket +upgraded' "$LOG.c" ||
    { rm -f "$LOG.c"; fail "per-connection view lacks the client's rsocket connection"; }
grep -qE '192\.168\.22\.180:20000 +192\.168\.22\.181:10000 +kernel +kernel .*route says kernel' "$LOG.c" ||
    { rm -f "$LOG.c"; fail "per-connection view lacks the server's kernel connection with its reason"; }
rm -f "$LOG.c"
grep -qE '^192\.168\.21\.0/24 +rsocket +rsocket +400000 msgs .* PASS$' "$LOG" || fail "summary row 192.168.21.0/24"
grep -qE '^192\.168\.22\.0/24 +kernel +kernel +400000 msgs .* PASS$' "$LOG" || fail "summary row 192.168.22.0/24"
echo "ops.demo: ok"
