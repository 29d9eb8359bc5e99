#!/bin/bash
# poll_wakeups.sh N: a thread blocked in poll() on an idle rsocket
# connection is not woken by N round trips on another connection of its
# process (poll_wakeups.py). It used to be woken by every message of every
# module socket (ev_poll_wake_all): varnish's workers, each polling its own
# connection, served keep-alive requests at 0.29x the kernel route. Allows
# N/10 wake-ups (scheduler noise); before the fix it was about one per
# round trip.
. "$(dirname "$0")/rsfw_lib.sh"
N=${1:-2000}
PY=$RSFW_DIR/poll_wakeups.py
rsfw_setup
bg_a "${RS_ENV[@]}" python3 "$PY" serve "$IP_A" 7300 >"$WORK/server.out" 2>&1
wait_file_match "$WORK/server.out" "^listening" 30 || { cat "$WORK/server.out"; fail "server did not start"; }
rs_b timeout 120 python3 "$PY" client "$IP_A" 7300 "$N" >"$WORK/client.out" 2>&1 ||
    { cat "$WORK/client.out"; fail "client failed"; }
cat "$WORK/client.out"
woken=$(sed -n 's/.*idle poller woken \([0-9]*\) times.*/\1/p' "$WORK/client.out")
[ -n "$woken" ] || fail "no count in the client's output"
[ "$woken" -le $((N / 10)) ] || fail "the idle poller was woken $woken times for $N round trips on another connection"
expect_stack "$WORK/client.out" rsocket tx_bytes $((N * 64)) "the round trips"
echo "PASS: idle poller woken $woken times over $N round trips on another connection"
