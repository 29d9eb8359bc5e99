#!/usr/bin/env bash
# sockperf TCP ping-pong with sockperf's own data-integrity check: every
# message answered, none dropped/duplicated/reordered, a latency median.
# Usage: sockperf.sh plain|preload
set -uo pipefail
PROG_NAME=sockperf
. "$NSTACK_SRC/test/lib/programs.sh"

base=11111; [ "$1" = preload ] && base=11211
prog_setup "$1" "$base"

prog_server server sockperf sr --tcp -i "$PROG_ADDR" -p "$PROG_PORT"
prog_wait_listen "$PROG_PORT"
prog_check_framework

out=$PROG_TMP/client.out
prog_client timeout 60 sockperf pp --tcp -i "$PROG_ADDR" -p "$PROG_PORT" -t 3 -m 256 \
    --data-integrity >"$out" 2>&1 || prog_fail "client failed: $(tail -5 "$out")"

# "[Valid Duration] RunTime=...; SentMessages=N; ReceivedMessages=M"
valid=$(grep -F '[Valid Duration]' "$out") || prog_fail "no [Valid Duration] line: $(tail -5 "$out")"
sent=$(sed -n 's/.*SentMessages=\([0-9]*\).*/\1/p' <<<"$valid")
recv=$(sed -n 's/.*ReceivedMessages=\([0-9]*\).*/\1/p' <<<"$valid")
[ -n "$sent" ] && [ "$sent" -gt 0 ] || prog_fail "no messages sent: $valid"
[ "$recv" -eq "$sent" ] || prog_fail "sent $sent messages, $recv answered"
grep -q 'dropped messages = 0; # duplicated messages = 0; # out-of-order messages = 0' "$out" ||
    prog_fail "lost or reordered messages: $(grep -F 'dropped messages' "$out")"
grep -qF "data integrity test failed" "$out" && prog_fail "data integrity check failed"
median=$(sed -n 's/.*percentile 50.000 = *\([0-9.]*\).*/\1/p' "$out")
[ -n "$median" ] || prog_fail "no median latency in the output"
prog_note "OK: $sent round trips, median latency $median usec"
